#include "dataplane/pkt/rewrite.h"

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

}  // namespace
}  // namespace ng::pkt
