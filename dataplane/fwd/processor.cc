#include "dataplane/fwd/processor.h"

#include <algorithm>

#include "dataplane/lb/hash.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/rewrite.h"

namespace ng::fwd {
namespace {

using pkt::ParsedFrame;
using pkt::ParseStatus;

// Seed of the hash that picks a Maglev slot (of the 5-tuple, or of the client address
// alone with session affinity). Fixed, so every box behind ECMP picks the same node for
// the same flow or client.
constexpr uint64_t kMaglevSeed = 0x4e4f444547415445ULL;  // "NODEGATE"

constexpr Action forwardTo(uint8_t port) noexcept { return {.kind = Action::Kind::kForward, .out_port = port}; }
constexpr Action kConsumed{.kind = Action::Kind::kConsumed};

Action drop(WorkerContext& ctx, DropReason reason) noexcept {
  ctx.counters.drop(reason);
  return Action{};
}

DropReason reasonFor(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::kUnsupportedEtherType: return DropReason::kUnsupportedEtherType;
    case ParseStatus::kBadArp: return DropReason::kBadArp;
    case ParseStatus::kBadIpHeader: return DropReason::kBadIpHeader;
    case ParseStatus::kIpChecksum: return DropReason::kIpChecksum;
    case ParseStatus::kBadL4Header: return DropReason::kBadL4Header;
    case ParseStatus::kOk:
    case ParseStatus::kTruncated: break;
  }
  return DropReason::kTruncated;
}

bool isSnatAddress(const ForwardingSnapshot& snap, uint32_t ip) noexcept {
  return std::find(snap.snat_addresses.begin(), snap.snat_addresses.end(), ip) !=
         snap.snat_addresses.end();
}

// Sources no router forwards from (RFC 1812 5.3.7), plus our own addresses: a packet
// "from" a VIP or from the box is spoofed or looped.
bool isMartianSource(const WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t src) noexcept {
  const uint8_t first = static_cast<uint8_t>(src >> 24);
  if (src == 0 || src == 0xffffffffu || first == 127 || first >= 224) return true;
  for (const PortInfo& port : ctx.ports) {
    if (src == port.address) return true;
  }
  return snap.isVip(src) || isSnatAddress(snap, src);
}

// Queues an ARP request for `ip` out of `port` when the neighbour table says one is due.
void requestNeighbor(WorkerContext& ctx, uint8_t port, uint32_t ip, uint32_t now_ms) noexcept {
  if (!ctx.neighbors.want(ip, now_ms)) return;
  if (ctx.arp_queue_len < ctx.arp_queue.size()) {
    ctx.arp_queue[ctx.arp_queue_len++] = ArpRequest{.port = port, .target_ip = ip};
  }
}

// Resolves the destination MAC for `dst` out of `port`; nullptr (request queued) if unknown.
const Mac* nextHopMac(WorkerContext& ctx, uint8_t port, uint32_t dst, uint32_t now_ms) noexcept {
  const uint32_t hop = ctx.ports[port].nextHop(dst);
  if (hop == 0) return nullptr;
  if (const Mac* mac = ctx.neighbors.lookup(hop)) return mac;
  requestNeighbor(ctx, port, hop, now_ms);
  return nullptr;
}

Action handleArp(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                 std::span<std::byte> frame, const ParsedFrame& p, uint32_t now_ms) noexcept {
  const PortInfo& port = ctx.ports[in_port];
  // Learn a sender only on the port whose subnet holds it: an ARP from the client side
  // claiming a node's address must not redirect the node's traffic (found by the fuzzer).
  // A sender address of 0 is an ARP probe (RFC 5227): answer, learn nothing.
  const bool sender_valid =
      p.arp_spa != 0 && port.onLink(p.arp_spa) && !isMartianSource(ctx, snap, p.arp_spa);
  if (p.arp_op == pkt::arp::kReply) {
    // Learn only what we asked for: unsolicited replies would let anyone on the
    // segment fill or poison the table.
    if (sender_valid && (ctx.neighbors.pending(p.arp_spa) || ctx.neighbors.lookup(p.arp_spa))) {
      ctx.neighbors.learn(p.arp_spa, p.arp_sha, now_ms);
    }
    // The device hashes ARP to one queue (the kernel's fanout sees no ports), but every
    // worker asks for its own next hops: let the others see the answer.
    return ctx.steering.workers() > 1 ? Action{.kind = Action::Kind::kShare} : kConsumed;
  }
  const bool ours = p.arp_tpa == port.address ||
                    (port.role == PortRole::kExternal && snap.isVip(p.arp_tpa)) ||
                    (port.role == PortRole::kInternal && isSnatAddress(snap, p.arp_tpa));
  if (!ours) {
    // Like Linux: refresh an entry we already have, create none.
    if (sender_valid && ctx.neighbors.lookup(p.arp_spa)) ctx.neighbors.learn(p.arp_spa, p.arp_sha, now_ms);
    return drop(ctx, DropReason::kArpNotForUs);
  }
  if (sender_valid) ctx.neighbors.learn(p.arp_spa, p.arp_sha, now_ms);
  pkt::arpRequestToReply(frame, p, port.mac);
  ctx.counters.arp_replies.add();
  return forwardTo(in_port);
}

Action handleIcmp(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame,
                  ParsedFrame& p) noexcept {
  if (p.icmp_type != pkt::icmp::kEchoRequest || p.is_fragment) {
    return drop(ctx, DropReason::kIcmpUnsupported);
  }
  pkt::icmpEchoToReply(frame, p, ctx.ports[in_port].mac);
  ctx.counters.icmp_echo_replies.add();
  return forwardTo(in_port);
}

// Rewrites a frame for `out_port` toward `dst_mac` (TTL, addresses, ports, MACs).
Action emit(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, uint8_t out_port,
            const Mac& dst_mac, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip,
            uint16_t dst_port) noexcept {
  pkt::forwardNat(frame, p, src_ip, src_port, dst_ip, dst_port);
  pkt::setEthernet(frame, dst_mac, ctx.ports[out_port].mac);
  return forwardTo(out_port);
}

lb::FlowKey keyOf(const ParsedFrame& p) noexcept {
  return lb::FlowKey{.src_ip = p.src_ip, .dst_ip = p.dst_ip, .src_port = p.src_port,
                     .dst_port = p.dst_port, .proto = p.proto};
}

// TCP or UDP with ports: the frames the flow table can know.
bool hasFlowKey(const ParsedFrame& p) noexcept {
  return p.l3 == pkt::L3::kIpv4 && !p.is_fragment && !p.has_vlan &&
         (p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp);
}

// A bare SYN from the client on a flow that has closed: a new connection on an old tuple.
bool isReopen(const ParsedFrame& p, const lb::Flow& flow) noexcept {
  return p.proto == pkt::kProtoTcp && (p.tcp_flags & (pkt::tcp::kSyn | pkt::tcp::kAckFlag)) == pkt::tcp::kSyn &&
         flow.state == lb::FlowState::kTcpClosing;
}

// Client -> VIP:port on a flow we know: to the flow's node, whatever the tables say now.
Action existingToNode(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, lb::Flow& flow,
                      uint32_t now_ms) noexcept {
  const uint8_t out = ctx.internal_port;
  const Mac* mac = nextHopMac(ctx, out, flow.node.src_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (p.proto == pkt::kProtoTcp) lb::trackTcp(flow, p.tcp_flags, /*from_client=*/true);
  flow.last_seen_ms = now_ms;
  ctx.counters.to_nodes.add();
  BackendCounters& stats = ctx.backend_stats.at(flow.stats_id);
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  return emit(ctx, frame, p, out, *mac, flow.node.dst_ip, flow.node.dst_port, flow.node.src_ip,
              flow.node.src_port);
}

// Node:nodePort -> SNAT address:port: restore VIP:port -> client.
Action existingToClient(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, lb::Flow& flow,
                        uint32_t now_ms) noexcept {
  const uint8_t out = ctx.external_port;
  const Mac* mac = nextHopMac(ctx, out, flow.client.src_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (p.proto == pkt::kProtoTcp) lb::trackTcp(flow, p.tcp_flags, /*from_client=*/false);
  flow.last_seen_ms = now_ms;
  ctx.counters.to_clients.add();
  BackendCounters& stats = ctx.backend_stats.at(flow.stats_id);
  stats.packets_out.add();
  stats.bytes_out.add(frame.size());
  return emit(ctx, frame, p, out, *mac, flow.client.dst_ip, flow.client.dst_port, flow.client.src_ip,
              flow.client.src_port);
}

lb::AffinityKey affinityKeyOf(const lb::FlowKey& client) noexcept {
  return lb::AffinityKey{.client_ip = client.src_ip, .vip = client.dst_ip, .port = client.dst_port,
                         .proto = client.proto};
}

// A flow leaves the table (expiry or a reopened tuple): close it in its backend's
// counters and let go of its client's affinity entry, whose idle timeout then runs from
// this flow's last packet.
void endFlow(WorkerContext& ctx, const lb::Flow& flow) noexcept {
  ctx.backend_stats.at(flow.stats_id).closed_flows.add();
  if (flow.flags & lb::kFlowHoldsAffinity) ctx.affinity.release(affinityKeyOf(flow.client), flow.last_seen_ms);
}

// The node for a new flow of `sp`. Without affinity: Maglev on the 5-tuple. With
// sessionAffinity ClientIP: the node remembered for this client while it still serves
// the port, else Maglev on the client address alone (so every worker and every box
// behind ECMP makes the same first choice). nullptr: no backend.
const Backend* chooseBackend(WorkerContext& ctx, const ServicePort& sp, const lb::FlowKey& key,
                             uint32_t now_ms) noexcept {
  uint64_t hash = 0;
  if (sp.affinity_timeout_ms != 0) {
    if (const lb::AffinityEntry* e = ctx.affinity.find(affinityKeyOf(key), now_ms, sp.affinity_timeout_ms)) {
      if (const Backend* b = sp.servingBackend(e->node_ip, e->node_port)) {
        ctx.counters.affinity_hits.add();
        return b;
      }
    }
    hash = lb::hashFlowKey(lb::FlowKey{.src_ip = key.src_ip}, kMaglevSeed);
  } else {
    hash = lb::hashFlowKey(key, kMaglevSeed);
  }
  const uint16_t slot = sp.maglev->lookup(hash);
  if (slot == lb::MaglevTable::kNoBackend || slot >= sp.backends.size()) return nullptr;
  return &sp.backends[slot];
}

// Client -> VIP:port without a flow: choose a node by Maglev and create the flow.
Action newFlowToNode(WorkerContext& ctx, const ForwardingSnapshot& snap, std::span<std::byte> frame,
                     ParsedFrame& p, uint32_t now_ms) noexcept {
  const bool is_tcp = p.proto == pkt::kProtoTcp;
  const ServicePort* sp = snap.find(p.dst_ip, p.dst_port, p.proto);
  if (sp == nullptr) return drop(ctx, DropReason::kNoService);
  // loadBalancerSourceRanges: before anything else is looked at or created (no flow, no
  // SNAT port, no affinity entry, no ARP request), so a denied source costs a binary
  // search. Checked on new flows only, like kube-proxy's and cloud load balancers'
  // firewall rules (conntrack accepts what is established): a flow whose source a reload
  // denies continues until it ends or idles out, its client's next connection is refused,
  // and the established-flow fast path stays free of the check.
  if (!sp->allowsSource(p.src_ip)) return drop(ctx, DropReason::kSourceDenied);
  // Full-NAT state is created only by a connection's first segment; anything else
  // without a flow (mid-stream after a restart, stray ACK/RST floods) is dropped.
  if (is_tcp && (p.tcp_flags & (pkt::tcp::kSyn | pkt::tcp::kAckFlag | pkt::tcp::kRst)) != pkt::tcp::kSyn) {
    return drop(ctx, DropReason::kNoFlow);
  }
  if (!sp->maglev || sp->backends.empty()) return drop(ctx, DropReason::kNoBackend);
  const lb::FlowKey key = keyOf(p);
  const Backend* chosen = chooseBackend(ctx, *sp, key, now_ms);
  if (chosen == nullptr) return drop(ctx, DropReason::kNoBackend);
  const Backend& backend = *chosen;
  const uint8_t out = ctx.internal_port;
  // Resolve before creating state: an undeliverable SYN must not take a port.
  const Mac* mac = nextHopMac(ctx, out, backend.node_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (ctx.flows.size() >= ctx.flows.capacity()) return drop(ctx, DropReason::kFlowTableFull);
  auto snat = ctx.snat.allocate(ctx.flows, backend.node_ip, backend.node_port, p.proto);
  if (!snat) return drop(ctx, DropReason::kSnatExhausted);
  const lb::FlowKey node_key{.src_ip = backend.node_ip, .dst_ip = snat->address,
                             .src_port = backend.node_port, .dst_port = snat->port, .proto = p.proto};
  lb::Flow* flow = ctx.flows.insert(key, node_key, is_tcp ? lb::FlowState::kTcpSynSent : lb::FlowState::kUdp,
                                    now_ms);
  if (flow == nullptr) return drop(ctx, DropReason::kFlowTableFull);
  flow->stats_id = backend.stats_id;
  if (sp->affinity_timeout_ms != 0) {
    // Remembered only once the flow exists: a dropped SYN leaves no promise behind. A
    // full bucket is no error: this client simply keeps the client-IP Maglev choice.
    if (ctx.affinity.remember(affinityKeyOf(key), backend.node_ip, backend.node_port, now_ms,
                              sp->affinity_timeout_ms)) {
      flow->flags |= lb::kFlowHoldsAffinity;
    } else {
      ctx.counters.affinity_overflows.add();
    }
  }
  ctx.counters.new_flows.add();
  ctx.counters.to_nodes.add();
  BackendCounters& stats = ctx.backend_stats.at(backend.stats_id);
  stats.new_flows.add();
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  return emit(ctx, frame, p, out, *mac, snat->address, snat->port, backend.node_ip, backend.node_port);
}

// Everything after parsing. `flow_hash` is FlowTable::hashOf(key) when the caller has
// it (burst path), else 0 with `have_hash` false.
Action decide(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
              std::span<std::byte> frame, ParsedFrame& p, bool have_hash, uint32_t flow_hash,
              uint32_t now_ms) noexcept {
  // Ports are configured untagged in this version; a tag means a misconfigured switch.
  if (p.has_vlan) return drop(ctx, DropReason::kVlan);
  if (p.l3 == pkt::L3::kArp) return handleArp(ctx, snap, in_port, frame, p, now_ms);
  // Fragment policy (this version): dropped and counted. Non-first fragments carry no
  // ports, so they cannot be matched to a flow without a fragment table; forwarding
  // only first fragments would deliver datagrams that can never be reassembled.
  if (p.is_fragment) return drop(ctx, DropReason::kFragment);

  const PortInfo& port = ctx.ports[in_port];
  const bool l4_balanced = hasFlowKey(p);
  // Fast path: a known flow. Its first packet passed every check below (martians, VIP,
  // service), and the key pins source and destination, so only the TTL is left to check.
  if (l4_balanced) {
    const lb::FlowKey key = keyOf(p);
    if (ctx.steer_clients && port.role == PortRole::kExternal) [[unlikely]] {
      // Several workers on a device that may move a flow's frames between queues: the
      // flow hash decides which worker owns a client flow (lb/reply_steering.h).
      const uint32_t owner = ctx.steering.clientOwner(have_hash ? flow_hash : lb::FlowTable::hashOf(key));
      if (owner != ctx.id) return Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
    }
    const lb::FlowTable::Hit hit = have_hash ? ctx.flows.lookup(key, flow_hash) : ctx.flows.lookup(key);
    const bool from_client = port.role == PortRole::kExternal && hit.flow != nullptr && !hit.by_node_key;
    const bool from_node = port.role == PortRole::kInternal && hit.flow != nullptr && hit.by_node_key;
    if (from_client && isReopen(p, *hit.flow)) [[unlikely]] {
      // The client reuses the 4-tuple of a connection that has closed (its port came
      // round again while the node sat in TIME_WAIT): a new connection, like conntrack
      // treats it, with a fresh backend choice from today's table - the old node may be
      // draining or gone. The old record (and its SNAT port's quarantine) ends here; the
      // new flow takes another SNAT port.
      endFlow(ctx, *hit.flow);
      ctx.flows.erase(hit.flow);
    } else if (from_client || from_node) {
      if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
      return from_client ? existingToNode(ctx, frame, p, *hit.flow, now_ms)
                         : existingToClient(ctx, frame, p, *hit.flow, now_ms);
    }
  }

  if (isMartianSource(ctx, snap, p.src_ip)) return drop(ctx, DropReason::kMartian);
  if (port.role == PortRole::kExternal) {
    if (snap.isVip(p.dst_ip)) {
      if (p.proto == pkt::kProtoIcmp) return handleIcmp(ctx, in_port, frame, p);
      if (!l4_balanced) return drop(ctx, DropReason::kUnsupportedProtocol);
      if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
      return newFlowToNode(ctx, snap, frame, p, now_ms);
    }
  } else if (l4_balanced && isSnatAddress(snap, p.dst_ip)) {
    // A reply for a flow we do not have: another worker's when its SNAT port says so
    // (the device put it on our queue), else nobody's.
    if (ctx.steering.workers() > 1) [[unlikely]] {
      const uint32_t owner = ctx.steering.owner(p.src_ip, p.dst_ip, p.src_port, p.dst_port);
      if (owner != ctx.id) return Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
    }
    return drop(ctx, DropReason::kNoFlow);
  } else if (snap.isVip(p.dst_ip)) {
    return drop(ctx, DropReason::kWrongPort);  // VIP traffic from the node side (hairpin)
  }
  if (p.dst_ip == port.address) {
    if (p.proto == pkt::kProtoIcmp) return handleIcmp(ctx, in_port, frame, p);
    return drop(ctx, DropReason::kLocalNoExceptionPath);
  }
  return drop(ctx, DropReason::kNotForUs);
}

}  // namespace

uint32_t WorkerContext::defaultAffinityCapacity(uint32_t flow_capacity) noexcept {
  return std::max<uint32_t>(1024, flow_capacity / 4);
}

WorkerContext::WorkerContext(unsigned worker_id, std::vector<PortInfo> port_infos, uint32_t flow_capacity,
                             uint32_t affinity_capacity, uint32_t backend_stats_capacity)
    : id(worker_id),
      ports(std::move(port_infos)),
      flows(flow_capacity),
      backend_stats(backend_stats_capacity),
      affinity(affinity_capacity != 0 ? affinity_capacity : defaultAffinityCapacity(flow_capacity)) {
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].role == PortRole::kExternal) external_port = static_cast<uint8_t>(i);
    if (ports[i].role == PortRole::kInternal) internal_port = static_cast<uint8_t>(i);
  }
}

Action processFrame(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                    std::span<std::byte> frame, uint32_t now_ms) noexcept {
  ParsedFrame parsed;
  const ParseStatus status = pkt::parseFrame(frame, parsed);
  if (status != ParseStatus::kOk) return drop(ctx, reasonFor(status));
  return decide(ctx, snap, in_port, frame, parsed, false, 0, now_ms);
}

void processBurst(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                  std::span<const std::span<std::byte>> frames, std::span<Action> actions,
                  uint32_t now_ms) noexcept {
  const size_t n = std::min({frames.size(), actions.size(), kMaxBurst});
  // Filled in place by parseFrame (no per-burst zeroing, no copies).
  std::array<ParsedFrame, kMaxBurst> parsed;
  std::array<ParseStatus, kMaxBurst> status;
  std::array<uint32_t, kMaxBurst> hashes;
  std::array<bool, kMaxBurst> keyed;
  // Stage 1: parse, hash, prefetch the index slots. Stage 2: prefetch the records those
  // slots point to. Stage 3: decide, in arrival order. Each stage's misses overlap.
  for (size_t i = 0; i < n; ++i) {
    status[i] = pkt::parseFrame(frames[i], parsed[i]);
    keyed[i] = status[i] == ParseStatus::kOk && hasFlowKey(parsed[i]);
    hashes[i] = keyed[i] ? lb::FlowTable::hashOf(keyOf(parsed[i])) : 0;
    if (keyed[i]) ctx.flows.prefetchSlot(hashes[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (keyed[i]) ctx.flows.prefetchRecord(hashes[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    actions[i] = status[i] == ParseStatus::kOk
                     ? decide(ctx, snap, in_port, frames[i], parsed[i], keyed[i], hashes[i], now_ms)
                     : drop(ctx, reasonFor(status[i]));
  }
}

void onSnapshot(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms) noexcept {
  ctx.snat.setAddresses(snap.snat_addresses);
  for (const StaticNeighbor& n : snap.static_neighbors) {
    ctx.neighbors.learn(n.ip, n.mac, now_ms, /*is_static=*/true);
  }
  ctx.applied_generation.store(snap.generation, std::memory_order_relaxed);
}

namespace {

// Ends expired flows: closed in their backend's counters (active = new - closed) and
// released from their client's affinity entry.
class FlowEnder final : public lb::ExpiryObserver {
 public:
  explicit FlowEnder(WorkerContext& ctx) : ctx_(ctx) {}
  void onExpired(const lb::Flow& flow) noexcept override { endFlow(ctx_, flow); }

 private:
  WorkerContext& ctx_;
};

}  // namespace

size_t slowTick(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                uint32_t expiry_budget, std::span<ArpRequest> requests) noexcept {
  FlowEnder ender(ctx);
  ctx.counters.expired_flows.add(ctx.flows.expire(now_ms, expiry_budget, snap.timeouts, &ender));
  // Affinity entries at the same pace (in buckets of kWays entries), after the flows
  // that just ended released theirs.
  (void)ctx.affinity.expire(now_ms, (expiry_budget + lb::AffinityTable::kWays - 1) / lb::AffinityTable::kWays);
  ctx.counters.active_flows.set(ctx.flows.size());

  size_t n = 0;
  for (uint8_t i = 0; i < ctx.arp_queue_len && n < requests.size(); ++i) requests[n++] = ctx.arp_queue[i];
  ctx.arp_queue_len = 0;

  // Keep the next hops we will need resolved before traffic needs them: the nodes and
  // each port's gateway. Scanned every 100 ms, not every tick.
  constexpr uint32_t kScanMs = 100;
  if (now_ms - ctx.last_neighbor_scan_ms < kScanMs) return n;
  ctx.last_neighbor_scan_ms = now_ms;
  auto refresh = [&](uint8_t port, uint32_t hop) {
    if (hop != 0 && n < requests.size() && ctx.neighbors.refreshDue(hop, now_ms)) {
      requests[n++] = ArpRequest{.port = port, .target_ip = hop};
    }
  };
  for (uint32_t target : snap.resolve_targets) {
    refresh(ctx.internal_port, ctx.ports[ctx.internal_port].nextHop(target));
  }
  for (uint8_t i = 0; i < ctx.ports.size(); ++i) refresh(i, ctx.ports[i].gateway);
  return n;
}

size_t writeArpRequest(const PortInfo& port, uint32_t target_ip, std::span<std::byte> frame) noexcept {
  return pkt::writeArpRequestFrame(frame, port.mac, port.address, target_ip);
}

}  // namespace ng::fwd
