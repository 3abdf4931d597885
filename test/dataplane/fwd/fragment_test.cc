// IPv4 fragments through the pipeline where a fixture table cannot say it: a full
// fragment table, aging, the burst path, counters.

#include <gtest/gtest.h>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {
namespace {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

Bytes datagram(uint16_t id, size_t payload = 3000, uint16_t client_port = 5353, uint32_t client = Topo::clientIp()) {
  return PacketBuilder()
      .eth(Topo::clientMac(), Topo::extMac())
      .ipv4(client, Topo::vip())
      .ipId(id)
      .udp(client_port, 53)
      .payload(payload)
      .build();
}

struct Pipeline {
  Env env = makeEnv();
  fwd::WorkerContext ctx{0, env.ports, 1024};
  Pipeline() {
    fwd::onSnapshot(ctx, *env.snapshot, 0);
    ctx.neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
  }
  Action run(uint8_t port, Bytes& frame, uint32_t now) { return fwd::processFrame(ctx, *env.snapshot, port, frame, now); }
  uint64_t drops(DropReason r) const { return ctx.counters.drops[static_cast<size_t>(r)].get(); }
  std::array<fwd::ArpRequest, 8> reqs{};
};

TEST(Fragments, AFullTableDropsNewDatagramsUntilAnEntryEndsOrAges) {
  Pipeline p;
  p.ctx.fragments = lb::FragmentTable(lb::FragmentTable::kWays, 2'000);  // one bucket
  std::vector<std::vector<Bytes>> frags;
  for (uint16_t id = 0; id < 5; ++id) frags.push_back(fragmentIpv4(datagram(id), 1480));
  for (uint16_t id = 0; id < 4; ++id) ASSERT_EQ(p.run(kExt, frags[id][0], 0).kind, Action::Kind::kForward);
  EXPECT_EQ(p.run(kExt, frags[4][0], 0).kind, Action::Kind::kDrop);
  EXPECT_EQ(p.drops(DropReason::kFragmentTableFull), 1u);
  EXPECT_EQ(p.ctx.counters.new_flows.get(), 1u) << "the refused first fragment created no flow";
  // Datagram 0 completes: its entry ends and datagram 4 gets the room.
  ASSERT_EQ(p.run(kExt, frags[0][1], 1).kind, Action::Kind::kForward);
  ASSERT_EQ(p.run(kExt, frags[0][2], 1).kind, Action::Kind::kForward);
  EXPECT_EQ(p.run(kExt, frags[4][0], 1).kind, Action::Kind::kForward);
  // Datagrams 1..3 never complete: after the timeout their entries are gone.
  EXPECT_EQ(p.run(kExt, frags[1][1], 2'000).kind, Action::Kind::kForward) << "still live at the timeout";
  EXPECT_EQ(p.run(kExt, frags[2][1], 2'001).kind, Action::Kind::kDrop);
  EXPECT_EQ(p.drops(DropReason::kFragmentNoFlow), 1u);
  Bytes again = fragmentIpv4(datagram(9), 1480)[0];
  EXPECT_EQ(p.run(kExt, again, 2'001).kind, Action::Kind::kForward) << "an aged entry's way is reused";
  EXPECT_EQ(p.ctx.counters.fragments_forwarded.get(), 4u + 2u + 1u + 1u + 1u);
}

TEST(Fragments, SlowTickSweepsAgedEntries) {
  Pipeline p;
  for (uint16_t id = 0; id < 10; ++id) {
    Bytes first = fragmentIpv4(datagram(id), 1480)[0];
    ASSERT_EQ(p.run(kExt, first, 0).kind, Action::Kind::kForward);
  }
  EXPECT_EQ(p.ctx.fragments.size(), 10u);
  (void)fwd::slowTick(p.ctx, *p.env.snapshot, 2'000, 1u << 20, p.reqs);
  EXPECT_EQ(p.ctx.fragments.size(), 10u);
  (void)fwd::slowTick(p.ctx, *p.env.snapshot, 2'001, 1u << 20, p.reqs);
  EXPECT_EQ(p.ctx.fragments.size(), 0u);
}

// Fragments of one datagram in one burst, and of two datagrams interleaved: the burst
// path decides like frame-by-frame (the first fragment's entry is there for the next).
TEST(Fragments, BurstCarriesInterleavedDatagrams) {
  Pipeline burst, single;
  const std::vector<Bytes> a = fragmentIpv4(datagram(1, 3000, 6000), 1480);
  const std::vector<Bytes> b = fragmentIpv4(datagram(2, 3000, 6001), 1480);
  std::vector<Bytes> frames{a[0], b[0], a[1], b[2], a[2], b[1]};
  std::vector<Bytes> copies = frames;
  std::vector<std::span<std::byte>> spans;
  for (Bytes& f : frames) spans.emplace_back(f);
  std::array<Action, fwd::kMaxBurst> actions{};
  fwd::processBurst(burst.ctx, *burst.env.snapshot, kExt, spans, std::span(actions.data(), spans.size()), 1);
  for (size_t i = 0; i < copies.size(); ++i) {
    SCOPED_TRACE(i);
    const Action one = single.run(kExt, copies[i], 1);
    EXPECT_EQ(actions[i].kind, Action::Kind::kForward);
    EXPECT_EQ(one.kind, Action::Kind::kForward);
    EXPECT_EQ(frames[i], copies[i]);
  }
  // Each datagram's fragments all went to its first fragment's node.
  const uint32_t node_a = parseFrame(frames[0]).frame.dst_ip;
  const uint32_t node_b = parseFrame(frames[1]).frame.dst_ip;
  EXPECT_EQ(parseFrame(frames[2]).frame.dst_ip, node_a);
  EXPECT_EQ(parseFrame(frames[4]).frame.dst_ip, node_a);
  EXPECT_EQ(parseFrame(frames[3]).frame.dst_ip, node_b);
  EXPECT_EQ(parseFrame(frames[5]).frame.dst_ip, node_b);
  EXPECT_EQ(burst.ctx.counters.fragments_forwarded.get(), 6u);
  EXPECT_EQ(burst.ctx.fragments.size(), 0u) << "both datagrams complete: entries ended";
}

// A later fragment must come in on the port its first fragment came in on, and a node's
// fragment with a client datagram's identity is not that datagram.
TEST(Fragments, ALaterFragmentFromTheOtherSideIsNotTheDatagrams) {
  Pipeline p;
  const std::vector<Bytes> a = fragmentIpv4(datagram(7), 1480);
  Bytes first = a[0];
  ASSERT_EQ(p.run(kExt, first, 0).kind, Action::Kind::kForward);
  Bytes wrong_side = a[1];
  EXPECT_EQ(p.run(kInt, wrong_side, 0).kind, Action::Kind::kDrop);
  EXPECT_EQ(p.drops(DropReason::kFragmentNoFlow), 1u);
}

// Two clients' datagrams with the same IP id, both SNATed toward one node: they leave
// with different ids, every fragment with its datagram's, so the node's reassembly
// (source, destination, protocol, id) never mixes them.
TEST(Fragments, DatagramsAreRenumberedSoTheNodeNeverMixesThem) {
  Pipeline p;
  std::vector<Bytes> a = fragmentIpv4(datagram(0x7777, 3000, 7000), 1480);
  std::vector<Bytes> b;
  for (uint16_t port = 7001;; ++port) {  // a second client flow that lands on a's node
    b = fragmentIpv4(datagram(0x7777, 3000, port, ip("10.100.0.3")), 1480);
    Bytes probe = b[0];
    Pipeline q;
    Bytes pa = a[0];
    ASSERT_EQ(q.run(kExt, pa, 0).kind, Action::Kind::kForward);
    ASSERT_EQ(q.run(kExt, probe, 0).kind, Action::Kind::kForward);
    if (parseFrame(probe).frame.dst_ip == parseFrame(pa).frame.dst_ip) break;
    ASSERT_LT(port, 7100);
  }
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(p.run(kExt, a[k], 0).kind, Action::Kind::kForward);
    ASSERT_EQ(p.run(kExt, b[k], 0).kind, Action::Kind::kForward);
  }
  const ParsedFrame first_a = parseFrame(a[0]).frame;
  const ParsedFrame first_b = parseFrame(b[0]).frame;
  ASSERT_EQ(first_a.dst_ip, first_b.dst_ip);
  ASSERT_EQ(first_a.src_ip, first_b.src_ip) << "one SNAT address";
  const uint16_t id_a = load16(a[0].data() + 14 + ipv4::kId);
  const uint16_t id_b = load16(b[0].data() + 14 + ipv4::kId);
  EXPECT_NE(id_a, id_b);
  for (size_t k = 1; k < a.size(); ++k) {
    EXPECT_EQ(load16(a[k].data() + 14 + ipv4::kId), id_a);
    EXPECT_EQ(load16(b[k].data() + 14 + ipv4::kId), id_b);
  }
}

TEST(Fragments, BackendCountersCountEveryFragment) {
  Pipeline p;
  std::vector<Bytes> a = fragmentIpv4(datagram(3), 1480);
  uint64_t bytes = 0;
  for (Bytes& f : a) {
    bytes += f.size();
    ASSERT_EQ(p.run(kExt, f, 0).kind, Action::Kind::kForward);
  }
  const uint32_t node = parseFrame(a[0]).frame.dst_ip;
  const fwd::ServicePort* sp = p.env.snapshot->find(Topo::vip(), 53, kProtoUdp);
  ASSERT_NE(sp, nullptr);
  for (const fwd::Backend& b : sp->backends) {
    const fwd::BackendCounters& c = p.ctx.backend_stats.at(b.stats_id);
    EXPECT_EQ(c.packets_in.get(), b.node_ip == node ? 3u : 0u);
    EXPECT_EQ(c.bytes_in.get(), b.node_ip == node ? bytes : 0u);
  }
  EXPECT_EQ(p.ctx.counters.to_nodes.get(), 3u);
}

}  // namespace
}  // namespace ng::test
