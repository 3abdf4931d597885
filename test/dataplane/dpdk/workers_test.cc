// Integration: two workers between two net_ring ports with two queue pairs each (EAL
// in-process). The test plays the devices: it puts client frames on either worker's
// external RX queue (as a hashing device would, one flow on one queue) and node replies
// on an internal RX queue of its choosing - often the wrong one, as a device without
// predictable RSS does - and checks that every reply reaches the worker that owns its
// flow through the redirect rings, that ARP replies reach every worker, and that no
// mbuf leaks.

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/ring.h"
#include "dataplane/dpdk/worker.h"
#include "dataplane/fwd/processor.h"
#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/dpdk/eal_environment.h"
#include "test/support/packet_builder.h"

namespace ng::dpdk {
namespace {

using fwd::DropReason;
using test::Bytes;
using test::ip;
using test::mac;
using test::PacketBuilder;

// Two worker lcores on whatever CPUs there are (CI machines may have two).
[[maybe_unused]] test::EalEnvironment* const kEal = test::addEalEnvironment(
    new test::EalEnvironment("ng_workers_test", {1, 2}, {"--lcores=0@0,1@(0-1),2@(0-1)"}));

const uint32_t kVip = ip("10.100.0.100");
const uint32_t kClient = ip("10.100.0.2");
const uint32_t kIntAddr = ip("10.200.0.1");
const uint32_t kNode1 = ip("10.200.0.11");
const uint32_t kNode2 = ip("10.200.0.12");
const pkt::Mac kClientMac = mac("02:00:00:00:00:02");
const pkt::Mac kNodeMac = mac("02:00:00:00:01:11");
constexpr uint16_t kNodePort = 30080;
constexpr uint8_t kExt = 0;
constexpr uint8_t kInt = 1;
constexpr unsigned kWorkers = 2;

std::unique_ptr<fwd::ForwardingSnapshot> makeSnapshot() {
  auto snap = std::make_unique<fwd::ForwardingSnapshot>();
  snap->generation = 1;
  fwd::ServicePort sp{.vip = kVip, .port = 80, .proto = pkt::kProtoTcp, .id = 0};
  std::vector<lb::MaglevBackend> mb;
  for (uint32_t n : {kNode1, kNode2}) {
    sp.backends.push_back({.node_ip = n, .node_port = kNodePort, .weight = 1});
    mb.push_back({.id = n, .weight = 1});
  }
  sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(mb));
  snap->service_ports.push_back(std::move(sp));
  snap->vips = {kVip};
  snap->snat_addresses = {kIntAddr};
  snap->static_neighbors = {{.ip = kNode1, .mac = kNodeMac}, {.ip = kNode2, .mac = kNodeMac}};
  snap->finalize();
  return snap;
}

struct Tcp {
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t flags = 0;
};

Tcp parseTcp(const Bytes& f) {
  Tcp t;
  if (f.size() < pkt::kEthHeaderLen + pkt::kIpv4MinLen + pkt::kTcpMinLen) return t;
  if (pkt::load16(f.data() + 12) != pkt::kEtherTypeIpv4) return t;
  const std::byte* l3 = f.data() + pkt::kEthHeaderLen;
  const std::byte* l4 = l3 + (std::to_integer<size_t>(l3[0]) & 0xf) * 4;
  t.src = pkt::load32(l3 + pkt::ipv4::kSrc);
  t.dst = pkt::load32(l3 + pkt::ipv4::kDst);
  t.sport = pkt::load16(l4 + pkt::tcp::kSrcPort);
  t.dport = pkt::load16(l4 + pkt::tcp::kDstPort);
  t.flags = std::to_integer<uint8_t>(l4[pkt::tcp::kFlags]);
  return t;
}

// Worker 0 announces the snapshot's VIPs with gratuitous ARPs on the external port
// (fwd::announceVips; tested in test/dataplane/fwd/exception_test.cc and
// kernel_iface_test.cc). sent() sets them aside so the tests here see only the frames
// they are about.
bool isGratuitousArp(const Bytes& f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  return r.status == pkt::ParseStatus::kOk && r.frame.l3 == pkt::L3::kArp && r.frame.arp_spa == r.frame.arp_tpa;
}

struct RingPort {
  std::array<rte_ring*, kWorkers> rx{};  // test -> port, per queue
  std::array<rte_ring*, kWorkers> tx{};  // port -> test, per queue
  std::unique_ptr<Port> port;
};

class WorkersTest : public ::testing::Test {
 protected:
  static constexpr unsigned kRingSize = 4096;

  static void SetUpTestSuite() {
    ASSERT_EQ(rte_eal_process_type(), RTE_PROC_PRIMARY) << "EAL is not up";
    pool_ = new Mempool("mw_pool", 16383);
    static int run = 0;
    ++run;
    for (int p = 0; p < 2; ++p) {
      RingPort& rp = ports_[p];
      const std::string n = std::to_string(run) + "_" + std::to_string(p);
      for (unsigned q = 0; q < kWorkers; ++q) {
        rp.rx[q] = rte_ring_create(("mw_rx" + n + "_" + std::to_string(q)).c_str(), kRingSize, SOCKET_ID_ANY, 0);
        rp.tx[q] = rte_ring_create(("mw_tx" + n + "_" + std::to_string(q)).c_str(), kRingSize, SOCKET_ID_ANY, 0);
        ASSERT_NE(rp.rx[q], nullptr);
        ASSERT_NE(rp.tx[q], nullptr);
      }
      const int id = rte_eth_from_rings(("mw" + n).c_str(), rp.rx.data(), kWorkers, rp.tx.data(), kWorkers,
                                        rte_socket_id());
      ASSERT_GE(id, 0) << rte_strerror(rte_errno);
      char name[RTE_ETH_NAME_MAX_LEN];
      ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), name), 0);
      rp.port = std::make_unique<Port>(Port::open(name, kWorkers, kWorkers, 1500, pool_->get()));
      EXPECT_FALSE(rp.port->rssLayout().has_value()) << "net_ring has no RSS";
    }
  }

  static void TearDownTestSuite() {
    for (RingPort& rp : ports_) {
      rp.port.reset();
      for (unsigned q = 0; q < kWorkers; ++q) {
        drain(rp.rx[q]);
        drain(rp.tx[q]);
        rte_ring_free(rp.rx[q]);
        rte_ring_free(rp.tx[q]);
      }
      rp = RingPort{};
    }
    delete pool_;
    pool_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(ports_[kInt].port, nullptr);
    baseline_ = rte_mempool_avail_count(pool_->get());
    std::vector<fwd::PortInfo> infos = {
        {.role = fwd::PortRole::kExternal, .mac = ports_[kExt].port->mac(), .address = ip("10.100.0.1")},
        {.role = fwd::PortRole::kInternal, .mac = ports_[kInt].port->mac(), .address = kIntAddr},
    };
    publisher_ = std::make_unique<RcuPublisher>(kWorkers);
    static int n = 0;
    ++n;
    WorkerRings rings;
    for (unsigned w = 0; w < kWorkers; ++w) {
      rings_.push_back(std::make_unique<MbufRing>("mw_redirect" + std::to_string(n) + "_" + std::to_string(w), 1024));
      rings.peers.push_back(rings_.back()->get());
    }
    for (unsigned w = 0; w < kWorkers; ++w) {
      ctx_.push_back(std::make_unique<fwd::WorkerContext>(w, infos, 1u << 14));
      ctx_[w]->snat.reseed(1000 + w);
      ctx_[w]->steerReplies(lb::ReplySteering::byPort(kWorkers));
      workers_.push_back(std::make_unique<Worker>(
          *ctx_[w],
          std::vector<QueueRef>{{ports_[kExt].port->id(), static_cast<uint16_t>(w)},
                                {ports_[kInt].port->id(), static_cast<uint16_t>(w)}},
          *publisher_, w, stop_, pool_->get(), WorkerOptions{}, rings));
    }
    publisher_->publish(makeSnapshot());
  }

  void TearDown() override {
    stop_.store(true);
    for (auto& w : workers_) w->join();
    workers_.clear();
    rings_.clear();  // frees what is still in them
    publisher_.reset();
    for (RingPort& rp : ports_) {
      for (unsigned q = 0; q < kWorkers; ++q) {
        drain(rp.rx[q]);
        drain(rp.tx[q]);
      }
    }
    EXPECT_EQ(rte_mempool_avail_count(pool_->get()), baseline_) << "mbufs leaked";
    ctx_.clear();
  }

  static void drain(rte_ring* r) {
    void* obj = nullptr;
    while (r != nullptr && rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  }
  static bool inject(uint8_t port, unsigned queue, const Bytes& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_->get());
    if (m == nullptr) return false;
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    if (rte_ring_enqueue(ports_[port].rx[queue], m) != 0) {
      rte_pktmbuf_free(m);
      return false;
    }
    return true;
  }
  // Every frame `port` sent, from both queues.
  static std::vector<Bytes> sent(uint8_t port) {
    std::vector<Bytes> out;
    for (unsigned q = 0; q < kWorkers; ++q) {
      void* obj = nullptr;
      while (rte_ring_dequeue(ports_[port].tx[q], &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        const auto* p = rte_pktmbuf_mtod(m, const std::byte*);
        Bytes frame(p, p + rte_pktmbuf_data_len(m));
        rte_pktmbuf_free(m);
        if (!isGratuitousArp(frame)) out.push_back(std::move(frame));
      }
    }
    return out;
  }
  // Both workers from the test thread, a few rounds (a redirected frame needs the
  // sender's poll, then the owner's).
  void pollAll(int rounds = 12) {
    for (int r = 0; r < rounds; ++r) {
      for (auto& w : workers_) {
        w->online();
        w->pollOnce();
        w->offline();
      }
    }
    for (auto& w : workers_) w->flushTx();
  }
  void tick(unsigned w) {
    workers_[w]->online();
    workers_[w]->slowTick();
    workers_[w]->offline();
    workers_[w]->flushTx();
  }
  Bytes syn(uint16_t sport) const {
    return PacketBuilder().eth(kClientMac, ports_[kExt].port->mac()).ipv4(kClient, kVip).tcp(sport, 80, pkt::tcp::kSyn, 1000).build();
  }
  Bytes synAck(const Tcp& to_node) const {
    return PacketBuilder()
        .eth(kNodeMac, ports_[kInt].port->mac())
        .ipv4(to_node.dst, to_node.src)
        .tcp(to_node.dport, to_node.sport, pkt::tcp::kSyn | pkt::tcp::kAckFlag, 5000, 1001)
        .build();
  }
  Bytes clientArpReply() const {
    return PacketBuilder()
        .eth(kClientMac, ports_[kExt].port->mac())
        .arp(pkt::arp::kReply, kClientMac, kClient, ports_[kExt].port->mac(), ip("10.100.0.1"))
        .build();
  }
  uint64_t drops(unsigned w, DropReason r) const { return ctx_[w]->counters.drops[static_cast<size_t>(r)].get(); }
  uint64_t totalDrops() const {
    uint64_t n = 0;
    for (const auto& c : ctx_) for (const auto& d : c->counters.drops) n += d.get();
    return n;
  }
  // "reason=count ..." of every nonzero drop, per worker (for failure messages).
  std::string dropSummary() const {
    std::string out;
    for (const auto& c : ctx_) {
      for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
        if (const uint64_t n = c->counters.drops[r].get(); n != 0) {
          out += "w" + std::to_string(c->id) + ":" + fwd::dropReasonName(static_cast<DropReason>(r)) + "=" +
                 std::to_string(n) + " ";
        }
      }
    }
    return out;
  }
  void learnClient() {
    for (auto& c : ctx_) c->neighbors.learn(kClient, kClientMac, 0, /*is_static=*/true);
  }

  static inline Mempool* pool_ = nullptr;
  static inline std::array<RingPort, 2> ports_;
  unsigned baseline_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<RcuPublisher> publisher_;
  std::vector<std::unique_ptr<MbufRing>> rings_;
  std::vector<std::unique_ptr<fwd::WorkerContext>> ctx_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Replies put on the wrong worker's queue reach the flow's owner through its ring; the
// owner restores and sends them. Nothing is dropped.
TEST_F(WorkersTest, RepliesOnTheWrongQueueReachTheOwner) {
  learnClient();
  constexpr int kFlows = 200;
  for (int i = 0; i < kFlows; ++i) {
    // Any queue: a client flow's owner is its flow hash's (by-port), and a SYN on the
    // other worker's queue is handed over too.
    ASSERT_TRUE(inject(kExt, i % kWorkers, syn(static_cast<uint16_t>(20000 + i))));
  }
  pollAll();
  const auto to_nodes = sent(kInt);
  ASSERT_EQ(to_nodes.size(), static_cast<size_t>(kFlows));
  unsigned wrong = 0;
  for (const Bytes& f : to_nodes) {
    const Tcp t = parseTcp(f);
    ASSERT_EQ(t.src, kIntAddr);
    // Every reply on the queue of the worker that did NOT create the flow, except
    // every third one, which lands right.
    const unsigned owner = t.sport % kWorkers;
    const unsigned q = (t.sport % 3 == 0) ? owner : 1 - owner;
    wrong += q != owner;
    ASSERT_TRUE(inject(kInt, q, synAck(t)));
  }
  pollAll();
  const auto back = sent(kExt);
  ASSERT_EQ(back.size(), static_cast<size_t>(kFlows));
  std::map<uint16_t, int> seen;
  for (const Bytes& f : back) {
    const Tcp t = parseTcp(f);
    EXPECT_EQ(t.src, kVip);
    EXPECT_EQ(t.sport, 80);
    EXPECT_EQ(t.flags, pkt::tcp::kSyn | pkt::tcp::kAckFlag);
    ++seen[t.dport];
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kFlows)) << "every flow's SYN-ACK exactly once";
  uint64_t redirected = 0, received = 0, new_flows = 0;
  for (unsigned w = 0; w < kWorkers; ++w) {
    EXPECT_GT(ctx_[w]->counters.new_flows.get(), static_cast<uint64_t>(kFlows / 4));
    new_flows += ctx_[w]->counters.new_flows.get();
    redirected += ctx_[w]->counters.redirected.get();
    received += ctx_[w]->counters.redirect_received.get();
  }
  EXPECT_EQ(new_flows, static_cast<uint64_t>(kFlows));
  EXPECT_EQ(redirected, received);
  EXPECT_GT(wrong, 0u);
  EXPECT_GE(redirected, wrong) << "every reply on the wrong queue, plus SYNs on the wrong queue";
  EXPECT_EQ(totalDrops(), 0u) << dropSummary();
}

// Worker 1 asks for the client's MAC; the answer arrives on worker 0's queue (devices
// hash ARP to one queue). Worker 0 shares it, worker 1 learns it, and the node's
// retransmitted SYN-ACK goes through worker 1.
TEST_F(WorkersTest, ArpRepliesReachEveryWorker) {
  // A client port whose flow worker 1 owns.
  uint16_t sport = 30001;
  const auto ownerOf = [&](uint16_t p) {
    return ctx_[1]->steering.clientOwner(lb::FlowTable::hashOf(
        {.src_ip = kClient, .dst_ip = kVip, .src_port = p, .dst_port = 80, .proto = pkt::kProtoTcp}));
  };
  while (ownerOf(sport) != 1) ++sport;
  ASSERT_TRUE(inject(kExt, 1, syn(sport)));
  pollAll();
  const auto to_node = sent(kInt);
  ASSERT_EQ(to_node.size(), 1u);
  const Tcp t = parseTcp(to_node[0]);
  ASSERT_EQ(t.sport % kWorkers, 1u) << "worker 1 created the flow, with one of its ports";
  ASSERT_TRUE(inject(kInt, 1, synAck(t)));
  pollAll();
  EXPECT_TRUE(sent(kExt).empty());
  EXPECT_EQ(drops(1, DropReason::kNeighborUnresolved), 1u);
  tick(1);
  ASSERT_EQ(sent(kExt).size(), 1u) << "worker 1's ARP request";

  ASSERT_TRUE(inject(kExt, 0, clientArpReply()));
  pollAll();
  EXPECT_EQ(ctx_[0]->counters.redirected.get(), 1u) << "one copy for worker 1";
  EXPECT_EQ(ctx_[1]->counters.redirect_received.get(), 1u);
  EXPECT_NE(ctx_[1]->neighbors.lookup(kClient), nullptr);

  ASSERT_TRUE(inject(kInt, 1, synAck(t)));  // the node retransmits
  pollAll();
  const auto back = sent(kExt);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(parseTcp(back[0]).dport, sport);
}

// Both workers on their own lcores: thousands of flows with replies on random queues;
// every SYN-ACK reaches the client, and the accounting adds up.
TEST_F(WorkersTest, RunningWorkersLoseNoFlow) {
  ASSERT_TRUE(rte_lcore_is_enabled(1) && rte_lcore_is_enabled(2));
  learnClient();
  workers_[0]->launchOn(1);
  workers_[1]->launchOn(2);
  constexpr int kFlows = 3000;
  std::mt19937 rng(5);
  std::map<uint16_t, int> back;
  int to_nodes = 0;
  const auto collect = [&] {
    for (const Bytes& f : sent(kInt)) {
      const Tcp t = parseTcp(f);
      ++to_nodes;
      // The reply lands on a random queue.
      while (!inject(kInt, rng() % kWorkers, synAck(t))) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    for (const Bytes& f : sent(kExt)) ++back[parseTcp(f).dport];
  };
  // At most kWindow flows in flight, so the frames one worker can have waiting for the
  // other stay below the redirect ring's 1024 even when a worker loses its CPU for a
  // while (shared CI machines): what this test checks is that nothing is lost, not
  // what an overloaded worker drops (redirect_full, counted).
  constexpr int kWindow = 256;
  // Bounded as a whole: lost replies would otherwise hold the window shut.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < kFlows && std::chrono::steady_clock::now() < give_up; ++i) {
    const auto sport = static_cast<uint16_t>(10000 + i);
    while (i - static_cast<int>(back.size()) >= kWindow && std::chrono::steady_clock::now() < give_up) {
      collect();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    while (!inject(kExt, sport % kWorkers, syn(sport))) {
      collect();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (i % 64 == 0) collect();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (back.size() < static_cast<size_t>(kFlows) && std::chrono::steady_clock::now() < deadline) {
    collect();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop_.store(true);
  for (auto& w : workers_) EXPECT_EQ(w->join(), 0);
  collect();
  EXPECT_EQ(to_nodes, kFlows);
  EXPECT_EQ(back.size(), static_cast<size_t>(kFlows));
  EXPECT_EQ(totalDrops(), 0u) << dropSummary();
  uint64_t redirected = 0, received = 0, new_flows = 0;
  for (const auto& c : ctx_) {
    redirected += c->counters.redirected.get();
    received += c->counters.redirect_received.get();
    new_flows += c->counters.new_flows.get();
    EXPECT_GT(c->counters.new_flows.get(), 0u);
  }
  EXPECT_EQ(new_flows, static_cast<uint64_t>(kFlows));
  EXPECT_EQ(redirected, received);
  EXPECT_GT(redirected, static_cast<uint64_t>(kFlows / 4)) << "about half the replies took the ring";
}

TEST(EalLcoreMapTest, AcceptsAnLcoresMapThatCoversEveryLcore) {
  EXPECT_EQ(ealArgs({"--lcores=0@0,1@1,2@1"}, {1, 2}, {}),
            (std::vector<std::string>{"--lcores=0@0,1@1,2@1", "--log-level=lib.eal:notice"}));
  EXPECT_NO_THROW((void)ealArgs({"--lcores", "(0-2)@(0-1)"}, {1, 2}, {}));
  EXPECT_NO_THROW((void)ealArgs({"--lcores=0@0,1@(0-1),2@(0-1)"}, {1, 2}, {}));
  EXPECT_THROW((void)ealArgs({"--lcores=0@0,1@1"}, {1, 2}, {}), std::invalid_argument) << "worker 2 unmapped";
  EXPECT_THROW((void)ealArgs({"--lcores=1@1,2@1"}, {1, 2}, {}), std::invalid_argument) << "lcore 0 unmapped";
  EXPECT_THROW((void)ealArgs({"--lcores=x@1"}, {1}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace ng::dpdk
