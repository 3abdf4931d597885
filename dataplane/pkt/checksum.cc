#include "dataplane/pkt/checksum.h"

#include "dataplane/pkt/bytes.h"

namespace ng::pkt {

uint32_t checksumAdd(std::span<const std::byte> bytes, uint32_t sum) noexcept {
  // 64-bit accumulator: no carry handling inside the loop for any frame size we see.
  uint64_t acc = sum;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) acc += load16(bytes.data() + i);
  if (i < bytes.size()) acc += std::to_integer<uint32_t>(bytes[i]) << 8;
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

uint16_t checksumFinish(uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace ng::pkt
