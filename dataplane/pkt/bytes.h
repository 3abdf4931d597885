#pragma once
// Big-endian loads and stores on raw frame bytes. Callers check bounds first; these
// helpers do no checking and never touch memory outside [p, p + width).

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ng::pkt {

using Mac = std::array<uint8_t, 6>;

inline uint16_t load16(const std::byte* p) noexcept {
  return static_cast<uint16_t>((std::to_integer<uint16_t>(p[0]) << 8) | std::to_integer<uint16_t>(p[1]));
}
inline uint32_t load32(const std::byte* p) noexcept {
  return (uint32_t{load16(p)} << 16) | load16(p + 2);
}
inline void store16(std::byte* p, uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
inline void store32(std::byte* p, uint32_t v) noexcept {
  store16(p, static_cast<uint16_t>(v >> 16));
  store16(p + 2, static_cast<uint16_t>(v));
}
// Two big-endian fields side by side, as `first | second << width`: one load and one
// byte swap (which leaves the fields exchanged; the rotate puts them back).
inline uint64_t load32Pair(const std::byte* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  return std::rotl(v, 32);
}
inline uint32_t load16Pair(const std::byte* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  return std::rotl(v, 16);
}
inline Mac loadMac(const std::byte* p) noexcept {
  Mac m;
  std::memcpy(m.data(), p, 6);
  return m;
}
inline void storeMac(std::byte* p, const Mac& m) noexcept { std::memcpy(p, m.data(), 6); }

}  // namespace ng::pkt
