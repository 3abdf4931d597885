// IPv6 Neighbor Discovery (RFC 4861) and ICMPv6 echo for the box's addresses.
//
// What the box answers: Neighbor Solicitations for its VIPs (on the external port), its
// SNAT addresses (internal port) and each port's own global and link-local addresses,
// whether sent to the target itself (unicast, e.g. neighbour unreachability detection)
// or to the target's solicited-node group. The box does not run Duplicate Address
// Detection for its own addresses (they are configured, like the IPv4 ones), but it
// defends them: a DAD probe (unspecified source) for one of them gets an advertisement to
// all-nodes, which makes the prober give the address up.
//
// What it learns, like ARP (and Linux): the sender of an NS for one of our addresses
// when the NS carries a source link-layer option and the sender is on the port's link
// (we are about to talk to it); the target of an NA only when we asked (pending) or
// already have an entry. Unsolicited NAs create nothing, so nobody on the segment can
// fill or poison the table with addresses we never wanted.
//
// Validation before anything else (RFC 4861 7.1.1/7.1.2): hop limit 255 (the frame was
// not routed, so it comes from the link), ICMPv6 checksum, code 0, at least 24 bytes,
// a non-multicast target, options with non-zero lengths inside the message, no source
// link-layer option from the unspecified address, DAD probes only to a solicited-node
// group, no Solicited flag on multicast advertisements. Anything else: bad_nd.
#include <algorithm>

#include "dataplane/fwd/processor6.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/rewrite.h"
#include "dataplane/pkt/rewrite6.h"

namespace ng::fwd {
namespace detail {
namespace {

using pkt::Ip6;
using pkt::ParsedFrame;

Action dropFor(WorkerContext& ctx, DropReason reason) noexcept {
  ctx.counters.drop(reason);
  return Action{};
}

constexpr Ip6 kAllNodes{.hi = 0xff02000000000000ULL, .lo = 1};

// The link-layer address option of `type` (source for NS, target for NA), or nullptr;
// false when an option is malformed (zero length or past the message).
bool findLinkAddr(std::span<const std::byte> msg, uint8_t type, Mac& mac, bool& found) noexcept {
  found = false;
  size_t off = pkt::icmp6::kNdMinLen;
  // Each option is >= 8 bytes, so at most (len - 24) / 8 iterations: bounded by the frame.
  while (off < msg.size()) {
    if (off + 2 > msg.size()) return false;
    const size_t len = std::to_integer<size_t>(msg[off + 1]) * 8;
    if (len == 0 || off + len > msg.size()) return false;
    if (std::to_integer<uint8_t>(msg[off]) == type && len >= 8 && !found) {
      mac = pkt::loadMac(msg.data() + off + 2);
      found = true;
    }
    off += len;
  }
  return true;
}

bool isOurTarget(const WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                 const Ip6& target) noexcept {
  const PortInfo& port = ctx.ports[in_port];
  if (port.isOwn6(target)) return true;
  if (port.role == PortRole::kExternal) return snap.isVip6(target);
  // Tunnel mode's outer sources (dataplane.tunnel.source6): nodes' ICMPv6 errors about
  // IPv6-in-IPv6 packets are addressed to them, as IPv4's ARP answers for tunnel.source.
  return snap.isSnatAddress6(target) || snap.tunnel.isSource6(target);
}

void requestNeighbor6(WorkerContext& ctx, uint8_t port, const Ip6& ip, uint32_t now_ms) noexcept {
  if (!ctx.neighbors6.want(ip, now_ms)) return;
  if (ctx.ns_queue_len < ctx.ns_queue.size()) {
    ctx.ns_queue[ctx.ns_queue_len++] = NsRequest{.port = port, .target_ip = ip};
  }
}

}  // namespace

bool isMartianSource6(const WorkerContext& ctx, const ForwardingSnapshot& snap, const Ip6& src) noexcept {
  if (src.isZero() || src.isMulticast() || src.isLoopback() || src.isV4Mapped()) return true;
  for (const PortInfo& port : ctx.ports) {
    if (port.isOwn6(src)) return true;
  }
  return snap.isVip6(src) || snap.isSnatAddress6(src) || snap.tunnel.isSource6(src);
}

const Mac* nextHopMac6(WorkerContext& ctx, uint8_t port, const Ip6& dst, uint32_t now_ms) noexcept {
  const Ip6 hop = ctx.ports[port].nextHop6(dst);
  if (hop.isZero()) return nullptr;
  if (const Mac* mac = ctx.neighbors6.lookup(hop)) return mac;
  requestNeighbor6(ctx, port, hop, now_ms);
  return nullptr;
}

Action handleEcho6(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame, ParsedFrame& p) noexcept {
  if (p.icmp_type != pkt::icmp6::kEchoRequest || p.icmp_code != 0 || p.is_fragment) {
    return dropFor(ctx, DropReason::kIcmpUnsupported);
  }
  pkt::icmp6EchoToReply(frame, p, ctx.ports[in_port].mac);
  ctx.counters.icmp6_echo_replies.add();
  return Action{.kind = Action::Kind::kForward, .out_port = in_port};
}

Action handleNd(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port, std::span<std::byte> frame,
                ParsedFrame& p, const Ip6& src, const Ip6& dst, uint32_t now_ms) noexcept {
  if (p.is_fragment || p.ttl != pkt::icmp6::kNdHopLimit || p.icmp_code != 0 || p.l4_len < pkt::icmp6::kNdMinLen ||
      !pkt::icmp6ChecksumOk(frame, p)) {
    return dropFor(ctx, DropReason::kBadNd);
  }
  const std::span<const std::byte> msg(frame.data() + p.l4_offset, p.l4_len);
  const Ip6 target = pkt::loadIp6(msg.data() + pkt::icmp6::kNdTarget);
  if (target.isMulticast()) return dropFor(ctx, DropReason::kBadNd);
  const bool solicitation = p.icmp_type == pkt::icmp6::kNeighborSolicitation;
  Mac lla{};
  bool has_lla = false;
  if (!findLinkAddr(msg, solicitation ? pkt::icmp6::kOptSourceLinkAddr : pkt::icmp6::kOptTargetLinkAddr, lla,
                    has_lla)) {
    return dropFor(ctx, DropReason::kBadNd);
  }
  const PortInfo& port = ctx.ports[in_port];

  if (!solicitation) {
    const uint32_t flags = pkt::load32(msg.data() + 4);
    if (dst.isMulticast() && (flags & pkt::icmp6::kNaSolicited)) return dropFor(ctx, DropReason::kBadNd);
    // Learn only what we asked for (or already know), only from the port's link, never
    // one of our own addresses.
    if (has_lla && port.onLink6(target) && !isMartianSource6(ctx, snap, target) &&
        (ctx.neighbors6.pending(target) || ctx.neighbors6.lookup(target))) {
      ctx.neighbors6.learn(target, lla, now_ms);
    }
    // Every worker resolves its own next hops: let the others see the answer too.
    return ctx.steering.workers() > 1 ? Action{.kind = Action::Kind::kShare} : Action{.kind = Action::Kind::kConsumed};
  }

  const bool dad = src.isZero();
  if (dad && (has_lla || dst != pkt::solicitedNode(target))) return dropFor(ctx, DropReason::kBadNd);
  if (dst != target && dst != pkt::solicitedNode(target)) return dropFor(ctx, DropReason::kBadNd);
  const bool sender_valid = !dad && has_lla && port.onLink6(src) && !isMartianSource6(ctx, snap, src);
  if (!isOurTarget(ctx, snap, in_port, target)) {
    // Like ARP: refresh an entry we already have, create none.
    if (sender_valid && ctx.neighbors6.lookup(src)) ctx.neighbors6.learn(src, lla, now_ms);
    return dropFor(ctx, DropReason::kNdNotForUs);
  }
  if (sender_valid) ctx.neighbors6.learn(src, lla, now_ms);
  // Reply: to the solicitor (at its link-layer option, else the frame's source MAC), or
  // to all-nodes for a DAD probe, which has no address to answer to (RFC 4861 7.2.4).
  const Ip6 reply_dst = dad ? kAllNodes : src;
  const Mac reply_mac = dad ? pkt::multicastMac(kAllNodes) : (has_lla ? lla : pkt::loadMac(frame.data() + 6));
  const uint32_t flags = dad ? pkt::icmp6::kNaOverride : (pkt::icmp6::kNaSolicited | pkt::icmp6::kNaOverride);
  if (!pkt::neighborSolicitationToAdvert(frame, p, target, reply_dst, reply_mac, port.mac, flags)) {
    return dropFor(ctx, DropReason::kTruncated);
  }
  ctx.counters.nd_replies.add();
  return Action{.kind = Action::Kind::kForward, .out_port = in_port};
}

}  // namespace detail

size_t slowTickNd(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                  std::span<NsRequest> requests) noexcept {
  size_t n = 0;
  for (uint8_t i = 0; i < ctx.ns_queue_len && n < requests.size(); ++i) requests[n++] = ctx.ns_queue[i];
  ctx.ns_queue_len = 0;
  // As for ARP: keep the nodes and gateways resolved before traffic needs them.
  constexpr uint32_t kScanMs = 100;
  if (now_ms - ctx.last_neighbor_scan6_ms < kScanMs) return n;
  ctx.last_neighbor_scan6_ms = now_ms;
  auto refresh = [&](uint8_t port, const pkt::Ip6& hop) {
    if (!hop.isZero() && n < requests.size() && ctx.neighbors6.refreshDue(hop, now_ms)) {
      requests[n++] = NsRequest{.port = port, .target_ip = hop};
    }
  };
  for (const pkt::Ip6& target : snap.resolve_targets6) {
    refresh(ctx.internal_port, ctx.ports[ctx.internal_port].nextHop6(target));
  }
  for (uint8_t i = 0; i < ctx.ports.size(); ++i) refresh(i, ctx.ports[i].gateway6);
  return n;
}

size_t writeNsRequest(const PortInfo& port, const pkt::Ip6& target_ip, std::span<std::byte> frame) noexcept {
  // The source must be an address of ours on that link: the global one for an on-link
  // global target (the answer then needs no link-local route), else the link-local one.
  const pkt::Ip6 src = !target_ip.isLinkLocal() && !port.address6.isZero() ? port.address6 : port.link_local6;
  if (src.isZero()) return 0;
  return pkt::writeNsFrame(frame, port.mac, src, target_ip);
}

}  // namespace ng::fwd
