#pragma once
// Internal to ng_fwd, included by processor.cc and processor6.cc only: the flow-state
// steps both address families share, written once - backend choice, half-open
// eviction, SNAT port and flow record, session affinity, flow end, tunnel-mode flows,
// and the translation of an ICMP error about a full-NAT flow. Same contracts as
// fwd/processor.h: one worker's context, noexcept, no allocation, no locks, no logging;
// every dropped frame counts one DropReason.
//
// Family<Key> names a family's tables in WorkerContext and its snapshot types. Packet
// work (next hop, full-NAT rewrite, encapsulation, the ICMP answer to a packet too big
// for the tunnel, parsing an ICMP error's quote and rewriting it) stays in each family's
// file, which hands it to the templates below as a `Packets` policy: a struct deriving
// from Family<Key> with the static functions
//   nextHopMac(ctx, port, ip, now_ms) -> const Mac*           (nullptr: unresolved)
//   emit(ctx, frame, p, out, mac, src_ip, src_port, dst_ip, dst_port) -> Action
//   fitsTunnel(ctx, p) -> bool
//   tooBigForTunnel(ctx, snap, in_port, frame, p, vip, now_ms) -> Action
//   tunnelNextHop(ctx, node, now_ms) -> const Mac*            (nullptr: drop counted)
//   encapsulate(ctx, snap, frame, p, mac, node, flow_hash) -> Action
//   translateIcmpError(frame, p, src, dst, q_src, q_sport, q_dst, q_dport)
//                                         (outer and quoted addresses, ports, checksums)
//   icmpErrorNotOurs(ctx, in_port, p, reason, now_ms) -> Action
//                                         (an ICMP error about no flow of ours: dropped
//                                          as `reason`, or IPv4's kernel-shared address)
// Templates rather than virtual calls or a wider key: each pipeline gets its own
// instance, compiled next to its own packet code with no indirection, and IPv4 keeps
// its 16-byte keys. The established-flow path (existingFullNat, existingToNode6/ToClient6)
// is not here: it stays hand-written per family, where its inlining is pinned by the
// benchmarks.

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/hash.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/rewrite.h"

namespace ng::fwd::detail {

// Fixed, and the same for both families, so every box behind ECMP picks the same node
// for the same flow or client.
inline constexpr uint64_t kMaglevSeed = 0x4e4f444547415445ULL;  // "NODEGATE"

// A family's tables in WorkerContext and its snapshot types, by its flow key.
template <class K>
struct Family {
  using Key = K;
  static constexpr bool kIpv6 = std::is_same_v<Key, lb::FlowKey6>;
  using ServicePortT = std::conditional_t<kIpv6, ServicePort6, ServicePort>;
  using BackendT = std::conditional_t<kIpv6, Backend6, Backend>;
  static auto& flows(WorkerContext& ctx) noexcept {
    if constexpr (kIpv6) return ctx.flows6; else return ctx.flows;
  }
  static auto& snat(WorkerContext& ctx) noexcept {
    if constexpr (kIpv6) return ctx.snat6; else return ctx.snat;
  }
  static auto& affinity(WorkerContext& ctx) noexcept {
    if constexpr (kIpv6) return ctx.affinity6; else return ctx.affinity;
  }
  static const ServicePortT* service(const ForwardingSnapshot& snap, const Key& key) noexcept {
    if constexpr (kIpv6) return snap.find6(key.dst_ip, key.dst_port, key.proto);
    else return snap.find(key.dst_ip, key.dst_port, key.proto);
  }
};

inline Action drop(WorkerContext& ctx, DropReason reason) noexcept {
  ctx.counters.drop(reason);
  return Action{};
}

constexpr Action forwardTo(uint8_t port) noexcept { return {.kind = Action::Kind::kForward, .out_port = port}; }

// A full-NAT frame forwarded to its node (`to_node`) or back to its client: the worker's
// direction counter and the packets and bytes of backend `stats_id` that way.
inline void countFullNat(WorkerContext& ctx, uint32_t stats_id, bool to_node, size_t frame_bytes) noexcept {
  BackendCounters& stats = ctx.backend_stats.at(stats_id);
  if (to_node) {
    ctx.counters.to_nodes.add();
    stats.packets_in.add();
    stats.bytes_in.add(frame_bytes);
  } else {
    ctx.counters.to_clients.add();
    stats.packets_out.add();
    stats.bytes_out.add(frame_bytes);
  }
}

template <class Key>
[[nodiscard]] lb::BasicAffinityKey<decltype(Key::src_ip)> affinityKeyOf(const Key& client) noexcept {
  return {.client_ip = client.src_ip, .vip = client.dst_ip, .port = client.dst_port, .proto = client.proto};
}

// A bare SYN from the client on a flow that has closed: a new connection on an old tuple.
// `Frame`: pkt::ParsedFrame or pkt::SimpleIpv4.
template <class Frame, class Key>
[[nodiscard]] bool isReopen(const Frame& p, const lb::BasicFlow<Key>& flow) noexcept {
  return p.proto == pkt::kProtoTcp && (p.tcp_flags & (pkt::tcp::kSyn | pkt::tcp::kAckFlag)) == pkt::tcp::kSyn &&
         flow.state == lb::FlowState::kTcpClosing;
}

// A flow leaves the table (expiry, a reopened tuple, eviction, a drained node): close it
// in its backend's counters and let go of its client's affinity entry, whose idle
// timeout then runs from this flow's last packet.
template <class Key>
void endFlow(WorkerContext& ctx, const lb::BasicFlow<Key>& flow) noexcept {
  ctx.backend_stats.at(flow.stats_id).closed_flows.add();
  if (flow.flags & lb::kFlowHoldsAffinity) {
    Family<Key>::affinity(ctx).release(affinityKeyOf(flow.client), flow.last_seen_ms);
  }
}

// Ends the flows expire() removes.
template <class Key>
class FlowEnder final : public lb::BasicExpiryObserver<Key> {
 public:
  explicit FlowEnder(WorkerContext& ctx) : ctx_(ctx) {}
  void onExpired(const lb::BasicFlow<Key>& flow) noexcept override { endFlow(ctx_, flow); }

 private:
  WorkerContext& ctx_;
};

// SYN-flood policy. A new SYN finds the half-open budget used up (or the table full):
// the oldest half-open flow - created longest ago, its SYN unanswered - gives up its
// record, and the new SYN proceeds. Never an established, closing or UDP flow: those
// are what a flood must not touch, and when the table holds nothing else the new flow is
// dropped (flow_table_full).
// Why evict rather than drop the new SYN: under a flood of spoofed SYNs the budget stays
// full, so dropping would refuse every legitimate new connection for as long as the flood
// lasts. With eviction a half-open entry lives budget / flood-rate seconds (e.g. 262144
// entries at 10 Mpps: 26 ms), far longer than a node takes to answer a SYN (< 1 ms in a
// cluster), so real clients still connect while the flood's entries churn among
// themselves - the same choice as Linux conntrack's early_drop of unassured entries.
// The cost is bounded: one unlink and erase per new SYN, no scan, nothing allocated.
template <class Key>
void makeHalfOpenRoom(WorkerContext& ctx) noexcept {
  auto& flows = Family<Key>::flows(ctx);
  lb::BasicFlow<Key>* victim = flows.oldestHalfOpen();
  if (victim == nullptr) return;  // the table is full of flows a flood must not evict
  endFlow(ctx, *victim);
  flows.erase(victim);
  ctx.counters.half_open_evictions.add();
}

// The node for a new flow of `sp`, or nullptr with no_backend counted. Without affinity:
// Maglev on the 5-tuple. With sessionAffinity ClientIP: the node remembered for this
// client while it still serves the port, else Maglev on the client address alone (so
// every worker and every box behind ECMP makes the same first choice).
template <class Key>
const typename Family<Key>::BackendT* newFlowBackend(WorkerContext& ctx, const typename Family<Key>::ServicePortT& sp,
                                                     const Key& key, uint32_t now_ms) noexcept {
  if (!sp.maglev || sp.backends.empty()) {
    ctx.counters.drop(DropReason::kNoBackend);
    return nullptr;
  }
  uint64_t hash = 0;
  if (sp.affinity_timeout_ms != 0) {
    if (const auto* e = Family<Key>::affinity(ctx).find(affinityKeyOf(key), now_ms, sp.affinity_timeout_ms)) {
      if (const auto* b = sp.servingBackend(e->node_ip, e->node_port)) {
        ctx.counters.affinity_hits.add();
        return b;
      }
    }
    hash = lb::hashFlowKey(Key{.src_ip = key.src_ip}, kMaglevSeed);
  } else {
    hash = lb::hashFlowKey(key, kMaglevSeed);
  }
  const uint16_t slot = sp.maglev->lookup(hash);
  if (slot == lb::MaglevTable::kNoBackend || slot >= sp.backends.size()) {
    ctx.counters.drop(DropReason::kNoBackend);
    return nullptr;
  }
  return &sp.backends[slot];
}

// A record was just created for `key` toward `backend`: it counts toward the backend,
// and with ClientIP affinity the client's node is remembered. Remembered only once the
// flow exists, so a dropped SYN leaves no promise behind; a full bucket is no error:
// this client simply keeps the client-IP Maglev choice.
template <class Key>
void startFlow(WorkerContext& ctx, const typename Family<Key>::ServicePortT& sp, lb::BasicFlow<Key>& flow,
               const typename Family<Key>::BackendT& backend, const Key& key, uint32_t now_ms) noexcept {
  flow.stats_id = backend.stats_id;
  if (sp.affinity_timeout_ms != 0) {
    if (Family<Key>::affinity(ctx).remember(affinityKeyOf(key), backend.node_ip, backend.node_port, now_ms,
                                            sp.affinity_timeout_ms)) {
      flow.flags |= lb::kFlowHoldsAffinity;
    } else {
      ctx.counters.affinity_overflows.add();
    }
  }
  ctx.counters.new_flows.add();
  ctx.backend_stats.at(backend.stats_id).new_flows.add();
}

// --- Tunnel mode (DSR): the flow policy of processor.cc's tunnel-mode comment ----------

// Client -> VIP:port on a tunnel flow we know: to the flow's node. `flow_hash` is
// FlowTable::hashOf(flow.client).
template <class Packets>
[[gnu::noinline]] Action existingTunnel(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                        std::span<std::byte> frame, pkt::ParsedFrame& p,
                                        lb::BasicFlow<typename Packets::Key>& flow, uint32_t flow_hash,
                                        uint32_t now_ms) noexcept {
  if (!Packets::fitsTunnel(ctx, p)) [[unlikely]] {
    return Packets::tooBigForTunnel(ctx, snap, in_port, frame, p, flow.client.dst_ip, now_ms);
  }
  const auto node = flow.node.src_ip;
  const Mac* mac = Packets::tunnelNextHop(ctx, node, now_ms);
  if (!mac) return Action{};
  if (p.proto == pkt::kProtoTcp) Packets::flows(ctx).track(flow, p.tcp_flags, /*from_client=*/true);
  flow.last_seen_ms = now_ms;
  BackendCounters& stats = ctx.backend_stats.at(flow.stats_id);
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  return Packets::encapsulate(ctx, snap, frame, p, *mac, node, flow_hash);
}

// Client -> VIP:port of a tunnel-mode port without a flow (source ranges passed).
// `flow_hash` is FlowTable::hashOf(key).
template <class Packets>
[[gnu::noinline]] Action newTunnelFlow(WorkerContext& ctx, const ForwardingSnapshot& snap,
                                       const typename Packets::ServicePortT& sp, uint8_t in_port,
                                       std::span<std::byte> frame, pkt::ParsedFrame& p,
                                       const typename Packets::Key& key, uint32_t flow_hash,
                                       uint32_t now_ms) noexcept {
  using Key = typename Packets::Key;
  const auto* chosen = newFlowBackend(ctx, sp, key, now_ms);
  if (chosen == nullptr) return Action{};
  const auto& backend = *chosen;
  // Checked before any state exists: an answered or undeliverable packet leaves none.
  if (!Packets::fitsTunnel(ctx, p)) [[unlikely]] {
    return Packets::tooBigForTunnel(ctx, snap, in_port, frame, p, key.dst_ip, now_ms);
  }
  const Mac* mac = Packets::tunnelNextHop(ctx, backend.node_ip, now_ms);
  if (!mac) return Action{};

  auto& flows = Packets::flows(ctx);
  const bool is_tcp = p.proto == pkt::kProtoTcp;
  lb::BasicFlow<Key>* flow = nullptr;
  if (!is_tcp || !(p.tcp_flags & pkt::tcp::kRst)) {
    // A SYN, or a segment of a connection this box has not seen: half-open.
    if (is_tcp && flows.halfOpenFull()) makeHalfOpenRoom<Key>(ctx);
    const Key node{.src_ip = backend.node_ip, .src_port = backend.node_port, .proto = p.proto};
    if (flows.size() < flows.capacity()) {
      flow = flows.insertClientOnly(key, node, is_tcp ? lb::FlowState::kTcpSynSent : lb::FlowState::kUdp, now_ms);
    }
    if (flow == nullptr) ctx.counters.tunnel_stateless.add();
  }
  if (flow != nullptr) {
    flow->flags |= lb::kFlowTunnel;
    startFlow(ctx, sp, *flow, backend, key, now_ms);
  }
  BackendCounters& stats = ctx.backend_stats.at(backend.stats_id);
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  return Packets::encapsulate(ctx, snap, frame, p, *mac, backend.node_ip, flow_hash);
}

// --- New flows ---------------------------------------------------------------------------

// Client -> VIP:port without a flow: choose a node by Maglev and create the flow.
// `flow_hash` is FlowTable::hashOf(key) when the caller has it (have_hash), else unused.
template <class Packets>
Action newFlowToNode(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                     std::span<std::byte> frame, pkt::ParsedFrame& p, const typename Packets::Key& key,
                     bool have_hash, uint32_t flow_hash, uint32_t now_ms) noexcept {
  using Key = typename Packets::Key;
  const bool is_tcp = p.proto == pkt::kProtoTcp;
  const auto* sp = Packets::service(snap, key);
  if (sp == nullptr) return drop(ctx, DropReason::kNoService);
  // loadBalancerSourceRanges: before anything else is looked at or created (no flow, no
  // SNAT port, no affinity entry, no neighbour request), so a denied source costs a
  // binary search. Checked on new flows only, like kube-proxy's and cloud load
  // balancers' firewall rules (conntrack accepts what is established): a flow whose
  // source a reload denies continues until it ends or idles out, its client's next
  // connection is refused, and the established-flow fast path stays free of the check.
  if (!sp->allowsSource(key.src_ip)) return drop(ctx, DropReason::kSourceDenied);
  if (sp->mode == ForwardingMode::kTunnel) {
    return newTunnelFlow<Packets>(ctx, snap, *sp, in_port, frame, p, key,
                                  have_hash ? flow_hash : lb::BasicFlowTable<Key>::hashOf(key), now_ms);
  }
  // Full-NAT state is created only by a connection's first segment; anything else
  // without a flow (mid-stream after a restart, stray ACK/RST floods) is dropped.
  if (is_tcp && (p.tcp_flags & (pkt::tcp::kSyn | pkt::tcp::kAckFlag | pkt::tcp::kRst)) != pkt::tcp::kSyn) {
    return drop(ctx, DropReason::kNoFlow);
  }
  const auto* chosen = newFlowBackend(ctx, *sp, key, now_ms);
  if (chosen == nullptr) return Action{};
  const auto& backend = *chosen;
  const uint8_t out = ctx.internal_port;
  // Resolve before creating state: an undeliverable SYN must not take a port.
  const Mac* mac = Packets::nextHopMac(ctx, out, backend.node_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  auto& flows = Packets::flows(ctx);
  if (is_tcp && flows.halfOpenFull()) makeHalfOpenRoom<Key>(ctx);
  if (flows.size() >= flows.capacity()) return drop(ctx, DropReason::kFlowTableFull);
  auto snat = Packets::snat(ctx).allocate(flows, backend.node_ip, backend.node_port, p.proto);
  if (!snat) return drop(ctx, DropReason::kSnatExhausted);
  const Key node_key{.src_ip = backend.node_ip, .dst_ip = snat->address, .src_port = backend.node_port,
                     .dst_port = snat->port, .proto = p.proto};
  lb::BasicFlow<Key>* flow =
      flows.insert(key, node_key, is_tcp ? lb::FlowState::kTcpSynSent : lb::FlowState::kUdp, now_ms);
  if (flow == nullptr) return drop(ctx, DropReason::kFlowTableFull);
  if constexpr (!Packets::kIpv6) {
    flow->nat = pkt::natDelta({key.src_ip, key.src_port, key.dst_ip, key.dst_port},
                              {snat->address, snat->port, backend.node_ip, backend.node_port});
  }
  startFlow(ctx, *sp, *flow, backend, key, now_ms);
  ctx.counters.to_nodes.add();
  BackendCounters& stats = ctx.backend_stats.at(backend.stats_id);
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  return Packets::emit(ctx, frame, p, out, *mac, snat->address, snat->port, backend.node_ip, backend.node_port);
}

// --- ICMP errors about full-NAT flows ---------------------------------------------------

// An ICMP error (IPv4 destination unreachable / time exceeded, ICMPv6 Packet Too Big)
// whose quote, read backwards, is `key`: the family parsed and checked the quote
// (processor.cc handleIcmpError, whose comment gives the policy and its reasons, and
// processor6.cc handlePacketTooBig6). On the external port the quote is the box's
// VIP:port -> client, so `key` must be a flow's client key; on the internal port it is
// SNAT:port -> node:nodePort, a node key. The error goes on to the flow's other side as
// if that side's own packet had met the problem: to the node from the SNAT address
// quoting node:nodePort -> SNAT:port, or to the client from the VIP quoting client:port
// -> VIP:port. A quote of no flow goes to the flow's owner worker by the same steering
// as replies, else is not ours; a tunnel-mode flow's node answers the client directly,
// so its quote is a packet the box never sent and the record has no SNAT side to
// translate to (icmp_unsupported).
template <class Packets>
Action translateFlowIcmpError(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame, pkt::ParsedFrame& p,
                              const typename Packets::Key& key, uint32_t now_ms) noexcept {
  using Key = typename Packets::Key;
  const bool external = ctx.ports[in_port].role == PortRole::kExternal;
  const auto hit = Packets::flows(ctx).lookup(key);
  if (hit.flow == nullptr || hit.by_node_key == external) {
    if (hit.flow == nullptr && ctx.steering.workers() > 1) [[unlikely]] {
      uint32_t owner = ctx.id;
      if (!external) {
        owner = ctx.steering.owner(key.src_ip, key.dst_ip, key.src_port, key.dst_port);
      } else if (ctx.steer_clients) {
        owner = ctx.steering.clientOwner(lb::BasicFlowTable<Key>::hashOf(key));
      }
      if (owner != ctx.id) return Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
    }
    return Packets::icmpErrorNotOurs(ctx, in_port, p, DropReason::kNoFlow, now_ms);
  }
  const lb::BasicFlow<Key>& flow = *hit.flow;
  if (flow.flags & lb::kFlowTunnel) return drop(ctx, DropReason::kIcmpUnsupported);
  if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
  const uint8_t out = external ? ctx.internal_port : ctx.external_port;
  const auto peer = external ? flow.node.src_ip : flow.client.src_ip;
  const Mac* mac = Packets::nextHopMac(ctx, out, peer, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (external) {
    // The node's stack finds its socket by the quote: its own packet as it sent it.
    Packets::translateIcmpError(frame, p, flow.node.dst_ip, flow.node.src_ip, flow.node.src_ip, flow.node.src_port,
                                flow.node.dst_ip, flow.node.dst_port);
    ctx.counters.to_nodes.add();
  } else {
    Packets::translateIcmpError(frame, p, flow.client.dst_ip, flow.client.src_ip, flow.client.src_ip,
                                flow.client.src_port, flow.client.dst_ip, flow.client.dst_port);
    ctx.counters.to_clients.add();
  }
  ctx.counters.icmp_errors_translated.add();
  pkt::setEthernet(frame, *mac, ctx.ports[out].mac);
  return forwardTo(out);
}

}  // namespace ng::fwd::detail
