// IPv6 parsing (pkt/parse6.cc): fields, extension-header chains and their bounds,
// truncation at every length.
#include <gtest/gtest.h>

#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/parse6.h"
#include "dataplane/pkt/rewrite6.h"
#include "test/support/packet_builder.h"

namespace ng::pkt {
namespace {

using test::ip6;
using test::PacketBuilder;

PacketBuilder base6() {
  return PacketBuilder().eth(test::mac("02:00:00:00:00:01"), test::mac("02:00:00:00:00:02"))
      .ipv6(ip6("2001:db8::1"), ip6("2001:db8::2"), 17);
}

TEST(Parse6, TcpFields) {
  const auto f = base6().tcp(1234, 80, tcp::kSyn).payload(10).build();
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.l3, L3::kIpv6);
  EXPECT_EQ(r.frame.proto, kProtoTcp);
  EXPECT_EQ(r.frame.ttl, 17);
  EXPECT_EQ(r.frame.ip_header_len, 40);
  EXPECT_EQ(r.frame.ip_total_len, 40 + 20 + 10);
  EXPECT_EQ(r.frame.l4_offset, 14 + 40);
  EXPECT_EQ(r.frame.l4_len, 30);
  EXPECT_EQ(r.frame.src_port, 1234);
  EXPECT_EQ(r.frame.dst_port, 80);
  EXPECT_EQ(r.frame.tcp_flags, tcp::kSyn);
  EXPECT_FALSE(r.frame.is_fragment);
  EXPECT_EQ(srcIp6(f, r.frame), ip6("2001:db8::1"));
  EXPECT_EQ(dstIp6(f, r.frame), ip6("2001:db8::2"));
}

TEST(Parse6, ExtensionHeadersAreWalkedToTheUpperLayer) {
  const auto f = base6().ext6(ipv6::kHopByHop).ext6(ipv6::kRouting, 16, 0).ext6(ipv6::kAh, 16)
                     .ext6(ipv6::kDestOpts, 24).udp(5, 53).payload(4).build();
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.proto, kProtoUdp);
  EXPECT_EQ(r.frame.ip_header_len, 40 + 8 + 16 + 16 + 24);
  EXPECT_EQ(r.frame.dst_port, 53);
  EXPECT_EQ(r.frame.routing_left, 0);
  EXPECT_EQ(parseFrame(base6().ext6(ipv6::kRouting, 24, 3).tcp(1, 2, 0).build()).frame.routing_left, 3);
}

TEST(Parse6, ChainBounds) {
  PacketBuilder eight = base6();
  for (unsigned i = 0; i < kMaxExtHeaders; ++i) eight.ext6(ipv6::kDestOpts);
  EXPECT_EQ(parseFrame(eight.tcp(1, 2, 0).build()).status, ParseStatus::kOk);
  PacketBuilder nine = base6();
  for (unsigned i = 0; i <= kMaxExtHeaders; ++i) nine.ext6(ipv6::kDestOpts);
  EXPECT_EQ(parseFrame(nine.tcp(1, 2, 0).build()).status, ParseStatus::kExtHeaderChain);
  EXPECT_EQ(parseFrame(base6().ext6(ipv6::kDestOpts, kMaxExtHeaderBytes).tcp(1, 2, 0).build()).status, ParseStatus::kOk);
  EXPECT_EQ(parseFrame(base6().ext6(ipv6::kDestOpts, kMaxExtHeaderBytes + 8).tcp(1, 2, 0).build()).status,
            ParseStatus::kExtHeaderChain);
  EXPECT_EQ(parseFrame(base6().ext6(ipv6::kRouting).ext6(ipv6::kHopByHop).tcp(1, 2, 0).build()).status,
            ParseStatus::kExtHeaderChain);
  EXPECT_EQ(parseFrame(base6().ext6(ipv6::kHopByHop).tcp(1, 2, 0).ip6PayloadLen(0).build()).status,
            ParseStatus::kJumbogram);
  EXPECT_EQ(parseFrame(base6().ip6NextHeader(ipv6::kNoNext).build()).status, ParseStatus::kOk)
      << "No Next Header: parsed, left to the classifier";
}

// A chain of 200 eight-byte headers (a 1600-byte frame) costs at most kMaxExtHeaders
// steps: the parser gives up at the bound, it never reads to the end.
TEST(Parse6, LongChainIsRejectedAtTheBound) {
  PacketBuilder b = base6();
  for (int i = 0; i < 200; ++i) b.ext6(ipv6::kDestOpts);
  const auto f = b.tcp(1, 2, 0).build();
  EXPECT_EQ(parseFrame(f).status, ParseStatus::kExtHeaderChain);
}

TEST(Parse6, Fragments) {
  const auto first = base6().frag6(0, true, 0x01020304).udp(1, 53).payload(40).build();
  ParseResult r = parseFrame(first);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_TRUE(r.frame.is_fragment);
  EXPECT_TRUE(r.frame.first_fragment);
  EXPECT_EQ(r.frame.frag6_offset, 14 + 40);
  EXPECT_EQ(r.frame.dst_port, 53);
  const auto later = base6().frag6(48, false, 0x01020304).ip6NextHeader(kProtoUdp).payload(40).build();
  r = parseFrame(later);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_TRUE(r.frame.is_fragment);
  EXPECT_FALSE(r.frame.first_fragment);
  EXPECT_EQ(r.frame.l4_offset, 14 + 48);
  const auto atomic = base6().frag6(0, false, 9).udp(1, 53).payload(8).build();
  r = parseFrame(atomic);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_FALSE(r.frame.is_fragment) << "RFC 6946: an atomic fragment is a whole datagram";
}

TEST(Parse6, ZeroUdpChecksumIsRefused) {
  EXPECT_EQ(parseFrame(base6().udp(1, 53).l4Checksum(0).build()).status, ParseStatus::kBadL4Header);
}

TEST(Parse6, EveryTruncationIsRefusedOrStillConsistent) {
  const std::vector<test::Bytes> frames = {
      base6().tcp(1, 80, tcp::kSyn).build(),
      base6().ext6(ipv6::kHopByHop).ext6(ipv6::kDestOpts, 16).udp(1, 53).payload(30).build(),
      base6().frag6(0, true, 7).udp(1, 53).payload(64).build(),
      base6().ndSolicit(ip6("2001:db8::2"), test::mac("02:00:00:00:00:09")).build(),
  };
  for (const auto& f : frames) {
    const size_t real = 14 + 40 + load16(f.data() + 14 + ipv6::kPayloadLen);
    for (size_t len = 0; len < real; ++len) {
      const std::span<const std::byte> cut(f.data(), len);
      EXPECT_NE(parseFrame(cut).status, ParseStatus::kOk) << "length " << len << " of " << real;
    }
    EXPECT_EQ(parseFrame(std::span<const std::byte>(f.data(), real)).status, ParseStatus::kOk);
  }
}

TEST(Rewrite6, NsFrameIsValid) {
  std::array<std::byte, 128> buf{};
  const Ip6 target = ip6("2001:db8::abcd:1234");
  const size_t n = writeNsFrame(buf, test::mac("02:00:00:00:00:01"), ip6("2001:db8::1"), target);
  ASSERT_EQ(n, kNsFrameLen);
  const std::span<const std::byte> f(buf.data(), n);
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.proto, kProtoIcmp6);
  EXPECT_EQ(r.frame.icmp_type, icmp6::kNeighborSolicitation);
  EXPECT_EQ(r.frame.ttl, 255);
  EXPECT_TRUE(icmp6ChecksumOk(f, r.frame));
  EXPECT_EQ(dstIp6(f, r.frame), ip6("ff02::1:ffcd:1234"));
  EXPECT_EQ(loadMac(buf.data()), (Mac{0x33, 0x33, 0xff, 0xcd, 0x12, 0x34}));
  EXPECT_EQ(loadIp6(buf.data() + 14 + 40 + 8), target);
  EXPECT_EQ(writeNsFrame(std::span<std::byte>(buf.data(), kNsFrameLen - 1), Mac{}, Ip6{}, target), 0u);
}

TEST(Ip6, PrefixHelpers) {
  const Ip6 a = ip6("2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(ip6Mask(a, 0), Ip6{});
  EXPECT_EQ(ip6Mask(a, 128), a);
  EXPECT_EQ(ip6Mask(a, 64), ip6("2001:db8:1:2::"));
  EXPECT_EQ(ip6Mask(a, 65), ip6("2001:db8:1:2::"));
  EXPECT_EQ(ip6Mask(a, 48), ip6("2001:db8:1::"));
  EXPECT_EQ(ip6LastOf(ip6("2001:db8::"), 32), ip6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_EQ(ip6LastOf(ip6("2001:db8::"), 96), ip6("2001:db8::ffff:ffff"));
  EXPECT_EQ(ip6LastOf(ip6("::"), 0), ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_EQ(linkLocalFromMac(Mac{0x02, 0, 0, 0, 0, 1}), ip6("fe80::ff:fe00:1"));
  EXPECT_TRUE(ip6("fe80::1").isLinkLocal());
  EXPECT_TRUE(ip6("febf::1").isLinkLocal());
  EXPECT_FALSE(ip6("fec0::1").isLinkLocal());
  EXPECT_TRUE(ip6("::ffff:1.2.3.4").isV4Mapped());
}

}  // namespace
}  // namespace ng::pkt
