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

uint16_t checksumUpdate16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~old_word);
  sum += new_word;
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t checksumUpdate32(uint16_t csum, uint32_t old_value, uint32_t new_value) noexcept {
  csum = checksumUpdate16(csum, static_cast<uint16_t>(old_value >> 16),
                          static_cast<uint16_t>(new_value >> 16));
  return checksumUpdate16(csum, static_cast<uint16_t>(old_value), static_cast<uint16_t>(new_value));
}

}  // namespace ng::pkt
