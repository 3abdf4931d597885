#include "dataplane/lb/toeplitz.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <stdexcept>
#include <vector>

namespace ng::lb {
namespace {

constexpr uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

// Microsoft's RSS verification suite ("Verifying the RSS Hash Calculation"), IPv4 with
// TCP ports, under its key: {destination, source, expected IPv4-only hash, expected
// IPv4+ports hash}. The input is source address, destination address, source port,
// destination port.
struct Vector {
  uint32_t dst_ip;
  uint16_t dst_port;
  uint32_t src_ip;
  uint16_t src_port;
  uint32_t ip_only;
  uint32_t with_ports;
};
constexpr Vector kVectors[] = {
    {ip(161, 142, 100, 80), 1766, ip(66, 9, 149, 187), 2794, 0x323e8fc2, 0x51ccc178},
    {ip(65, 69, 140, 83), 4739, ip(199, 92, 111, 2), 14230, 0xd718262a, 0xc626b0ea},
    {ip(12, 22, 207, 184), 38024, ip(24, 19, 198, 95), 12898, 0xd2d0a5de, 0x5c2b394a},
    {ip(209, 142, 163, 6), 2217, ip(38, 27, 205, 30), 48228, 0x82989176, 0xafc7327f},
    {ip(202, 188, 127, 2), 1303, ip(153, 39, 163, 191), 44251, 0x5d1809c5, 0x10e828a2},
};

std::vector<uint8_t> bytesOf(uint32_t src, uint32_t dst) {
  return {uint8_t(src >> 24), uint8_t(src >> 16), uint8_t(src >> 8), uint8_t(src),
          uint8_t(dst >> 24), uint8_t(dst >> 16), uint8_t(dst >> 8), uint8_t(dst)};
}

TEST(ToeplitzTest, MicrosoftVerificationSuiteIpv4) {
  const Toeplitz t;  // the Microsoft key
  for (const Vector& v : kVectors) {
    std::vector<uint8_t> in = bytesOf(v.src_ip, v.dst_ip);
    EXPECT_EQ(t.hash(in), v.ip_only) << std::hex << v.src_ip;
    in.insert(in.end(), {uint8_t(v.src_port >> 8), uint8_t(v.src_port), uint8_t(v.dst_port >> 8),
                         uint8_t(v.dst_port)});
    EXPECT_EQ(t.hash(in), v.with_ports) << std::hex << v.src_ip;
    EXPECT_EQ(t.hashIpv4(v.src_ip, v.dst_ip, v.src_port, v.dst_port), v.with_ports) << std::hex << v.src_ip;
  }
}

TEST(ToeplitzTest, ExplicitKeyEqualsDefaultAndShortKeysAreRefused) {
  const Toeplitz a;
  const Toeplitz b(Toeplitz::kMicrosoftKey);
  EXPECT_EQ(a.hashIpv4(1, 2, 3, 4), b.hashIpv4(1, 2, 3, 4));
  const std::array<uint8_t, 15> short_key{};
  EXPECT_THROW(Toeplitz{short_key}, std::invalid_argument);
}

// The linearity SNAT port choice relies on, and the table path equal to the bit path,
// under a random key.
TEST(ToeplitzTest, DestinationPortPartIsSeparableUnderAnyKey) {
  std::mt19937 rng(7);
  std::array<uint8_t, 40> key;
  for (auto& k : key) k = static_cast<uint8_t>(rng());
  const Toeplitz t(key);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t s = rng(), d = rng();
    const auto sp = static_cast<uint16_t>(rng()), dp = static_cast<uint16_t>(rng());
    const uint32_t h = t.hashIpv4(s, d, sp, dp);
    EXPECT_EQ(h, t.hashIpv4(s, d, sp, 0) ^ t.dstPortPart(dp));
    std::vector<uint8_t> in = bytesOf(s, d);
    in.insert(in.end(), {uint8_t(sp >> 8), uint8_t(sp), uint8_t(dp >> 8), uint8_t(dp)});
    ASSERT_EQ(h, t.hash(in));
  }
}

}  // namespace
}  // namespace ng::lb

namespace ng::lb {
namespace {

// Microsoft's suite, IPv6 with TCP ports: destination 3ffe:2501:200:3::1 port 1766,
// source 3ffe:2501:200:1fff::7 port 2794 -> 0x40207d3d (0x2cc18cd5 addresses only).
TEST(ToeplitzTest, MicrosoftVerificationSuiteIpv6) {
  const Toeplitz t;
  const uint64_t src_hi = 0x3ffe25010200'1fffULL, src_lo = 0x7;
  const uint64_t dst_hi = 0x3ffe25010200'0003ULL, dst_lo = 0x1;
  std::vector<uint8_t> in;
  for (uint64_t w : {src_hi, src_lo, dst_hi, dst_lo}) {
    for (int s = 56; s >= 0; s -= 8) in.push_back(static_cast<uint8_t>(w >> s));
  }
  EXPECT_EQ(t.hash(in), 0x2cc18cd5u);
  EXPECT_EQ(t.hashIpv6(src_hi, src_lo, dst_hi, dst_lo, 2794, 1766), 0x40207d3du);
}

TEST(ToeplitzTest, Ipv6TablesMatchTheBitLoopAndSplitOffTheDestinationPort) {
  const Toeplitz t;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const uint64_t w[4] = {rng(), rng(), rng(), rng()};
    const auto sp = static_cast<uint16_t>(rng()), dp = static_cast<uint16_t>(rng());
    std::vector<uint8_t> in;
    for (uint64_t x : w) {
      for (int s = 56; s >= 0; s -= 8) in.push_back(static_cast<uint8_t>(x >> s));
    }
    in.insert(in.end(), {uint8_t(sp >> 8), uint8_t(sp), uint8_t(dp >> 8), uint8_t(dp)});
    EXPECT_EQ(t.hashIpv6(w[0], w[1], w[2], w[3], sp, dp), t.hash(in));
    EXPECT_EQ(t.hashIpv6(w[0], w[1], w[2], w[3], sp, dp), t.hashIpv6(w[0], w[1], w[2], w[3], sp, 0) ^ t.dstPortPart6(dp));
  }
}

}  // namespace
}  // namespace ng::lb
