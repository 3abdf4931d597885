// VIP announcements (fwd::announceVips, fwd::writeGratuitousArp) and the exception
// path's rate limiter. The classification of frames for the kernel is in the fixture
// table (fixtures.cc, "exception: ..."), run by processor_test.

#include "dataplane/fwd/exception.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/reply_steering.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/ip6.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {
namespace {

using fwd::ArpRequest;

// A snapshot with `vips` (sorted by the caller), each appeared in `since` (same index).
fwd::ForwardingSnapshot snapshotWith(uint64_t generation, std::vector<uint32_t> vips, std::vector<uint64_t> since,
                                     uint32_t garp_interval_ms = 0) {
  fwd::ForwardingSnapshot s;
  s.generation = generation;
  s.vips = std::move(vips);
  s.vip_since = std::move(since);
  s.garp_interval_ms = garp_interval_ms;
  return s;
}

std::vector<uint32_t> vipRange(uint32_t first, uint32_t n) {
  std::vector<uint32_t> v;
  for (uint32_t i = 0; i < n; ++i) v.push_back(first + i);
  return v;
}

struct Announcer {
  Env env = makeEnv();
  fwd::WorkerContext ctx{0, env.ports, 1024};
  // Runs ticks 1 ms apart from `now` until `ticks` ran; returns every VIP announced, in
  // order, and checks the per-tick bound and the port.
  std::vector<uint32_t> run(const fwd::ForwardingSnapshot& snap, uint32_t& now, uint32_t ticks) {
    std::vector<uint32_t> out;
    for (uint32_t t = 0; t < ticks; ++t, ++now) {
      std::array<ArpRequest, 16> req{};
      const size_t n = fwd::announceVips(ctx, snap, now, req);
      EXPECT_LE(n, fwd::kGarpPerTick) << "bounded per tick";
      for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(req[i].port, ctx.external_port);
        out.push_back(req[i].target_ip);
      }
    }
    return out;
  }
};

TEST(Garp, FrameIsAnArpAnnouncementFromTheExternalPort) {
  Env env = makeEnv();
  std::vector<std::byte> frame(64, std::byte{0x5a});
  ASSERT_EQ(fwd::writeGratuitousArp(env.ports[kExt], Topo::vip(), frame), 60u);
  // Broadcast request, sender = target = VIP, sender MAC = port MAC, target MAC zero, padded.
  const Bytes want = PacketBuilder()
                         .eth(Topo::extMac(), mac("ff:ff:ff:ff:ff:ff"))
                         .arp(pkt::arp::kRequest, Topo::extMac(), Topo::vip(), Mac{}, Topo::vip())
                         .build();
  ASSERT_EQ(want.size(), 60u);
  EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 60), want);
  const std::vector<uint8_t> head = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
                                     0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x01,
                                     10, 100, 0, 100, 0, 0, 0, 0, 0, 0, 10, 100, 0, 100};
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(std::to_integer<uint8_t>(frame[i]), head[i]) << "byte " << i;
  for (size_t i = head.size(); i < 60; ++i) EXPECT_EQ(std::to_integer<uint8_t>(frame[i]), 0) << "padding byte " << i;
  std::array<std::byte, 59> small{};
  EXPECT_EQ(fwd::writeGratuitousArp(env.ports[kExt], Topo::vip(), small), 0u);
}

TEST(Garp, EveryVipOnceAtStartThenNothingWithoutInterval) {
  Announcer a;
  const auto snap = snapshotWith(1, vipRange(0x0a640064, 10), std::vector<uint64_t>(10, 1));
  uint32_t now = 1000;
  EXPECT_EQ(a.run(snap, now, 10), vipRange(0x0a640064, 10));
  EXPECT_TRUE(a.run(snap, now, 100).empty()) << "garp_interval 0: no repeats";
}

TEST(Garp, TwoThousandNewVipsAreSpreadOverTicks) {
  Announcer a;
  const uint32_t first = 0x0a640000;
  uint32_t now = 0;
  auto snap1 = snapshotWith(1, {first}, {1});
  EXPECT_EQ(a.run(snap1, now, 2).size(), 1u);
  std::vector<uint64_t> since(2001, 2);
  since[0] = 1;
  const auto snap2 = snapshotWith(2, vipRange(first, 2001), since);
  const uint32_t ticks = 2000 / fwd::kGarpPerTick;
  const std::vector<uint32_t> got = a.run(snap2, now, ticks + 5);
  EXPECT_EQ(got, vipRange(first + 1, 2000)) << "each new VIP exactly once, the old one not again";
}

TEST(Garp, OnlyNewVipsOfANewGenerationEvenWhenGenerationsWereSkipped) {
  Announcer a;
  uint32_t now = 0;
  const uint32_t v1 = Topo::vip(), v2 = v1 + 1, v3 = v1 + 2, v4 = v1 + 3;
  (void)a.run(snapshotWith(3, {v1, v2}, {1, 3}), now, 3);
  // Generations 4 and 5 were published between two polls of this worker: v3 appeared in
  // 4, v4 in 5; v2 was removed in 4 and is back in 5 (new again).
  const auto got = a.run(snapshotWith(5, {v1, v2, v3, v4}, {1, 5, 4, 5}), now, 3);
  EXPECT_EQ(got, (std::vector<uint32_t>{v2, v3, v4}));
  EXPECT_TRUE(a.run(snapshotWith(5, {v1, v2, v3, v4}, {1, 5, 4, 5}), now, 10).empty());
}

TEST(Garp, PeriodicRoundAnnouncesEveryVipEachInterval) {
  Announcer a;
  uint32_t now = 0;
  const auto snap = snapshotWith(1, vipRange(0x0a640064, 3), {1, 1, 1}, /*garp_interval_ms=*/500);
  EXPECT_EQ(a.run(snap, now, 1).size(), 3u);  // start
  EXPECT_TRUE(a.run(snap, now, 498).empty());
  std::map<uint32_t, int> seen;
  for (uint32_t v : a.run(snap, now, 4)) ++seen[v];  // the round at 500 ms
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(a.run(snap, now, 490).empty());
  EXPECT_EQ(a.run(snap, now, 20).size(), 3u);  // and again 500 ms later
}

TEST(Garp, ScanRestartsOverANewListMidway) {
  Announcer a;
  uint32_t now = 0;
  const uint32_t first = 0x0a640000;
  (void)a.run(snapshotWith(1, {}, {}), now, 1);
  const auto snap2 = snapshotWith(2, vipRange(first, 40), std::vector<uint64_t>(40, 2));
  const auto part = a.run(snap2, now, 2);  // 8 of 40 announced
  ASSERT_EQ(part.size(), 2 * fwd::kGarpPerTick);
  // Generation 3 drops the first VIP and adds one at the end before the scan is done.
  std::vector<uint32_t> vips3 = vipRange(first + 1, 40);
  std::vector<uint64_t> since3(40, 2);
  since3.back() = 3;
  const auto rest = a.run(snapshotWith(3, vips3, since3), now, 20);
  // Every VIP of generation 3 has been announced at least once since it appeared.
  for (uint32_t v : vips3) {
    const bool before = std::find(part.begin(), part.end(), v) != part.end();
    const bool after = std::find(rest.begin(), rest.end(), v) != rest.end();
    EXPECT_TRUE(before || after) << "VIP " << v << " never announced";
  }
  EXPECT_EQ(std::find(rest.begin(), rest.end(), first), rest.end()) << "a removed VIP is not announced";
}

TEST(Garp, ExaminationIsBoundedPerTick) {
  // 10,000 VIPs announced at start; then one new VIP at the end of the list: the scan
  // examines kGarpExaminePerTick entries per tick, so it needs n / 256 ticks to reach it.
  Announcer a;
  uint32_t now = 0;
  const uint32_t n = 10'000;
  const auto snap1 = snapshotWith(1, vipRange(0x0b000000, n), std::vector<uint64_t>(n, 1));
  EXPECT_EQ(a.run(snap1, now, n / fwd::kGarpPerTick).size(), n);
  EXPECT_FALSE(a.ctx.garp.scanning);
  std::vector<uint64_t> since(n + 1, 1);
  since.back() = 2;
  const auto snap2 = snapshotWith(2, vipRange(0x0b000000, n + 1), since);
  const uint32_t ticks_needed = (n + 1 + fwd::kGarpExaminePerTick - 1) / fwd::kGarpExaminePerTick;
  EXPECT_TRUE(a.run(snap2, now, ticks_needed - 1).empty()) << "no tick walks more than kGarpExaminePerTick entries";
  EXPECT_EQ(a.run(snap2, now, 1), std::vector<uint32_t>{0x0b000000 + n});
}

// Several workers (by-port steering): an ARP reply for the box's address is shared with
// the peers and its original handed to the kernel; the kernel's traffic is never handed
// to another worker on the node side, and a SNAT-range reply without a flow still goes
// to its owner.
// --- Unsolicited Neighbor Advertisements for IPv6 VIPs (announceVips6) ----------------

TEST(UnsolicitedNa, FrameIsAnOverrideAdvertToAllNodesFromTheLinkLocalAddress) {
  Env env = makeEnv();
  const fwd::PortInfo& port = env.ports[kExt];
  const pkt::Ip6 ll = port.link_local6.isZero() ? pkt::linkLocalFromMac(port.mac) : port.link_local6;
  fwd::PortInfo p = port;
  p.link_local6 = ll;
  std::vector<std::byte> frame(100, std::byte{0x5a});
  ASSERT_EQ(fwd::writeUnsolicitedNa(p, Topo6::vip(), frame), 86u);
  // Built independently: RFC 4861 7.2.6 - all-nodes, hop limit 255, S = 0, O = 1, R = 0,
  // target link-layer option; the builder computes lengths and the ICMPv6 checksum.
  const Bytes want = PacketBuilder()
                         .eth(Topo::extMac(), mac("33:33:00:00:00:01"))
                         .ipv6(ll, ip6("ff02::1"), 255)
                         .ndAdvert(Topo6::vip(), pkt::icmp6::kNaOverride, Topo::extMac())
                         .build();
  ASSERT_EQ(want.size(), 86u);
  EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 86), want);
  // The fields that matter, by hand.
  const std::vector<uint8_t> head = {0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
                                     0x60, 0, 0, 0, 0, 32, 58, 255};
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(std::to_integer<uint8_t>(frame[i]), head[i]) << "byte " << i;
  EXPECT_EQ(std::to_integer<uint8_t>(frame[22]), 0xfe) << "source fe80::/10";
  EXPECT_EQ(std::to_integer<uint8_t>(frame[54]), 136) << "NA";
  EXPECT_EQ(std::to_integer<uint8_t>(frame[58]), 0x20) << "Override only";
  EXPECT_EQ(std::to_integer<uint8_t>(frame[78]), 2) << "target link-layer option";
  EXPECT_EQ(std::to_integer<uint8_t>(frame[79]), 1);
  EXPECT_EQ(pkt::loadMac(frame.data() + 80), Topo::extMac());
  EXPECT_EQ(std::to_integer<uint8_t>(frame[86]), 0x5a) << "nothing written past the frame";
  std::array<std::byte, 85> small{};
  EXPECT_EQ(fwd::writeUnsolicitedNa(p, Topo6::vip(), small), 0u);
}

std::vector<pkt::Ip6> vip6Range(uint32_t n) {
  std::vector<pkt::Ip6> v;
  for (uint32_t i = 0; i < n; ++i) v.push_back(pkt::Ip6{.hi = 0x20010db801000000ULL, .lo = 0x1000 + i});
  return v;
}

std::vector<pkt::Ip6> runNa(fwd::WorkerContext& ctx, const fwd::ForwardingSnapshot& snap, uint32_t& now,
                            uint32_t ticks) {
  std::vector<pkt::Ip6> out;
  for (uint32_t t = 0; t < ticks; ++t, ++now) {
    std::array<fwd::NsRequest, 16> req{};
    const size_t n = fwd::announceVips6(ctx, snap, now, req);
    EXPECT_LE(n, fwd::kGarpPerTick) << "bounded per tick";
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(req[i].port, ctx.external_port);
      out.push_back(req[i].target_ip);
    }
  }
  return out;
}

TEST(UnsolicitedNa, NewIpv6VipsOnceSpreadOverTicksThenOnlyNewOnesThenEveryInterval) {
  Announcer a;
  uint32_t now = 0;
  fwd::ForwardingSnapshot s1 = snapshotWith(1, {}, {}, /*garp_interval_ms=*/1000);
  s1.vips6 = vip6Range(10);
  s1.vip_since6 = std::vector<uint64_t>(10, 1);
  EXPECT_EQ(runNa(a.ctx, s1, now, 2).size(), 2 * fwd::kGarpPerTick) << "4 per tick";
  EXPECT_EQ(runNa(a.ctx, s1, now, 5).size(), 10 - 2 * fwd::kGarpPerTick);
  EXPECT_TRUE(runNa(a.ctx, s1, now, 100).empty());
  // Generation 2 adds one VIP: only it.
  fwd::ForwardingSnapshot s2 = snapshotWith(2, {}, {}, 1000);
  s2.vips6 = vip6Range(11);
  s2.vip_since6 = std::vector<uint64_t>(11, 1);
  s2.vip_since6[10] = 2;
  EXPECT_EQ(runNa(a.ctx, s2, now, 5), std::vector<pkt::Ip6>{s2.vips6[10]});
  // The periodic round (1000 ms after the first tick) announces every one again.
  now = 1001;
  EXPECT_EQ(runNa(a.ctx, s2, now, 5).size(), 11u);
}

TEST(UnsolicitedNa, ItsRoundIsIndependentOfGratuitousArp) {
  Announcer a;
  uint32_t now = 0;
  fwd::ForwardingSnapshot snap = snapshotWith(1, vipRange(0x0a640064, 3), {1, 1, 1});
  snap.vips6 = vip6Range(3);
  snap.vip_since6 = {1, 1, 1};
  // Both families, same ticks: neither round consumes the other's.
  EXPECT_EQ(a.run(snap, now, 1).size(), 3u);
  EXPECT_EQ(runNa(a.ctx, snap, now, 1).size(), 3u);
  EXPECT_TRUE(a.run(snap, now, 10).empty());
  EXPECT_TRUE(runNa(a.ctx, snap, now, 10).empty());
  // An IPv4-only snapshot announces no NA at all.
  fwd::WorkerContext other{0, a.env.ports, 1024};
  const auto v4 = snapshotWith(1, vipRange(0x0a640064, 3), {1, 1, 1});
  EXPECT_TRUE(runNa(other, v4, now, 5).empty());
}

TEST(ExceptionSteering, SeveralWorkersShareArpRepliesAndKeepTheKernelsTrafficLocal) {
  Env env = makeEnv();
  for (fwd::PortInfo& p : env.ports) p.exception_path = true;
  const lb::ReplySteering steering = lb::ReplySteering::byPort(2);
  std::vector<std::unique_ptr<fwd::WorkerContext>> ctx;
  for (unsigned i = 0; i < 2; ++i) {
    ctx.push_back(std::make_unique<fwd::WorkerContext>(i, env.ports, 1024));
    ctx[i]->steerReplies(steering);
    ctx[i]->snat.setPortRange(lb::SnatAllocator::kPortMin, 32767);
    ctx[i]->exception.configure(1000, 64, 0);
    fwd::onSnapshot(*ctx[i], *env.snapshot, 0);
  }
  const uint32_t n1 = ip("10.200.0.11");
  Bytes reply = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                    .arp(pkt::arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), Topo::intIp()).build();
  fwd::Action a = fwd::processFrame(*ctx[1], *env.snapshot, kInt, reply, 5);
  EXPECT_EQ(a.kind, fwd::Action::Kind::kShareToKernel);
  EXPECT_EQ(a.out_port, kInt);
  Bytes other = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                    .arp(pkt::arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), ip("10.200.0.99")).build();
  EXPECT_EQ(fwd::processFrame(*ctx[1], *env.snapshot, kInt, other, 5).kind, fwd::Action::Kind::kShare);
  for (unsigned w = 0; w < 2; ++w) {
    // A health probe's answer (the kernel's ephemeral port): to this worker's kernel queue.
    Bytes probe = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac()).ipv4(n1, Topo::intIp())
                      .tcp(10256, 40001, pkt::tcp::kSyn | pkt::tcp::kAckFlag).build();
    a = fwd::processFrame(*ctx[w], *env.snapshot, kInt, probe, 6);
    EXPECT_EQ(a.kind, fwd::Action::Kind::kToKernel) << "worker " << w;
    // A reply to a SNAT port without a flow: to the port's owner (port % 2), or no_flow there.
    Bytes nat = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac()).ipv4(n1, Topo::intIp())
                    .tcp(30080, 2001, pkt::tcp::kAckFlag).build();
    a = fwd::processFrame(*ctx[w], *env.snapshot, kInt, nat, 6);
    if (w == 1) {
      EXPECT_EQ(a.kind, fwd::Action::Kind::kDrop);
    } else {
      EXPECT_EQ(a.kind, fwd::Action::Kind::kRedirect);
      EXPECT_EQ(a.out_port, 1);
    }
  }
}

TEST(ExceptionLimiter, RateAndBurst) {
  fwd::ExceptionLimiter l;
  l.configure(/*rate=*/1000, /*burst=*/4, /*now_ms=*/0);
  int passed = 0;
  for (int i = 0; i < 10; ++i) passed += l.admit(0);
  EXPECT_EQ(passed, 4) << "the burst, then nothing within the same millisecond";
  EXPECT_TRUE(l.admit(1)) << "1000/s: one more per millisecond";
  EXPECT_FALSE(l.admit(1));
  passed = 0;
  for (int i = 0; i < 10; ++i) passed += l.admit(1'000'000);
  EXPECT_EQ(passed, 4) << "a long quiet spell refills to the burst, not beyond";
  // A rate below 1000/s still passes frames (milli-token credit).
  l.configure(10, 1, 0);
  EXPECT_TRUE(l.admit(0));
  int slow = 0;
  for (uint32_t ms = 1; ms <= 1000; ++ms) slow += l.admit(ms);
  EXPECT_EQ(slow, 10);
  // The millisecond clock wraps.
  l.configure(1000, 2, 0xffff'fff0u);
  EXPECT_TRUE(l.admit(0xffff'fff0u));
  EXPECT_TRUE(l.admit(0xffff'fff0u));
  EXPECT_FALSE(l.admit(0xffff'fff0u));
  EXPECT_TRUE(l.admit(5));  // 21 ms later, across the wrap
}

}  // namespace
}  // namespace ng::test
