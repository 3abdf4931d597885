// Integration test of the exception path on a real kernel interface: a Worker between two
// net_ring data ports, with a net_tap kernel interface behind the external one
// (KernelInterface), EAL in-process. The kernel of a private network namespace (the test
// unshares one before EAL starts, so nothing touches the machine's own network) runs a
// TCP listener on the port's address; a client SYN injected on the data port must reach
// it through the worker and the TAP, the kernel's ARP request and SYN-ACK must leave by
// the data port, unchanged. Also: worker 0 announces the VIPs (exact GARP frames), and
// the interface is gone once the KernelInterface is.
//
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for the namespace) and /dev/net/tun; skipped
// otherwise.

#include "dataplane/dpdk/kernel_iface.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/worker.h"
#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/dpdk/eal_environment.h"
#include "test/support/packet_builder.h"

namespace ng::dpdk {
namespace {

using test::Bytes;
using test::ip;
using test::mac;
using test::PacketBuilder;

// Root, a TUN device, and a network namespace of our own, entered before EAL starts its
// threads (they inherit it).
std::string enterPrivateNetns() {
  if (::geteuid() != 0) return "needs root (TAP interfaces, a network namespace)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "no /dev/net/tun";
  if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
  return "";
}
test::EalEnvironment* const kEal =
    test::addEalEnvironment(new test::EalEnvironment("ng_kernel_iface_test", {1}, {}, enterPrivateNetns));

const uint32_t kVip = ip("10.100.0.100");
const uint32_t kVip2 = ip("10.100.0.101");
const uint32_t kClient = ip("10.100.0.2");
const uint32_t kExtAddr = ip("10.100.0.1");
const uint32_t kIntAddr = ip("10.200.0.1");
const pkt::Mac kClientMac = mac("02:00:00:00:00:02");
// The data ports' MACs as the worker and the kernel know them (ring ports have none).
const pkt::Mac kExtMac = mac("02:00:00:00:00:a1");
const pkt::Mac kIntMac = mac("02:00:00:00:00:a2");
constexpr uint16_t kListenPort = 7022;
constexpr uint8_t kExt = 0;
constexpr uint8_t kInt = 1;

struct RingPort {
  rte_ring* rx = nullptr;
  rte_ring* tx = nullptr;
  std::unique_ptr<Port> port;
};

class KernelIfaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kEal->skipReason().empty()) GTEST_SKIP() << kEal->skipReason();
    pool_ = std::make_unique<Mempool>("kt_pool", Mempool::mbufCount({.ports = 3, .lcores = 2}));
    static int run = 0;  // ethdev and ring names stay taken until released: fresh ones per test
    ++run;
    for (int i = 0; i < 2; ++i) {
      RingPort& rp = ports_[i];
      const std::string n = std::to_string(run) + "_" + std::to_string(i);
      rp.rx = rte_ring_create(("kt_rx" + n).c_str(), 1024, SOCKET_ID_ANY, 0);
      rp.tx = rte_ring_create(("kt_tx" + n).c_str(), 1024, SOCKET_ID_ANY, 0);
      ASSERT_NE(rp.rx, nullptr);
      ASSERT_NE(rp.tx, nullptr);
      const int id = rte_eth_from_rings(("kt" + n).c_str(), &rp.rx, 1, &rp.tx, 1, rte_socket_id());
      ASSERT_GE(id, 0);
      char name[RTE_ETH_NAME_MAX_LEN];
      ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), name), 0);
      rp.port = std::make_unique<Port>(Port::open(name, 1, 1, 1500, pool_->get()));
    }
    kernel_ = std::make_unique<KernelInterface>(KernelInterface::create(
        KernelInterfaceSpec{.iface = "ngt-ext", .mac = kExtMac, .address = kExtAddr,
                            .prefix_len = 24, .mtu = 1500, .queues = 1, .index = 0},
        pool_->get()));
    std::vector<fwd::PortInfo> infos = {
        {.role = fwd::PortRole::kExternal, .mac = kExtMac, .address = kExtAddr, .prefix_len = 24,
         .exception_path = true},
        {.role = fwd::PortRole::kInternal, .mac = kIntMac, .address = kIntAddr, .prefix_len = 24},
    };
    ctx_ = std::make_unique<fwd::WorkerContext>(0, infos, 1024);
    ctx_->exception.configure(1000, 64, 0);
    publisher_ = std::make_unique<RcuPublisher>(1);
    KernelQueues kernel;
    kernel.slots = {QueueRef{.port_id = kernel_->port().id(), .queue_id = 0}, std::nullopt};
    worker_ = std::make_unique<Worker>(*ctx_, std::vector<QueueRef>{{ports_[0].port->id(), 0}, {ports_[1].port->id(), 0}},
                                       *publisher_, 0, stop_, pool_->get(), WorkerOptions{}, WorkerRings{},
                                       std::move(kernel));
    auto snap = std::make_unique<fwd::ForwardingSnapshot>();
    snap->generation = 1;
    snap->vips = {kVip, kVip2};
    snap->vip_since = {1, 1};
    snap->snat_addresses = {kIntAddr};
    snap->finalize();
    publisher_->publish(std::move(snap));
  }

  void TearDown() override {
    worker_.reset();
    publisher_.reset();
    ctx_.reset();
    kernel_.reset();
    for (RingPort& rp : ports_) {
      rp.port.reset();
      drain(rp.rx);
      drain(rp.tx);
      rte_ring_free(rp.rx);
      rte_ring_free(rp.tx);
      rp = RingPort{};
    }
    pool_.reset();
  }

  static void drain(rte_ring* r) {
    void* obj = nullptr;
    while (r != nullptr && rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  }

  void inject(uint8_t slot, const Bytes& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_->get());
    ASSERT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    ASSERT_EQ(rte_ring_enqueue(ports_[slot].rx, m), 0);
  }

  std::vector<Bytes> sent(uint8_t slot) {
    std::vector<Bytes> out;
    void* obj = nullptr;
    while (rte_ring_dequeue(ports_[slot].tx, &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const auto* p = rte_pktmbuf_mtod(m, const std::byte*);
      out.emplace_back(p, p + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
    }
    return out;
  }

  // Polls (and flushes) until `want` accepts a frame sent on `slot`, for up to 3 s; the
  // kernel answers asynchronously. Frames that do not match are kept in `others`.
  template <typename Want>
  bool pollUntil(uint8_t slot, Want want, Bytes& found, std::vector<Bytes>& others) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < end) {
      worker_->online();
      worker_->pollOnce();
      worker_->flushTx();
      worker_->offline();
      for (Bytes& f : sent(slot)) {
        if (want(f)) {
          found = f;
          return true;
        }
        others.push_back(std::move(f));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  std::atomic<bool> stop_{false};
  std::unique_ptr<Mempool> pool_;
  RingPort ports_[2];
  std::unique_ptr<KernelInterface> kernel_;
  std::unique_ptr<fwd::WorkerContext> ctx_;
  std::unique_ptr<RcuPublisher> publisher_;
  std::unique_ptr<Worker> worker_;
};

pkt::ParsedFrame parsed(const Bytes& f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  EXPECT_EQ(r.status, pkt::ParseStatus::kOk);
  return r.frame;
}

TEST_F(KernelIfaceTest, KernelInterfaceCarriesThePortsMacAndAddress) {
  const unsigned index = ::if_nametoindex("ngt-ext");
  ASSERT_NE(index, 0u);
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "ngt-ext", IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(s, SIOCGIFADDR, &ifr), 0);
  EXPECT_EQ(ntohl(reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr), kExtAddr);
  ASSERT_EQ(::ioctl(s, SIOCGIFHWADDR, &ifr), 0);
  EXPECT_EQ(std::memcmp(ifr.ifr_hwaddr.sa_data, kExtMac.data(), 6), 0);
  ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0);
  EXPECT_TRUE(ifr.ifr_flags & IFF_UP);
  ::close(s);
  EXPECT_THROW((void)KernelInterface::create(KernelInterfaceSpec{.iface = "ngt-ext", .address = kExtAddr, .index = 9},
                                             pool_->get()),
               std::runtime_error)
      << "an existing interface name is refused";
}

TEST_F(KernelIfaceTest, ClientReachesAKernelListenerThroughTheDataPort) {
  // The kernel's service: a TCP listener on the port's address.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kListenPort);
  addr.sin_addr.s_addr = htonl(kExtAddr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listener, 4), 0);

  const pkt::Mac ext_mac = kExtMac;
  const Bytes syn = PacketBuilder().eth(kClientMac, ext_mac).ipv4(kClient, kExtAddr).tcp(41000, kListenPort, pkt::tcp::kSyn, 5000).build();
  inject(kExt, syn);
  // The kernel does not know the client's MAC yet: its ARP request leaves by the data port.
  Bytes arp;
  std::vector<Bytes> others;
  ASSERT_TRUE(pollUntil(kExt, [&](const Bytes& f) {
    const auto p = pkt::parseFrame(f);
    return p.status == pkt::ParseStatus::kOk && p.frame.l3 == pkt::L3::kArp && p.frame.arp_op == pkt::arp::kRequest &&
           p.frame.arp_tpa == kClient;
  }, arp, others)) << "no ARP request from the kernel for the client";
  EXPECT_EQ(parsed(arp).arp_spa, kExtAddr);
  EXPECT_EQ(std::memcmp(arp.data() + 6, ext_mac.data(), 6), 0) << "sent with the port's MAC";
  // The client answers; the reply to the box's address reaches the kernel.
  inject(kExt, PacketBuilder().eth(kClientMac, ext_mac).arp(pkt::arp::kReply, kClientMac, kClient, ext_mac, kExtAddr).build());
  Bytes synack;
  ASSERT_TRUE(pollUntil(kExt, [&](const Bytes& f) {
    const auto p = pkt::parseFrame(f);
    return p.status == pkt::ParseStatus::kOk && p.frame.l3 == pkt::L3::kIpv4 && p.frame.proto == pkt::kProtoTcp &&
           p.frame.src_port == kListenPort;
  }, synack, others)) << "no SYN-ACK from the kernel's listener";
  const pkt::ParsedFrame p = parsed(synack);
  EXPECT_EQ(p.src_ip, kExtAddr);
  EXPECT_EQ(p.dst_ip, kClient);
  EXPECT_EQ(p.dst_port, 41000);
  EXPECT_EQ(p.tcp_flags & (pkt::tcp::kSyn | pkt::tcp::kAckFlag), pkt::tcp::kSyn | pkt::tcp::kAckFlag);
  EXPECT_EQ(std::memcmp(synack.data(), kClientMac.data(), 6), 0) << "the kernel resolved the client's MAC";
  EXPECT_EQ(std::memcmp(synack.data() + 6, ext_mac.data(), 6), 0);
  EXPECT_GE(ctx_->counters.to_kernel.get(), 2u) << "the SYN and the ARP reply (retransmitted SYNs may add)";
  EXPECT_GE(ctx_->counters.from_kernel.get(), 2u) << "the ARP request and the SYN-ACK";
  EXPECT_EQ(ctx_->counters.drops[static_cast<size_t>(fwd::DropReason::kExceptionQueueFull)].get(), 0u);
  ::close(listener);
}

TEST_F(KernelIfaceTest, WorkerZeroAnnouncesEveryVip) {
  worker_->online();
  worker_->pollOnce();  // applies the snapshot
  worker_->slowTick();
  worker_->flushTx();
  worker_->offline();
  std::vector<uint32_t> announced;
  for (const Bytes& f : sent(kExt)) {
    const pkt::ParsedFrame p = parsed(f);
    if (p.l3 != pkt::L3::kArp || p.arp_spa != p.arp_tpa) continue;
    std::array<std::byte, 60> want{};
    ASSERT_EQ(fwd::writeGratuitousArp(ctx_->ports[kExt], p.arp_spa, want), 60u);
    EXPECT_EQ(f, Bytes(want.begin(), want.end()));
    announced.push_back(p.arp_spa);
  }
  EXPECT_EQ(announced, (std::vector<uint32_t>{kVip, kVip2}));
  EXPECT_EQ(ctx_->counters.garp_sent.get(), 2u);
}

TEST_F(KernelIfaceTest, InterfaceIsGoneWithTheObject) {
  ASSERT_NE(::if_nametoindex("ngt-ext"), 0u);
  worker_.reset();
  kernel_.reset();
  EXPECT_EQ(::if_nametoindex("ngt-ext"), 0u);
}

}  // namespace
}  // namespace ng::dpdk
