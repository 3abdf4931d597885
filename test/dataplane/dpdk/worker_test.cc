// Integration tests for dataplane/dpdk: a Worker between two net_ring ports, EAL
// in-process (STYLE.md example 10). Each ring port has its own RX ring (the test injects
// frames there) and TX ring (the test reads what the worker sent).
//
// Tests drive the worker from the test thread (online, pollOnce/slowTick, offline) for
// determinism, except PublishesWhileWorkerRunsOnItsLcore, which launches it on lcore 1.
// Every test checks that all mbufs went back to the pool.

#include "dataplane/dpdk/worker.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/fwd/counters.h"
#include "dataplane/fwd/processor.h"
#include "dataplane/fwd/snapshot.h"
#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/rewrite6.h"
#include "test/dataplane/dpdk/eal_environment.h"
#include "test/support/packet_builder.h"

namespace ng::dpdk {
namespace {

using fwd::DropReason;
using test::Bytes;
using test::ip;
using test::mac;
using test::PacketBuilder;

// ------------------------------------------------------------------ EAL, once per binary

[[maybe_unused]] test::EalEnvironment* const kEal = test::addEalEnvironment(new test::EalEnvironment("ng_worker_test", {1}));

// ------------------------------------------------------------------ topology

const uint32_t kVip = ip("10.100.0.100");
const uint32_t kClient = ip("10.100.0.2");
const uint32_t kExtAddr = ip("10.100.0.1");
const uint32_t kIntAddr = ip("10.200.0.1");
const uint32_t kNode1 = ip("10.200.0.11");
const uint32_t kNode2 = ip("10.200.0.12");
const pkt::Mac kClientMac = mac("02:00:00:00:00:02");
const pkt::Mac kNode1Mac = mac("02:00:00:00:01:11");
const pkt::Mac kNode2Mac = mac("02:00:00:00:01:12");
const pkt::Mac kBroadcast = mac("ff:ff:ff:ff:ff:ff");
const pkt::Mac kZeroMac{};
constexpr uint16_t kNodePort = 30080;
constexpr uint8_t kExt = 0;  // port slots
constexpr uint8_t kInt = 1;

pkt::Mac nodeMac(uint32_t node) { return node == kNode1 ? kNode1Mac : kNode2Mac; }

// IPv6 half of the topology (dual stack).
const pkt::Ip6 kVip6 = test::ip6("2001:db8:100::100");
const pkt::Ip6 kClient6 = test::ip6("2001:db8:100::2");
const pkt::Ip6 kClient6b = test::ip6("2001:db8:100::3");
const pkt::Ip6 kExtAddr6 = test::ip6("2001:db8:100::1");
const pkt::Ip6 kIntAddr6 = test::ip6("2001:db8:200::1");
const pkt::Ip6 kNode6a = test::ip6("2001:db8:200::11");
const pkt::Ip6 kNode6b = test::ip6("2001:db8:200::12");
const pkt::Mac kClientMacB = mac("02:00:00:00:00:03");
pkt::Mac nodeMac6(const pkt::Ip6& node) { return node == kNode6a ? kNode1Mac : kNode2Mac; }

// Maglev tables are pure functions of the node set; build each once (the compiler shares
// them the same way).
std::shared_ptr<const lb::MaglevTable> maglevFor(const std::vector<uint32_t>& nodes) {
  static std::vector<std::pair<std::vector<uint32_t>, std::shared_ptr<const lb::MaglevTable>>>
      cache;
  for (const auto& [key, table] : cache) {
    if (key == nodes) return table;
  }
  std::vector<lb::MaglevBackend> backends;
  for (uint32_t n : nodes) backends.push_back({.id = n, .weight = 1});
  auto table = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(backends));
  cache.emplace_back(nodes, table);
  return table;
}

// One service, VIP 10.100.0.100 TCP 80 -> nodes:30080, full-NAT from 10.200.0.1.
std::unique_ptr<fwd::ForwardingSnapshot> makeSnapshot(uint64_t generation,
                                                      const std::vector<uint32_t>& nodes = {
                                                          kNode1, kNode2}) {
  auto snap = std::make_unique<fwd::ForwardingSnapshot>();
  snap->generation = generation;
  fwd::ServicePort sp{.vip = kVip, .port = 80, .proto = pkt::kProtoTcp, .id = 0};
  for (uint32_t n : nodes)
    sp.backends.push_back({.node_ip = n, .node_port = kNodePort, .weight = 1});
  sp.maglev = maglevFor(nodes);
  snap->service_ports.push_back(std::move(sp));
  snap->vips = {kVip};
  snap->snat_addresses = {kIntAddr};
  snap->resolve_targets = {kNode1, kNode2};
  snap->static_neighbors = {{.ip = kNode1, .mac = kNode1Mac}, {.ip = kNode2, .mac = kNode2Mac}};
  snap->finalize();
  return snap;
}

// makeSnapshot plus the IPv6 VIP of the same Service (TCP 80 -> nodes6:30080, SNAT6 =
// the internal port's IPv6 address).
std::unique_ptr<fwd::ForwardingSnapshot> makeDualStackSnapshot(uint64_t generation) {
  auto snap = makeSnapshot(generation);
  fwd::ServicePort6 sp{.vip = kVip6, .port = 80, .proto = pkt::kProtoTcp};
  std::vector<lb::MaglevBackend> ids;
  for (const pkt::Ip6& n : {kNode6a, kNode6b}) {
    sp.backends.push_back({.node_ip = n, .node_port = kNodePort, .weight = 1});
    ids.push_back({.id = n.lo, .weight = 1});
  }
  sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids));
  snap->service_ports6.push_back(std::move(sp));
  snap->snat_addresses6 = {kIntAddr6};
  snap->resolve_targets6 = {kNode6a, kNode6b};
  snap->static_neighbors6 = {{.ip = kNode6a, .mac = kNode1Mac}, {.ip = kNode6b, .mac = kNode2Mac}};
  snap->finalize();
  return snap;
}

// ------------------------------------------------------------------ frames

Bytes arpRequestFromClient() {
  return PacketBuilder()
      .eth(kClientMac, kBroadcast)
      .arp(pkt::arp::kRequest, kClientMac, kClient, kZeroMac, kVip)
      .build();
}

Bytes clientSyn(const pkt::Mac& box_mac, uint16_t sport = 40000) {
  return PacketBuilder()
      .eth(kClientMac, box_mac)
      .ipv4(kClient, kVip)
      .tcp(sport, 80, pkt::tcp::kSyn, 1000)
      .build();
}

// What the tests read back from a frame.
struct Parsed {
  pkt::Mac dst{}, src{};
  uint16_t ether_type = 0;
  uint16_t arp_op = 0;
  pkt::Mac sha{}, tha{};
  uint32_t spa = 0, tpa = 0;
  uint32_t ip_src = 0, ip_dst = 0;
  uint8_t ttl = 0, proto = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;
  bool ip_checksum_ok = false;
  bool l4_checksum_ok = false;
};

Parsed parse(const Bytes& f) {
  Parsed p;
  if (f.size() < pkt::kEthHeaderLen) return p;
  const std::byte* d = f.data();
  p.dst = pkt::loadMac(d);
  p.src = pkt::loadMac(d + 6);
  p.ether_type = pkt::load16(d + 12);
  const std::byte* l3 = d + pkt::kEthHeaderLen;
  const size_t l3_len = f.size() - pkt::kEthHeaderLen;
  if (p.ether_type == pkt::kEtherTypeArp && l3_len >= pkt::kArpLen) {
    p.arp_op = pkt::load16(l3 + pkt::arp::kOper);
    p.sha = pkt::loadMac(l3 + pkt::arp::kSha);
    p.spa = pkt::load32(l3 + pkt::arp::kSpa);
    p.tha = pkt::loadMac(l3 + pkt::arp::kTha);
    p.tpa = pkt::load32(l3 + pkt::arp::kTpa);
  } else if (p.ether_type == pkt::kEtherTypeIpv4 && l3_len >= pkt::kIpv4MinLen) {
    const size_t ihl = (std::to_integer<size_t>(l3[0]) & 0xf) * 4;
    const size_t total = pkt::load16(l3 + pkt::ipv4::kTotalLen);
    if (ihl < pkt::kIpv4MinLen || total > l3_len || total < ihl) return p;
    p.ip_src = pkt::load32(l3 + pkt::ipv4::kSrc);
    p.ip_dst = pkt::load32(l3 + pkt::ipv4::kDst);
    p.ttl = std::to_integer<uint8_t>(l3[pkt::ipv4::kTtl]);
    p.proto = std::to_integer<uint8_t>(l3[pkt::ipv4::kProto]);
    p.ip_checksum_ok = pkt::internetChecksum({l3, ihl}) == 0;
    const std::byte* l4 = l3 + ihl;
    const size_t l4_len = total - ihl;
    if (p.proto == pkt::kProtoTcp && l4_len >= pkt::kTcpMinLen) {
      p.sport = pkt::load16(l4 + pkt::tcp::kSrcPort);
      p.dport = pkt::load16(l4 + pkt::tcp::kDstPort);
      p.tcp_flags = std::to_integer<uint8_t>(l4[pkt::tcp::kFlags]);
      uint32_t sum = (p.ip_src >> 16) + (p.ip_src & 0xffff) + (p.ip_dst >> 16) +
                     (p.ip_dst & 0xffff) + p.proto + static_cast<uint32_t>(l4_len);
      p.l4_checksum_ok = pkt::checksumFinish(pkt::checksumAdd({l4, l4_len}, sum)) == 0;
    }
  }
  return p;
}

// ------------------------------------------------------------------ fixture

// Worker 0 announces the snapshot's VIPs with gratuitous ARPs on the external port
// (fwd::announceVips; tested in test/dataplane/fwd/exception_test.cc and
// kernel_iface_test.cc). sent() sets them aside so the tests here see only the frames
// they are about; garps_ counts them.
bool isGratuitousArp(const Bytes& f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  return r.status == pkt::ParseStatus::kOk && r.frame.l3 == pkt::L3::kArp && r.frame.arp_spa == r.frame.arp_tpa;
}

// Worker 0 announces IPv6 VIPs with unsolicited NAs (fwd::announceVips6) to ff02::1:
// set aside and counted like gratuitous ARPs (nas_).
bool isUnsolicitedNa(const Bytes& f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  return r.status == pkt::ParseStatus::kOk && r.frame.l3 == pkt::L3::kIpv6 && r.frame.proto == pkt::kProtoIcmp6 &&
         r.frame.icmp_type == pkt::icmp6::kNeighborAdvertisement &&
         pkt::dstIp6(f, r.frame) == pkt::Ip6{.hi = 0xff02000000000000ULL, .lo = 1};
}

struct RingPort {
  rte_ring* rx = nullptr;  // test -> port (the port receives from it)
  rte_ring* tx = nullptr;  // port -> test (the port transmits into it)
  std::unique_ptr<Port> port;
};

class WorkerTest : public ::testing::Test {
 protected:
  static constexpr unsigned kRingSize = 1024;

  static void SetUpTestSuite() {
    ASSERT_EQ(rte_eal_process_type(), RTE_PROC_PRIMARY) << "EAL is not up";
    pool_ = new Mempool("wt_pool", Mempool::mbufCount({.ports = 2, .lcores = 2}));
    // Closing a port leaves its vdev on the bus, so every suite set-up (--gtest_repeat)
    // uses new names.
    static int suite_run = 0;
    ++suite_run;
    for (int i = 0; i < 2; ++i) {
      RingPort& rp = ports_[i];
      const std::string n = std::to_string(suite_run) + "_" + std::to_string(i);
      rp.rx = rte_ring_create(("wt_rx" + n).c_str(), kRingSize, SOCKET_ID_ANY, 0);
      rp.tx = rte_ring_create(("wt_tx" + n).c_str(), kRingSize, SOCKET_ID_ANY, 0);
      ASSERT_NE(rp.rx, nullptr);
      ASSERT_NE(rp.tx, nullptr);
      const int id = rte_eth_from_rings(("wt" + n).c_str(), &rp.rx, 1, &rp.tx, 1, rte_socket_id());
      ASSERT_GE(id, 0) << rte_strerror(rte_errno);
      char name[RTE_ETH_NAME_MAX_LEN];
      ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), name), 0);
      // Port::open finds the port by name, like main does for --vdev devices.
      rp.port = std::make_unique<Port>(Port::open(name, 1, 1, 1500, pool_->get()));
      ASSERT_EQ(rp.port->id(), id);
    }
  }

  static void TearDownTestSuite() {
    for (RingPort& rp : ports_) {
      rp.port.reset();
      drainRing(rp.rx);
      drainRing(rp.tx);
      rte_ring_free(rp.rx);
      rte_ring_free(rp.tx);
      rp = RingPort{};
    }
    delete pool_;
    pool_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(pool_, nullptr);
    ASSERT_NE(ports_[1].port, nullptr);
    for (RingPort& rp : ports_) {
      drainRing(rp.rx);
      drainRing(rp.tx);
    }
    pool_baseline_ = rte_mempool_avail_count(pool_->get());
    garps_ = 0;
    nas_ = 0;
    std::vector<fwd::PortInfo> infos = {
        {.role = fwd::PortRole::kExternal, .mac = extMac(), .address = kExtAddr, .prefix_len = 24,
         .address6 = kExtAddr6, .prefix_len6 = 64},
        {.role = fwd::PortRole::kInternal, .mac = intMac(), .address = kIntAddr, .prefix_len = 24,
         .address6 = kIntAddr6, .prefix_len6 = 64},
    };
    ctx_ = std::make_unique<fwd::WorkerContext>(0, infos, 1u << 14);
    publisher_ = std::make_unique<RcuPublisher>(2);
    worker_ = std::make_unique<Worker>(
        *ctx_, std::vector<QueueRef>{{ports_[0].port->id(), 0}, {ports_[1].port->id(), 0}},
        *publisher_, /*rcu_thread_id=*/0, stop_, pool_->get());
    publisher_->publish(makeSnapshot(1));
  }

  void TearDown() override {
    stop_.store(true);
    if (worker_) worker_->join();
    worker_.reset();
    publisher_.reset();
    for (RingPort& rp : ports_) {
      drainRing(rp.rx);
      drainRing(rp.tx);
    }
    EXPECT_EQ(rte_mempool_avail_count(pool_->get()), pool_baseline_) << "mbufs leaked";
    ctx_.reset();
  }

  static const fwd::Mac& extMac() { return ports_[kExt].port->mac(); }
  static const fwd::Mac& intMac() { return ports_[kInt].port->mac(); }

  static void drainRing(rte_ring* r) {
    void* obj = nullptr;
    while (r != nullptr && rte_ring_dequeue(r, &obj) == 0)
      rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  }

  static rte_mbuf* toMbuf(const Bytes& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_->get());
    if (m == nullptr) return nullptr;
    char* data = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
    if (data == nullptr) {
      rte_pktmbuf_free(m);
      return nullptr;
    }
    std::memcpy(data, frame.data(), frame.size());
    return m;
  }

  // Puts a frame on `slot`'s RX ring (as if it arrived on the wire).
  static void inject(uint8_t slot, const Bytes& frame) {
    rte_mbuf* m = toMbuf(frame);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(ports_[slot].rx, m), 0);
  }
  static void injectMbuf(uint8_t slot, rte_mbuf* m) {
    ASSERT_EQ(rte_ring_enqueue(ports_[slot].rx, m), 0);
  }

  // Takes every frame `slot` has transmitted.
  static std::vector<Bytes> sent(uint8_t slot) {
    std::vector<Bytes> out;
    void* obj = nullptr;
    while (rte_ring_dequeue(ports_[slot].tx, &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const auto* p = rte_pktmbuf_mtod(m, const std::byte*);
      Bytes frame(p, p + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
      if (isGratuitousArp(frame)) {
        ++garps_;
        continue;
      }
      if (isUnsolicitedNa(frame)) {
        ++nas_;
        continue;
      }
      out.push_back(std::move(frame));
    }
    return out;
  }
  static inline uint64_t garps_ = 0;  // gratuitous ARPs sent() set aside
  static inline uint64_t nas_ = 0;    // unsolicited NAs sent() set aside

  // The test thread acts as the worker's lcore.
  void poll(int times = 1) {
    worker_->online();
    for (int i = 0; i < times; ++i) worker_->pollOnce();
    worker_->offline();
  }
  void pollAndFlush() {
    poll();
    worker_->flushTx();
  }
  void tick() {
    worker_->online();
    worker_->slowTick();
    worker_->offline();
    worker_->flushTx();
  }

  uint64_t appliedGeneration() const { return ctx_->applied_generation; }
  uint64_t drops(DropReason r) const { return ctx_->counters.drops[static_cast<size_t>(r)].get(); }
  uint64_t totalDrops() const {
    uint64_t sum = 0;
    for (const auto& c : ctx_->counters.drops) sum += c.get();
    return sum;
  }

  // Sends the client's SYN and returns the frame that left the internal port.
  Parsed synToNode(uint16_t sport = 40000) {
    inject(kExt, clientSyn(extMac(), sport));
    pollAndFlush();
    const auto out = sent(kInt);
    EXPECT_TRUE(sent(kExt).empty());
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? Parsed{} : parse(out.front());
  }

  static Bytes nodeSynAck(const Parsed& to_node) {
    return PacketBuilder()
        .eth(nodeMac(to_node.ip_dst), to_node.src)
        .ipv4(to_node.ip_dst, to_node.ip_src)
        .tcp(to_node.dport, to_node.sport, pkt::tcp::kSyn | pkt::tcp::kAckFlag, 5000, 1001)
        .build();
  }

  void expectSynAckToClient(const Bytes& frame) {
    const Parsed p = parse(frame);
    EXPECT_EQ(p.src, extMac());
    EXPECT_EQ(p.dst, kClientMac);
    EXPECT_EQ(p.ip_src, kVip);
    EXPECT_EQ(p.ip_dst, kClient);
    EXPECT_EQ(p.sport, 80);
    EXPECT_EQ(p.dport, 40000);
    EXPECT_EQ(p.tcp_flags, pkt::tcp::kSyn | pkt::tcp::kAckFlag);
    EXPECT_TRUE(p.ip_checksum_ok);
    EXPECT_TRUE(p.l4_checksum_ok);
  }

  static inline Mempool* pool_ = nullptr;
  static inline std::array<RingPort, 2> ports_;

  unsigned pool_baseline_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<fwd::WorkerContext> ctx_;
  std::unique_ptr<RcuPublisher> publisher_;
  std::unique_ptr<Worker> worker_;
};

// ------------------------------------------------------------------ tests

TEST(EalArgsTest, BuildsLcoresDevicesAndQuietLogging) {
  EXPECT_EQ(ealArgs({"--no-huge"}, {1, 2}, {"net_af_packet0,iface=ext0", "0000:01:00.0"}),
            (std::vector<std::string>{"-l", "0,1,2", "--vdev=net_af_packet0,iface=ext0", "-a",
                                      "0000:01:00.0", "--no-huge", "--log-level=lib.eal:notice"}));
  EXPECT_EQ(ealArgs({"--log-level=*:debug"}, {}, {}),
            (std::vector<std::string>{"-l", "0", "--log-level=*:debug"}));
  EXPECT_THROW((void)ealArgs({}, {0}, {}), std::invalid_argument);
  EXPECT_THROW((void)ealArgs({}, {1, 1}, {}), std::invalid_argument);
  EXPECT_THROW((void)ealArgs({"-l", "0-3"}, {1}, {}), std::invalid_argument);
}

TEST(MempoolSizingTest, CoversRingsBuffersAndCaches) {
  const Mempool::Sizing s{.ports = 2,
                          .rx_queues_per_port = 2,
                          .tx_queues_per_port = 2,
                          .rx_descriptors = 1024,
                          .tx_descriptors = 1024,
                          .lcores = 3,
                          .cache_size = 256};
  const uint32_t n = Mempool::mbufCount(s);
  EXPECT_GE(n, 2u * (2 * 1024 + 2 * 1024) + 3u * (32 + 2 * 32 + 256) + 1024);
  EXPECT_EQ((n + 1) & n, 0u) << "2^k - 1";
  EXPECT_GE(Mempool::dataRoomFor(9000), RTE_PKTMBUF_HEADROOM + 9000 + kL2Overhead);
  EXPECT_EQ(Mempool::dataRoomFor(1500), RTE_MBUF_DEFAULT_BUF_SIZE);
}

TEST_F(WorkerTest, PortOpenFailsWithTheDeviceName) {
  try {
    (void)Port::open("net_nosuchdev0,iface=x", 1, 1, 1500, pool_->get());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("net_nosuchdev0"), std::string::npos) << e.what();
  }
}

TEST_F(WorkerTest, PortOpenRefusesAPortInUse) {
  try {
    (void)Port::open(ports_[kExt].port->name(), 1, 1, 1500, pool_->get());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
  }
  // The port in use was left alone.
  inject(kExt, arpRequestFromClient());
  pollAndFlush();
  EXPECT_EQ(sent(kExt).size(), 1u);
}

// 1. ARP request for the VIP on the external port -> reply from the external port's MAC.
TEST_F(WorkerTest, AnswersArpForTheVip) {
  inject(kExt, arpRequestFromClient());
  pollAndFlush();

  const auto out = sent(kExt);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(sent(kInt).empty());
  const Parsed p = parse(out[0]);
  EXPECT_EQ(p.ether_type, pkt::kEtherTypeArp);
  EXPECT_EQ(p.dst, kClientMac);
  EXPECT_EQ(p.src, extMac());
  EXPECT_EQ(p.arp_op, pkt::arp::kReply);
  EXPECT_EQ(p.sha, extMac());
  EXPECT_EQ(p.spa, kVip);
  EXPECT_EQ(p.tha, kClientMac);
  EXPECT_EQ(p.tpa, kClient);
  EXPECT_EQ(ctx_->counters.arp_replies.get(), 1u);
  EXPECT_EQ(ctx_->counters.rx_packets.get(), 1u);
  EXPECT_EQ(ctx_->counters.tx_packets.get(), 1u);
  EXPECT_EQ(ctx_->counters.tx_bytes.get(), out[0].size());
  EXPECT_EQ(appliedGeneration(), 1u);
}

// 2a. Full-NAT both ways when the client's MAC was learned from its ARP request.
TEST_F(WorkerTest, FullNatRoundTripAfterClientArp) {
  inject(kExt, arpRequestFromClient());
  pollAndFlush();
  ASSERT_EQ(sent(kExt).size(), 1u);

  const Parsed to_node = synToNode();
  EXPECT_EQ(to_node.ether_type, pkt::kEtherTypeIpv4);
  EXPECT_EQ(to_node.ip_src, kIntAddr);
  EXPECT_TRUE(to_node.ip_dst == kNode1 || to_node.ip_dst == kNode2) << to_node.ip_dst;
  EXPECT_EQ(to_node.dport, kNodePort);
  EXPECT_EQ(to_node.src, intMac());
  EXPECT_EQ(to_node.dst, nodeMac(to_node.ip_dst));
  EXPECT_EQ(to_node.tcp_flags, pkt::tcp::kSyn);
  EXPECT_EQ(to_node.ttl, 63);
  EXPECT_TRUE(to_node.ip_checksum_ok);
  EXPECT_TRUE(to_node.l4_checksum_ok);

  inject(kInt, nodeSynAck(to_node));
  pollAndFlush();
  EXPECT_TRUE(sent(kInt).empty());
  const auto back = sent(kExt);
  ASSERT_EQ(back.size(), 1u);
  expectSynAckToClient(back[0]);

  EXPECT_EQ(ctx_->counters.new_flows.get(), 1u);
  EXPECT_EQ(ctx_->counters.to_nodes.get(), 1u);
  EXPECT_EQ(ctx_->counters.to_clients.get(), 1u);
  EXPECT_EQ(totalDrops(), 0u);
  tick();
  EXPECT_EQ(ctx_->counters.active_flows.get(), 1u);
}

// 2b. The client's MAC is unknown: the reply is dropped, the box asks for the client's
// address on the external port, learns it from the answer, and the node's retransmitted
// SYN-ACK goes through.
TEST_F(WorkerTest, FullNatReplyResolvesTheClientFirst) {
  const Parsed to_node = synToNode();
  ASSERT_EQ(to_node.ip_src, kIntAddr);

  inject(kInt, nodeSynAck(to_node));
  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());
  EXPECT_EQ(drops(DropReason::kNeighborUnresolved), 1u);

  tick();
  const auto requests = sent(kExt);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(sent(kInt).empty()) << "nodes have static MACs; nothing to resolve there";
  const Parsed req = parse(requests[0]);
  EXPECT_EQ(req.ether_type, pkt::kEtherTypeArp);
  EXPECT_EQ(req.dst, kBroadcast);
  EXPECT_EQ(req.src, extMac());
  EXPECT_EQ(req.arp_op, pkt::arp::kRequest);
  EXPECT_EQ(req.sha, extMac());
  EXPECT_EQ(req.spa, kExtAddr);
  EXPECT_EQ(req.tpa, kClient);
  EXPECT_EQ(ctx_->counters.arp_requests.get(), 1u);

  inject(kExt, PacketBuilder()
                   .eth(kClientMac, extMac())
                   .arp(pkt::arp::kReply, kClientMac, kClient, extMac(), kExtAddr)
                   .build());
  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());

  inject(kInt, nodeSynAck(to_node));  // the node retransmits
  pollAndFlush();
  const auto back = sent(kExt);
  ASSERT_EQ(back.size(), 1u);
  expectSynAckToClient(back[0]);
}

// 3. Garbage is dropped and counted, nothing leaves.
TEST_F(WorkerTest, DropsAndCountsGarbage) {
  inject(kExt, Bytes(10, std::byte{0xee}));  // shorter than an Ethernet header
  inject(kExt, PacketBuilder().eth(kClientMac, extMac()).etherType(0x88cc).payload(46).build());
  inject(kExt, PacketBuilder()  // IPv4 header announcing more than the frame holds
                   .eth(kClientMac, extMac())
                   .ipv4(kClient, kVip)
                   .tcp(40000, 80, pkt::tcp::kSyn)
                   .ipTotalLen(400)
                   .build());
  // A valid SYN split over two segments: the worker drops chains before the pipeline.
  const Bytes syn = clientSyn(extMac());
  rte_mbuf* head = toMbuf(Bytes(syn.begin(), syn.begin() + 30));
  rte_mbuf* tail = toMbuf(Bytes(syn.begin() + 30, syn.end()));
  ASSERT_NE(head, nullptr);
  ASSERT_NE(tail, nullptr);
  ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
  injectMbuf(kExt, head);
  inject(kInt, Bytes(13, std::byte{0}));

  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());
  EXPECT_TRUE(sent(kInt).empty());
  EXPECT_EQ(ctx_->counters.rx_packets.get(), 5u);
  EXPECT_EQ(ctx_->counters.tx_packets.get(), 0u);
  EXPECT_EQ(totalDrops(), 5u);
  EXPECT_EQ(drops(DropReason::kUnsupportedEtherType), 1u);
  EXPECT_EQ(drops(DropReason::kTruncated), 3u);  // the two short frames + the short IPv4
  EXPECT_EQ(drops(DropReason::kMultiSegment), 1u);
  EXPECT_EQ(ctx_->counters.busy_polls.get(), 1u);
}

// Tunnel mode through real mbufs: the worker grows the frame into the mbuf's headroom
// (rte_pktmbuf_prepend) for IPIP, and shortens it (rte_pktmbuf_trim) for a frag-needed
// answer that goes back out of the external port.
TEST_F(WorkerTest, TunnelModeGrowsFramesIntoTheHeadroomAndShortensFragNeeded) {
  auto snap = makeSnapshot(2);
  fwd::ServicePort dsr{.vip = kVip, .port = 81, .proto = pkt::kProtoTcp, .id = 1};
  for (uint32_t n : {kNode1, kNode2}) dsr.backends.push_back({.node_ip = n, .node_port = kNodePort, .weight = 1});
  dsr.maglev = maglevFor({kNode1, kNode2});
  dsr.mode = fwd::ForwardingMode::kTunnel;
  snap->service_ports.push_back(std::move(dsr));
  snap->tunnel = {.source_base = kIntAddr + 100, .source_count = 8, .icmp_rate = 100, .icmp_burst = 5};
  snap->finalize();
  publisher_->publish(std::move(snap));

  auto tunnelTcp = [&](uint8_t flags, size_t payload) {
    return PacketBuilder()
        .eth(kClientMac, extMac())
        .ipv4(kClient, kVip)
        .ipFrag(0x4000)
        .tcp(40001, 81, flags, 1000)
        .payload(payload)
        .build();
  };
  const Bytes syn = tunnelTcp(pkt::tcp::kSyn, 0);  // 54 bytes padded to 60
  inject(kExt, syn);
  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());
  const auto out = sent(kInt);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), 14u + 20u + 40u) << "outer header added, Ethernet padding dropped";
  const Parsed outer = parse(out[0]);
  EXPECT_EQ(outer.proto, 4);
  EXPECT_EQ(outer.ttl, 64);
  EXPECT_TRUE(outer.ip_checksum_ok);
  EXPECT_TRUE(outer.ip_dst == kNode1 || outer.ip_dst == kNode2);
  EXPECT_GE(outer.ip_src, kIntAddr + 100);
  EXPECT_LT(outer.ip_src, kIntAddr + 108);
  EXPECT_EQ(outer.src, intMac());
  EXPECT_EQ(outer.dst, nodeMac(outer.ip_dst));
  EXPECT_TRUE(std::equal(out[0].begin() + 34, out[0].end(), syn.begin() + 14)) << "inner packet unchanged";
  EXPECT_EQ(ctx_->counters.tx_bytes.get(), out[0].size());

  const Bytes big = tunnelTcp(pkt::tcp::kAckFlag, 1460);  // 1500 + 20 > 1500
  inject(kExt, big);
  pollAndFlush();
  EXPECT_TRUE(sent(kInt).empty());
  const auto answer = sent(kExt);
  ASSERT_EQ(answer.size(), 1u);
  ASSERT_EQ(answer[0].size(), 14u + 20u + 8u + 28u);
  const Parsed icmp = parse(answer[0]);
  EXPECT_EQ(icmp.proto, 1);
  EXPECT_EQ(icmp.ip_src, kVip);
  EXPECT_EQ(icmp.ip_dst, kClient);
  EXPECT_EQ(icmp.dst, kClientMac);
  EXPECT_EQ(pkt::load16(answer[0].data() + 34 + 6), 1480) << "next-hop MTU";
  EXPECT_EQ(ctx_->counters.frag_needed_sent.get(), 1u);
  EXPECT_EQ(ctx_->counters.tunneled.get(), 1u);
  EXPECT_EQ(totalDrops(), 0u);
}

// Frames the device refuses are freed and counted (the fixture checks nothing leaked).
TEST_F(WorkerTest, CountsAndFreesFramesTheDeviceRefuses) {
  std::vector<rte_mbuf*> filler;
  while (rte_ring_free_count(ports_[kInt].tx) > 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_->get());
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(ports_[kInt].tx, m), 0);
  }
  inject(kExt, clientSyn(extMac()));
  pollAndFlush();
  EXPECT_EQ(drops(DropReason::kTxFull), 1u);
  EXPECT_EQ(ctx_->counters.tx_packets.get(), 0u);
  EXPECT_EQ(ctx_->counters.tx_bytes.get(), 0u);
}

// A full burst forwarded out of one port leaves at once as it stands (no flush, no drain
// timer); behind a frame already waiting in that port's TX buffer it queues up instead,
// so frames leave in the order they came. Each SYN carries its number in the IP id,
// which full-NAT keeps.
TEST_F(WorkerTest, SendsAWholeBurstAtOnceAndKeepsOrderBehindBufferedFrames) {
  constexpr uint16_t kBurst = 32;
  static_assert(kBurst == kBurstSize);
  uint16_t next_id = 0;
  uint64_t bytes = 0;
  auto injectSyns = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const Bytes syn = PacketBuilder()
                            .eth(kClientMac, extMac())
                            .ipv4(kClient, kVip)
                            .ipId(next_id)
                            .tcp(static_cast<uint16_t>(40000 + next_id), 80, pkt::tcp::kSyn, 1000)
                            .build();
      bytes += syn.size();
      ++next_id;
      inject(kExt, syn);
    }
  };
  auto ids = [](const std::vector<Bytes>& frames) {
    std::vector<uint16_t> out;
    for (const Bytes& f : frames) out.push_back(pkt::load16(f.data() + pkt::kEthHeaderLen + pkt::ipv4::kId));
    return out;
  };
  auto range = [](uint16_t first, uint16_t count) {
    std::vector<uint16_t> out(count);
    for (uint16_t i = 0; i < count; ++i) out[i] = static_cast<uint16_t>(first + i);
    return out;
  };

  worker_->online();
  injectSyns(1);
  worker_->pollOnce();
  EXPECT_TRUE(sent(kInt).empty()) << "one frame waits in the TX buffer";
  injectSyns(kBurst);
  worker_->pollOnce();
  // Queued behind frame 0: the buffer filled at 32 and went; frame 32 waits.
  EXPECT_EQ(ids(sent(kInt)), range(0, kBurst));
  worker_->flushTx();
  EXPECT_EQ(ids(sent(kInt)), range(kBurst, 1));

  // The buffer is empty: the next full burst leaves in the poll that received it.
  injectSyns(kBurst);
  worker_->pollOnce();
  EXPECT_EQ(ids(sent(kInt)), range(kBurst + 1, kBurst));
  worker_->offline();

  EXPECT_EQ(ctx_->counters.to_nodes.get(), 2u * kBurst + 1);
  EXPECT_EQ(ctx_->counters.tx_packets.get(), 2u * kBurst + 1);
  EXPECT_EQ(ctx_->counters.tx_bytes.get(), bytes);
  EXPECT_EQ(totalDrops(), 0u);
}

// 5. One forwarded frame leaves on the TSC drain timer, without 31 companions.
TEST_F(WorkerTest, DrainsASingleFrameOnTheTscTimer) {
  inject(kExt, clientSyn(extMac()));
  worker_->online();
  const uint64_t start = rte_get_tsc_cycles();
  worker_->pollOnce();
  EXPECT_TRUE(sent(kInt).empty()) << "buffered, waiting for a burst or the drain timer";

  std::vector<Bytes> out;
  const uint64_t deadline = start + rte_get_tsc_hz();  // 1 s
  while (out.empty() && rte_get_tsc_cycles() < deadline) {
    worker_->pollOnce();
    out = sent(kInt);
  }
  const uint64_t waited = rte_get_tsc_cycles() - start;
  worker_->offline();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_GE(waited, rte_get_tsc_hz() / 1'000'000 * WorkerOptions{}.drain_us);
  EXPECT_EQ(parse(out[0]).dport, kNodePort);
  EXPECT_EQ(ctx_->counters.tx_packets.get(), 1u);
}

// No snapshot yet: frames wait in the RX ring, nothing is processed or dropped.
TEST_F(WorkerTest, WaitsForTheFirstSnapshot) {
  worker_.reset();  // the fixture's publisher already has a snapshot: start from a fresh one
  publisher_.reset();
  publisher_ = std::make_unique<RcuPublisher>(1);
  worker_ = std::make_unique<Worker>(
      *ctx_, std::vector<QueueRef>{{ports_[0].port->id(), 0}, {ports_[1].port->id(), 0}},
      *publisher_, 0, stop_, pool_->get());
  inject(kExt, arpRequestFromClient());
  pollAndFlush();
  EXPECT_EQ(ctx_->counters.rx_packets.get(), 0u);
  EXPECT_EQ(rte_ring_count(ports_[kExt].rx), 1u);

  publisher_->publish(makeSnapshot(7));
  pollAndFlush();
  EXPECT_EQ(ctx_->counters.rx_packets.get(), 1u);
  EXPECT_EQ(sent(kExt).size(), 1u);
  EXPECT_EQ(appliedGeneration(), 7u);
}

// 4. Publication while the worker runs on its own lcore: 200 generations with alternating
// backend sets while SYNs flow; the worker ends on the last generation, every frame is
// accounted for, and (under ASan) no snapshot is touched after it was freed.
TEST_F(WorkerTest, PublishesWhileWorkerRunsOnItsLcore) {
  ASSERT_GE(rte_lcore_count(), 2u);
  ASSERT_TRUE(rte_lcore_is_enabled(1));
  worker_->launchOn(1);

  constexpr uint64_t kGenerations = 200;
  constexpr int kFramesPerGeneration = 8;
  uint64_t injected = 0;
  uint64_t to_nodes = 0;
  uint64_t other = 0;
  std::set<uint32_t> nodes_seen;
  const auto drain = [&] {
    for (const Bytes& f : sent(kInt)) {
      const Parsed p = parse(f);
      if (p.dport == kNodePort && p.ip_src == kIntAddr &&
          (p.ip_dst == kNode1 || p.ip_dst == kNode2)) {
        ++to_nodes;
        nodes_seen.insert(p.ip_dst);
      } else {
        ++other;
      }
    }
    other += sent(kExt).size();
  };
  const auto injectWaiting = [&](const Bytes& frame) {
    rte_mbuf* m = toMbuf(frame);
    ASSERT_NE(m, nullptr);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (rte_ring_enqueue(ports_[kExt].rx, m) != 0) {  // the worker is behind
      drain();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "worker stopped receiving";
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ++injected;
  };

  const uint64_t last = kGenerations + 1;  // generation 1 came from the fixture
  for (uint64_t g = 2; g <= last; ++g) {
    publisher_->publish(g % 2 == 0 ? makeSnapshot(g, {kNode1, kNode2}) : makeSnapshot(g, {kNode2}));
    for (int i = 0; i < kFramesPerGeneration; ++i) {
      injectWaiting(clientSyn(extMac(), static_cast<uint16_t>(10000 + injected)));
    }
    drain();
  }
  // Frames injected after the last publish() returned are processed under it.
  for (int i = 0; i < kFramesPerGeneration; ++i) {
    injectWaiting(clientSyn(extMac(), static_cast<uint16_t>(10000 + injected)));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((ctx_->counters.rx_packets.get() < injected || to_nodes + other < injected) &&
         std::chrono::steady_clock::now() < deadline) {
    drain();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop_.store(true);
  EXPECT_EQ(worker_->join(), 0);
  drain();

  const fwd::WorkerCounters& c = ctx_->counters;
  EXPECT_EQ(appliedGeneration(), last);
  EXPECT_EQ(c.rx_packets.get(), injected);
  EXPECT_EQ(to_nodes, injected);
  EXPECT_EQ(other, 0u);
  EXPECT_EQ(nodes_seen.size(), 2u);
  EXPECT_EQ(c.garp_sent.get(), garps_) << "every gratuitous ARP the worker counted went out";
  EXPECT_EQ(c.na_sent.get(), nas_) << "every unsolicited NA the worker counted went out";
  EXPECT_EQ(c.tx_packets.get(), to_nodes + other + garps_ + nas_);
  EXPECT_EQ(c.rx_packets.get() + c.arp_requests.get() + c.garp_sent.get() + c.na_sent.get(),
            c.tx_packets.get() + totalDrops());
  EXPECT_EQ(c.new_flows.get(), injected);
  EXPECT_GT(c.busy_polls.get(), 0u);
  EXPECT_GT(c.idle_polls.get(), 0u);
}

}  // namespace
}  // namespace ng::dpdk

namespace ng::dpdk {
namespace {

// 5. Idle back-off: a worker with idle_sleep_max_us sleeps between empty polls instead of
// spinning, and still forwards the first frame that comes after the quiet spell.
TEST_F(WorkerTest, IdleWorkerSleepsAndWakesForTraffic) {
  ASSERT_GE(rte_lcore_count(), 2u);
  worker_.reset();
  worker_ = std::make_unique<Worker>(
      *ctx_, std::vector<QueueRef>{{ports_[0].port->id(), 0}, {ports_[1].port->id(), 0}}, *publisher_, 0, stop_,
      pool_->get(), WorkerOptions{.idle_sleep_max_us = 200, .idle_polls_before_sleep = 16});
  worker_->launchOn(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const uint64_t sleeps = ctx_->counters.idle_sleeps.get();
  const uint64_t polls = ctx_->counters.idle_polls.get();
  // Busy-polling for 200 ms would be millions of polls; sleeping up to 200 us each, a
  // few thousand at most.
  EXPECT_GT(sleeps, 100u);
  EXPECT_LT(polls, 200'000u) << "the worker spun instead of sleeping";

  inject(kExt, clientSyn(extMac()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<Bytes> out;
  while (out.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    out = sent(kInt);
  }
  stop_.store(true);
  EXPECT_EQ(worker_->join(), 0);
  ASSERT_EQ(out.size(), 1u) << "the SYN after the quiet spell was not forwarded";
  EXPECT_EQ(ctx_->counters.new_flows.get(), 1u);
}

}  // namespace
}  // namespace ng::dpdk

namespace ng::dpdk {
namespace {

// What the IPv6 test reads back: the parsed frame plus its addresses and checksum.
struct Parsed6 {
  pkt::ParsedFrame p{};
  pkt::ParseStatus status = pkt::ParseStatus::kTruncated;
  pkt::Ip6 src{}, dst{};
  bool l4_checksum_ok = false;
};
Parsed6 parse6(const Bytes& f) {
  Parsed6 r;
  r.status = pkt::parseFrame(f, r.p);
  if (r.status != pkt::ParseStatus::kOk || r.p.l3 != pkt::L3::kIpv6) return r;
  r.src = pkt::srcIp6(f, r.p);
  r.dst = pkt::dstIp6(f, r.p);
  r.l4_checksum_ok =
      pkt::checksum6(r.src, r.dst, r.p.proto, std::span<const std::byte>(f).subspan(r.p.l4_offset, r.p.l4_len)) == 0;
  return r;
}

// IPv6 full-NAT through the real worker loop: the client's NS for VIP6 is answered (and
// teaches the worker the client's MAC), its SYN goes to a node from SNAT6 with the hop
// limit decremented, the node's SYN-ACK comes back from VIP6:80; a second client that
// never solicited is resolved by an NS the slow tick sends, and its reply passes after
// the NA. Checksums are verified independently of the rewrite code.
TEST_F(WorkerTest, Ipv6FullNatRoundTripWithNeighborDiscovery) {
  publisher_->publish(makeDualStackSnapshot(2));
  const pkt::Ip6 group = pkt::solicitedNode(kVip6);
  inject(kExt, PacketBuilder().eth(kClientMac, pkt::multicastMac(group)).ipv6(kClient6, group, 255)
                   .ndSolicit(kVip6, kClientMac).build());
  pollAndFlush();
  auto out = sent(kExt);
  ASSERT_EQ(out.size(), 1u);
  Parsed6 na = parse6(out[0]);
  ASSERT_EQ(na.status, pkt::ParseStatus::kOk);
  EXPECT_EQ(na.p.icmp_type, pkt::icmp6::kNeighborAdvertisement);
  EXPECT_EQ(na.src, kVip6);
  EXPECT_EQ(na.dst, kClient6);
  EXPECT_EQ(na.p.ttl, 255);
  EXPECT_TRUE(na.l4_checksum_ok);
  EXPECT_EQ(pkt::loadMac(out[0].data()), kClientMac);
  EXPECT_EQ(pkt::loadMac(out[0].data() + 14 + 40 + 26), extMac()) << "target link-layer option";
  EXPECT_EQ(ctx_->counters.nd_replies.get(), 1u);

  auto roundTrip = [&](const pkt::Ip6& client, const pkt::Mac& client_mac, uint16_t sport) -> Parsed6 {
    inject(kExt, PacketBuilder().eth(client_mac, extMac()).ipv6(client, kVip6).tcp(sport, 80, pkt::tcp::kSyn, 1000).build());
    pollAndFlush();
    const auto to_node = sent(kInt);
    EXPECT_EQ(to_node.size(), 1u);
    if (to_node.empty()) return {};
    const Parsed6 n = parse6(to_node[0]);
    EXPECT_EQ(n.status, pkt::ParseStatus::kOk);
    EXPECT_EQ(n.src, kIntAddr6);
    EXPECT_TRUE(n.dst == kNode6a || n.dst == kNode6b);
    EXPECT_EQ(n.p.dst_port, kNodePort);
    EXPECT_EQ(n.p.ttl, 63);
    EXPECT_TRUE(n.l4_checksum_ok);
    EXPECT_EQ(pkt::loadMac(to_node[0].data()), nodeMac6(n.dst));
    return n;
  };
  auto synAck = [&](const Parsed6& n) {
    return PacketBuilder().eth(nodeMac6(n.dst), intMac()).ipv6(n.dst, n.src)
        .tcp(kNodePort, n.p.src_port, pkt::tcp::kSyn | pkt::tcp::kAckFlag, 5000, 1001).build();
  };

  const Parsed6 n1 = roundTrip(kClient6, kClientMac, 40000);
  inject(kInt, synAck(n1));
  pollAndFlush();
  out = sent(kExt);
  ASSERT_EQ(out.size(), 1u);
  Parsed6 back = parse6(out[0]);
  EXPECT_EQ(back.src, kVip6);
  EXPECT_EQ(back.dst, kClient6);
  EXPECT_EQ(back.p.src_port, 80);
  EXPECT_EQ(back.p.dst_port, 40000);
  EXPECT_EQ(back.p.ttl, 63);
  EXPECT_TRUE(back.l4_checksum_ok);
  EXPECT_EQ(pkt::loadMac(out[0].data()), kClientMac) << "learned from the NS's source link-layer option";

  // Second client: unknown MAC -> reply dropped, NS sent on the next tick, NA, retransmit.
  const Parsed6 n2 = roundTrip(kClient6b, kClientMacB, 40001);
  inject(kInt, synAck(n2));
  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());
  EXPECT_EQ(drops(DropReason::kNeighborUnresolved), 1u);
  tick();
  out = sent(kExt);
  ASSERT_EQ(out.size(), 1u);
  const Parsed6 ns = parse6(out[0]);
  EXPECT_EQ(ns.p.icmp_type, pkt::icmp6::kNeighborSolicitation);
  EXPECT_EQ(ns.src, kExtAddr6);
  EXPECT_EQ(ns.dst, pkt::solicitedNode(kClient6b));
  EXPECT_TRUE(ns.l4_checksum_ok);
  EXPECT_EQ(pkt::loadIp6(out[0].data() + 14 + 40 + 8), kClient6b);
  EXPECT_EQ(ctx_->counters.nd_requests.get(), 1u);
  inject(kExt, PacketBuilder().eth(kClientMacB, extMac()).ipv6(kClient6b, kExtAddr6, 255)
                   .ndAdvert(kClient6b, pkt::icmp6::kNaSolicited | pkt::icmp6::kNaOverride, kClientMacB).build());
  pollAndFlush();
  EXPECT_TRUE(sent(kExt).empty());
  inject(kInt, synAck(n2));
  pollAndFlush();
  out = sent(kExt);
  ASSERT_EQ(out.size(), 1u);
  back = parse6(out[0]);
  EXPECT_EQ(back.dst, kClient6b);
  EXPECT_EQ(pkt::loadMac(out[0].data()), kClientMacB);

  // The IPv4 VIP of the same Service still works next to it.
  const Parsed to_node4 = synToNode(40002);
  EXPECT_EQ(to_node4.ip_src, kIntAddr);
  EXPECT_EQ(ctx_->counters.new_flows.get(), 3u);
  tick();
  EXPECT_EQ(ctx_->counters.active_flows.get(), 3u);
}

}  // namespace
}  // namespace ng::dpdk
