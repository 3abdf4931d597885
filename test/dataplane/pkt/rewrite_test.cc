#include "dataplane/pkt/rewrite.h"

#include <random>

#include <gtest/gtest.h>

#include "dataplane/pkt/headers.h"
#include "test/support/packet_builder.h"

namespace ng::pkt {
namespace {

using test::ip;
using test::mac;
using test::PacketBuilder;

PacketBuilder eth() { return PacketBuilder().eth(mac("02:00:00:00:00:02"), mac("02:00:00:00:00:01")); }

TEST(Rewrite, SetIpv4IdMatchesAFreshHeaderChecksum) {
  for (const uint16_t id : {uint16_t{0}, uint16_t{1}, uint16_t{0xffff}, uint16_t{0x1234}}) {
    auto in = eth().ipv4(ip("1.2.3.4"), ip("5.6.7.8")).ipId(0xbeef).ipFrag(ipv4::kFlagMf).udp(1111, 53).payload(32).build();
    ParseResult r = parseFrame(in);
    ASSERT_EQ(r.status, ParseStatus::kOk);
    setIpv4Id(in, r.frame, id);
    const auto want = eth().ipv4(ip("1.2.3.4"), ip("5.6.7.8")).ipId(id).ipFrag(ipv4::kFlagMf).udp(1111, 53).payload(32).build();
    EXPECT_EQ(in, want) << id;
  }
}

// Rewriting must give byte for byte the frame the builder computes from scratch.
TEST(Rewrite, TupleRewriteMatchesFreshChecksumsTcpAndUdp) {
  for (const bool udp : {false, true}) {
    auto in = udp ? eth().ipv4(ip("1.2.3.4"), ip("5.6.7.8")).udp(1111, 53).payload(33).build()
                  : eth().ipv4(ip("1.2.3.4"), ip("5.6.7.8")).tcp(1111, 80, tcp::kSyn).payload(33).build();
    ParseResult r = parseFrame(in);
    ASSERT_EQ(r.status, ParseStatus::kOk);
    rewriteIpv4Tuple(in, r.frame, ip("10.0.0.1"), 2222, ip("10.0.0.2"), 30080);
    const auto want = udp ? eth().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(2222, 30080).payload(33).build()
                          : eth().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).tcp(2222, 30080, tcp::kSyn).payload(33).build();
    EXPECT_EQ(in, want) << (udp ? "udp" : "tcp");
    EXPECT_EQ(r.frame.src_ip, ip("10.0.0.1"));
    EXPECT_EQ(r.frame.dst_port, 30080);
  }
}

TEST(Rewrite, ForwardNatAlsoDecrementsTtl) {
  auto in = eth().ipv4(ip("1.2.3.4"), ip("5.6.7.8"), 9).tcp(1, 2, tcp::kAckFlag).build();
  ParseResult r = parseFrame(in);
  forwardNat(in, r.frame, ip("9.9.9.9"), 3, ip("8.8.8.8"), 4);
  EXPECT_EQ(in, eth().ipv4(ip("9.9.9.9"), ip("8.8.8.8"), 8).tcp(3, 4, tcp::kAckFlag).build());
  EXPECT_EQ(r.frame.ttl, 8);
}

TEST(Rewrite, UdpChecksumThatWouldBecomeZeroIsSentAsAllOnes) {
  // Search a rewrite whose correct UDP checksum is 0 (transmitted as 0xffff, RFC 768).
  for (uint16_t port = 1; port != 0; ++port) {
    auto want = eth().ipv4(ip("10.0.0.1"), ip("10.0.0.2")).udp(port, 53).build();
    const uint16_t csum = load16(want.data() + kEthHeaderLen + kIpv4MinLen + udp::kChecksum);
    if (csum != 0xffff) continue;  // the builder maps a computed 0 to 0xffff too
    auto in = eth().ipv4(ip("1.1.1.1"), ip("2.2.2.2")).udp(7, 53).build();
    ParseResult r = parseFrame(in);
    rewriteIpv4Tuple(in, r.frame, ip("10.0.0.1"), port, ip("10.0.0.2"), 53);
    EXPECT_EQ(in, want);
    return;
  }
  GTEST_SKIP() << "no port gives a zero checksum for this tuple";
}

// forwardNatKnown with natDelta's stored change must write exactly the bytes forwardNat
// derives from the frame, in both directions (the reply applies reversed()), for TCP,
// UDP with a checksum, and UDP without one (0 stays 0), over many random tuples. The
// TCP/UDP checksums the frames arrive with are arbitrary too: a wrong one must stay wrong
// the same way, and 0xffff / 0 (the two one's-complement zeros) come out as forwardNat's.
TEST(Rewrite, KnownFlowRewriteMatchesForwardNatBothWays) {
  std::mt19937 rng(20261124);
  const auto u32 = [&] { return static_cast<uint32_t>(rng()); };
  const auto u16 = [&] { return static_cast<uint16_t>(rng()); };
  const auto randomTuple = [&] { return Ipv4Tuple{u32(), u16(), u32(), u16()}; };
  // The same flow direction seen from the other end.
  const auto backwards = [](const Ipv4Tuple& t) { return Ipv4Tuple{t.dst_ip, t.dst_port, t.src_ip, t.src_port}; };
  int compared = 0;
  for (int round = 0; round < 20000; ++round) {
    const Ipv4Tuple client = randomTuple();
    // Every tenth round a rewrite whose change sums to zero (the tuple reversed): the
    // stored change is then one of the two zeros, and its negation the other.
    const Ipv4Tuple to_node = round % 10 == 0 ? backwards(client) : randomTuple();
    const NatDelta delta = natDelta(client, to_node);
    // The reply: node -> SNAT, restored to VIP -> client.
    const Ipv4Tuple reply = backwards(to_node);
    const Ipv4Tuple to_client = backwards(client);
    for (const int kind : {0, 1, 2}) {  // TCP, UDP, UDP without checksum
      for (const bool forward : {true, false}) {
        const Ipv4Tuple& from = forward ? client : reply;
        auto frame = kind == 0 ? eth().ipv4(from.src_ip, from.dst_ip, 64).tcp(from.src_port, from.dst_port, tcp::kAckFlag).payload(round % 7).build()
                               : eth().ipv4(from.src_ip, from.dst_ip, 64).udp(from.src_port, from.dst_port).payload(round % 7).build();
        std::byte* l4 = frame.data() + kEthHeaderLen + kIpv4MinLen;
        const size_t csum_off = kind == 0 ? tcp::kChecksum : udp::kChecksum;
        // Arbitrary arriving TCP/UDP checksums, the extremes included (the IPv4 header's
        // must be right: the parser drops the frame otherwise).
        const uint16_t arriving[] = {0x0000, 0xffff, u16()};
        store16(l4 + csum_off, kind == 2 ? uint16_t{0} : arriving[round % 3]);
        auto expected = frame;
        ParseResult general = parseFrame(expected);
        ParseResult known = parseFrame(frame);
        ASSERT_EQ(general.status, ParseStatus::kOk) << round;
        ASSERT_EQ(known.status, ParseStatus::kOk);
        const Ipv4Tuple& to = forward ? to_node : to_client;
        forwardNat(expected, general.frame, to.src_ip, to.src_port, to.dst_ip, to.dst_port);
        forwardNatKnown(frame, known.frame, to, forward ? delta : delta.reversed());
        ASSERT_EQ(frame, expected) << "round " << round << " kind " << kind << (forward ? " to node" : " to client");
        // The fragment path reads the new addresses back from `p`.
        EXPECT_EQ(known.frame.ttl, general.frame.ttl);
        EXPECT_EQ(known.frame.src_ip, general.frame.src_ip);
        EXPECT_EQ(known.frame.dst_ip, general.frame.dst_ip);
        EXPECT_EQ(known.frame.src_port, general.frame.src_port);
        EXPECT_EQ(known.frame.dst_port, general.frame.dst_port);
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 20000 * 3 * 2);
}

}  // namespace
}  // namespace ng::pkt
