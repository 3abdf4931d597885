// IPv6 behaviour that does not fit the fixture table (fixtures6.cc): truncation of every
// IPv6 fixture input, neighbour resolution by NS/NA end to end, the NS the worker sends,
// expiry, burst equivalence with mixed families, and reply steering of IPv6 replies.

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <array>
#include <memory>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/reply_steering.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/rewrite6.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {
namespace {

// No transparent huge pages in this process (as in test/fuzz/packet_fuzz.cc): the
// truncation tests build thousands of small WorkerContexts, and with THP every one of
// their arrays would zero a fresh 2 MiB page. Best effort.
[[maybe_unused]] const bool kNoThp = prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0;

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

uint64_t totalDrops(const fwd::WorkerCounters& c) {
  uint64_t n = 0;
  for (const auto& d : c.drops) n += d.get();
  return n;
}
uint64_t drops(const fwd::WorkerContext& c, DropReason r) { return c.counters.drops[static_cast<size_t>(r)].get(); }

struct Harness6 {
  Env env = makeEnv();
  fwd::WorkerContext ctx{0, env.ports, 1024, 0, 64, 1024};
  Harness6() { fwd::onSnapshot(ctx, *env.snapshot, 0); }
  Action run(uint8_t port, Bytes& frame, uint32_t now = 1000) {
    return fwd::processFrame(ctx, *env.snapshot, port, frame, now);
  }
};

TEST(Processor6, EveryTruncationOfEveryIpv6FixtureInputIsHandledWithoutCrash) {
  for (const Fixture& fx : ipv6Fixtures()) {
    for (const Step& step : fx.steps) {
      if (step.make_input) continue;
      for (size_t len = 0; len < step.input.size(); ++len) {
        Harness6 h;
        Bytes frame(step.input.begin(), step.input.begin() + static_cast<std::ptrdiff_t>(len));
        const Action a = h.run(step.in_port, frame);
        if (a.kind == Action::Kind::kDrop) {
          EXPECT_EQ(totalDrops(h.ctx.counters), 1u) << fx.description << " len " << len;
        }
        if (len < kEthHeaderLen + kIpv6HeaderLen) {
          EXPECT_NE(a.kind, Action::Kind::kForward) << fx.description << " len " << len;
        }
      }
    }
  }
}

// The client is unknown: the first reply toward it is dropped (neighbor_unresolved) and
// queues an NS; slowTickNd hands it out once; the solicited NA teaches the MAC; the
// node's retransmission then reaches the client.
TEST(Processor6, UnknownClientIsResolvedByNsAndNa) {
  Harness6 h;
  Bytes syn = clientTcp6(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn).kind, Action::Kind::kForward);
  const ParsedFrame out = parseFrame(syn).frame;
  const Ip6 node = dstIp6(syn, out);
  Bytes reply = nodeTcp6(node, out.src_port, tcp::kSyn | tcp::kAckFlag);
  Bytes r1 = reply;
  ASSERT_EQ(h.run(kInt, r1).kind, Action::Kind::kDrop);
  EXPECT_EQ(drops(h.ctx, DropReason::kNeighborUnresolved), 1u);
  Bytes r2 = reply;
  ASSERT_EQ(h.run(kInt, r2, 1001).kind, Action::Kind::kDrop);

  std::array<fwd::NsRequest, 8> req{};
  size_t n = fwd::slowTickNd(h.ctx, *h.env.snapshot, 1002, req);
  size_t for_client = 0;
  for (size_t i = 0; i < n; ++i) {
    if (req[i].target_ip == Topo6::clientIp()) {
      ++for_client;
      EXPECT_EQ(req[i].port, kExt);
    }
  }
  EXPECT_EQ(for_client, 1u) << "one NS per target per retry period";

  // An NA from someone we did not ask about teaches nothing.
  Bytes stranger = PacketBuilder().eth(mac("02:00:00:00:09:09"), Topo::extMac())
                       .ipv6(ip6("2001:db8:100::99"), Topo6::extIp(), 255)
                       .ndAdvert(ip6("2001:db8:100::99"), icmp6::kNaSolicited, mac("02:00:00:00:09:09")).build();
  EXPECT_EQ(h.run(kExt, stranger).kind, Action::Kind::kConsumed);
  EXPECT_EQ(h.ctx.neighbors6.lookup(ip6("2001:db8:100::99")), nullptr);
  // An NA for the client from the internal side (not on that link) teaches nothing either.
  Bytes wrong_side = PacketBuilder().eth(Topo::clientMac(), Topo::intMac()).ipv6(Topo6::clientIp(), Topo6::intIp(), 255)
                         .ndAdvert(Topo6::clientIp(), icmp6::kNaSolicited, mac("02:00:00:00:09:09")).build();
  EXPECT_EQ(h.run(kInt, wrong_side).kind, Action::Kind::kConsumed);
  EXPECT_EQ(h.ctx.neighbors6.lookup(Topo6::clientIp()), nullptr);

  Bytes na = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv6(Topo6::clientIp(), Topo6::extIp(), 255)
                 .ndAdvert(Topo6::clientIp(), icmp6::kNaSolicited | icmp6::kNaOverride, Topo::clientMac()).build();
  EXPECT_EQ(h.run(kExt, na).kind, Action::Kind::kConsumed);
  ASSERT_NE(h.ctx.neighbors6.lookup(Topo6::clientIp()), nullptr);
  EXPECT_EQ(*h.ctx.neighbors6.lookup(Topo6::clientIp()), Topo::clientMac());
  Bytes r3 = reply;
  EXPECT_EQ(h.run(kInt, r3, 1003).kind, Action::Kind::kForward);
  EXPECT_EQ(loadMac(r3.data()), Topo::clientMac());
}

// An NS for one of our addresses teaches its sender (it is about to talk to us).
TEST(Processor6, NsForOurAddressTeachesTheSender) {
  Harness6 h;
  const Ip6 group = solicitedNode(Topo6::vip());
  Bytes ns = PacketBuilder().eth(Topo::clientMac(), multicastMac(group)).ipv6(Topo6::clientIp(), group, 255)
                 .ndSolicit(Topo6::vip(), Topo::clientMac()).build();
  ASSERT_EQ(h.run(kExt, ns).kind, Action::Kind::kForward);
  EXPECT_EQ(h.ctx.counters.nd_replies.get(), 1u);
  ASSERT_NE(h.ctx.neighbors6.lookup(Topo6::clientIp()), nullptr);
  // ... but an NS from an off-link source does not.
  Harness6 h2;
  Bytes off = PacketBuilder().eth(Topo::clientMac(), multicastMac(group)).ipv6(ip6("2001:db8:999::1"), group, 255)
                  .ndSolicit(Topo6::vip(), Topo::clientMac()).build();
  ASSERT_EQ(h2.run(kExt, off).kind, Action::Kind::kForward);
  EXPECT_EQ(h2.ctx.neighbors6.lookup(ip6("2001:db8:999::1")), nullptr);
}

TEST(Processor6, SlowTickResolvesTheGatewayFromTheLinkLocalAddress) {
  Harness6 h;
  std::array<fwd::NsRequest, 8> req{};
  const size_t n = fwd::slowTickNd(h.ctx, *h.env.snapshot, 5000, req);
  // The nodes are static neighbours; only the external port's gateway (fe80::254) is due.
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(req[0].port, kExt);
  EXPECT_EQ(req[0].target_ip, Topo6::gateway());
  std::array<std::byte, 128> buf{};
  const size_t len = fwd::writeNsRequest(h.ctx.ports[kExt], req[0].target_ip, buf);
  ASSERT_EQ(len, kNsFrameLen);
  const std::span<const std::byte> f(buf.data(), len);
  const ParsedFrame p = parseFrame(f).frame;
  EXPECT_EQ(srcIp6(f, p), linkLocalFromMac(Topo::extMac())) << "a link-local target is asked from our link-local";
  EXPECT_TRUE(icmp6ChecksumOk(f, p));
  // A global on-link target is asked from the port's global address.
  const size_t len2 = fwd::writeNsRequest(h.ctx.ports[kExt], Topo6::clientIp(), buf);
  ASSERT_EQ(len2, kNsFrameLen);
  EXPECT_EQ(srcIp6(std::span<const std::byte>(buf.data(), len2), p), Topo6::extIp());
  // Not again within the retry period.
  EXPECT_EQ(fwd::slowTickNd(h.ctx, *h.env.snapshot, 5200, req), 0u);
  // A port without IPv6 (no link-local either: a zero MAC gives none here) writes nothing.
  fwd::PortInfo bare{};
  bare.link_local6 = Ip6{};
  EXPECT_EQ(fwd::writeNsRequest(bare, Topo6::clientIp(), buf), 0u);
}

// dataplane.flows.capacity6 reaches the worker as flow6_capacity; 0 (unset) derives it.
TEST(Processor6, Flow6CapacityIsTheGivenOneElseAQuarterOfTheFlowCapacity) {
  Env env = makeEnv();
  // Larger than the IPv4 table: a box serving mostly IPv6 clients.
  fwd::WorkerContext given(0, env.ports, 4096, 0, 64, /*flow6_capacity=*/65536);
  fwd::onSnapshot(given, *env.snapshot, 0);
  EXPECT_EQ(given.flows.capacity(), 4096u);
  EXPECT_EQ(given.flows6.capacity(), 65536u);
  // The IPv6 affinity table and half-open budget follow the IPv6 table, not the IPv4 one.
  EXPECT_EQ(given.affinity6.capacity(), 16384u);
  EXPECT_EQ(given.flows6.halfOpenLimit(), 65536u * env.snapshot->half_open_budget_percent / 100);

  const fwd::WorkerContext derived(0, env.ports, 65536, 0, 64);
  EXPECT_EQ(derived.flows6.capacity(), 16384u);
  EXPECT_EQ(derived.flows6.capacity(), fwd::WorkerContext::defaultFlow6Capacity(65536));
  const fwd::WorkerContext small(0, env.ports, 1024, 0, 64);
  EXPECT_EQ(small.flows6.capacity(), 1024u) << "at least 1024";
}

TEST(Processor6, Ipv6FlowsExpireAndCountInTheGauges) {
  Harness6 h;
  Bytes syn = clientTcp6(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn, 1000).kind, Action::Kind::kForward);
  Bytes syn4 = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn4, 1000).kind, Action::Kind::kForward);
  std::array<fwd::ArpRequest, 8> arp{};
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 1001, 4096, arp);
  EXPECT_EQ(h.ctx.counters.active_flows.get(), 2u);
  EXPECT_EQ(h.ctx.counters.half_open_flows.get(), 2u);
  // Past the half-open timeout both go.
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 1000 + h.env.snapshot->timeouts.tcp_half_open_ms + 1, 4096, arp);
  EXPECT_EQ(h.ctx.flows6.size(), 0u);
  EXPECT_EQ(h.ctx.counters.expired_flows.get(), 2u);
  EXPECT_EQ(h.ctx.counters.active_flows.get(), 0u);
}

// processBurst decides like processFrame when the burst mixes IPv4 and IPv6.
TEST(Processor6, MixedBurstDecidesLikeFrameByFrame) {
  std::vector<Bytes> inputs;
  for (uint16_t i = 0; i < 8; ++i) {
    inputs.push_back(clientTcp(static_cast<uint16_t>(41000 + i), tcp::kSyn));
    inputs.push_back(clientTcp6(static_cast<uint16_t>(41000 + i), tcp::kSyn));
    inputs.push_back(clientTcp6(static_cast<uint16_t>(41000 + i), tcp::kAckFlag));
  }
  Harness6 a, b;
  std::vector<Bytes> one = inputs, burst = inputs;
  std::vector<Action> want;
  for (Bytes& f : one) want.push_back(a.run(kExt, f));
  std::vector<std::span<std::byte>> spans;
  for (Bytes& f : burst) spans.emplace_back(f);
  std::vector<Action> got(spans.size());
  fwd::processBurst(b.ctx, *b.env.snapshot, kExt, spans, got, 1000);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(got[i].kind, want[i].kind) << i;
    EXPECT_EQ(burst[i], one[i]) << i;
  }
  EXPECT_EQ(b.ctx.flows6.size(), 8u);
  EXPECT_EQ(b.ctx.flows.size(), 8u);
}

TEST(Processor6, DrainTimeoutCutsIpv6Flows) {
  Harness6 h;
  Bytes syn = clientTcp6(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn).kind, Action::Kind::kForward);
  const lb::Flow6* flow = h.ctx.flows6.lookup(lb::FlowKey6{.src_ip = Topo6::clientIp(), .dst_ip = Topo6::vip(),
                                                           .src_port = 40000, .dst_port = 80, .proto = kProtoTcp}).flow;
  ASSERT_NE(flow, nullptr);
  h.env.snapshot->cut_stats_ids = {flow->stats_id};
  Bytes ack = clientTcp6(40000, tcp::kAckFlag);
  EXPECT_EQ(h.run(kExt, ack).kind, Action::Kind::kDrop);
  EXPECT_EQ(drops(h.ctx, DropReason::kDrainTimeout), 1u);
  EXPECT_EQ(h.ctx.flows6.size(), 0u);
}

TEST(Processor6, SynFloodEvictsTheOldestHalfOpenIpv6Flow) {
  Env env = makeEnv();
  env.snapshot->half_open_budget_percent = 1;  // 1 % of 1024 -> 10 half-open flows
  fwd::WorkerContext ctx(0, env.ports, 1024, 0, 64, 1024);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  for (uint16_t i = 0; i < 30; ++i) {
    Bytes syn = clientTcp6(static_cast<uint16_t>(20000 + i), tcp::kSyn);
    ASSERT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, syn, 10 + i).kind, Action::Kind::kForward);
  }
  EXPECT_EQ(ctx.flows6.halfOpen(), 10u);
  EXPECT_EQ(ctx.counters.half_open_evictions.get(), 20u);
}

// rss: IPv6 SNAT ports are chosen so the NIC's Toeplitz hash of the reply (IPv6 tuple)
// lands on the creating worker's queue; a reply on the other worker is redirected.
TEST(Processor6, RssSteeringCoversIpv6Replies) {
  std::vector<uint16_t> reta(128);
  for (size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<uint16_t>(i % 2);
  auto steering = lb::ReplySteering::byRss(2, lb::Toeplitz::kMicrosoftKey, reta);
  ASSERT_TRUE(steering.has_value());
  Env env = makeEnv();
  std::vector<std::unique_ptr<fwd::WorkerContext>> ctx;
  for (unsigned i = 0; i < 2; ++i) {
    ctx.push_back(std::make_unique<fwd::WorkerContext>(i, env.ports, 1024, 0, 64, 1024));
    ctx[i]->steerReplies(*steering);
    fwd::onSnapshot(*ctx[i], *env.snapshot, 0);
    ctx[i]->neighbors6.learn(Topo6::clientIp(), Topo::clientMac(), 0);
  }
  const lb::Toeplitz nic;
  for (unsigned owner = 0; owner < 2; ++owner) {
    for (uint16_t i = 0; i < 50; ++i) {
      Bytes syn = clientTcp6(static_cast<uint16_t>(30000 + owner * 1000 + i), tcp::kSyn);
      ASSERT_EQ(fwd::processFrame(*ctx[owner], *env.snapshot, kExt, syn, 10).kind, Action::Kind::kForward);
      const ParsedFrame out = parseFrame(syn).frame;
      const Ip6 node = dstIp6(syn, out), snat = srcIp6(syn, out);
      EXPECT_EQ(reta[nic.hashIpv6(node.hi, node.lo, snat.hi, snat.lo, out.dst_port, out.src_port) % reta.size()], owner);
      Bytes reply = nodeTcp6(node, out.src_port, tcp::kSyn | tcp::kAckFlag);
      Bytes elsewhere = reply;
      const Action other = fwd::processFrame(*ctx[1 - owner], *env.snapshot, kInt, elsewhere, 10);
      EXPECT_EQ(other.kind, Action::Kind::kRedirect);
      EXPECT_EQ(other.out_port, owner);
      EXPECT_EQ(fwd::processFrame(*ctx[owner], *env.snapshot, kInt, reply, 10).kind, Action::Kind::kForward);
    }
  }
}

// A snapshot without IPv6 (an IPv4-only control plane) turns IPv6 VIP traffic away
// without touching any IPv6 state.
TEST(Processor6, Ipv4OnlySnapshotRefusesIpv6Cleanly) {
  Env env = makeEnv();
  fwd::ForwardingSnapshot v4only;
  v4only.service_ports = env.snapshot->service_ports;
  v4only.snat_addresses = env.snapshot->snat_addresses;
  v4only.finalize();
  fwd::WorkerContext ctx(0, env.ports, 1024, 0, 64, 1024);
  fwd::onSnapshot(ctx, v4only, 0);
  Bytes syn = clientTcp6(40000, tcp::kSyn);
  EXPECT_EQ(fwd::processFrame(ctx, v4only, kExt, syn, 1).kind, Action::Kind::kDrop);
  EXPECT_EQ(drops(ctx, DropReason::kNotForUs), 1u);
  EXPECT_EQ(ctx.flows6.size(), 0u);
}

}  // namespace
}  // namespace ng::test
