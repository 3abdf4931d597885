#include "dataplane/pkt/parse.h"

#include <gtest/gtest.h>

#include "dataplane/pkt/headers.h"
#include "test/support/packet_builder.h"

namespace ng::pkt {
namespace {

using test::ip;
using test::mac;
using test::PacketBuilder;

PacketBuilder base() { return PacketBuilder().eth(mac("02:00:00:00:00:02"), mac("02:00:00:00:00:01")); }

TEST(Parse, TcpSyn) {
  const auto f = base().ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 17).tcp(1234, 80, tcp::kSyn).build();
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.l3, L3::kIpv4);
  EXPECT_EQ(r.frame.src_ip, ip("10.0.0.1"));
  EXPECT_EQ(r.frame.dst_ip, ip("10.0.0.2"));
  EXPECT_EQ(r.frame.ttl, 17);
  EXPECT_EQ(r.frame.proto, kProtoTcp);
  EXPECT_EQ(r.frame.src_port, 1234);
  EXPECT_EQ(r.frame.dst_port, 80);
  EXPECT_EQ(r.frame.tcp_flags, tcp::kSyn);
  EXPECT_EQ(r.frame.l4_offset, kEthHeaderLen + kIpv4MinLen);
  EXPECT_EQ(r.frame.l4_len, kTcpMinLen);
  EXPECT_FALSE(r.frame.is_fragment);
}

TEST(Parse, VlanTaggedUdp) {
  const auto f = base().vlan(0x2064).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(53, 5353).payload(4).build();
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_TRUE(r.frame.has_vlan);
  EXPECT_EQ(r.frame.vlan_tci, 0x2064);
  EXPECT_EQ(r.frame.l3_offset, kEthHeaderLen + kVlanTagLen);
  EXPECT_EQ(r.frame.src_port, 53);
  EXPECT_EQ(r.frame.dst_port, 5353);
}

TEST(Parse, ArpRequest) {
  const auto f = PacketBuilder().eth(mac("02:00:00:00:00:09"), mac("ff:ff:ff:ff:ff:ff"))
                     .arp(arp::kRequest, mac("02:00:00:00:00:09"), ip("10.0.0.9"), {}, ip("10.0.0.1")).build();
  const ParseResult r = parseFrame(f);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_EQ(r.frame.l3, L3::kArp);
  EXPECT_EQ(r.frame.arp_op, arp::kRequest);
  EXPECT_EQ(r.frame.arp_spa, ip("10.0.0.9"));
  EXPECT_EQ(r.frame.arp_tpa, ip("10.0.0.1"));
  EXPECT_EQ(r.frame.arp_sha, mac("02:00:00:00:00:09"));
}

TEST(Parse, PaddingAfterTheDatagramIsIgnored) {
  // A 40-byte datagram in a 60-byte frame: L4 length comes from the IP header.
  const auto f = base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2, tcp::kAckFlag).build();
  ASSERT_EQ(f.size(), kMinFrameLen);
  EXPECT_EQ(parseFrame(f).frame.l4_len, kTcpMinLen);
}

TEST(Parse, FragmentsAreMarkedAndNonFirstHaveNoPorts) {
  auto first = base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipFrag(ipv4::kFlagMf).udp(1, 2).payload(16).build();
  ParseResult r = parseFrame(first);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_TRUE(r.frame.is_fragment);
  EXPECT_TRUE(r.frame.first_fragment);
  auto later = base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipFrag(3).ipProto(kProtoUdp).payload(16).build();
  r = parseFrame(later);
  ASSERT_EQ(r.status, ParseStatus::kOk);
  EXPECT_TRUE(r.frame.is_fragment);
  EXPECT_FALSE(r.frame.first_fragment);
  EXPECT_EQ(r.frame.src_port, 0);
}

TEST(Parse, EveryPrefixOfEveryFrameKindParsesWithinBounds) {
  const std::vector<std::vector<std::byte>> frames = {
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2, tcp::kSyn).payload(30).build(),
      base().vlan(5).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipOptions(12).udp(1, 2).payload(30).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).icmpEcho(icmp::kEchoRequest, 1, 1).payload(30).build(),
      PacketBuilder().arp(arp::kReply, mac("02:00:00:00:00:01"), 1, mac("02:00:00:00:00:02"), 2).build(),
  };
  for (const auto& f : frames) {
    for (size_t len = 0; len <= f.size(); ++len) {
      // Copy into an exact-size heap buffer so ASan catches any read past the end.
      std::vector<std::byte> prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(len));
      const ParseResult r = parseFrame(prefix);
      if (len < kEthHeaderLen) {
        EXPECT_EQ(r.status, ParseStatus::kTruncated);
      }
      if (r.status == ParseStatus::kOk && r.frame.l3 == L3::kIpv4) {
        EXPECT_LE(r.frame.l4_offset + r.frame.l4_len, len);
      }
    }
  }
}

TEST(Parse, Statuses) {
  EXPECT_EQ(parseFrame(base().etherType(0x88cc).payload(40).build()).status, ParseStatus::kUnsupportedEtherType);
  EXPECT_EQ(parseFrame(base().etherType(0x86dd).payload(40).build()).status, ParseStatus::kBadIpHeader)
      << "IPv6 ethertype, version nibble not 6";
  EXPECT_EQ(parseFrame(base().ipv4(1, 2).ipChecksum(1).tcp(1, 2, 0).build()).status, ParseStatus::kIpChecksum);
  EXPECT_EQ(parseFrame(base().ipv4(1, 2).ipVersionIhl(0x43).tcp(1, 2, 0).build()).status, ParseStatus::kBadIpHeader);
  EXPECT_EQ(parseFrame(base().ipv4(1, 2).ipVersionIhl(0x46).tcp(1, 2, 0).build()).status, ParseStatus::kIpChecksum)
      << "IHL 6 over a 20-byte header: the checksum covers 4 bytes of TCP and fails";
  EXPECT_EQ(parseFrame(base().ipv4(1, 2).ipTotalLen(1000).tcp(1, 2, 0).build()).status, ParseStatus::kTruncated);
  EXPECT_EQ(parseFrame(base().ipv4(1, 2).ipTotalLen(30).tcp(1, 2, 0).build()).status, ParseStatus::kTruncated)
      << "TCP header cut by the IP length";
  auto udp_bad_len = base().ipv4(1, 2).udp(1, 2).payload(8).build();
  store16(udp_bad_len.data() + kEthHeaderLen + kIpv4MinLen + udp::kLength, 4);
  EXPECT_EQ(parseFrame(udp_bad_len).status, ParseStatus::kBadL4Header);
}

}  // namespace
}  // namespace ng::pkt
