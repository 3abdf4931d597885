#pragma once
// The per-packet pipeline of a worker: classify -> look up -> rewrite, on a byte span.
// No DPDK here; the DPDK worker (dataplane/dpdk/worker.h) maps rte_mbuf to spans and
// calls processFrame() for every received frame.
//
// Threading: a WorkerContext belongs to exactly one worker lcore. processFrame() and the
// helpers below are noexcept, allocate nothing, take no locks and never log.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/fwd/backend_stats.h"
#include "dataplane/fwd/counters.h"
#include "dataplane/fwd/exception.h"
#include "dataplane/fwd/neighbor.h"
#include "dataplane/fwd/snapshot.h"
#include "dataplane/lb/affinity_table.h"
#include "dataplane/lb/flow_table.h"
#include "dataplane/lb/fragment_table.h"
#include "dataplane/lb/reply_steering.h"
#include "dataplane/lb/snat.h"
#include "dataplane/pkt/ip6.h"

namespace ng::fwd {

enum class PortRole : uint8_t { kExternal, kInternal };

// IPv4 netmasks by prefix length, /0 to /32: one load on the per-packet next-hop test.
inline constexpr std::array<uint32_t, 33> kPrefixMasks = [] {
  std::array<uint32_t, 33> masks{};
  for (size_t len = 1; len <= 32; ++len) masks[len] = ~uint32_t{0} << (32 - len);
  return masks;
}();

// Boot-time facts about one data port, indexed by port slot (0..ports.size()-1).
struct PortInfo {
  PortRole role = PortRole::kExternal;
  Mac mac{};
  uint32_t address = 0;    // the box's address on this port
  uint8_t prefix_len = 24;  // 0..32
  uint32_t gateway = 0;    // 0 = none: off-link destinations are unreachable
  uint16_t mtu = 1500;
  // The port has a kernel interface (exception path, fwd/exception.h): frames for
  // `address` the data plane does not handle itself go to it (Action::kToKernel).
  bool exception_path = false;

  [[nodiscard]] bool onLink(uint32_t ip) const noexcept {
    return ((ip ^ address) & kPrefixMasks[prefix_len]) == 0;
  }
  // Next hop for `dst` out of this port, or 0 when there is none.
  [[nodiscard]] uint32_t nextHop(uint32_t dst) const noexcept {
    return onLink(dst) ? dst : gateway;
  }

  // --- IPv6 (all zero: the port has no IPv6; IPv6 frames on it are dropped not_for_us) ---
  // The box's global IPv6 address on this port and its prefix (on-link test).
  Ip6 address6{};
  uint8_t prefix_len6 = 64;
  // IPv6 next hop for off-link destinations: a router's link-local (fe80::...) or
  // global address; zero = none (off-link IPv6 destinations are unreachable).
  Ip6 gateway6{};
  // The port's link-local address, answered for ND and echo and used as the source of
  // NSs toward link-local next hops. Zero: WorkerContext derives it from `mac`
  // (modified EUI-64, fe80::/64), the address the kernel would have given the port.
  Ip6 link_local6{};

  // True for link-local destinations (always on-link) and the port's IPv6 prefix.
  [[nodiscard]] bool onLink6(const Ip6& ip) const noexcept {
    if (ip.isLinkLocal()) return true;
    return !address6.isZero() && pkt::ip6Mask(ip, prefix_len6) == pkt::ip6Mask(address6, prefix_len6);
  }
  // IPv6 next hop for `dst` out of this port, or zero when there is none.
  [[nodiscard]] Ip6 nextHop6(const Ip6& dst) const noexcept { return onLink6(dst) ? dst : gateway6; }
  // True when `ip` is one of the box's own IPv6 addresses on this port.
  [[nodiscard]] bool isOwn6(const Ip6& ip) const noexcept {
    return !ip.isZero() && (ip == address6 || ip == link_local6);
  }
};

struct ArpRequest {
  uint8_t port = 0;
  uint32_t target_ip = 0;
};

// An IPv6 Neighbor Solicitation the worker should send (the ARP request's twin).
struct NsRequest {
  uint8_t port = 0;
  Ip6 target_ip{};
};

struct alignas(64) WorkerContext {
  // `affinity_capacity`: entries of the session-affinity table; 0 = derived from the flow
  // capacity (defaultAffinityCapacity). `backend_stats_capacity`: BackendStats entries.
  // `flow6_capacity`: IPv6 flows (a separate table, lb::FlowTable6); 0 = derived from
  // the flow capacity (defaultFlow6Capacity). The IPv6 affinity table gets a quarter of
  // it, at least 1024. Throws std::invalid_argument for a port whose prefix_len is over 32.
  WorkerContext(unsigned worker_id, std::vector<PortInfo> port_infos, uint32_t flow_capacity,
                uint32_t affinity_capacity = 0, uint32_t backend_stats_capacity = kBackendStatsCapacity,
                uint32_t flow6_capacity = 0);

  // A quarter of the (IPv4) flow capacity, at least 1024: IPv6 flow records are 96
  // bytes against IPv4's 44, and most clients of a dual-stack Service still arrive over
  // IPv4; a box serving mostly IPv6 sets its own share (dataplane.flows.capacity6).
  [[nodiscard]] static uint32_t defaultFlow6Capacity(uint32_t flow_capacity) noexcept;

  // A quarter of the flow capacity, at least 1024: entries outlive flows, but a client
  // with affinity usually has several flows at a time (8 MiB per worker at 1M flows).
  [[nodiscard]] static uint32_t defaultAffinityCapacity(uint32_t flow_capacity) noexcept;

  unsigned id;
  std::vector<PortInfo> ports;
  uint8_t external_port = 0;  // slot of the external port
  uint8_t internal_port = 1;  // slot of the internal port
  bool steer_clients = false;  // steering.steersClients(), kept with the hot fields
  lb::FlowTable flows;
  lb::SnatAllocator snat;
  NeighborTable neighbors;
  WorkerCounters counters;
  BackendStats backend_stats;
  // Generation of the last snapshot applied by onSnapshot(); written by the worker, read
  // by the control thread for readiness.
  std::atomic<uint64_t> applied_generation{~uint64_t{0}};

  // ARP requests a packet asked for (unresolved next hop); sent by the next slowTick.
  static constexpr size_t kArpQueueSize = 16;
  std::array<ArpRequest, kArpQueueSize> arp_queue{};
  uint8_t arp_queue_len = 0;
  uint32_t last_neighbor_scan_ms = 0;

  // sessionAffinity ClientIP: client -> node remembered per service port (new-flow path
  // and flow ends only; lb/affinity_table.h explains the design).
  lb::AffinityTable affinity;

  // IPv4 fragments: where the rest of each fragmented datagram goes (the policy is in
  // processor.cc). Fixed size: fragmented datagrams in flight are few, and entries end
  // when their last byte passes.
  static constexpr uint32_t kFragmentEntries = 4096;
  lb::FragmentTable fragments{kFragmentEntries};
  // IPv4 identification for the next fragmented datagram this worker forwards (fragment
  // policy in processor.cc). Workers start 4096 apart.
  uint16_t next_fragment_id = 0;
  // Which worker a full-NAT reply reaches (lb/reply_steering.h); this worker's own copy.
  // Default: one worker. With several, the SNAT allocator hands out only ports whose
  // reply comes back to `id`, and a reply without a flow here goes to its owner
  // (Action::kRedirect), and so do client frames of another worker's flow where the
  // device cannot be trusted to keep a flow on one queue (by-port). `id` must be the
  // worker's index 0..workers-1.
  lb::ReplySteering steering;
  // Exception path (fwd/exception.h): the bound on frames this worker hands to the
  // kernel. Gratuitous ARP state (announceVips; used on one worker only).
  ExceptionLimiter exception;
  GarpState garp;
  GarpState garp6;  // unsolicited NA for IPv6 VIPs (announceVips6)
  // Control thread, before the worker runs.
  void steerReplies(lb::ReplySteering s) {
    steering = std::move(s);
    snat.steer(&steering, id);
    snat6.steer(&steering, id);
    steer_clients = steering.steersClients();
  }

  // --- IPv6 (fwd/processor6.cc): the same per-worker state, for IPv6 flows ------------
  // Separate tables rather than wider keys, so IPv4 flows keep their 40-byte records.
  lb::FlowTable6 flows6;
  lb::SnatAllocator6 snat6;
  NeighborTable6 neighbors6;
  lb::AffinityTable6 affinity6;
  static constexpr uint32_t kFragmentEntries6 = 1024;
  lb::FragmentTable6 fragments6{kFragmentEntries6};
  // Fragment identification for the next fragmented IPv6 datagram this worker forwards
  // (fragment policy in processor.cc; the IPv6 Fragment header carries 32 bits).
  uint32_t next_fragment_id6 = 0;
  // Neighbor Solicitations a packet asked for; sent by the next slowTickNd().
  std::array<NsRequest, kArpQueueSize> ns_queue{};
  uint8_t ns_queue_len = 0;
  uint32_t last_neighbor_scan6_ms = 0;
  // Tunnel mode. `frame_headroom`: writable bytes before each frame of the call in
  // progress (processFrame/processBurst set it from their `headroom` argument).
  size_t frame_headroom = 0;
  // IPv4 identification of the next outer header whose inner packet may be fragmented
  // (DF clear); outer headers of DF packets carry 0 (RFC 6864 sec. 4.1).
  uint16_t next_outer_id = 0;
  // Token bucket of ICMP frag-needed and ICMPv6 Packet Too Big answers, in thousandths of an answer (refilled by
  // TunnelSettings::icmp_rate per second, capped at icmp_burst).
  uint64_t icmp_tokens_milli = 0;
  uint32_t icmp_refill_ms = 0;
  bool icmp_bucket_started = false;
};

struct Action {
  // kDrop: not forwarded, one drop reason counted. kConsumed: taken by the box (an ARP
  // reply it learned from); free the buffer, nothing is counted as a drop.
  // With several workers only (ctx.steering.workers() > 1), both untouched frames:
  // kRedirect: a frame of worker `out_port`'s flow (a full-NAT reply this worker has no
  //   flow for, whose SNAT port is that worker's; or, by-port, a client frame whose flow
  //   hash is that worker's): hand the frame to it, as received.
  // kShare: an ARP reply this worker has learned from; every other worker may be waiting
  //   for it too (each keeps its own neighbour table), so show them a copy, then free it.
  // Exception path (fwd/exception.h), untouched frames:
  // kToKernel: for the box itself; hand the frame to the kernel interface of data port
  //   slot `out_port` (the port it arrived on). Rate-limited before it is returned.
  // kShareToKernel: kShare (several workers) whose original then goes to the kernel
  //   interface of port `out_port` instead of being freed: an ARP reply for the box's
  //   address. A worker that got the frame from a peer only frees it.
  enum class Kind : uint8_t { kDrop, kForward, kConsumed, kRedirect, kShare, kToKernel, kShareToKernel };
  Kind kind = Kind::kDrop;
  uint8_t out_port = 0;  // port slot for kForward, kToKernel, kShareToKernel; worker id for kRedirect
  // kForward only. length == 0: the frame leaves as it is, same start, same length (every
  // full-NAT, ARP and echo answer). length != 0: the frame to send starts `prepended`
  // bytes before the received one and is `length` bytes long - a tunnel-mode frame grew
  // an outer header into the headroom (IPv4: prepended = 20, length = 34 + inner IP
  // length; IPv6: prepended = 40, length = 54 + inner IP length; Ethernet padding
  // dropped), or an ICMP frag-needed / ICMPv6 Packet Too Big answer replaced the frame
  // (prepended = 0, length <= received). The DPDK worker applies it with
  // rte_pktmbuf_prepend / rte_pktmbuf_trim; one test of `length` keeps full-NAT's path.
  uint8_t prepended = 0;
  uint8_t reserved = 0;  // always 0: the padding named, so Actions compare as words (Worker::wholeBurstTo)
  // (8 bytes with natural alignment, returned in one register: a 6-byte Action was
  // spilled in pieces and re-read whole, a store-forwarding stall per packet.)
  uint32_t length = 0;
};
static_assert(sizeof(Action) == 8);

// Writable bytes a frame needs in front of it for tunnel mode: the larger outer header,
// IPv6's (40; IPv4's is 20). Each family checks its own need against the headroom.
inline constexpr size_t kTunnelHeadroom = 40;

// Processes one received frame in place. On kForward the frame is ready to be sent on
// `out_port` (reshaped as Action says); on kDrop the reason has been counted; on kConsumed
// just free it. `now_ms` is a monotonic millisecond clock (wraps; differences are taken
// modulo 2^32). `headroom`: writable bytes before frame.data() the processor may use;
// below kTunnelHeadroom, tunnel-mode frames are dropped (no_headroom).
[[nodiscard]] Action processFrame(WorkerContext& ctx, const ForwardingSnapshot& snap,
                                  uint8_t in_port, std::span<std::byte> frame,
                                  uint32_t now_ms, size_t headroom = 0) noexcept;

inline constexpr size_t kMaxBurst = 32;

// Processes up to kMaxBurst frames received on `in_port`, with the same result as
// processFrame() on each in order, but hashes the whole burst and prefetches its flow-table
// slots and records first, so their cache misses overlap. actions[i] is frames[i]'s.
// `headroom`: writable bytes before every frame of the burst (the smallest of them).
void processBurst(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                  std::span<const std::span<std::byte>> frames, std::span<Action> actions,
                  uint32_t now_ms, size_t headroom = 0) noexcept;

// Applies per-snapshot worker state (SNAT addresses, static neighbours). Call when the
// loaded snapshot's generation differs from ctx.applied_generation, before processing.
void onSnapshot(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms) noexcept;

// Periodic work between bursts: expires up to `expiry_budget` flow records, sweeps as
// many session-affinity entries and aged fragment-table entries, and collects ARP requests that are due (resolve targets
// of the snapshot and addresses a packet wanted). Returns the number of requests written
// to `requests`.
size_t slowTick(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                uint32_t expiry_budget, std::span<ArpRequest> requests) noexcept;

// Writes a broadcast ARP request from `port` for `target_ip`; returns the frame length
// (60 bytes, padded) or 0 when `frame` is too small.
size_t writeArpRequest(const PortInfo& port, uint32_t target_ip,
                       std::span<std::byte> frame) noexcept;

// IPv6 twin of slowTick's request collection (call right after slowTick; IPv6 flow,
// affinity and fragment expiry already ran inside slowTick): the Neighbor Solicitations
// that are due - addresses a packet wanted, and every 100 ms the snapshot's
// resolve_targets6 and each port's gateway6. Returns the number written to `requests`.
size_t slowTickNd(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                  std::span<NsRequest> requests) noexcept;

// Writes a multicast Neighbor Solicitation from `port` for `target_ip` (to its
// solicited-node group, hop limit 255, source link-layer option; source address: the
// port's global address for on-link global targets, else its link-local one). Returns
// the frame length (86 bytes) or 0 when `frame` is too small or the port has no IPv6.
size_t writeNsRequest(const PortInfo& port, const Ip6& target_ip, std::span<std::byte> frame) noexcept;

// VIP announcements (fwd/exception.cc). Between bursts, on exactly one worker (the DPDK
// worker 0): writes to `requests` up to its size (at most kGarpPerTick) VIPs due for a
// gratuitous ARP - VIPs that appeared since the last completed scan (every VIP at start),
// and every VIP each snap.garp_interval_ms (0 = only new ones). `port` of each request is
// the external port slot, `target_ip` the VIP. Returns how many were written.
[[nodiscard]] size_t announceVips(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                    std::span<ArpRequest> requests) noexcept;

// Writes the gratuitous ARP announcing `vip` at `port`'s MAC: a broadcast ARP request
// with sender = target = vip and a zero target MAC (RFC 5227 sec. 3 "ARP announcement";
// the request form, which every stack updates its cache from). Returns the length (60,
// padded) or 0 when `frame` is too small.
[[nodiscard]] size_t writeGratuitousArp(const PortInfo& port, uint32_t vip, std::span<std::byte> frame) noexcept;

// The IPv6 twin of announceVips, on the same worker at the same pace with a state of its
// own (WorkerContext::garp6): IPv6 VIPs that appeared since its last completed scan
// (snap.vip_since6), and every IPv6 VIP each snap.garp_interval_ms. `port` of each
// request is the external port slot, `target_ip` the VIP.
[[nodiscard]] size_t announceVips6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                                   std::span<NsRequest> requests) noexcept;

// Writes the unsolicited Neighbor Advertisement announcing IPv6 `vip` at `port`'s MAC,
// from the port's link-local address to ff02::1 (pkt::writeUnsolicitedNaFrame). Returns
// the length (86) or 0 when `frame` is too small.
[[nodiscard]] size_t writeUnsolicitedNa(const PortInfo& port, const Ip6& vip, std::span<std::byte> frame) noexcept;

}  // namespace ng::fwd
