#include "dataplane/pkt/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "dataplane/pkt/bytes.h"

namespace ng::pkt {
namespace {

std::vector<std::byte> bytesOf(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(std::byte(b));
  return out;
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
  const auto data = bytesOf({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7});
  EXPECT_EQ(checksumFinish(checksumAdd(data)), static_cast<uint16_t>(~0xddf2));
}

TEST(Checksum, KnownIpv4Header) {
  // A real header (Wikipedia's IPv4 checksum example): checksum field 0xb861.
  auto hdr = bytesOf({0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
                      0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7});
  EXPECT_EQ(internetChecksum(hdr), 0xb861);
  store16(hdr.data() + 10, 0xb861);
  EXPECT_EQ(internetChecksum(hdr), 0);
}

TEST(Checksum, OddLengthPadsWithZero) {
  EXPECT_EQ(checksumAdd(bytesOf({0x12, 0x34, 0x56})), 0x1234u + 0x5600u);
}

TEST(Checksum, IncrementalUpdateEqualsRecomputation) {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> data(40);
    for (auto& b : data) b = std::byte(rng() & 0xff);
    store16(data.data() + 10, 0);
    store16(data.data() + 10, internetChecksum(data));
    const size_t at = 12 + 2 * (rng() % 4);
    const uint32_t old_value = load32(data.data() + at);
    const uint32_t new_value = static_cast<uint32_t>(rng());
    const uint16_t updated = checksumUpdate32(load16(data.data() + 10), old_value, new_value);
    store32(data.data() + at, new_value);
    store16(data.data() + 10, updated);
    ASSERT_EQ(internetChecksum(data), 0) << "round " << round;
  }
}

TEST(Checksum, IncrementalUpdateKeepsABadChecksumBad) {
  std::vector<std::byte> data = bytesOf({0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2});
  store16(data.data() + 10, static_cast<uint16_t>(internetChecksum(data) ^ 0x0101));  // wrong on arrival
  const uint16_t updated = checksumUpdate32(load16(data.data() + 10), load32(data.data() + 16), 0x0a000063);
  store32(data.data() + 16, 0x0a000063);
  store16(data.data() + 10, updated);
  EXPECT_NE(internetChecksum(data), 0);
}

}  // namespace
}  // namespace ng::pkt
