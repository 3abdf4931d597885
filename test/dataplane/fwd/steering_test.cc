// Several workers at the pipeline level (no DPDK): each worker's SNAT ports bring the
// reply back to it, a reply without a flow is sent to the worker that owns its SNAT port
// (Action::kRedirect) and processed there, and ARP replies are shared (Action::kShare).
// The DPDK side (rings, handing mbufs over) is tested in test/dataplane/dpdk/.

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/reply_steering.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {
namespace {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

struct TwoWorkers {
  explicit TwoWorkers(lb::ReplySteering steering) : env(makeEnv()) {
    for (unsigned i = 0; i < 2; ++i) {
      ctx.push_back(std::make_unique<fwd::WorkerContext>(i, env.ports, 1024));
      ctx[i]->steerReplies(steering);
      fwd::onSnapshot(*ctx[i], *env.snapshot, 0);
      ctx[i]->neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
    }
  }
  Action run(unsigned worker, uint8_t port, Bytes& frame, uint32_t now = 10) {
    return fwd::processFrame(*ctx[worker], *env.snapshot, port, frame, now);
  }
  Env env;
  std::vector<std::unique_ptr<fwd::WorkerContext>> ctx;
};

uint64_t drops(const fwd::WorkerContext& c, DropReason r) { return c.counters.drops[static_cast<size_t>(r)].get(); }

// by-port: a client flow belongs to the worker its flow hash names, whichever worker the
// device hands its frames to; that worker creates it with one of its own SNAT ports.
TEST(Steering, ClientFramesGoToTheWorkerTheirFlowHashNames) {
  TwoWorkers w(lb::ReplySteering::byPort(2));
  std::array<int, 2> owned{};
  for (uint16_t i = 0; i < 200; ++i) {
    const auto sport = static_cast<uint16_t>(20000 + i);
    Bytes at0 = clientTcp(sport, tcp::kSyn);
    Bytes at1 = at0;
    const Action a0 = w.run(0, kExt, at0);
    const Action a1 = w.run(1, kExt, at1);
    // Exactly one of them takes it; the other names it.
    const bool zero_owns = a0.kind == Action::Kind::kForward;
    ASSERT_EQ(zero_owns ? a1.kind : a0.kind, Action::Kind::kRedirect) << sport;
    ASSERT_EQ(zero_owns ? a1.out_port : a0.out_port, zero_owns ? 0 : 1);
    ASSERT_EQ((zero_owns ? a0 : a1).kind, Action::Kind::kForward);
    ++owned[zero_owns ? 0 : 1];
    // Later segments of the flow follow it.
    Bytes ack = clientTcp(sport, tcp::kAckFlag);
    EXPECT_EQ(w.run(zero_owns ? 1 : 0, kExt, ack).kind, Action::Kind::kRedirect);
    EXPECT_EQ(w.run(zero_owns ? 0 : 1, kExt, ack).kind, Action::Kind::kForward);
  }
  EXPECT_GT(owned[0], 60);
  EXPECT_GT(owned[1], 60);
  EXPECT_EQ(drops(*w.ctx[0], DropReason::kNoFlow) + drops(*w.ctx[1], DropReason::kNoFlow), 0u);
}

TEST(Steering, RepliesOnTheWrongWorkerAreRedirectedToTheOwnerByPort) {
  TwoWorkers w(lb::ReplySteering::byPort(2));
  std::array<uint64_t, 2> created{};
  for (uint16_t i = 0; i < 100; ++i) {
    Bytes syn = clientTcp(static_cast<uint16_t>(40000 + i), tcp::kSyn);
    Action first = w.run(0, kExt, syn);
    unsigned owner = 0;
    if (first.kind == Action::Kind::kRedirect) {
      owner = first.out_port;
      first = w.run(owner, kExt, syn);
    }
    ASSERT_EQ(first.kind, Action::Kind::kForward);
    ++created[owner];
    {
      const ParsedFrame out = parseFrame(syn).frame;
      ASSERT_EQ(out.src_port % 2, owner) << "worker " << owner << " handed out another worker's port";

      // The reply reaches the other worker first: it has no flow and names the owner.
      const unsigned other = 1 - owner;
      Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
      const Bytes untouched = reply;
      const Action a = w.run(other, kInt, reply);
      ASSERT_EQ(a.kind, Action::Kind::kRedirect);
      EXPECT_EQ(a.out_port, owner);
      EXPECT_EQ(reply, untouched) << "a redirected frame is handed over as received";
      // The owner restores it.
      const Action b = w.run(owner, kInt, reply);
      ASSERT_EQ(b.kind, Action::Kind::kForward);
      EXPECT_EQ(b.out_port, kExt);
    }
  }
  for (unsigned i = 0; i < 2; ++i) {
    EXPECT_EQ(drops(*w.ctx[i], DropReason::kNoFlow), 0u);
    EXPECT_GT(created[i], 20u);
    EXPECT_EQ(w.ctx[i]->counters.new_flows.get(), created[i]);
    EXPECT_EQ(w.ctx[i]->counters.to_clients.get(), created[i]);
  }
}

TEST(Steering, AReplyNobodyOwnsIsDroppedByItsOwner) {
  TwoWorkers w(lb::ReplySteering::byPort(2));
  Bytes stray = nodeTcp(ip("10.200.0.11"), 5001, tcp::kAckFlag);  // port 5001: worker 1's
  EXPECT_EQ(w.run(1, kInt, stray).kind, Action::Kind::kDrop);
  EXPECT_EQ(drops(*w.ctx[1], DropReason::kNoFlow), 1u);
  Bytes to_other = nodeTcp(ip("10.200.0.11"), 5001, tcp::kAckFlag);
  EXPECT_EQ(w.run(0, kInt, to_other).kind, Action::Kind::kRedirect);
}

TEST(Steering, RssModeHandsOutPortsWhoseRepliesComeHome) {
  std::vector<uint16_t> reta(128);
  for (size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<uint16_t>(i % 2);
  auto steering = lb::ReplySteering::byRss(2, lb::Toeplitz::kMicrosoftKey, reta);
  ASSERT_TRUE(steering.has_value());
  TwoWorkers w(*steering);
  EXPECT_FALSE(w.ctx[0]->steer_clients) << "RSS keeps a client flow on one queue: no hand-over";
  const lb::Toeplitz nic;
  for (unsigned owner = 0; owner < 2; ++owner) {
    for (uint16_t i = 0; i < 100; ++i) {
      Bytes syn = clientTcp(static_cast<uint16_t>(30000 + owner * 1000 + i), tcp::kSyn);
      ASSERT_EQ(w.run(owner, kExt, syn).kind, Action::Kind::kForward);
      const ParsedFrame out = parseFrame(syn).frame;
      // The NIC's queue for the reply (node -> SNAT address:port) is the owner's.
      EXPECT_EQ(reta[nic.hashIpv4(out.dst_ip, out.src_ip, out.dst_port, out.src_port) % reta.size()], owner);
      Bytes reply = nodeTcp(out.dst_ip, out.src_port, tcp::kSyn | tcp::kAckFlag);
      EXPECT_EQ(w.run(owner, kInt, reply).kind, Action::Kind::kForward);
    }
  }
}

TEST(Steering, ArpRepliesAreSharedOnlyWithSeveralWorkers) {
  Bytes answer = PacketBuilder().eth(Topo::clientMac(), Topo::extMac())
                     .arp(arp::kReply, Topo::clientMac(), Topo::clientIp(), Topo::extMac(), Topo::extIp()).build();
  TwoWorkers two(lb::ReplySteering::byPort(2));
  Bytes a = answer;
  EXPECT_EQ(two.run(0, kExt, a).kind, Action::Kind::kShare);
  TwoWorkers one(lb::ReplySteering{});
  Bytes b = answer;
  EXPECT_EQ(one.run(0, kExt, b).kind, Action::Kind::kConsumed);
}

}  // namespace
}  // namespace ng::test
