// The IPv6 data path: full-NAT IPv6 -> IPv6 (client v6 -> VIP6:port becomes
// SNAT6:port -> node6:nodePort; replies restored), with the IPv4 path's rules - new
// flows by Maglev, established flows keep their node, source ranges and ClientIP
// affinity on new flows only, SYN-flood policy, drain timeout, reply steering, fragment
// policy - applied to IPv6 state kept in its own tables (WorkerContext::flows6 and
// friends), so the IPv4 path and its per-flow memory are untouched.
//
// IPv6-specific decisions (why):
// - Routing headers with segments left > 0 are dropped (routing_header) whatever the
//   destination: every address we accept is our own (VIP, SNAT, box), and RFC 8200 4.4
//   would have us process the header and forward to the next segment - source routing
//   through the balancer, which the deprecation of type 0 (RFC 5095) showed is only
//   ever used to bounce traffic past filters. Segments left = 0 is a finished route:
//   forwarded like any extension header.
// - Hop limit: decremented on every forwarded packet, <= 1 dropped (ttl_exceeded), as
//   for IPv4; ND frames must arrive with 255 (nd.cc) and are never forwarded.
// - Martian sources (nd.cc, isMartianSource6) are dropped before anything is created.
//   Link-local sources may talk to the box (ND, echo to its link-local address) but
//   never open a flow: RFC 4291 2.5.6 keeps them on their link, and full-NAT would carry
//   the conversation to the node's link.
// - Link-local and multicast destinations are never forwarded: only ND (the
//   solicited-node groups of our addresses) and echo to our own link-local address are
//   answered; everything else is not_for_us.
// - Extension headers are forwarded as they are (only addresses, ports, hop limit and
//   the Fragment header's identification change). None of them is covered by the L4
//   checksum, so the incremental update of addresses and ports is the whole correction.
#include <algorithm>

#include "dataplane/fwd/flow_ops.h"
#include "dataplane/fwd/processor6.h"
#include "dataplane/lb/hash.h"
#include "dataplane/pkt/encap.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/rewrite.h"
#include "dataplane/pkt/rewrite6.h"

namespace ng::fwd::detail {
namespace {

using pkt::Ip6;
using pkt::ParsedFrame;

lb::FlowKey6 keyOf6(const Ip6& src, const Ip6& dst, const ParsedFrame& p) noexcept {
  return lb::FlowKey6{.src_ip = src, .dst_ip = dst, .src_port = p.src_port, .dst_port = p.dst_port, .proto = p.proto};
}

Action emit6(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, uint8_t out_port, const Mac& dst_mac,
             const Ip6& src_ip, uint16_t src_port, const Ip6& dst_ip, uint16_t dst_port) noexcept {
  pkt::forwardNat6(frame, p, src_ip, src_port, dst_ip, dst_port);
  pkt::setEthernet(frame, dst_mac, ctx.ports[out_port].mac);
  return forwardTo(out_port);
}

Action existingToNode6(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, lb::Flow6& flow,
                       uint32_t now_ms) noexcept {
  const uint8_t out = ctx.internal_port;
  const Mac* mac = nextHopMac6(ctx, out, flow.node.src_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (p.proto == pkt::kProtoTcp) ctx.flows6.track(flow, p.tcp_flags, /*from_client=*/true);
  flow.last_seen_ms = now_ms;
  countFullNat(ctx, flow.stats_id, /*to_node=*/true, frame.size());
  return emit6(ctx, frame, p, out, *mac, flow.node.dst_ip, flow.node.dst_port, flow.node.src_ip, flow.node.src_port);
}

Action existingToClient6(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, lb::Flow6& flow,
                         uint32_t now_ms) noexcept {
  const uint8_t out = ctx.external_port;
  const Mac* mac = nextHopMac6(ctx, out, flow.client.src_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (p.proto == pkt::kProtoTcp) ctx.flows6.track(flow, p.tcp_flags, /*from_client=*/false);
  flow.last_seen_ms = now_ms;
  countFullNat(ctx, flow.stats_id, /*to_node=*/false, frame.size());
  return emit6(ctx, frame, p, out, *mac, flow.client.dst_ip, flow.client.dst_port, flow.client.src_ip,
               flow.client.src_port);
}

// --- Tunnel mode (IPv6-in-IPv6, DSR) -----------------------------------------------------
// IPv4's tunnel mode (processor.cc) for IPv6 VIPs: the client's packet, unchanged, inside
// an outer IPv6 header to the node (RFC 2473, next header 41); the node's ip6tnl device
// takes it off and kube-proxy's rules for the LB IP deliver it; the node answers the
// client directly. Same flow policy as IPv4: client-key-only records in flows6, TCP state
// from the client's segments, a segment without a flow gets the Maglev choice every box
// makes, a full table falls back to stateless Maglev (tunnel_stateless), source ranges
// and ClientIP affinity on new flows, the hop limit is not decremented (the box owns the
// VIP; the outer hop limit guards the tunnel path).
// - Outer header: source TunnelSettings::sourceFor6(flow hash) (dataplane.tunnel.source6,
//   default the internal port's address6), destination the node, hop limit 64, traffic
//   class copied, flow label from the flow hash (never 0). Both vary per flow: routers
//   and the few NICs that hash the flow label (RFC 6438) spread on it, while most NICs'
//   RSS for next header 41 hashes only the address pair - so a source prefix is what
//   spreads flows over a node's queues, as IPv4's source range does.
// - Too big: IPv6 routers never fragment (RFC 8200 sec. 5), so whatever the packet says,
//   one whose length + 40 exceeds the internal MTU is answered with ICMPv6 Packet Too Big
//   from the VIP, MTU = internal MTU - 40, quoting as much as fits in 1280 bytes (RFC 4443
//   sec. 3.2), out of the port it came in on, within IPv4's ICMP token bucket (beyond it:
//   dropped, frag_needed_rate_limited). No state is created for an answered packet.

bool fitsTunnel6(const WorkerContext& ctx, const ParsedFrame& p) noexcept {
  return size_t{p.ip_total_len} + pkt::kIp6ip6Overhead <= ctx.ports[ctx.internal_port].mtu;
}

[[gnu::noinline]] Action tooBigForTunnel6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                          std::span<std::byte> frame, const ParsedFrame& p, const Ip6& vip,
                                          uint32_t now_ms) noexcept {
  if (!takeIcmpToken(ctx, snap.tunnel, now_ms)) return drop(ctx, DropReason::kFragNeededRateLimited);
  const uint32_t mtu = ctx.ports[ctx.internal_port].mtu - static_cast<uint32_t>(pkt::kIp6ip6Overhead);
  const size_t len = pkt::writePacketTooBig6(frame, p, ctx.ports[in_port].mac, vip, mtu);
  if (len == 0) return drop(ctx, DropReason::kTunnelTooBig);
  ctx.counters.frag_needed_sent.add();
  return Action{.kind = Action::Kind::kForward, .out_port = in_port, .length = static_cast<uint32_t>(len)};
}

// The next hop toward `node` for an encapsulated frame, or nullptr with the drop counted.
const Mac* tunnelNextHop6(WorkerContext& ctx, const Ip6& node, uint32_t now_ms) noexcept {
  if (ctx.frame_headroom < pkt::kIp6ip6Overhead) [[unlikely]] {
    ctx.counters.drop(DropReason::kNoHeadroom);
    return nullptr;
  }
  const Mac* mac = nextHopMac6(ctx, ctx.internal_port, node, now_ms);
  if (mac == nullptr) ctx.counters.drop(DropReason::kNeighborUnresolved);
  return mac;
}

Action encapsulate6(WorkerContext& ctx, std::span<std::byte> frame, const ParsedFrame& p, const Mac& mac,
                    const Ip6& outer_src, const Ip6& node, uint32_t flow_label) noexcept {
  const uint8_t out = ctx.internal_port;
  const size_t len = pkt::encapsulateIp6ip6(frame, p, mac, ctx.ports[out].mac,
                                            pkt::OuterIpv6{.src = outer_src, .dst = node, .flow_label = flow_label});
  ctx.counters.to_nodes.add();
  ctx.counters.tunneled.add();
  return Action{.kind = Action::Kind::kForward, .out_port = out,
                .prepended = static_cast<uint8_t>(pkt::kIp6ip6Overhead), .length = static_cast<uint32_t>(len)};
}

Action encapsulateFlow6(WorkerContext& ctx, const ForwardingSnapshot& snap, std::span<std::byte> frame,
                        const ParsedFrame& p, const Mac& mac, const Ip6& node, uint32_t flow_hash) noexcept {
  return encapsulate6(ctx, frame, p, mac, snap.tunnel.sourceFor6(flow_hash), node,
                      TunnelSettings::flowLabelFor(flow_hash));
}

// IPv6's packet work for the flow steps both families share (fwd/flow_ops.h).
struct Ipv6 : Family<lb::FlowKey6> {
  static const Mac* nextHopMac(WorkerContext& ctx, uint8_t port, const Ip6& ip, uint32_t now_ms) noexcept {
    return nextHopMac6(ctx, port, ip, now_ms);
  }
  static Action emit(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, uint8_t out, const Mac& mac,
                     const Ip6& src_ip, uint16_t src_port, const Ip6& dst_ip, uint16_t dst_port) noexcept {
    return emit6(ctx, frame, p, out, mac, src_ip, src_port, dst_ip, dst_port);
  }
  static bool fitsTunnel(const WorkerContext& ctx, const ParsedFrame& p) noexcept { return fitsTunnel6(ctx, p); }
  static Action tooBigForTunnel(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                std::span<std::byte> frame, const ParsedFrame& p, const Ip6& vip,
                                uint32_t now_ms) noexcept {
    return tooBigForTunnel6(ctx, snap, in_port, frame, p, vip, now_ms);
  }
  static const Mac* tunnelNextHop(WorkerContext& ctx, const Ip6& node, uint32_t now_ms) noexcept {
    return tunnelNextHop6(ctx, node, now_ms);
  }
  static Action encapsulate(WorkerContext& ctx, const ForwardingSnapshot& snap, std::span<std::byte> frame,
                            const ParsedFrame& p, const Mac& mac, const Ip6& node, uint32_t flow_hash) noexcept {
    return encapsulateFlow6(ctx, snap, frame, p, mac, node, flow_hash);
  }
  static void translateIcmpError(std::span<std::byte> frame, ParsedFrame& p, const Ip6& src, const Ip6& dst,
                                 const Ip6& q_src, uint16_t q_sport, const Ip6& q_dst, uint16_t q_dport) noexcept {
    pkt::translateIcmp6Error(frame, p, src, dst, q_src, q_sport, q_dst, q_dport);
  }
  // IPv6 has no kernel-shared SNAT address to hand such an error to.
  static Action icmpErrorNotOurs(WorkerContext& ctx, uint8_t /*in_port*/, const ParsedFrame& /*p*/,
                                 DropReason reason, uint32_t /*now_ms*/) noexcept {
    return drop(ctx, reason);
  }
};

// ICMPv6 Packet Too Big quoting a packet of one of our full-NAT flows (path MTU
// discovery must work through the balancer, DESIGN.md sec. 2): a router on the client's
// path quotes VIP:port -> client, one on the node's path quotes SNAT:port -> node. Either
// way the quoted packet, read backwards, is a key of the flow table; the error goes to
// the other side of the flow with both the outer and the quoted headers translated, as
// if that side's own packet had met the small link: to the node from SNAT6 quoting
// node:nodePort -> SNAT6:port, or to the client from the VIP quoting client:port ->
// VIP:port. The MTU value passes unchanged (IPv6 -> IPv6 adds no header). Anything
// that does not quote a flow of ours - a short quote, quoted extension headers, a bad
// checksum - is dropped (icmp_unsupported), never forwarded on a guess; a quote of
// another worker's flow goes to that worker like a reply would (by-port: its SNAT port
// or client flow hash; rss: replies are hashed by address pair, so such an error may
// reach a worker without the flow and is dropped as no_flow). Translated errors count in
// icmp_errors_translated, as IPv4's do. This function parses and checks the quote; what
// follows the flow lookup is translateFlowIcmpError (fwd/flow_ops.h), shared with IPv4.
Action handlePacketTooBig6(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame, ParsedFrame& p,
                           const Ip6& outer_dst, uint32_t now_ms) noexcept {
  constexpr size_t kQuoteMin = pkt::icmp6::kErrorQuote + pkt::kIpv6HeaderLen + 4;  // + the ports
  if (p.is_fragment || p.icmp_code != 0 || p.l4_len < kQuoteMin || !pkt::icmp6ChecksumOk(frame, p)) {
    return drop(ctx, DropReason::kIcmpUnsupported);
  }
  const std::byte* in = frame.data() + p.l4_offset + pkt::icmp6::kErrorQuote;
  const uint8_t proto = std::to_integer<uint8_t>(in[pkt::ipv6::kNextHeader]);
  if ((std::to_integer<uint8_t>(in[0]) >> 4) != 6 || (proto != pkt::kProtoTcp && proto != pkt::kProtoUdp)) {
    return drop(ctx, DropReason::kIcmpUnsupported);
  }
  const Ip6 q_src = pkt::loadIp6(in + pkt::ipv6::kSrc);
  const Ip6 q_dst = pkt::loadIp6(in + pkt::ipv6::kDst);
  const uint16_t q_sport = pkt::load16(in + pkt::kIpv6HeaderLen);
  const uint16_t q_dport = pkt::load16(in + pkt::kIpv6HeaderLen + 2);
  // We sent the quoted packet, so it came from the address the error is addressed to.
  if (q_src != outer_dst) return drop(ctx, DropReason::kIcmpUnsupported);
  const lb::FlowKey6 key{.src_ip = q_dst, .dst_ip = q_src, .src_port = q_dport, .dst_port = q_sport, .proto = proto};
  return translateFlowIcmpError<Ipv6>(ctx, in_port, frame, p, key, now_ms);
}

// An IPv6 datagram (whole, or a first fragment).
Action decideDatagram6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                       std::span<std::byte> frame, ParsedFrame& p, uint32_t now_ms) noexcept {
  const PortInfo& port = ctx.ports[in_port];
  const Ip6 src = pkt::srcIp6(frame, p);
  const Ip6 dst = pkt::dstIp6(frame, p);
  const bool l4_balanced = p.first_fragment && (p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp);
  if (l4_balanced) {
    const lb::FlowKey6 key = keyOf6(src, dst, p);
    if (ctx.steer_clients && port.role == PortRole::kExternal) [[unlikely]] {
      const uint32_t owner = ctx.steering.clientOwner(lb::FlowTable6::hashOf(key));
      if (owner != ctx.id) return Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
    }
    const lb::FlowTable6::Hit hit = ctx.flows6.lookup(key);
    const bool from_client = port.role == PortRole::kExternal && hit.flow != nullptr && !hit.by_node_key;
    const bool from_node = port.role == PortRole::kInternal && hit.flow != nullptr && hit.by_node_key;
    if (from_client && isReopen(p, *hit.flow)) [[unlikely]] {
      endFlow(ctx, *hit.flow);
      ctx.flows6.erase(hit.flow);
    } else if (from_client || from_node) {
      if (!snap.cut_stats_ids.empty() && snap.cutsFlowsOf(hit.flow->stats_id)) [[unlikely]] {
        endFlow(ctx, *hit.flow);
        ctx.flows6.erase(hit.flow);
        return drop(ctx, DropReason::kDrainTimeout);
      }
      if (from_client && (hit.flow->flags & lb::kFlowTunnel)) [[unlikely]] {
        return existingTunnel<Ipv6>(ctx, snap, in_port, frame, p, *hit.flow, lb::FlowTable6::hashOf(key), now_ms);
      }
      if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
      return from_client ? existingToNode6(ctx, frame, p, *hit.flow, now_ms)
                         : existingToClient6(ctx, frame, p, *hit.flow, now_ms);
    }
  }

  // Neighbor Discovery before the martian check: DAD probes come from "::".
  if (p.proto == pkt::kProtoIcmp6 && p.first_fragment &&
      (p.icmp_type == pkt::icmp6::kNeighborSolicitation || p.icmp_type == pkt::icmp6::kNeighborAdvertisement)) {
    return handleNd(ctx, snap, in_port, frame, p, src, dst, now_ms);
  }
  if (isMartianSource6(ctx, snap, src)) return drop(ctx, DropReason::kMartian);
  if (dst.isMulticast()) return drop(ctx, DropReason::kNotForUs);  // MLD, RA, ... : not ours to answer
  if (p.proto == pkt::kProtoIcmp6 && p.icmp_type == pkt::icmp6::kPacketTooBig && p.first_fragment) [[unlikely]] {
    return handlePacketTooBig6(ctx, in_port, frame, p, dst, now_ms);
  }
  if (port.role == PortRole::kExternal) {
    if (snap.isVip6(dst)) {
      if (p.proto == pkt::kProtoIcmp6) return handleEcho6(ctx, in_port, frame, p);
      if (!l4_balanced) return drop(ctx, DropReason::kUnsupportedProtocol);
      if (src.isLinkLocal()) return drop(ctx, DropReason::kMartian);  // see the file comment
      if (p.ttl <= 1) {
        // Tunnel mode delivers hop limit 1 (the box is the VIP's owner, not a router).
        const ServicePort6* sp = snap.find6(dst, p.dst_port, p.proto);
        if (sp == nullptr || sp->mode != ForwardingMode::kTunnel) return drop(ctx, DropReason::kTtlExceeded);
      }
      return newFlowToNode<Ipv6>(ctx, snap, in_port, frame, p, keyOf6(src, dst, p), false, 0, now_ms);
    }
  } else if (l4_balanced && snap.isSnatAddress6(dst)) {
    if (ctx.steering.workers() > 1) [[unlikely]] {
      const uint32_t owner = ctx.steering.owner(src, dst, p.src_port, p.dst_port);
      if (owner != ctx.id) return Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
    }
    return drop(ctx, DropReason::kNoFlow);
  } else if (snap.isVip6(dst)) {
    return drop(ctx, DropReason::kWrongPort);
  }
  if (port.isOwn6(dst)) {
    if (p.proto == pkt::kProtoIcmp6) return handleEcho6(ctx, in_port, frame, p);
    return drop(ctx, DropReason::kLocalNoExceptionPath);
  }
  // Nothing is sent to an outer source but nodes' ICMPv6 errors about tunnel packets.
  if (snap.tunnel.isSource6(dst)) return drop(ctx, DropReason::kToTunnelSource);
  return drop(ctx, DropReason::kNotForUs);
}

// Fragment policy: processor.cc's, for the IPv6 Fragment header (RFC 8200 4.5). The
// reassembly key is (source, destination, identification); the Fragment header's next
// header is added, as IPv4's protocol is. The fragmentable part starts after the
// Fragment header, so offsets and lengths are counted from there; every fragment leaves
// with a per-worker identification (32 bits here) for the same reason as IPv4's.
Action handleFragment6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                       std::span<std::byte> frame, ParsedFrame& p, uint32_t now_ms) noexcept {
  const std::byte* fh = frame.data() + p.frag6_offset;
  const uint8_t next = std::to_integer<uint8_t>(fh[0]);
  const uint16_t off_flags = pkt::load16(fh + pkt::ipv6::kFragOffsetFlags);
  const bool more = (off_flags & pkt::ipv6::kFragMore) != 0;
  const uint32_t offset = off_flags & pkt::ipv6::kFragOffsetMask;  // already in bytes (13 bits << 3)
  const uint32_t frag_data_start = p.frag6_offset + pkt::ipv6::kFragHeaderLen - p.l3_offset;
  const uint32_t payload = p.ip_total_len - frag_data_start;
  if ((more && (payload == 0 || payload % 8 != 0)) || offset + payload > 65535) {
    return drop(ctx, DropReason::kFragmentMalformed);
  }
  if (p.first_fragment && p.proto != pkt::kProtoTcp && p.proto != pkt::kProtoUdp) {
    return drop(ctx, DropReason::kFragment);
  }
  const lb::FragmentKey6 key{.src_ip = pkt::srcIp6(frame, p), .dst_ip = pkt::dstIp6(frame, p),
                             .id = pkt::load32(fh + pkt::ipv6::kFragId), .proto = next};
  if (p.first_fragment) {
    lb::FragmentEntry6* e = ctx.fragments6.insert(key, now_ms);
    if (e == nullptr) return drop(ctx, DropReason::kFragmentTableFull);
    const lb::FlowKey6 flow_key = keyOf6(key.src_ip, key.dst_ip, p);  // as received
    const Action a = decideDatagram6(ctx, snap, in_port, frame, p, now_ms);
    // Not sent on, or answered (Packet Too Big replaced the frame).
    if (a.kind != Action::Kind::kForward || (a.length != 0 && a.prepended == 0)) {
      ctx.fragments6.erase(e);
      return a;
    }
    const lb::FlowTable6::Hit hit = ctx.flows6.lookup(flow_key);
    if (a.prepended != 0) {
      // Tunnel mode: the fragment stays as the client sent it (its identification too:
      // the client's address is kept, so ids cannot collide at the node); later fragments
      // get the first one's outer addresses and flow label, read back from its header.
      const std::byte* outer = frame.data() - a.prepended + pkt::kEthHeaderLen;
      e->new_src_ip = pkt::loadIp6(outer + pkt::ipv6::kSrc);
      e->new_dst_ip = pkt::loadIp6(outer + pkt::ipv6::kDst);
      e->new_id = pkt::load32(outer + pkt::ipv6::kVersionClassFlow) & 0xfffff;  // the flow label
      e->tunnel = 1;
      e->stats_id = hit.flow != nullptr ? hit.flow->stats_id : 0;
      e->received = payload;
      e->first_len = static_cast<uint16_t>(payload);
      e->in_port = in_port;
      e->out_port = a.out_port;
      e->to_node = 1;
      ctx.counters.fragments_forwarded.add();
      return a;
    }
    e->new_src_ip = pkt::srcIp6(frame, p);  // rewritten by now
    e->new_dst_ip = pkt::dstIp6(frame, p);
    e->stats_id = hit.flow != nullptr ? hit.flow->stats_id : 0;
    e->received = payload;
    e->first_len = static_cast<uint16_t>(payload);
    e->in_port = in_port;
    e->out_port = a.out_port;
    e->to_node = hit.flow != nullptr && !hit.by_node_key;
    e->new_id = ctx.next_fragment_id6++;
    pkt::setIpv6FragmentId(frame, p, e->new_id);
    ctx.counters.fragments_forwarded.add();
    return a;
  }

  lb::FragmentEntry6* e = ctx.fragments6.find(key, now_ms);
  if (e == nullptr || e->in_port != in_port) return drop(ctx, DropReason::kFragmentNoFlow);
  if (offset < e->first_len) return drop(ctx, DropReason::kFragmentMalformed);
  if (e->tunnel) [[unlikely]] {
    // The first fragment's outer header, the fragment itself untouched.
    if (!fitsTunnel6(ctx, p)) return tooBigForTunnel6(ctx, snap, in_port, frame, p, key.dst_ip, now_ms);
    const Mac* mac = tunnelNextHop6(ctx, e->new_dst_ip, now_ms);
    if (!mac) return Action{};
    BackendCounters& stats = ctx.backend_stats.at(e->stats_id);
    stats.packets_in.add();
    stats.bytes_in.add(frame.size());
    ctx.counters.fragments_forwarded.add();
    const Action a = encapsulate6(ctx, frame, p, *mac, e->new_src_ip, e->new_dst_ip, e->new_id);
    e->received += payload;
    if (!more) e->total = offset + payload;
    if (e->total != 0 && e->received >= e->total) ctx.fragments6.erase(e);
    return a;
  }
  if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
  const uint8_t out = e->out_port;
  const Mac* mac = nextHopMac6(ctx, out, e->new_dst_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  countFullNat(ctx, e->stats_id, e->to_node, frame.size());
  ctx.counters.fragments_forwarded.add();
  const Action a = emit6(ctx, frame, p, out, *mac, e->new_src_ip, 0, e->new_dst_ip, 0);
  pkt::setIpv6FragmentId(frame, p, e->new_id);
  e->received += payload;
  if (!more) e->total = offset + payload;
  if (e->total != 0 && e->received >= e->total) ctx.fragments6.erase(e);
  return a;
}

}  // namespace

Action decide6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port, std::span<std::byte> frame,
               ParsedFrame& p, uint32_t now_ms) noexcept {
  if (p.routing_left != 0) return drop(ctx, DropReason::kRoutingHeader);
  if (p.is_fragment) [[unlikely]] return handleFragment6(ctx, snap, in_port, frame, p, now_ms);
  return decideDatagram6(ctx, snap, in_port, frame, p, now_ms);
}

void onSnapshot6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms) noexcept {
  ctx.snat6.setAddresses(snap.snat_addresses6);
  ctx.flows6.setHalfOpenLimit(
      static_cast<uint32_t>(uint64_t{ctx.flows6.capacity()} * snap.half_open_budget_percent / 100));
  for (const StaticNeighbor6& n : snap.static_neighbors6) {
    ctx.neighbors6.learn(n.ip, n.mac, now_ms, /*is_static=*/true);
  }
}

uint32_t expire6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms, uint32_t budget) noexcept {
  if (ctx.flows6.size() == 0 && ctx.affinity6.size() == 0 && ctx.fragments6.size() == 0) return 0;  // IPv4-only box
  FlowEnder<lb::FlowKey6> ender(ctx);
  const uint32_t removed = ctx.flows6.expire(now_ms, budget, snap.timeouts, &ender);
  (void)ctx.affinity6.expire(now_ms, (budget + lb::AffinityTable6::kWays - 1) / lb::AffinityTable6::kWays);
  (void)ctx.fragments6.sweep(now_ms, (budget + lb::FragmentTable6::kWays - 1) / lb::FragmentTable6::kWays);
  return removed;
}

}  // namespace ng::fwd::detail
