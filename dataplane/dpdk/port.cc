#include "dataplane/dpdk/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "dataplane/dpdk/eal.h"
#include "dataplane/lb/toeplitz.h"

namespace ng::dpdk {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& device, int err) {
  throw std::runtime_error(what + " failed for " + device + ": " + rte_strerror(err));
}

// The key and RETA the started device really uses. Either query may be unsupported
// (virtual devices); then there is no layout and replies are steered by SNAT port.
// Assumes the Toeplitz function: DPDK 22.11 cannot report the hash function, and it is
// what every RSS NIC uses by default; were it not, replies would still reach their
// owner, through the redirect ring.
std::optional<RssLayout> queryRss(uint16_t id, const rte_eth_dev_info& info, const std::string& name) {
  if (info.hash_key_size == 0 || info.reta_size == 0) return std::nullopt;
  RssLayout layout;
  layout.key.resize(info.hash_key_size);
  rte_eth_rss_conf conf{};
  conf.rss_key = layout.key.data();
  conf.rss_key_len = info.hash_key_size;
  if (int ret = rte_eth_dev_rss_hash_conf_get(id, &conf); ret != 0) {
    log(RTE_LOG_NOTICE, "%s: RSS key not readable (%s)", name.c_str(), rte_strerror(-ret));
    return std::nullopt;
  }
  layout.hash_functions = conf.rss_hf;
  std::vector<rte_eth_rss_reta_entry64> groups((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
  for (auto& g : groups) g.mask = ~uint64_t{0};
  if (int ret = rte_eth_dev_rss_reta_query(id, groups.data(), info.reta_size); ret != 0) {
    log(RTE_LOG_NOTICE, "%s: RSS redirection table not readable (%s)", name.c_str(), rte_strerror(-ret));
    return std::nullopt;
  }
  layout.reta.resize(info.reta_size);
  for (uint16_t i = 0; i < info.reta_size; ++i) {
    layout.reta[i] = groups[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  }
  return layout;
}

}  // namespace

// ---------------------------------------------------------------------------- Mempool

uint32_t Mempool::mbufCount(const Sizing& s) noexcept {
  const uint64_t rings = uint64_t{s.ports} * (uint64_t{s.rx_queues_per_port} * s.rx_descriptors +
                                              uint64_t{s.tx_queues_per_port} * s.tx_descriptors);
  const uint64_t per_lcore = kBurstSize + uint64_t{s.ports} * kBurstSize + s.cache_size;
  const uint64_t need = rings + uint64_t{s.lcores} * per_lcore + s.ring_slots + 1024;
  // 2^k - 1: rte_mempool's default ring handler stores at most 2^k - 1 objects, so a
  // count one above that would double the ring for a single mbuf.
  const uint64_t rounded = std::bit_ceil(need + 1) - 1;
  return static_cast<uint32_t>(std::min<uint64_t>(rounded, UINT32_MAX));
}

uint16_t Mempool::dataRoomFor(uint16_t mtu) noexcept {
  const uint32_t need = RTE_PKTMBUF_HEADROOM + uint32_t{mtu} + kL2Overhead;
  return static_cast<uint16_t>(std::max<uint32_t>(need, RTE_MBUF_DEFAULT_BUF_SIZE));
}

Mempool::Mempool(const std::string& name, uint32_t n, uint16_t data_room, uint32_t cache_size,
                 int socket_id) {
  // The per-lcore cache may hold at most n / 1.5 objects (rte_mempool_create's rule).
  cache_size = std::min<uint32_t>({cache_size, RTE_MEMPOOL_CACHE_MAX_SIZE, n * 2 / 3});
  pool_ = rte_pktmbuf_pool_create(name.c_str(), n, cache_size, 0, data_room, socket_id);
  if (pool_ == nullptr) {
    throw std::runtime_error("rte_pktmbuf_pool_create(" + name + ", " + std::to_string(n) +
                             " mbufs of " + std::to_string(data_room) +
                             " bytes) failed: " + rte_strerror(rte_errno));
  }
  log(RTE_LOG_INFO, "mempool %s: %u mbufs, data room %u, cache %u", name.c_str(), n,
      unsigned{data_room}, cache_size);
}

Mempool::~Mempool() { rte_mempool_free(pool_); }

// ---------------------------------------------------------------------------- Port

Port Port::open(const std::string& device, uint16_t rx_queues, uint16_t tx_queues, uint16_t mtu,
                rte_mempool* pool) {
  if (pool == nullptr) throw std::invalid_argument("Port::open(" + device + "): no mempool");
  if (rx_queues == 0 || tx_queues == 0) {
    throw std::invalid_argument("Port::open(" + device + "): needs at least one RX and TX queue");
  }
  const std::string name = device.substr(0, device.find(','));

  Port port;
  port.name_ = name;
  uint16_t id = 0;
  if (int ret = rte_eth_dev_get_port_by_name(name.c_str(), &id); ret != 0) {
    throw std::runtime_error("no DPDK port named " + name + " (from device '" + device +
                             "'; was it given to EAL with --vdev/-a?): " + rte_strerror(-ret));
  }
  // Take the port (ethdev ownership), so a second open of the same device fails here
  // instead of reconfiguring - and, on its way out, closing - a port already in use.
  uint64_t owner_id = 0;
  if (int ret = rte_eth_dev_owner_new(&owner_id); ret != 0)
    fail("rte_eth_dev_owner_new", name, -ret);
  rte_eth_dev_owner owner{.id = owner_id, .name = "nodegate"};
  if (int ret = rte_eth_dev_owner_set(id, &owner); ret != 0) {
    rte_eth_dev_owner current{};
    rte_eth_dev_owner_get(id, &current);
    throw std::runtime_error("port " + name + " is already in use (owner '" +
                             std::string(current.name) + "'): " + rte_strerror(-ret));
  }
  port.port_id_ = id;  // ours: from here on the destructor closes it, even on failure
  port.owner_id_ = owner_id;

  rte_eth_dev_info info{};
  if (int ret = rte_eth_dev_info_get(id, &info); ret != 0) fail("rte_eth_dev_info_get", name, -ret);
  if (rx_queues > info.max_rx_queues || tx_queues > info.max_tx_queues) {
    throw std::runtime_error(name + " supports " + std::to_string(info.max_rx_queues) + " RX / " +
                             std::to_string(info.max_tx_queues) + " TX queues, " +
                             std::to_string(rx_queues) + " / " + std::to_string(tx_queues) +
                             " requested");
  }

  // Workers drop multi-segment mbufs, so a full-size frame must fit in one.
  const uint32_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
  if (uint32_t{mtu} + kL2Overhead > room) {
    throw std::runtime_error(name + ": MTU " + std::to_string(mtu) + " needs " +
                             std::to_string(mtu + kL2Overhead) + " bytes per mbuf, pool " +
                             std::string(pool->name) + " has " + std::to_string(room));
  }

  rte_eth_conf conf{};
  std::array<uint8_t, lb::Toeplitz::kDefaultKeyLen> key = lb::Toeplitz::kMicrosoftKey;  // read by configure
  if (rx_queues > 1) {
    const uint64_t hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    if (hf != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      // A known key where the device takes one of this size (most NICs), else its
      // default; either way the key is read back after start. (rte_eth_conf wants a
      // mutable pointer; the PMD copies the key during configure.)
      const bool known = info.hash_key_size == key.size();
      conf.rx_adv_conf.rss_conf.rss_key = known ? key.data() : nullptr;
      conf.rx_adv_conf.rss_conf.rss_key_len = known ? static_cast<uint8_t>(key.size()) : 0;
      conf.rx_adv_conf.rss_conf.rss_hf = hf;
      port.rss_ = true;
    } else {
      log(RTE_LOG_WARNING, "%s: no RSS for IP/TCP/UDP; %u RX queues get no hashed spread",
          name.c_str(), unsigned{rx_queues});
    }
  }
  if (int ret = rte_eth_dev_configure(id, rx_queues, tx_queues, &conf); ret != 0) {
    fail("rte_eth_dev_configure", name, -ret);
  }

  if (int ret = rte_eth_dev_set_mtu(id, mtu); ret == -ENOTSUP) {
    uint16_t current = 0;
    rte_eth_dev_get_mtu(id, &current);
    log(RTE_LOG_NOTICE, "%s: device cannot set the MTU; keeping %u (wanted %u)", name.c_str(),
        unsigned{current}, unsigned{mtu});
    port.mtu_ = current != 0 ? current : mtu;
  } else if (ret != 0) {
    fail("rte_eth_dev_set_mtu(" + std::to_string(mtu) + ")", name, -ret);
  } else {
    port.mtu_ = mtu;
  }

  uint16_t rx_desc = kDefaultRxDescriptors;
  uint16_t tx_desc = kDefaultTxDescriptors;
  if (int ret = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rx_desc, &tx_desc); ret != 0) {
    fail("rte_eth_dev_adjust_nb_rx_tx_desc", name, -ret);
  }
  const int socket = rte_eth_dev_socket_id(id);  // SOCKET_ID_ANY for most virtual devices
  for (uint16_t q = 0; q < rx_queues; ++q) {
    if (int ret = rte_eth_rx_queue_setup(id, q, rx_desc, socket, nullptr, pool); ret != 0) {
      fail("rte_eth_rx_queue_setup(queue " + std::to_string(q) + ")", name, -ret);
    }
  }
  for (uint16_t q = 0; q < tx_queues; ++q) {
    if (int ret = rte_eth_tx_queue_setup(id, q, tx_desc, socket, nullptr); ret != 0) {
      fail("rte_eth_tx_queue_setup(queue " + std::to_string(q) + ")", name, -ret);
    }
  }

  // Promiscuous: after a VIP fails over to this box, peers keep sending to the MAC they
  // cached until our gratuitous ARP lands; the pipeline checks L3 addresses itself.
  // Devices without the notion (rings, null) receive everything anyway.
  if (int ret = rte_eth_promiscuous_enable(id); ret == -ENOTSUP) {
    log(RTE_LOG_NOTICE, "%s: no promiscuous mode (not supported)", name.c_str());
  } else if (ret != 0) {
    fail("rte_eth_promiscuous_enable", name, -ret);
  }

  if (int ret = rte_eth_dev_start(id); ret != 0) fail("rte_eth_dev_start", name, -ret);
  port.started_ = true;

  rte_ether_addr addr{};
  if (int ret = rte_eth_macaddr_get(id, &addr); ret != 0) fail("rte_eth_macaddr_get", name, -ret);
  std::memcpy(port.mac_.data(), addr.addr_bytes, port.mac_.size());

  if (port.rss_) port.rss_layout_ = queryRss(id, info, name);
  port.rx_queues_ = rx_queues;
  port.tx_queues_ = tx_queues;
  port.rx_desc_ = rx_desc;
  port.tx_desc_ = tx_desc;
  log(RTE_LOG_INFO,
      "port %s (id %u): %u RX / %u TX queues, %u / %u descriptors, MTU %u, RSS %s, "
      "MAC %02x:%02x:%02x:%02x:%02x:%02x",
      name.c_str(), unsigned{id}, unsigned{rx_queues}, unsigned{tx_queues}, unsigned{rx_desc},
      unsigned{tx_desc}, unsigned{port.mtu_}, port.rss_ ? "on" : "off", port.mac_[0], port.mac_[1],
      port.mac_[2], port.mac_[3], port.mac_[4], port.mac_[5]);
  return port;
}

Port::Port(Port&& other) noexcept
    : port_id_(std::exchange(other.port_id_, kInvalidPort)),
      name_(std::move(other.name_)),
      mac_(other.mac_),
      rx_queues_(other.rx_queues_),
      tx_queues_(other.tx_queues_),
      rx_desc_(other.rx_desc_),
      tx_desc_(other.tx_desc_),
      mtu_(other.mtu_),
      rss_(other.rss_),
      rss_layout_(std::move(other.rss_layout_)),
      started_(std::exchange(other.started_, false)),
      owner_id_(other.owner_id_) {}

Port& Port::operator=(Port&& other) noexcept {
  if (this != &other) {
    release();
    port_id_ = std::exchange(other.port_id_, kInvalidPort);
    name_ = std::move(other.name_);
    mac_ = other.mac_;
    rx_queues_ = other.rx_queues_;
    tx_queues_ = other.tx_queues_;
    rx_desc_ = other.rx_desc_;
    tx_desc_ = other.tx_desc_;
    mtu_ = other.mtu_;
    rss_ = other.rss_;
    rss_layout_ = std::move(other.rss_layout_);
    started_ = std::exchange(other.started_, false);
    owner_id_ = other.owner_id_;
  }
  return *this;
}

Port::~Port() { release(); }

void Port::release() noexcept {
  if (port_id_ == kInvalidPort) return;
  if (started_) {
    if (int ret = rte_eth_dev_stop(port_id_); ret != 0) {
      log(RTE_LOG_WARNING, "%s: rte_eth_dev_stop: %s", name_.c_str(), rte_strerror(-ret));
    }
  }
  // Closing releases the port and its ownership; if it fails, at least give it back.
  if (int ret = rte_eth_dev_close(port_id_); ret != 0) {
    log(RTE_LOG_WARNING, "%s: rte_eth_dev_close: %s", name_.c_str(), rte_strerror(-ret));
    rte_eth_dev_owner_unset(port_id_, owner_id_);
  }
  port_id_ = kInvalidPort;
  started_ = false;
}

}  // namespace ng::dpdk
