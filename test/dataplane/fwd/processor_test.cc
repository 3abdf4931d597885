// Runs the fixture table through processFrame (packet behaviour as data, STYLE.md
// example 9), plus checks that do not fit a table: truncation at every length,
// checksum preservation, ARP queueing, flow survival across snapshots, table full.

#include "dataplane/fwd/processor.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
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

std::string hexDiff(const Bytes& got, const Bytes& want) {
  std::string out;
  const size_t n = std::max(got.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    const int g = i < got.size() ? std::to_integer<int>(got[i]) : -1;
    const int w = i < want.size() ? std::to_integer<int>(want[i]) : -1;
    if (g != w) out += "  byte " + std::to_string(i) + ": got " + std::to_string(g) + " want " + std::to_string(w) + "\n";
  }
  return out;
}

uint64_t totalDrops(const fwd::WorkerCounters& c) {
  uint64_t n = 0;
  for (const auto& d : c.drops) n += d.get();
  return n;
}

class FixtureTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureTest, Runs) {
  const Fixture& fx = GetParam();
  Env env = makeEnv();
  applyFixtureSettings(fx, env);
  fwd::WorkerContext ctx(0, env.ports, 1024);
  applyFixtureSettings(fx, ctx);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  for (const auto& [addr, m] : fx.known_neighbors) ctx.neighbors.learn(addr, m, 0);
  for (const auto& [addr, m] : fx.known_neighbors6) ctx.neighbors6.learn(addr, m, 0);

  Observed seen;
  std::tuple<uint32_t, uint16_t, uint16_t, uint8_t> last_tunnel_flow{};
  std::tuple<Ip6, bool, uint32_t, uint16_t, uint16_t> last_tunnel6_flow{};
  for (size_t i = 0; i < fx.steps.size(); ++i) {
    const Step& step = fx.steps[i];
    SCOPED_TRACE("step " + std::to_string(i));
    Bytes frame = step.make_input ? step.make_input(seen) : step.input;
    const uint64_t drops_before = totalDrops(ctx.counters);
    std::vector<uint64_t> before(fwd::kDropReasonCount);
    for (size_t r = 0; r < before.size(); ++r) before[r] = ctx.counters.drops[r].get();

    // The frame sits behind headroom, as in an mbuf; the processor may grow it into it
    // (tunnel mode) or shorten it (frag-needed), and says so in the Action.
    constexpr size_t kHeadroom = 64;
    Bytes buffer(kHeadroom + frame.size());
    std::copy(frame.begin(), frame.end(), buffer.begin() + kHeadroom);
    const Action a = fwd::processFrame(ctx, *env.snapshot, step.in_port,
                                       std::span<std::byte>(buffer.data() + kHeadroom, frame.size()),
                                       1000 + uint32_t(i), kHeadroom);
    ASSERT_EQ(static_cast<int>(a.kind), static_cast<int>(step.verdict));
    if (a.kind == Action::Kind::kForward) {
      ASSERT_LE(a.prepended, kHeadroom);
      const size_t start = kHeadroom - a.prepended;
      const size_t length = a.length != 0 ? a.length : frame.size();
      ASSERT_LE(start + length, buffer.size());
      frame.assign(buffer.begin() + static_cast<ptrdiff_t>(start),
                   buffer.begin() + static_cast<ptrdiff_t>(start + length));
    }
    if (step.drop) {
      EXPECT_EQ(ctx.counters.drops[static_cast<size_t>(*step.drop)].get(), before[static_cast<size_t>(*step.drop)] + 1)
          << "expected drop reason " << fwd::dropReasonName(*step.drop);
      EXPECT_EQ(totalDrops(ctx.counters), drops_before + 1) << "exactly one drop reason per dropped frame";
    } else {
      EXPECT_EQ(totalDrops(ctx.counters), drops_before) << "no drop counted for a handled frame";
    }
    if (step.flows_after) {
      EXPECT_EQ(ctx.flows.size() + ctx.flows6.size(), *step.flows_after) << "flows in the table after the step";
    }
    if (step.icmp_errors_translated_after) {
      EXPECT_EQ(ctx.counters.icmp_errors_translated.get(), *step.icmp_errors_translated_after)
          << "icmp_errors_translated after the step";
    }
    if (a.kind == Action::Kind::kToKernel || a.kind == Action::Kind::kShareToKernel) {
      EXPECT_EQ(a.out_port, step.out_port) << "the kernel interface of the port it came in on";
      const Bytes original = step.make_input ? step.make_input(seen) : step.input;
      EXPECT_EQ(frame, original) << "frames for the kernel leave untouched\n" << hexDiff(frame, original);
      continue;
    }
    if (a.kind != Action::Kind::kForward) continue;
    EXPECT_EQ(a.out_port, step.out_port);
    if (step.observe) {
      const ParseResult out = parseFrame(frame);
      ASSERT_EQ(out.status, ParseStatus::kOk);
      if (out.frame.l3 == L3::kIpv6) {
        const Ip6 node = loadIp6(frame.data() + out.frame.l3_offset + ipv6::kDst);
        if (std::to_integer<uint8_t>(frame[out.frame.l3_offset + ipv6::kNextHeader]) == 41) {
          // IPv6 tunnel mode: outer source from tunnel.source6, a non-zero flow label, and
          // one (source, label) per flow: the inner ports say which flow it is.
          if (step.same_node) {
            EXPECT_EQ(node, seen.node_ip6) << "must go to the previous step's node";
          }
          seen.node_ip6 = node;
          const Ip6 src = loadIp6(frame.data() + out.frame.l3_offset + ipv6::kSrc);
          const uint32_t label = load32(frame.data() + out.frame.l3_offset) & 0xfffff;
          const Ip6 first = Topo6::tunnelSourceFirst();
          EXPECT_TRUE(src.hi == first.hi && src.lo - first.lo < Topo6::kTunnelSources) << "an outer source of source6";
          EXPECT_NE(label, 0u) << "flow label 0 means unlabelled";
          Bytes inner(frame.begin(), frame.begin() + 14);
          inner.insert(inner.end(), frame.begin() + 54, frame.end());
          const ParseResult in = parseFrame(inner);
          ASSERT_EQ(in.status, ParseStatus::kOk);
          // A datagram's fragments are one flow (their identification); else the ports.
          const auto flow = std::tuple(loadIp6(inner.data() + 14 + ipv6::kSrc), in.frame.is_fragment,
                                       in.frame.is_fragment ? load32(inner.data() + in.frame.frag6_offset + 4) : 0u,
                                       in.frame.is_fragment ? 0 : in.frame.src_port,
                                       in.frame.is_fragment ? 0 : in.frame.dst_port);
          if (flow == last_tunnel6_flow) {
            EXPECT_EQ(src, seen.outer_src6) << "one outer source per flow";
            EXPECT_EQ(label, seen.flow_label6) << "one flow label per flow";
          }
          last_tunnel6_flow = flow;
          seen.outer_src6 = src;
          seen.flow_label6 = label;
          const auto nodes = Topo6::nodes();
          EXPECT_NE(std::find(nodes.begin(), nodes.end(), node), nodes.end()) << "an IPv6 node";
          ASSERT_TRUE(step.output) << "forward steps must state their output";
          const Bytes want = step.output(seen);
          EXPECT_EQ(frame, want) << hexDiff(frame, want);
          continue;
        }
        if (step.same_node) {
          EXPECT_EQ(node, seen.node_ip6) << "must go to the previous step's node";
        }
        seen.node_ip6 = node;
        seen.snat_port = out.frame.src_port;
        EXPECT_GE(seen.snat_port, lb::SnatAllocator::kPortMin);
        const auto nodes = Topo6::nodes();
        EXPECT_NE(std::find(nodes.begin(), nodes.end(), node), nodes.end()) << "an IPv6 node";
        ASSERT_TRUE(step.output) << "forward steps must state their output";
        const Bytes want = step.output(seen);
        EXPECT_EQ(frame, want) << hexDiff(frame, want);
        continue;
      }
      if (step.same_node) {
        EXPECT_EQ(out.frame.dst_ip, seen.node_ip) << "must go to the previous step's node";
      }
      seen.node_ip = out.frame.dst_ip;
      if (out.frame.proto == 4) {  // tunnel mode: an outer source from the configured range
        // The inner packet's ports say which flow it is: one flow, one outer source.
        Bytes inner(frame.begin(), frame.begin() + 14);
        inner.insert(inner.end(), frame.begin() + 34, frame.end());
        const ParseResult in = parseFrame(inner);
        ASSERT_EQ(in.status, ParseStatus::kOk);
        const auto tuple = std::tuple(in.frame.src_ip, in.frame.src_port, in.frame.dst_port, in.frame.proto);
        if (tuple == last_tunnel_flow) {
          EXPECT_EQ(out.frame.src_ip, seen.outer_src) << "one outer source per flow";
        }
        last_tunnel_flow = tuple;
        seen.outer_src = out.frame.src_ip;
        EXPECT_LT(seen.outer_src - Topo::tunnelSourceFirst(), Topo::kTunnelSources);
      } else {
        seen.snat_port = out.frame.src_port;
        EXPECT_GE(seen.snat_port, lb::SnatAllocator::kPortMin);
      }
      EXPECT_TRUE(seen.node_ip == ip("10.200.0.11") || seen.node_ip == ip("10.200.0.12") ||
                  seen.node_ip == ip("10.200.0.13"));
    }
    if (!step.output && step.flows_after) continue;  // a forward whose output another fixture pins
    ASSERT_TRUE(step.output) << "forward steps must state their output";
    const Bytes want = step.output(seen);
    EXPECT_EQ(frame, want) << hexDiff(frame, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Standard, FixtureTest, ::testing::ValuesIn(standardFixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) {
                           std::string name;
                           for (char c : info.param.description) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name + "_" + std::to_string(info.index);
                         });

INSTANTIATE_TEST_SUITE_P(Ipv6, FixtureTest, ::testing::ValuesIn(ipv6Fixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) {
                           std::string name;
                           for (char c : info.param.description) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name + "_" + std::to_string(info.index);
                         });

struct Harness {
  Env env = makeEnv();
  fwd::WorkerContext ctx{0, env.ports, 8192};
  Harness() {
    fwd::onSnapshot(ctx, *env.snapshot, 0);
    ctx.neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
  }
  Action run(uint8_t port, Bytes& frame, uint32_t now = 1000) {
    return fwd::processFrame(ctx, *env.snapshot, port, frame, now);
  }
};

// processBurst must decide exactly like processFrame, frame by frame, in order, even when
// frames of one burst depend on each other (a SYN creates the flow its ACK then uses).
TEST(Processor, BurstDecidesLikeFrameByFrame) {
  std::vector<Bytes> inputs;
  for (const Fixture& fx : standardFixtures()) {
    for (const Step& step : fx.steps) {
      if (!step.make_input && step.in_port == kExt) inputs.push_back(step.input);
    }
  }
  for (uint16_t port = 30000; port < 30040; ++port) {
    inputs.push_back(clientTcp(port, tcp::kSyn));
    inputs.push_back(clientTcp(port, tcp::kAckFlag));
    inputs.push_back(clientTcp(static_cast<uint16_t>(port + 100), tcp::kAckFlag));  // no flow
  }
  Harness one;
  Harness burst;
  for (size_t begin = 0; begin < inputs.size(); begin += fwd::kMaxBurst) {
    const size_t n = std::min(fwd::kMaxBurst, inputs.size() - begin);
    std::vector<Bytes> a(inputs.begin() + begin, inputs.begin() + begin + n);
    std::vector<Bytes> b = a;
    std::vector<std::span<std::byte>> spans;
    for (Bytes& f : b) spans.emplace_back(f);
    std::vector<Action> actions(n);
    fwd::processBurst(burst.ctx, *burst.env.snapshot, kExt, spans, actions, 1000);
    for (size_t i = 0; i < n; ++i) {
      const Action want = one.run(kExt, a[i]);
      ASSERT_EQ(static_cast<int>(actions[i].kind), static_cast<int>(want.kind)) << "frame " << begin + i;
      EXPECT_EQ(actions[i].out_port, want.out_port);
      EXPECT_EQ(a[i], b[i]) << "frame " << begin + i;
    }
  }
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    EXPECT_EQ(one.ctx.counters.drops[r].get(), burst.ctx.counters.drops[r].get())
        << fwd::dropReasonName(static_cast<DropReason>(r));
  }
  // 40 SYNs here + the fixtures' frames that open a flow: 2 SYNs on fresh tuples and 2 on
  // tuples whose flow had closed (a reopen); 7 from admitted sources (the source-range
  // fixtures; their "runs both ways" SYN repeats the /32 fixture's tuple); 8 SYNs and 6
  // UDP datagrams of the affinity fixtures.
  EXPECT_EQ(one.ctx.counters.new_flows.get(), 40u + 4u + 7u + 14u);
  EXPECT_EQ(burst.ctx.counters.new_flows.get(), one.ctx.counters.new_flows.get());
}

TEST(Processor, BurstCarriesAConnectionBothWays) {
  Harness h;
  auto burst = [&](uint8_t port, Bytes& frame) {
    std::array<std::span<std::byte>, 1> spans{std::span<std::byte>(frame)};
    std::array<Action, 1> actions{};
    fwd::processBurst(h.ctx, *h.env.snapshot, port, spans, actions, 1000);
    return actions[0];
  };
  Bytes syn = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(burst(kExt, syn).kind, Action::Kind::kForward);
  const ParsedFrame out = parseFrame(syn).frame;
  Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
  const Action back = burst(kInt, reply);
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    EXPECT_EQ(h.ctx.counters.drops[r].get(), 0u) << fwd::dropReasonName(static_cast<DropReason>(r));
  }
  EXPECT_EQ(back.kind, Action::Kind::kForward);
  EXPECT_EQ(back.out_port, kExt);
}

// The burst loop looks flows up in the flow index's array in use only; while the index
// grows, most flows still sit in the old array, and their frames must still find them
// (same node, no new flow) rather than be taken for new connections.
TEST(Processor, BurstFindsFlowsStillInTheOldIndexWhileItGrows) {
  Harness h;
  std::vector<Bytes> acks;
  std::vector<uint32_t> node_of;
  for (uint16_t port = 20000; !h.ctx.flows.indexGrowing(); ++port) {
    ASSERT_LT(port, 24000) << "the index never started to grow";
    Bytes syn = clientTcp(port, tcp::kSyn);
    ASSERT_EQ(h.run(kExt, syn).kind, Action::Kind::kForward);
    node_of.push_back(parseFrame(syn).frame.dst_ip);
    acks.push_back(clientTcp(port, tcp::kAckFlag));
  }
  const uint64_t flows = h.ctx.counters.new_flows.get();
  ASSERT_GT(flows, 500u);
  // The gauge follows the index the slow tick finds.
  std::array<fwd::ArpRequest, 4> requests;
  EXPECT_EQ(h.ctx.counters.flow_index_slots.get(), 0u);
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 1000, /*expiry_budget=*/0, requests);
  EXPECT_EQ(h.ctx.counters.flow_index_slots.get(), h.ctx.flows.indexSlots());
  EXPECT_GT(h.ctx.flows.indexSlots(), lb::FlowTable::kDefaultInitialIndexSlots);
  for (size_t begin = 0; begin < acks.size(); begin += fwd::kMaxBurst) {
    const size_t n = std::min(fwd::kMaxBurst, acks.size() - begin);
    std::vector<std::span<std::byte>> spans;
    for (size_t i = begin; i < begin + n; ++i) spans.emplace_back(acks[i]);
    std::vector<Action> actions(n);
    fwd::processBurst(h.ctx, *h.env.snapshot, kExt, spans, actions, 1000);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(actions[i].kind, Action::Kind::kForward) << begin + i;
      EXPECT_EQ(parseFrame(acks[begin + i]).frame.dst_ip, node_of[begin + i]) << begin + i;
    }
  }
  EXPECT_EQ(h.ctx.counters.new_flows.get(), flows);
  EXPECT_TRUE(h.ctx.flows.indexGrowing());  // nothing moved them meanwhile: no inserts, no expiry
}

// The next-hop test reads its netmask from a table by prefix length: a worker refuses
// a port whose length is past /32 rather than read beyond the table.
TEST(Processor, WorkerRefusesAPrefixLengthOver32) {
  Env env = makeEnv();
  std::vector<fwd::PortInfo> ports = env.ports;
  ports[kInt].prefix_len = 32;
  EXPECT_NO_THROW(fwd::WorkerContext(0, ports, 64));
  ports[kInt].prefix_len = 33;
  EXPECT_THROW(fwd::WorkerContext(0, ports, 64), std::invalid_argument);
}

TEST(Processor, ArpFromTheWrongSideCannotClaimANodesAddress) {
  Env env = makeEnv();
  env.snapshot->static_neighbors.clear();
  fwd::WorkerContext ctx(0, env.ports, 64);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  const uint32_t node = ip("10.200.0.11");
  const Mac attacker = mac("02:66:66:66:66:66");
  // A request for the VIP from the client side, with a node's address as its sender.
  Bytes req = PacketBuilder().eth(attacker, mac("ff:ff:ff:ff:ff:ff"))
                  .arp(arp::kRequest, attacker, node, Mac{}, Topo::vip()).build();
  (void)fwd::processFrame(ctx, *env.snapshot, kExt, req, 1);
  EXPECT_EQ(ctx.neighbors.lookup(node), nullptr);
  // Even while we are asking for the node, an answer on the external port is ignored...
  ASSERT_TRUE(ctx.neighbors.want(node, 2));
  Bytes rep = PacketBuilder().eth(attacker, Topo::extMac())
                  .arp(arp::kReply, attacker, node, Topo::extMac(), Topo::extIp()).build();
  (void)fwd::processFrame(ctx, *env.snapshot, kExt, rep, 3);
  EXPECT_EQ(ctx.neighbors.lookup(node), nullptr);
  // ...and the node's own answer on the internal port is learned.
  Bytes real = PacketBuilder().eth(Topo::nodeMac(node), Topo::intMac())
                   .arp(arp::kReply, Topo::nodeMac(node), node, Topo::intMac(), Topo::intIp()).build();
  (void)fwd::processFrame(ctx, *env.snapshot, kInt, real, 4);
  ASSERT_NE(ctx.neighbors.lookup(node), nullptr);
  EXPECT_EQ(*ctx.neighbors.lookup(node), Topo::nodeMac(node));
}

TEST(Processor, EveryTruncationOfEveryFixtureInputIsDroppedWithoutCrash) {
  for (const Fixture& fx : standardFixtures()) {
    for (const Step& step : fx.steps) {
      if (step.make_input) continue;
      for (size_t len = 0; len < step.input.size(); ++len) {
        Harness h;
        Bytes frame(step.input.begin(), step.input.begin() + static_cast<std::ptrdiff_t>(len));
        const Action a = h.run(step.in_port, frame);
        // A prefix may still be a complete frame (padding, or ICMP/ARP bodies), so only
        // "no crash, and any drop is counted" holds for every length; the header
        // prefixes below must be dropped.
        if (a.kind == Action::Kind::kDrop) {
          EXPECT_EQ(totalDrops(h.ctx.counters), 1u);
        }
        if (len < kEthHeaderLen + kIpv4MinLen) {
          EXPECT_NE(a.kind, Action::Kind::kForward) << fx.description << " len " << len;
        }
      }
    }
  }
}

TEST(Processor, TruncatedSynAtEveryHeaderLengthIsCountedAsTruncated) {
  const Bytes syn = clientTcp(40000, tcp::kSyn);
  for (size_t len = 0; len < kEthHeaderLen + kIpv4MinLen + kTcpMinLen; ++len) {
    Harness h;
    Bytes frame(syn.begin(), syn.begin() + static_cast<std::ptrdiff_t>(len));
    ASSERT_EQ(h.run(kExt, frame).kind, Action::Kind::kDrop) << len;
    EXPECT_EQ(h.ctx.counters.drops[static_cast<size_t>(DropReason::kTruncated)].get(), 1u) << len;
  }
}

TEST(Processor, BadTcpChecksumStaysBadAfterNat) {
  Harness h;
  Bytes good = clientTcp(40000, tcp::kSyn, 10);
  Bytes bad = good;
  const size_t csum_at = kEthHeaderLen + kIpv4MinLen + tcp::kChecksum;
  store16(bad.data() + csum_at, static_cast<uint16_t>(load16(bad.data() + csum_at) ^ 0x00ff));
  ASSERT_EQ(h.run(kExt, bad).kind, Action::Kind::kForward);

  const ParseResult out = parseFrame(bad);
  ASSERT_EQ(out.status, ParseStatus::kOk);
  const ParsedFrame& p = out.frame;
  // Verify the L4 checksum over the pseudo-header: a correct segment sums to 0xffff.
  uint32_t sum = (p.src_ip >> 16) + (p.src_ip & 0xffff) + (p.dst_ip >> 16) + (p.dst_ip & 0xffff) + p.proto + p.l4_len;
  const uint16_t verify = checksumFinish(checksumAdd(std::span<const std::byte>(bad).subspan(p.l4_offset, p.l4_len), sum));
  EXPECT_NE(verify, 0) << "a corrupted segment must still fail verification after NAT";
  // And the IP header, rewritten by the box, is valid.
  EXPECT_EQ(internetChecksum(std::span<const std::byte>(bad).subspan(kEthHeaderLen, kIpv4MinLen)), 0);
}

TEST(Processor, UnresolvedClientQueuesOneArpRequestPerSecond) {
  Env env = makeEnv();
  fwd::WorkerContext ctx(0, env.ports, 1024);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  Bytes syn = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, syn, 10).kind, Action::Kind::kForward);
  const ParsedFrame out = parseFrame(syn).frame;
  for (uint32_t now : {20u, 30u, 500u}) {
    Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
    EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kInt, reply, now).kind, Action::Kind::kDrop);
  }
  std::array<fwd::ArpRequest, 8> reqs{};
  size_t n = fwd::slowTick(ctx, *env.snapshot, 600, 64, reqs);
  ASSERT_EQ(n, 1u) << "one request, not one per dropped packet";
  EXPECT_EQ(reqs[0].port, kExt);
  EXPECT_EQ(reqs[0].target_ip, Topo::clientIp());

  Bytes arp(60);
  ASSERT_EQ(fwd::writeArpRequest(ctx.ports[kExt], Topo::clientIp(), arp), 60u);
  const ParseResult pr = parseFrame(arp);
  ASSERT_EQ(pr.status, ParseStatus::kOk);
  EXPECT_EQ(pr.frame.arp_op, arp::kRequest);
  EXPECT_EQ(pr.frame.arp_spa, Topo::extIp());
  EXPECT_EQ(pr.frame.arp_tpa, Topo::clientIp());

  // The client's answer is learned because we asked; then the reply goes through.
  Bytes answer = PacketBuilder().eth(Topo::clientMac(), Topo::extMac())
                     .arp(arp::kReply, Topo::clientMac(), Topo::clientIp(), Topo::extMac(), Topo::extIp()).build();
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, answer, 700).kind, Action::Kind::kConsumed);
  Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kInt, reply, 710).kind, Action::Kind::kForward);
}

TEST(Processor, EstablishedFlowKeepsItsNodeWhenTheNodeLeavesTheTable) {
  Harness h;
  Bytes syn = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn).kind, Action::Kind::kForward);
  const uint32_t node = parseFrame(syn).frame.dst_ip;

  // New generation: the flow's node is gone from the service (others remain).
  auto next = std::make_unique<fwd::ForwardingSnapshot>(*h.env.snapshot);
  next->generation = 2;
  for (fwd::ServicePort& sp : next->service_ports) {
    std::erase_if(sp.backends, [&](const fwd::Backend& b) { return b.node_ip == node; });
    std::vector<lb::MaglevBackend> ids;
    for (const auto& b : sp.backends) ids.push_back({.id = b.node_ip, .weight = 1});
    sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
  }
  next->finalize();
  fwd::onSnapshot(h.ctx, *next, 2000);

  Bytes data = clientTcp(40000, tcp::kPsh | tcp::kAckFlag, 50);
  ASSERT_EQ(fwd::processFrame(h.ctx, *next, kExt, data, 2001).kind, Action::Kind::kForward);
  EXPECT_EQ(parseFrame(data).frame.dst_ip, node) << "established flow must keep its node";

  // A new connection never picks the removed node.
  for (uint16_t port = 41000; port < 41200; ++port) {
    Bytes s = clientTcp(port, tcp::kSyn);
    ASSERT_EQ(fwd::processFrame(h.ctx, *next, kExt, s, 2002).kind, Action::Kind::kForward);
    EXPECT_NE(parseFrame(s).frame.dst_ip, node);
  }
}

TEST(Processor, NewFlowsSpreadOverAllNodes) {
  Harness h;
  std::map<uint32_t, int> per_node;
  for (uint16_t port = 20000; port < 23000; ++port) {
    Bytes s = clientTcp(port, tcp::kSyn);
    ASSERT_EQ(h.run(kExt, s).kind, Action::Kind::kForward);
    ++per_node[parseFrame(s).frame.dst_ip];
  }
  ASSERT_EQ(per_node.size(), 3u);
  for (const auto& [node, n] : per_node) EXPECT_GT(n, 800) << node;
}

TEST(Processor, FullTableDropsNewFlowsAndKeepsOldOnes) {
  Env env = makeEnv();
  fwd::WorkerContext ctx(0, env.ports, 4);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  for (uint16_t port = 1; port <= 4; ++port) {
    Bytes s = clientTcp(port, tcp::kSyn);
    ASSERT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, s, 1).kind, Action::Kind::kForward);
    Bytes a = clientTcp(port, tcp::kAckFlag);  // established: no SYN may take its place
    ASSERT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, a, 1).kind, Action::Kind::kForward);
  }
  Bytes fifth = clientTcp(5, tcp::kSyn);
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, fifth, 1).kind, Action::Kind::kDrop);
  EXPECT_EQ(ctx.counters.drops[static_cast<size_t>(DropReason::kFlowTableFull)].get(), 1u);
  Bytes old = clientTcp(1, tcp::kAckFlag);
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, old, 2).kind, Action::Kind::kForward);
}

TEST(Processor, IdleFlowsExpireAndFreeTheirSnatPort) {
  Harness h;
  Bytes syn = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn, 0).kind, Action::Kind::kForward);
  EXPECT_EQ(h.ctx.flows.size(), 1u);
  std::array<fwd::ArpRequest, 8> reqs{};
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 9'000, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 1u) << "SYN-sent flow lives for the half-open timeout";
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 10'001, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 0u);
  EXPECT_EQ(h.ctx.counters.expired_flows.get(), 1u);
}

TEST(Processor, BackendCountersFollowTheFlowBothWaysUntilItExpires) {
  Harness h;
  Bytes syn = clientTcp(40000, tcp::kSyn);
  const size_t syn_len = syn.size();
  ASSERT_EQ(h.run(kExt, syn, 0).kind, Action::Kind::kForward);
  const ParsedFrame out = parseFrame(syn).frame;
  const fwd::ServicePort* sp = h.env.snapshot->find(Topo::vip(), 80, kProtoTcp);
  ASSERT_NE(sp, nullptr);
  uint32_t id = 0;
  for (const fwd::Backend& b : sp->backends) {
    if (b.node_ip == out.dst_ip) id = b.stats_id;
  }
  ASSERT_NE(id, 0u);
  Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag, 100);
  const size_t reply_len = reply.size();
  ASSERT_EQ(h.run(kInt, reply, 10).kind, Action::Kind::kForward);
  Bytes ack = clientTcp(40000, tcp::kAckFlag);
  ASSERT_EQ(h.run(kExt, ack, 20).kind, Action::Kind::kForward);

  const fwd::BackendCounters& c = h.ctx.backend_stats.at(id);
  EXPECT_EQ(c.new_flows.get(), 1u);
  EXPECT_EQ(c.packets_in.get(), 2u);
  EXPECT_EQ(c.bytes_in.get(), syn_len + ack.size());
  EXPECT_EQ(c.packets_out.get(), 1u);
  EXPECT_EQ(c.bytes_out.get(), reply_len);
  EXPECT_EQ(c.closed_flows.get(), 0u);
  uint64_t elsewhere = 0;
  for (const fwd::Backend& b : sp->backends) {
    if (b.stats_id != id) elsewhere += h.ctx.backend_stats.at(b.stats_id).packets_in.get();
  }
  EXPECT_EQ(elsewhere, 0u);

  std::array<fwd::ArpRequest, 8> reqs{};
  (void)fwd::slowTick(h.ctx, *h.env.snapshot, 20 + 900'001, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 0u);
  EXPECT_EQ(c.closed_flows.get(), 1u) << "expiry closes the flow in its backend's counters";
}

TEST(Processor, ADrainTimeoutCutsTheFlowsOfItsBackendOnlyBothWays) {
  Harness h;
  // Two connections; find two that went to different nodes.
  Bytes syn1 = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn1).kind, Action::Kind::kForward);
  const ParsedFrame out1 = parseFrame(syn1).frame;
  uint16_t other_port = 0;
  ParsedFrame out2{};
  for (uint16_t port = 40001; port < 40100 && other_port == 0; ++port) {
    Bytes s = clientTcp(port, tcp::kSyn);
    ASSERT_EQ(h.run(kExt, s).kind, Action::Kind::kForward);
    if (parseFrame(s).frame.dst_ip != out1.dst_ip) {
      other_port = port;
      out2 = parseFrame(s).frame;
    }
  }
  ASSERT_NE(other_port, 0);
  const fwd::ServicePort* sp = h.env.snapshot->find(Topo::vip(), 80, kProtoTcp);
  uint32_t cut_id = 0;
  for (const fwd::Backend& b : sp->backends) {
    if (b.node_ip == out1.dst_ip) cut_id = b.stats_id;
  }
  ASSERT_NE(cut_id, 0u);

  // The next generation cuts flows of the first connection's backend.
  auto next = std::make_unique<fwd::ForwardingSnapshot>(*h.env.snapshot);
  next->generation = 2;
  next->cut_stats_ids = {cut_id};
  next->finalize();
  fwd::onSnapshot(h.ctx, *next, 2000);
  const size_t flows_before = h.ctx.flows.size();

  // The reply of the cut flow's node: dropped, and the flow is gone.
  Bytes reply = nodeTcp(out1.dst_ip, out1.src_port, tcp::kSyn | tcp::kAckFlag, 100);
  EXPECT_EQ(fwd::processFrame(h.ctx, *next, kInt, reply, 2001).kind, Action::Kind::kDrop);
  EXPECT_EQ(h.ctx.counters.drops[static_cast<size_t>(fwd::DropReason::kDrainTimeout)].get(), 1u);
  EXPECT_EQ(h.ctx.flows.size(), flows_before - 1);
  EXPECT_EQ(h.ctx.backend_stats.at(cut_id).closed_flows.get(), 1u);
  // The client's next segment meets no flow (a non-SYN): dropped as no_flow, no new state.
  Bytes data = clientTcp(40000, tcp::kPsh | tcp::kAckFlag, 50);
  EXPECT_EQ(fwd::processFrame(h.ctx, *next, kExt, data, 2002).kind, Action::Kind::kDrop);
  EXPECT_EQ(h.ctx.counters.drops[static_cast<size_t>(fwd::DropReason::kNoFlow)].get(), 1u);

  // The other backend's flow is untouched.
  Bytes data2 = clientTcp(other_port, tcp::kPsh | tcp::kAckFlag, 50);
  ASSERT_EQ(fwd::processFrame(h.ctx, *next, kExt, data2, 2003).kind, Action::Kind::kForward);
  EXPECT_EQ(parseFrame(data2).frame.dst_ip, out2.dst_ip);
}

TEST(Processor, SynOnAClosedFlowsTupleStartsANewFlow) {
  Harness h;
  Bytes syn = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, syn, 0).kind, Action::Kind::kForward);
  const ParsedFrame first = parseFrame(syn).frame;
  Bytes synack = nodeTcp(first.dst_ip, first.src_port, tcp::kSyn | tcp::kAckFlag);
  ASSERT_EQ(h.run(kInt, synack, 1).kind, Action::Kind::kForward);
  Bytes fin = nodeTcp(first.dst_ip, first.src_port, tcp::kFin | tcp::kAckFlag);
  ASSERT_EQ(h.run(kInt, fin, 2).kind, Action::Kind::kForward);
  Bytes last_ack = clientTcp(40000, tcp::kFin | tcp::kAckFlag);
  ASSERT_EQ(h.run(kExt, last_ack, 3).kind, Action::Kind::kForward);
  EXPECT_EQ(h.ctx.counters.new_flows.get(), 1u);

  // The same client port again, seconds later: a new connection, a new SNAT port.
  Bytes again = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, again, 5000).kind, Action::Kind::kForward);
  const ParsedFrame second = parseFrame(again).frame;
  EXPECT_EQ(h.ctx.counters.new_flows.get(), 2u);
  EXPECT_NE(second.src_port, first.src_port) << "the closed flow's SNAT port stays unused";
  EXPECT_EQ(h.ctx.flows.size(), 1u);
  // A retransmitted SYN of a connection still opening is not a reopen.
  Bytes retransmit = clientTcp(40000, tcp::kSyn);
  ASSERT_EQ(h.run(kExt, retransmit, 5100).kind, Action::Kind::kForward);
  EXPECT_EQ(h.ctx.counters.new_flows.get(), 2u);
  EXPECT_EQ(parseFrame(retransmit).frame.src_port, second.src_port);
}

TEST(Processor, SlowTickResolvesNodesWithoutStaticMacs) {
  Env env = makeEnv();
  env.snapshot->static_neighbors.clear();
  fwd::WorkerContext ctx(0, env.ports, 16);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  std::array<fwd::ArpRequest, 8> reqs{};
  const size_t n = fwd::slowTick(ctx, *env.snapshot, 1000, 16, reqs);
  ASSERT_EQ(n, 3u);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(reqs[i].port, kInt);
  EXPECT_EQ(fwd::slowTick(ctx, *env.snapshot, 1050, 16, reqs), 0u) << "scan runs every 100 ms";
  EXPECT_EQ(fwd::slowTick(ctx, *env.snapshot, 1500, 16, reqs), 0u) << "retry after one second";
  EXPECT_EQ(fwd::slowTick(ctx, *env.snapshot, 2100, 16, reqs), 3u);
}

// --- Source ranges and session affinity (beyond the fixture table) ----------------------

size_t dropsOf(const fwd::WorkerContext& ctx, DropReason reason) {
  return ctx.counters.drops[static_cast<size_t>(reason)].get();
}

Bytes synFrom(uint32_t src, uint16_t src_port, uint16_t port) {
  return PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(src, Topo::vip()).tcp(src_port, port, tcp::kSyn).build();
}

// The node a forwarded client frame went to (0 when it was not forwarded).
uint32_t sentTo(fwd::WorkerContext& ctx, const fwd::ForwardingSnapshot& snap, Bytes frame, uint32_t now) {
  if (fwd::processFrame(ctx, snap, kExt, frame, now).kind != Action::Kind::kForward) return 0;
  return parseFrame(frame).frame.dst_ip;
}

// A copy of `base` whose TCP service port `port` has these (node, weight) backends.
std::unique_ptr<fwd::ForwardingSnapshot> withNodes(const fwd::ForwardingSnapshot& base, uint16_t port,
                                                   std::vector<std::pair<uint32_t, uint16_t>> nodes, uint64_t generation) {
  auto next = std::make_unique<fwd::ForwardingSnapshot>(base);
  next->generation = generation;
  for (fwd::ServicePort& sp : next->service_ports) {
    if (sp.port != port || sp.proto != kProtoTcp) continue;
    const fwd::Backend model = sp.backends.front();
    sp.backends.clear();
    std::vector<lb::MaglevBackend> ids;
    for (const auto& [node, weight] : nodes) {
      fwd::Backend b = model;
      b.node_ip = node;
      b.weight = weight;
      b.stats_id = node & 0xff;
      sp.backends.push_back(b);
      ids.push_back({.id = node, .weight = weight});
    }
    sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
  }
  next->finalize();
  return next;
}

const uint32_t kN1 = ip("10.200.0.11");
const uint32_t kN2 = ip("10.200.0.12");
const uint32_t kN3 = ip("10.200.0.13");
constexpr uint16_t kAff = SvcPorts::kAffinityTcp;

// A client address on the external side for client number i (never a martian).
uint32_t clientNo(uint32_t i) { return ip("100.64.0.0") + i; }

// The first choice for a client under one snapshot: a worker that has only ever seen
// that snapshot (what it remembers for a client is its first choice there).
class FirstChoice {
 public:
  explicit FirstChoice(const fwd::ForwardingSnapshot& snap) : snap_(snap) { fwd::onSnapshot(ctx_, snap_, 0); }
  uint32_t of(uint32_t client) {
    return sentTo(ctx_, snap_, synFrom(client, static_cast<uint16_t>(1024 + (next_++ & 0x7fff)), kAff), 1);
  }

 private:
  const fwd::ForwardingSnapshot& snap_;
  Env env_ = makeEnv();
  fwd::WorkerContext ctx_{0, env_.ports, 1u << 16};
  uint32_t next_ = 0;
};

TEST(SourceRanges, ADeniedSourceCostsNoStateNotEvenAnArpRequest) {
  Env env = makeEnv();
  env.snapshot->static_neighbors.clear();  // nodes unresolved: a new flow would ask ARP
  fwd::WorkerContext ctx(0, env.ports, 64);
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  Bytes denied = synFrom(Topo::clientIp(), 40000, SvcPorts::kDocNets);
  const Bytes before = denied;
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, denied, 10).kind, Action::Kind::kDrop);
  EXPECT_EQ(dropsOf(ctx, DropReason::kSourceDenied), 1u);
  EXPECT_EQ(denied, before) << "a dropped frame is not rewritten";
  EXPECT_EQ(ctx.flows.size(), 0u);
  EXPECT_EQ(ctx.arp_queue_len, 0u) << "no neighbour work for a denied source";
  EXPECT_EQ(ctx.counters.new_flows.get(), 0u);
  // The same client on a port that admits it gets as far as the neighbour lookup.
  Bytes allowed = synFrom(Topo::clientIp(), 40000, SvcPorts::kOnlyClient);
  EXPECT_EQ(fwd::processFrame(ctx, *env.snapshot, kExt, allowed, 11).kind, Action::Kind::kDrop);
  EXPECT_EQ(dropsOf(ctx, DropReason::kNeighborUnresolved), 1u);
  EXPECT_EQ(ctx.arp_queue_len, 1u);
  EXPECT_EQ(dropsOf(ctx, DropReason::kSourceDenied), 1u);
}

// A reload that takes a source out of the ranges refuses its new connections only; the
// decision is documented at the check in processor.cc.
TEST(SourceRanges, AReloadThatDeniesASourceKeepsItsEstablishedFlows) {
  Harness h;
  Bytes syn = synFrom(Topo::clientIp(), 40000, SvcPorts::kOnlyClient);
  ASSERT_EQ(h.run(kExt, syn, 0).kind, Action::Kind::kForward);
  const ParsedFrame first = parseFrame(syn).frame;

  auto next = std::make_unique<fwd::ForwardingSnapshot>(*h.env.snapshot);
  next->generation = 2;
  for (fwd::ServicePort& sp : next->service_ports) {
    if (sp.port == SvcPorts::kOnlyClient) sp.source_ranges = {fwd::prefixRange(ip("203.0.113.0"), 24)};
  }
  next->finalize();
  fwd::onSnapshot(h.ctx, *next, 5);

  auto nodeSegment = [&](uint8_t flags) {
    return PacketBuilder().eth(Topo::nodeMac(first.dst_ip), Topo::intMac()).ipv4(first.dst_ip, Topo::intIp())
        .tcp(SvcPorts::nodePortOf(SvcPorts::kOnlyClient), first.src_port, flags).build();
  };
  Bytes synack = nodeSegment(tcp::kSyn | tcp::kAckFlag);
  EXPECT_EQ(fwd::processFrame(h.ctx, *next, kInt, synack, 10).kind, Action::Kind::kForward);
  Bytes ack = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(Topo::clientIp(), Topo::vip())
                  .tcp(40000, SvcPorts::kOnlyClient, tcp::kAckFlag).payload(20).build();
  ASSERT_EQ(fwd::processFrame(h.ctx, *next, kExt, ack, 20).kind, Action::Kind::kForward);
  EXPECT_EQ(parseFrame(ack).frame.dst_ip, first.dst_ip) << "the established flow keeps flowing";
  EXPECT_EQ(dropsOf(h.ctx, DropReason::kSourceDenied), 0u);

  Bytes another = synFrom(Topo::clientIp(), 40001, SvcPorts::kOnlyClient);
  EXPECT_EQ(fwd::processFrame(h.ctx, *next, kExt, another, 30).kind, Action::Kind::kDrop);
  EXPECT_EQ(dropsOf(h.ctx, DropReason::kSourceDenied), 1u) << "a new connection is refused";

  // Closing and reopening the old tuple is a new connection: refused too.
  Bytes fin = nodeSegment(tcp::kFin | tcp::kAckFlag);
  ASSERT_EQ(fwd::processFrame(h.ctx, *next, kInt, fin, 40).kind, Action::Kind::kForward);
  Bytes reopen = synFrom(Topo::clientIp(), 40000, SvcPorts::kOnlyClient);
  EXPECT_EQ(fwd::processFrame(h.ctx, *next, kExt, reopen, 50).kind, Action::Kind::kDrop);
  EXPECT_EQ(dropsOf(h.ctx, DropReason::kSourceDenied), 2u);
  EXPECT_EQ(h.ctx.flows.size(), 0u) << "the closed flow ended, no new one began";
}

TEST(SessionAffinity, TheFirstChoiceDependsOnTheClientAddressOnlyOnEveryWorker) {
  Harness a;
  Harness b;
  for (uint32_t i = 0; i < 50; ++i) {
    const uint32_t client = clientNo(i);
    const uint32_t on_a = sentTo(a.ctx, *a.env.snapshot, synFrom(client, static_cast<uint16_t>(1000 + i), kAff), 1);
    const uint32_t on_b = sentTo(b.ctx, *b.env.snapshot, synFrom(client, static_cast<uint16_t>(5000 + 3 * i), kAff), 1);
    ASSERT_NE(on_a, 0u);
    EXPECT_EQ(on_a, on_b) << "client " << i << ": another worker or box must agree without shared state";
  }
}

TEST(SessionAffinity, ClientsStillSpreadOverAllNodes) {
  Harness h;
  std::map<uint32_t, int> per_node;
  for (uint32_t i = 0; i < 600; ++i) ++per_node[sentTo(h.ctx, *h.env.snapshot, synFrom(clientNo(i), 1000, kAff), 1)];
  ASSERT_EQ(per_node.size(), 3u);
  for (const auto& [node, n] : per_node) EXPECT_GT(n, 120) << node;
}

TEST(SessionAffinity, ClientsKeepTheirNodeWhenANodeIsAdded) {
  Harness h;
  auto two = withNodes(*h.env.snapshot, kAff, {{kN1, 1}, {kN2, 1}}, 2);
  auto three = withNodes(*h.env.snapshot, kAff, {{kN1, 1}, {kN2, 1}, {kN3, 1}}, 3);
  fwd::onSnapshot(h.ctx, *two, 0);
  constexpr uint32_t kClients = 300;
  std::vector<uint32_t> before(kClients);
  for (uint32_t i = 0; i < kClients; ++i) {
    before[i] = sentTo(h.ctx, *two, synFrom(clientNo(i), 1000, kAff), 10);
    ASSERT_NE(before[i], 0u);
  }
  fwd::onSnapshot(h.ctx, *three, 20);
  FirstChoice fresh(*three);
  uint32_t moved_without_memory = 0;
  for (uint32_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(sentTo(h.ctx, *three, synFrom(clientNo(i), 2000, kAff), 30), before[i]) << "client " << i;
    moved_without_memory += fresh.of(clientNo(i)) != before[i] ? 1 : 0;
  }
  // Maglev alone moves about a third of the clients to the new node; the table kept them.
  EXPECT_GT(moved_without_memory, kClients / 6);
  EXPECT_EQ(h.ctx.counters.affinity_hits.get(), kClients);
  EXPECT_EQ(h.ctx.counters.affinity_overflows.get(), 0u);
}

// A client whose first choice differs between `a` and `b` (the table has to make it stick).
uint32_t clientThatMoves(const fwd::ForwardingSnapshot& a, const fwd::ForwardingSnapshot& b) {
  FirstChoice on_a(a);
  FirstChoice on_b(b);
  for (uint32_t i = 0; i < 1000; ++i) {
    if (on_a.of(clientNo(i)) != on_b.of(clientNo(i))) return clientNo(i);
  }
  ADD_FAILURE() << "no client moves between the two tables";
  return 0;
}

TEST(SessionAffinity, TheTimeoutRunsFromTheLastPacketOfTheClientsLastFlow) {
  Harness h;
  constexpr uint32_t kTimeout = 100'000;
  auto setTimeout = [&](fwd::ForwardingSnapshot& snap) {
    for (fwd::ServicePort& sp : snap.service_ports) {
      if (sp.port == kAff) sp.affinity_timeout_ms = kTimeout;
    }
  };
  auto two = withNodes(*h.env.snapshot, kAff, {{kN1, 1}, {kN2, 1}}, 2);
  auto three = withNodes(*h.env.snapshot, kAff, {{kN1, 1}, {kN2, 1}, {kN3, 1}}, 3);
  setTimeout(*two);
  setTimeout(*three);
  const uint32_t client = clientThatMoves(*two, *three);
  const lb::AffinityKey key{.client_ip = client, .vip = Topo::vip(), .port = kAff, .proto = kProtoTcp};
  std::array<fwd::ArpRequest, 8> reqs{};
  auto tick = [&](uint32_t now) { (void)fwd::slowTick(h.ctx, *three, now, h.ctx.flows.capacity(), reqs); };

  fwd::onSnapshot(h.ctx, *two, 0);
  const uint32_t node = sentTo(h.ctx, *two, synFrom(client, 1, kAff), 0);
  ASSERT_NE(node, 0u);
  fwd::onSnapshot(h.ctx, *three, 1000);
  EXPECT_EQ(sentTo(h.ctx, *three, synFrom(client, 2, kAff), 30'000), node);
  ASSERT_NE(h.ctx.affinity.find(key, 30'000, kTimeout), nullptr);
  EXPECT_EQ(h.ctx.affinity.find(key, 30'000, kTimeout)->flows, 2u);

  // Both SYN-sent flows expire (transitory timeout 60 s): the entry is released with the
  // newest last packet, 30 s, and lives until 130 s.
  tick(95'000);
  ASSERT_EQ(h.ctx.flows.size(), 0u);
  ASSERT_NE(h.ctx.affinity.find(key, 95'000, kTimeout), nullptr);
  EXPECT_EQ(h.ctx.affinity.find(key, 95'000, kTimeout)->flows, 0u);
  EXPECT_NE(h.ctx.affinity.find(key, 130'000, kTimeout), nullptr);
  EXPECT_EQ(h.ctx.affinity.find(key, 130'001, kTimeout), nullptr);

  // Within the timeout: still the remembered node, although today's table says otherwise.
  EXPECT_EQ(sentTo(h.ctx, *three, synFrom(client, 3, kAff), 129'900), node);
  tick(190'000);  // that flow ends too; last packet at 129.9 s
  ASSERT_EQ(h.ctx.flows.size(), 0u);
  // 100.1 s later without traffic: a fresh choice, which is then remembered.
  const uint32_t fresh = FirstChoice(*three).of(client);
  EXPECT_NE(fresh, node);
  EXPECT_EQ(sentTo(h.ctx, *three, synFrom(client, 4, kAff), 230'001), fresh);
  EXPECT_EQ(sentTo(h.ctx, *three, synFrom(client, 5, kAff), 230'002), fresh);
}

TEST(SessionAffinity, LiveFlowsHoldTheirEntryAndSlowTickSweepsIdleOnes) {
  Harness h;
  auto snap = std::make_unique<fwd::ForwardingSnapshot>(*h.env.snapshot);
  for (fwd::ServicePort& sp : snap->service_ports) {
    if (sp.port == kAff) sp.affinity_timeout_ms = 10'000;  // shorter than a SYN-sent flow's 60 s
  }
  snap->timeouts.tcp_half_open_ms = 60'000;
  snap->finalize();
  for (uint32_t i = 0; i < 20; ++i) ASSERT_NE(sentTo(h.ctx, *snap, synFrom(clientNo(i), 1000, kAff), 0), 0u);
  EXPECT_EQ(h.ctx.affinity.size(), 20u);
  std::array<fwd::ArpRequest, 8> reqs{};
  (void)fwd::slowTick(h.ctx, *snap, 30'000, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 20u);
  EXPECT_EQ(h.ctx.affinity.size(), 20u) << "idle 30 s > 10 s, but their flows are alive";
  EXPECT_EQ(sentTo(h.ctx, *snap, synFrom(clientNo(3), 1001, kAff), 30'000),
            sentTo(h.ctx, *snap, synFrom(clientNo(3), 1002, kAff), 30'000));
  EXPECT_EQ(h.ctx.counters.affinity_hits.get(), 2u);
  (void)fwd::slowTick(h.ctx, *snap, 60'001, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 2u) << "the SYN-sent flows of 0 s expired";
  EXPECT_EQ(h.ctx.affinity.size(), 1u) << "and their clients' entries, idle since 0 s, with them";
  (void)fwd::slowTick(h.ctx, *snap, 90'001, h.ctx.flows.capacity(), reqs);
  EXPECT_EQ(h.ctx.flows.size(), 0u);
  EXPECT_EQ(h.ctx.affinity.size(), 0u) << "the last client's flows ended, last packet 60 s ago";
}

TEST(SessionAffinity, ANodeThatStopsServingIsChosenAgainAndTheNewChoiceSticks) {
  Harness h;
  const uint32_t client = clientNo(7);
  const uint32_t node = sentTo(h.ctx, *h.env.snapshot, synFrom(client, 1, kAff), 0);
  ASSERT_NE(node, 0u);
  std::vector<std::pair<uint32_t, uint16_t>> others;
  for (uint32_t n : {kN1, kN2, kN3}) {
    if (n != node) others.emplace_back(n, 1);
  }
  // Drained (weight 0, still listed): not serving, so not kept.
  std::vector<std::pair<uint32_t, uint16_t>> drained = {{kN1, 1}, {kN2, 1}, {kN3, 1}};
  for (auto& [n, w] : drained) w = n == node ? 0 : 1;
  auto drain = withNodes(*h.env.snapshot, kAff, drained, 2);
  fwd::onSnapshot(h.ctx, *drain, 10);
  const uint32_t second = sentTo(h.ctx, *drain, synFrom(client, 2, kAff), 10);
  ASSERT_NE(second, 0u);
  EXPECT_NE(second, node);
  // Gone from the port altogether: the same.
  auto gone = withNodes(*h.env.snapshot, kAff, others, 3);
  fwd::onSnapshot(h.ctx, *gone, 20);
  EXPECT_EQ(sentTo(h.ctx, *gone, synFrom(client, 3, kAff), 20), second);
  // The old node serves again: the client stays where it was sent last.
  fwd::onSnapshot(h.ctx, *h.env.snapshot, 30);
  EXPECT_EQ(sentTo(h.ctx, *h.env.snapshot, synFrom(client, 4, kAff), 30), second);
  EXPECT_EQ(h.ctx.counters.affinity_hits.get(), 2u);
}

TEST(SessionAffinity, AFullTableNeverBlocksANewFlow) {
  Env env = makeEnv();
  fwd::WorkerContext ctx(0, env.ports, 1024, /*affinity_capacity=*/4);  // one bucket of 4
  fwd::onSnapshot(ctx, *env.snapshot, 0);
  ASSERT_EQ(ctx.affinity.capacity(), 4u);
  for (uint32_t i = 0; i < 4; ++i) ASSERT_NE(sentTo(ctx, *env.snapshot, synFrom(clientNo(i), 1, kAff), 0), 0u);
  EXPECT_EQ(ctx.affinity.size(), 4u);
  FirstChoice fresh(*env.snapshot);
  for (uint32_t i = 4; i < 12; ++i) {
    const uint32_t node = sentTo(ctx, *env.snapshot, synFrom(clientNo(i), 1, kAff), 0);
    EXPECT_EQ(node, fresh.of(clientNo(i))) << "the client-IP Maglev choice, unremembered";
  }
  EXPECT_EQ(ctx.counters.affinity_overflows.get(), 8u);
  EXPECT_EQ(totalDrops(ctx.counters), 0u);
  EXPECT_EQ(ctx.flows.size(), 12u);
  // A remembered client is still remembered; one that could not be stays unremembered.
  EXPECT_NE(sentTo(ctx, *env.snapshot, synFrom(clientNo(0), 2, kAff), 1), 0u);
  EXPECT_EQ(ctx.counters.affinity_hits.get(), 1u);
  // Once those flows have ended and their clients idled past the timeout, ways free up.
  std::array<fwd::ArpRequest, 8> reqs{};
  (void)fwd::slowTick(ctx, *env.snapshot, 200'000, 1024, reqs);
  EXPECT_EQ(ctx.flows.size(), 0u);
  EXPECT_EQ(ctx.affinity.size(), 0u);
  EXPECT_NE(sentTo(ctx, *env.snapshot, synFrom(clientNo(11), 3, kAff), 200'001), 0u);
  EXPECT_EQ(ctx.affinity.size(), 1u);
  EXPECT_EQ(ctx.counters.affinity_overflows.get(), 8u);
}

TEST(SessionAffinity, AReopenedTupleReleasesTheOldFlowAndCountsTheNewOne) {
  Harness h;
  const uint32_t client = Topo::clientIp();
  const lb::AffinityKey key{.client_ip = client, .vip = Topo::vip(), .port = kAff, .proto = kProtoTcp};
  Bytes syn = synFrom(client, 40000, kAff);
  ASSERT_EQ(h.run(kExt, syn, 0).kind, Action::Kind::kForward);
  const ParsedFrame first = parseFrame(syn).frame;
  Bytes fin = PacketBuilder().eth(Topo::nodeMac(first.dst_ip), Topo::intMac()).ipv4(first.dst_ip, Topo::intIp())
                  .tcp(SvcPorts::nodePortOf(kAff), first.src_port, tcp::kFin | tcp::kAckFlag).build();
  ASSERT_EQ(h.run(kInt, fin, 10).kind, Action::Kind::kForward);
  ASSERT_EQ(h.ctx.affinity.find(key, 10, SvcPorts::kAffinityTimeoutMs)->flows, 1u);
  Bytes again = synFrom(client, 40000, kAff);
  ASSERT_EQ(h.run(kExt, again, 5000).kind, Action::Kind::kForward);
  EXPECT_EQ(parseFrame(again).frame.dst_ip, first.dst_ip);
  EXPECT_EQ(h.ctx.affinity.find(key, 5000, SvcPorts::kAffinityTimeoutMs)->flows, 1u) << "one flow, counted once";
  EXPECT_EQ(h.ctx.flows.size(), 1u);
}

TEST(SessionAffinity, PortsWithoutAffinityStillHashTheFiveTuple) {
  Harness h;
  std::set<uint32_t> nodes;
  for (uint16_t port = 1000; port < 1100; ++port) nodes.insert(sentTo(h.ctx, *h.env.snapshot, synFrom(Topo::clientIp(), port, 80), 1));
  EXPECT_EQ(nodes.size(), 3u) << "one client's connections spread without affinity";
  EXPECT_EQ(h.ctx.affinity.size(), 0u);
}

}  // namespace
}  // namespace ng::test
