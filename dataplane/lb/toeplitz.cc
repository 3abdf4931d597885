#include "dataplane/lb/toeplitz.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ng::lb {

Toeplitz::Toeplitz() noexcept : key_(kMicrosoftKey), key_len_(kDefaultKeyLen) { buildTables(); }

Toeplitz::Toeplitz(std::span<const uint8_t> key) {
  if (key.size() < kMinKeyLen) {
    throw std::invalid_argument("Toeplitz key of " + std::to_string(key.size()) + " bytes; at least " +
                                std::to_string(kMinKeyLen) + " needed");
  }
  key_len_ = std::min(key.size(), key_.size());
  std::copy_n(key.begin(), key_len_, key_.begin());
  buildTables();
}

uint32_t Toeplitz::window(size_t bit) const noexcept {
  // Five bytes cover any 32-bit window; bytes past the key read as zero.
  uint64_t w = 0;
  const size_t first = bit / 8;
  for (size_t i = 0; i < 5; ++i) {
    w = (w << 8) | (first + i < key_len_ ? key_[first + i] : 0);
  }
  return static_cast<uint32_t>(w >> (8 - bit % 8));
}

uint32_t Toeplitz::hash(std::span<const uint8_t> input) const noexcept {
  uint32_t h = 0;
  for (size_t byte = 0; byte < input.size(); ++byte) {
    for (size_t b = 0; b < 8; ++b) {
      if (input[byte] & (0x80u >> b)) h ^= window(byte * 8 + b);
    }
  }
  return h;
}

void Toeplitz::buildTables() noexcept {
  // By linearity a byte's contribution is the XOR of its set bits' windows; tabulating
  // all 256 values per position turns the 96-step bit loop into 12 lookups.
  for (size_t pos = 0; pos < kIpv6TupleLen; ++pos) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t h = 0;
      for (size_t b = 0; b < 8; ++b) {
        if (v & (0x80u >> b)) h ^= window(pos * 8 + b);
      }
      table_[pos][v] = h;
    }
  }
}

uint32_t Toeplitz::hashIpv4(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                            uint16_t dst_port) const noexcept {
  return table_[0][src_ip >> 24] ^ table_[1][(src_ip >> 16) & 0xff] ^ table_[2][(src_ip >> 8) & 0xff] ^
         table_[3][src_ip & 0xff] ^ table_[4][dst_ip >> 24] ^ table_[5][(dst_ip >> 16) & 0xff] ^
         table_[6][(dst_ip >> 8) & 0xff] ^ table_[7][dst_ip & 0xff] ^ table_[8][src_port >> 8] ^
         table_[9][src_port & 0xff] ^ dstPortPart(dst_port);
}

uint32_t Toeplitz::hashIpv6(uint64_t src_hi, uint64_t src_lo, uint64_t dst_hi, uint64_t dst_lo,
                            uint16_t src_port, uint16_t dst_port) const noexcept {
  uint32_t h = 0;
  const uint64_t words[4] = {src_hi, src_lo, dst_hi, dst_lo};
  for (size_t w = 0; w < 4; ++w) {
    for (size_t b = 0; b < 8; ++b) h ^= table_[w * 8 + b][(words[w] >> (56 - 8 * b)) & 0xff];
  }
  return h ^ table_[32][src_port >> 8] ^ table_[33][src_port & 0xff] ^ dstPortPart6(dst_port);
}

}  // namespace ng::lb
