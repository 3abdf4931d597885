#pragma once
// RAII owners for the packet buffer pool and the data ports (STYLE.md example 14).
//
// Threading: create and destroy on the control (main) lcore at start-up/shutdown. Workers
// borrow the raw rte_mempool* and the port id; they never own them.
// Failure: constructors/open() throw std::runtime_error naming the pool or device and
// the DPDK error (start-up only). Nothing here calls rte_exit.
// Lifetime: Eal > Mempool > Ports > Workers. A port returns its mbufs to the pool when it
// is closed, so ports are closed (destroyed) before the pool they draw from.

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/fwd/snapshot.h"

namespace ng::dpdk {

// Requested ring sizes; Port::open clamps them to the device's limits.
inline constexpr uint16_t kDefaultRxDescriptors = 1024;
inline constexpr uint16_t kDefaultTxDescriptors = 1024;
inline constexpr uint16_t kBurstSize = 32;
inline constexpr uint32_t kMempoolCacheSize = 256;

// Largest L2 overhead we accept on top of the MTU: Ethernet header, one VLAN tag, FCS.
inline constexpr uint32_t kL2Overhead = RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN + RTE_ETHER_CRC_LEN;

class Mempool {
 public:
  struct Sizing {
    uint32_t ports = 2;
    uint32_t rx_queues_per_port = 1;
    uint32_t tx_queues_per_port = 1;
    uint32_t rx_descriptors = kDefaultRxDescriptors;
    uint32_t tx_descriptors = kDefaultTxDescriptors;
    uint32_t lcores = 2;  // every lcore that allocates or frees mbufs, control included
    uint32_t cache_size = kMempoolCacheSize;
    uint32_t ring_slots = 0;  // mbufs that may wait in redirect rings (several workers)
  };

  // Mbufs needed so that no queue ever starves (l3fwd's formula, plus what we buffer):
  //     ports * (rx_queues * rx_desc + tx_queues * tx_desc)   // every ring full
  //   + lcores * (burst                                       // one RX burst in hand
  //               + ports * burst                             // one TX buffer per port
  //               + cache_size)                               // per-lcore mempool cache
  //   + ring_slots                                            // redirect rings full
  //   + 1024                                                  // ARP requests, slack
  // rounded up to 2^k - 1 (the ring under the pool holds 2^k - 1 entries).
  [[nodiscard]] static uint32_t mbufCount(const Sizing& s) noexcept;

  // Data room that holds a whole frame of `mtu` in one segment (workers drop chains).
  [[nodiscard]] static uint16_t dataRoomFor(uint16_t mtu) noexcept;

  // rte_pktmbuf_pool_create(name, n, cache_size, 0, data_room, socket_id).
  Mempool(const std::string& name, uint32_t n, uint16_t data_room = RTE_MBUF_DEFAULT_BUF_SIZE,
          uint32_t cache_size = kMempoolCacheSize, int socket_id = SOCKET_ID_ANY);
  ~Mempool();
  Mempool(const Mempool&) = delete;
  Mempool& operator=(const Mempool&) = delete;

  [[nodiscard]] rte_mempool* get() const noexcept { return pool_; }

 private:
  rte_mempool* pool_ = nullptr;
};

// How a port spreads received frames over its RX queues, as the device reported it after
// start: the Toeplitz key, the redirection table (entry i = RX queue of hash % size) and
// the hashed flow types (RTE_ETH_RSS_*). lb::ReplySteering predicts reply queues from it.
struct RssLayout {
  std::vector<uint8_t> key;
  std::vector<uint16_t> reta;
  uint64_t hash_functions = 0;
};

class Port {
 public:
  // Opens the ethdev named by `device` up to the first comma ("net_af_packet0,iface=x" ->
  // "net_af_packet0"; "0000:01:00.0,..." -> "0000:01:00.0"), which EAL has probed from
  // --vdev/-a. Configures `rx_queues`/`tx_queues` (RSS over IP/TCP/UDP when rx_queues > 1
  // and the device supports it, with lb::Toeplitz::kMicrosoftKey when the device takes a
  // 40-byte key; no offloads), sets `mtu` (a device without MTU control
  // is logged and left as is), sets up queues with ring sizes clamped to the device's
  // limits, enables promiscuous mode where supported, and starts the port.
  // Takes ethdev ownership of the port, so a device cannot be opened twice.
  // Throws std::runtime_error (device name + rte_strerror) on any other failure, when
  // the port is already in use, and when a frame of `mtu` would not fit in one mbuf of
  // `pool`.
  static Port open(const std::string& device, uint16_t rx_queues, uint16_t tx_queues, uint16_t mtu,
                   rte_mempool* pool);

  Port(Port&& other) noexcept;
  Port& operator=(Port&& other) noexcept;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  // Stops and closes the port (its mbufs go back to the pool).
  ~Port();

  [[nodiscard]] uint16_t id() const noexcept { return port_id_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const fwd::Mac& mac() const noexcept { return mac_; }
  [[nodiscard]] uint16_t rxQueues() const noexcept { return rx_queues_; }
  [[nodiscard]] uint16_t txQueues() const noexcept { return tx_queues_; }
  [[nodiscard]] uint16_t rxDescriptors() const noexcept { return rx_desc_; }
  [[nodiscard]] uint16_t txDescriptors() const noexcept { return tx_desc_; }
  [[nodiscard]] bool rss() const noexcept { return rss_; }
  // The RSS key and RETA read back after start, when RSS is on and the device reports
  // both (rte_eth_dev_rss_hash_conf_get, rte_eth_dev_rss_reta_query); nullopt otherwise
  // (one queue, no RSS, or a device that does not tell: replies are then steered by SNAT
  // port and the redirect rings).
  [[nodiscard]] const std::optional<RssLayout>& rssLayout() const noexcept { return rss_layout_; }
  // The MTU the device runs with (the requested one, or the device's when it has no
  // MTU control).
  [[nodiscard]] uint16_t mtu() const noexcept { return mtu_; }

 private:
  static constexpr uint16_t kInvalidPort = RTE_MAX_ETHPORTS;
  Port() = default;
  void release() noexcept;

  uint16_t port_id_ = kInvalidPort;
  std::string name_;
  fwd::Mac mac_{};
  uint16_t rx_queues_ = 0;
  uint16_t tx_queues_ = 0;
  uint16_t rx_desc_ = 0;
  uint16_t tx_desc_ = 0;
  uint16_t mtu_ = 0;
  bool rss_ = false;
  std::optional<RssLayout> rss_layout_;
  bool started_ = false;
  uint64_t owner_id_ = 0;  // rte_eth_dev_owner id: the port is ours while open
};

}  // namespace ng::dpdk
