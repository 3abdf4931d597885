#pragma once
// Which worker receives a full-NAT reply (node:nodePort -> SNAT address:port) on the
// internal port, and so which SNAT ports a worker may hand out (DESIGN.md sec. 2,
// "Replies reach the owning worker on any NIC"; STYLE.md example 13).
//
// Worker w serves RX/TX queue w of every port. A reply must reach the worker that
// created its flow, because only that worker's flow table knows it. Three layouts:
//   single   one worker: every reply is its own.
//   rss      the internal port spreads frames by Toeplitz RSS over the IPv4 TCP/UDP tuple
//            with a key and redirection table (RETA) read from the device at boot: the
//            reply lands on queue reta[hash % reta_size]. The hash is linear, so
//            hash = base(node ip, SNAT ip, node port) XOR part(SNAT port); a new flow
//            computes base once and tries SNAT ports until reta[...] is its own queue
//            (1 in `workers` ports on a balanced RETA, so a few tries).
//   by-port  the device does not spread by a hash we can predict (net_af_packet: the
//            kernel's fanout hash has a per-boot secret; net_ring, net_tap: no RSS): the
//            SNAT port alone decides, owner = port % workers. A reply that lands on
//            another worker is handed to the owner through the owner's software ring
//            (dataplane/dpdk/worker.h).
// Client flows: in the rss layout the NIC keeps a client flow on one queue (a hardware
// hash of the 5-tuple). In by-port the device gives no such promise we can rely on:
// net_af_packet's kernel fanout hashes flows, but its rollover flag moves frames of a
// busy flow to another socket when the chosen one's ring runs low (seen: a 50 MiB
// download lost hundreds of client ACKs to workers without the flow). So in by-port
// every worker sends a client frame to clientOwner(its flow-table hash), and a flow is
// created and served by that worker whatever queue its frames arrive on.
// In every layout owner() is what a worker that receives a reply without a flow asks, so
// a reply that the NIC put elsewhere (a RETA changed behind our back, a NIC hashing
// differently than its report says) still reaches its flow through the ring.
//
// Threading: built on the control thread at boot; each WorkerContext holds its own
// copy (about 37 KiB: the Toeplitz tables cover the IPv6 tuple too), read-only afterwards. Allocation-free and
// noexcept after construction.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/lb/flow_key.h"
#include "dataplane/lb/toeplitz.h"

namespace ng::lb {

class ReplySteering {
 public:
  enum class Mode : uint8_t { kSingle, kByPort, kRss };
  // Worker ids must fit Action::out_port and a RETA entry; the config loader caps the
  // worker list at this.
  static constexpr uint32_t kMaxWorkers = 64;
  // Largest RETA we accept (NICs have 64 .. 512 entries; some 2048).
  static constexpr size_t kMaxRetaSize = 4096;

  // One worker.
  ReplySteering() = default;
  // by-port with `workers` (>= 1; 1 is the single layout). Throws std::invalid_argument
  // above kMaxWorkers.
  [[nodiscard]] static ReplySteering byPort(uint32_t workers);
  // rss: `key` and `reta` as the device reported them; reta entries are RX queue ids and
  // queue q is served by worker q. nullopt, with the reason in `why` when given (boot
  // then falls back to by-port), when the RETA is empty, not a power of two, larger than
  // kMaxRetaSize, names a queue >= workers or leaves a worker without entries, or the key
  // is too short. (std::optional, not std::expected: this header is also compiled by the
  // fuzzer's clang/libc++ build.)
  [[nodiscard]] static std::optional<ReplySteering> byRss(uint32_t workers, std::span<const uint8_t> key,
                                                          std::span<const uint16_t> reta, std::string* why = nullptr);

  [[nodiscard]] Mode mode() const noexcept { return mode_; }
  [[nodiscard]] uint32_t workers() const noexcept { return workers_; }
  [[nodiscard]] const char* modeName() const noexcept;

  // The worker whose RX queue receives node_ip:node_port -> snat_ip:snat_port.
  [[nodiscard]] uint32_t owner(uint32_t node_ip, uint32_t snat_ip, uint16_t node_port,
                               uint16_t snat_port) const noexcept {
    switch (mode_) {
      case Mode::kSingle: return 0;
      case Mode::kByPort: return snat_port % workers_;
      case Mode::kRss: break;
    }
    return worker_of_[toeplitz_.hashIpv4(node_ip, snat_ip, node_port, snat_port) & reta_mask_];
  }

  // by-port only: client frames go to clientOwner() (see above).
  [[nodiscard]] bool steersClients() const noexcept { return mode_ == Mode::kByPort; }
  // The worker that owns a client flow whose lb::FlowTable::hashOf(client key) is
  // `flow_hash`: the hash's high bits (the table indexes with the low ones, so each
  // worker's table still uses all its slots).
  [[nodiscard]] uint32_t clientOwner(uint32_t flow_hash) const noexcept {
    return static_cast<uint32_t>((uint64_t{flow_hash} * workers_) >> 32);
  }

  // For SNAT port choice: what a new flow toward node_ip:node_port from snat_ip fixes
  // (the reply's hash with SNAT port 0; 0 outside rss) ...
  [[nodiscard]] uint32_t replyBase(uint32_t node_ip, uint32_t snat_ip, uint16_t node_port) const noexcept {
    return mode_ == Mode::kRss ? toeplitz_.hashIpv4(node_ip, snat_ip, node_port, 0) : 0;
  }
  // ... and whether SNAT port `snat_port` then makes `worker` the reply's owner.
  [[nodiscard]] bool owns(uint32_t worker, uint32_t reply_base, uint16_t snat_port) const noexcept {
    switch (mode_) {
      case Mode::kSingle: return true;
      case Mode::kByPort: return snat_port % workers_ == worker;
      case Mode::kRss: break;
    }
    return worker_of_[(reply_base ^ toeplitz_.dstPortPart(snat_port)) & reta_mask_] == worker;
  }

  // IPv6: the same three functions over the IPv6 tuple. A NIC hashes IPv6 TCP/UDP with
  // the same key and RETA (RSS over addresses and ports, extension headers skipped), so
  // SNAT6 port choice steers IPv6 replies exactly like IPv4 ones; by-port is
  // family-blind.
  [[nodiscard]] uint32_t owner(const Ip6& node_ip, const Ip6& snat_ip, uint16_t node_port,
                               uint16_t snat_port) const noexcept {
    switch (mode_) {
      case Mode::kSingle: return 0;
      case Mode::kByPort: return snat_port % workers_;
      case Mode::kRss: break;
    }
    return worker_of_[toeplitz_.hashIpv6(node_ip.hi, node_ip.lo, snat_ip.hi, snat_ip.lo, node_port, snat_port) &
                      reta_mask_];
  }
  [[nodiscard]] uint32_t replyBase(const Ip6& node_ip, const Ip6& snat_ip, uint16_t node_port) const noexcept {
    return mode_ == Mode::kRss
               ? toeplitz_.hashIpv6(node_ip.hi, node_ip.lo, snat_ip.hi, snat_ip.lo, node_port, 0)
               : 0;
  }
  [[nodiscard]] bool owns6(uint32_t worker, uint32_t reply_base, uint16_t snat_port) const noexcept {
    switch (mode_) {
      case Mode::kSingle: return true;
      case Mode::kByPort: return snat_port % workers_ == worker;
      case Mode::kRss: break;
    }
    return worker_of_[(reply_base ^ toeplitz_.dstPortPart6(snat_port)) & reta_mask_] == worker;
  }
  // owns() or owns6() by the address type of the SNAT allocator.
  [[nodiscard]] bool ownsFor(const uint32_t*, uint32_t worker, uint32_t base, uint16_t port) const noexcept {
    return owns(worker, base, port);
  }
  [[nodiscard]] bool ownsFor(const Ip6*, uint32_t worker, uint32_t base, uint16_t port) const noexcept {
    return owns6(worker, base, port);
  }

 private:
  Mode mode_ = Mode::kSingle;
  uint32_t workers_ = 1;
  uint32_t reta_mask_ = 0;
  Toeplitz toeplitz_;
  std::vector<uint8_t> worker_of_;  // RETA index -> worker (rss only)
};

}  // namespace ng::lb
