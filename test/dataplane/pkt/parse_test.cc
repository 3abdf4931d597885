#include "dataplane/pkt/parse.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

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

// parseFrame's short path for the common shape must say exactly what the general parser
// says, or nothing: every accepted frame parses kOk there with every field equal. Run
// over frames of every kind, each prefix of them, and single-byte changes at every
// offset (the header bytes the short path tests: type, version/IHL, lengths, fragment
// bits, protocol, data offset, checksum).
TEST(Parse, SimpleIpv4PathAgreesWithTheGeneralParser) {
  const std::vector<std::vector<std::byte>> frames = {
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2, tcp::kSyn).payload(30).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(1, 2, tcp::kAckFlag).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).payload(30).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).build(),
      base().vlan(5).ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(1, 2).payload(30).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).ipOptions(12).tcp(1, 2, tcp::kSyn).build(),
      base().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).icmpEcho(icmp::kEchoRequest, 1, 1).payload(30).build(),
      PacketBuilder().arp(arp::kReply, mac("02:00:00:00:00:01"), 1, mac("02:00:00:00:00:02"), 2).build(),
  };
  size_t accepted = 0;
  size_t compared = 0;
  auto check = [&](std::span<const std::byte> f) {
    // An exact-size heap copy, so ASan catches a read past the end.
    const std::vector<std::byte> copy(f.begin(), f.end());
    ParsedFrame simple;
    ParsedFrame general;
    const ParseStatus status = detail::parseFrameGeneral(copy, general);
    ++compared;
    if (!detail::parseSimpleIpv4(copy, simple)) return;
    ++accepted;
    ASSERT_EQ(status, ParseStatus::kOk) << "length " << copy.size();
    ASSERT_EQ(std::memcmp(&simple, &general, sizeof(ParsedFrame)), 0) << "length " << copy.size();
  };
  for (const auto& f : frames) {
    for (size_t len = 0; len <= f.size(); ++len) check(std::span(f).first(len));
    for (size_t at = 0; at < f.size(); ++at) {
      for (const uint8_t value : {0x00, 0x01, 0x05, 0x06, 0x11, 0x20, 0x45, 0x46, 0x50, 0xff}) {
        std::vector<std::byte> changed = f;
        changed[at] = std::byte{value};
        check(changed);
      }
    }
  }
  // The short path did take the plain TCP and UDP frames (and only some of the rest).
  EXPECT_GT(accepted, 4u);
  EXPECT_LT(accepted, compared / 2);
  ParsedFrame p;
  EXPECT_TRUE(detail::parseSimpleIpv4(frames[0], p));
  EXPECT_TRUE(detail::parseSimpleIpv4(frames[2], p));
  EXPECT_FALSE(detail::parseSimpleIpv4(frames[4], p));  // VLAN
  EXPECT_FALSE(detail::parseSimpleIpv4(frames[5], p));  // IP options
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
