#include "dataplane/fwd/processor.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "dataplane/fwd/flow_ops.h"
#include "dataplane/fwd/processor6.h"
#include "dataplane/lb/hash.h"
#include "dataplane/pkt/encap.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/rewrite.h"

namespace ng::fwd {

// Token bucket: refills icmp_rate answers per second, holds at most icmp_burst. One
// bucket per worker for both families' answers (frag-needed and Packet Too Big).
bool detail::takeIcmpToken(WorkerContext& ctx, const TunnelSettings& t, uint32_t now_ms) noexcept {
  const uint64_t cap = uint64_t{t.icmp_burst} * 1000;
  if (!ctx.icmp_bucket_started) {
    ctx.icmp_bucket_started = true;
    ctx.icmp_tokens_milli = cap;
  } else {
    const uint64_t elapsed = now_ms - ctx.icmp_refill_ms;  // modulo 2^32
    ctx.icmp_tokens_milli = std::min(cap, ctx.icmp_tokens_milli + elapsed * t.icmp_rate);
  }
  ctx.icmp_refill_ms = now_ms;
  if (t.icmp_rate == 0 || ctx.icmp_tokens_milli < 1000) return false;
  ctx.icmp_tokens_milli -= 1000;
  return true;
}

namespace {

using pkt::ParsedFrame;
using pkt::ParseStatus;
using detail::drop;
using detail::endFlow;
using detail::forwardTo;

constexpr Action kConsumed{.kind = Action::Kind::kConsumed};

DropReason reasonFor(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::kUnsupportedEtherType: return DropReason::kUnsupportedEtherType;
    case ParseStatus::kBadArp: return DropReason::kBadArp;
    case ParseStatus::kBadIpHeader: return DropReason::kBadIpHeader;
    case ParseStatus::kIpChecksum: return DropReason::kIpChecksum;
    case ParseStatus::kBadL4Header: return DropReason::kBadL4Header;
    case ParseStatus::kExtHeaderChain: return DropReason::kExtHeaderChain;
    case ParseStatus::kJumbogram: return DropReason::kJumbogram;
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
  return snap.isVip(src) || isSnatAddress(snap, src) || snap.tunnel.isSource(src);
}

// Queues an ARP request for `ip` out of `port` when the neighbour table says one is due.
[[gnu::noinline, gnu::cold]] void requestNeighbor(WorkerContext& ctx, uint8_t port, uint32_t ip, uint32_t now_ms) noexcept {
  if (!ctx.neighbors.want(ip, now_ms)) return;
  if (ctx.arp_queue_len < ctx.arp_queue.size()) {
    ctx.arp_queue[ctx.arp_queue_len++] = ArpRequest{.port = port, .target_ip = ip};
  }
}

// Resolves the destination MAC for `dst` out of `port`; nullptr (request queued) if unknown.
[[gnu::always_inline]] inline const Mac* nextHopMac(WorkerContext& ctx, uint8_t port, uint32_t dst, uint32_t now_ms) noexcept {
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
    // worker asks for its own next hops: let the others see the answer. A reply to the
    // port's own address may answer the kernel's request (exception path): it gets the
    // frame too, or it could never resolve its next hops.
    const bool multi = ctx.steering.workers() > 1;
    if (port.exception_path && p.arp_tpa == port.address) [[unlikely]] {
      if (ctx.exception.admit(now_ms)) {
        return Action{.kind = multi ? Action::Kind::kShareToKernel : Action::Kind::kToKernel, .out_port = in_port};
      }
      ctx.counters.drop(DropReason::kExceptionRateLimit);  // the kernel's copy; learned all the same
      return multi ? Action{.kind = Action::Kind::kShare} : Action{};
    }
    return multi ? Action{.kind = Action::Kind::kShare} : kConsumed;
  }
  const bool ours = p.arp_tpa == port.address ||
                    (port.role == PortRole::kExternal && snap.isVip(p.arp_tpa)) ||
                    (port.role == PortRole::kInternal &&
                     (isSnatAddress(snap, p.arp_tpa) || snap.tunnel.isSource(p.arp_tpa)));
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

// A frame for the port's own address that the data plane does not handle itself: to the
// port's kernel interface (exception path, fwd/exception.h), within the worker's rate.
Action toKernel(WorkerContext& ctx, uint8_t in_port, uint32_t now_ms) noexcept {
  if (!ctx.ports[in_port].exception_path) return drop(ctx, DropReason::kLocalNoExceptionPath);
  if (!ctx.exception.admit(now_ms)) return drop(ctx, DropReason::kExceptionRateLimit);
  return Action{.kind = Action::Kind::kToKernel, .out_port = in_port};
}

// A node's packet to a SNAT address is a full-NAT reply - its flow's, its owner worker's
// or nobody's - unless the address is also the port's own, the port has a kernel
// interface and the destination port is one SNAT never hands out: then it is the kernel's
// (a health probe's answer, say). Full-NAT first, exception second.
bool isSnatReply(const WorkerContext& ctx, const PortInfo& port, const ParsedFrame& p) noexcept {
  return !port.exception_path || p.dst_ip != port.address || ctx.snat.inRange(p.dst_port);
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
// The burst path's common shape: the key as the index's two words, built from none of
// the fields.
lb::FlowKeyWords keyOf(const pkt::SimpleIpv4& p) noexcept { return {p.addresses, p.ports}; }

// Every field of a frame, for code that reads more than the common shape's fields:
// `p` itself, or `built` filled from them.
ParsedFrame& fullParse(ParsedFrame& p, ParsedFrame&) noexcept { return p; }
ParsedFrame& fullParse(const pkt::SimpleIpv4& simple, ParsedFrame& built) noexcept {
  pkt::toParsedFrame(simple, built);
  return built;
}

// TCP or UDP with ports: the frames the flow table can know.
// First fragments count: they carry the ports (fragment policy below).
bool hasFlowKey(const ParsedFrame& p) noexcept {
  return p.l3 == pkt::L3::kIpv4 && p.first_fragment && !p.has_vlan &&
         (p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp);
}

// A frame of an established full-NAT flow, to its other side whatever the tables say
// now: client -> VIP:port becomes SNAT:port -> node:nodePort (`to_node`), and the node's
// reply to SNAT:port is restored to VIP:port -> client. The frame leaves as the other
// side's key read backwards. One body for both directions, which differ only in the
// port, the key and the counters; inline, so each is specialised where knownFlow()
// chooses it.
template <class Frame>
[[gnu::always_inline]] inline Action existingFullNat(WorkerContext& ctx, std::span<std::byte> frame, Frame& p,
                                                     lb::Flow& flow, bool to_node, uint32_t now_ms) noexcept {
  const uint8_t out = to_node ? ctx.internal_port : ctx.external_port;
  const lb::FlowKey& other = to_node ? flow.node : flow.client;
  const Mac* mac = nextHopMac(ctx, out, other.src_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  if (p.proto == pkt::kProtoTcp) ctx.flows.track(flow, p.tcp_flags, /*from_client=*/to_node);
  flow.last_seen_ms = now_ms;
  detail::countFullNat(ctx, flow.stats_id, to_node, frame.size());
  const Mac& out_mac = ctx.ports[out].mac;  // taken before the frame changes (pkt::forwardNatKnown)
  pkt::forwardNatKnown(frame, p, {other.dst_ip, other.dst_port, other.src_ip, other.src_port},
                       to_node ? flow.nat : flow.nat.reversed());
  pkt::setEthernet(frame, *mac, out_mac);
  return forwardTo(out);
}

// --- Tunnel mode (DSR) -------------------------------------------------------------------
// A tunnel-mode service port sends the client's packet, unchanged, inside an outer IPv4
// header to the chosen node (IPIP, RFC 2003); the node's ipip device takes the outer
// header off and kube-proxy's rules for the load-balancer IP deliver the inner packet
// (dst still VIP:port). The node answers the client directly, so the box sees one
// direction only:
// - Flow state: records are indexed by the client key alone (FlowTable::insertClientOnly)
//   and hold the node; no SNAT port, no reverse entry. TCP state follows the client's
//   segments (SYN -> half-open, the client's first ACK -> established, FIN/RST ->
//   closing), with the configured timeouts. Established flows keep their node across
//   table changes like full-NAT flows.
// - A TCP segment other than a SYN without a flow (the flow came from another box behind
//   ECMP, or this box restarted) still gets the Maglev choice - the same one every box
//   makes - and a half-open record its next ACK confirms: an ACK flood fills only the
//   half-open budget, whose oldest entries new flows evict. A RST without a flow goes
//   to the Maglev choice and creates nothing.
// - Table full (or the record's key crowded out by crafted collisions): the packet still
//   goes to the stateless Maglev choice (counted tunnel_stateless), never dropped.
//   Without a record the flow loses only the promise to keep its node when the tables
//   change; full-NAT cannot do this (no free state to translate replies with).
// - Outer header: source from TunnelSettings by flow hash (the node's RSS sees many
//   sources and spreads the flows over its queues), destination the node, TTL 64, TOS
//   and DF copied from the inner header, IP id 0 with DF (RFC 6864) else a per-worker
//   counter, protocol 4.
// - Inner TTL is not decremented, and a TTL of 1 is delivered: RFC 2003 sec. 3.1
//   decrements the inner TTL only when the encapsulator forwards the datagram as a
//   router; the box owns the VIP and hands the packet to the VIP's server, as a host
//   would. The outer TTL guards the tunnel path, and the box never re-emits a packet it
//   decapsulated, so no loop can run on the inner TTL. So the node sees the client's
//   bytes exactly (no checksum is touched) and a traceroute ends at the VIP.
// - Too big: the frame grows by 20 bytes. When the outer packet would exceed the
//   internal port's MTU and the inner packet has DF, the client gets ICMP frag-needed
//   with next-hop MTU = internal MTU - 20 (RFC 1191), sent back out of the port it came
//   in on, at most icmp_rate per second per worker (so a flood of large DF packets cannot
//   turn the box into an ICMP cannon; beyond it they are dropped and counted). Without
//   DF the packet is dropped (tunnel_too_big): the box does not fragment (one frame in,
//   one frame out), so the internal link's MTU must be 20 bytes larger than the
//   client side's for non-DF traffic (docs/operations.md).

bool fitsTunnel(const WorkerContext& ctx, const ParsedFrame& p) noexcept {
  return size_t{p.ip_total_len} + pkt::kIpipOverhead <= ctx.ports[ctx.internal_port].mtu;
}

// A client packet to `vip` that would not fit the tunnel: frag-needed when DF asks for one.
[[gnu::noinline]] Action tooBigForTunnel(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                         std::span<std::byte> frame, const ParsedFrame& p, uint32_t vip,
                                         uint32_t now_ms) noexcept {
  if (!pkt::hasDontFragment(frame, p)) return drop(ctx, DropReason::kTunnelTooBig);
  if (!detail::takeIcmpToken(ctx, snap.tunnel, now_ms)) return drop(ctx, DropReason::kFragNeededRateLimited);
  const auto mtu = static_cast<uint16_t>(ctx.ports[ctx.internal_port].mtu - pkt::kIpipOverhead);
  const size_t len = pkt::writeFragNeeded(frame, p, ctx.ports[in_port].mac, vip, mtu);
  if (len == 0) return drop(ctx, DropReason::kTunnelTooBig);
  ctx.counters.frag_needed_sent.add();
  return Action{.kind = Action::Kind::kForward, .out_port = in_port, .length = static_cast<uint32_t>(len)};
}

// The next hop toward `node` for an encapsulated frame, or nullptr with the drop counted.
const Mac* tunnelNextHop(WorkerContext& ctx, uint32_t node, uint32_t now_ms) noexcept {
  if (ctx.frame_headroom < pkt::kIpipOverhead) [[unlikely]] {
    ctx.counters.drop(DropReason::kNoHeadroom);
    return nullptr;
  }
  const Mac* mac = nextHopMac(ctx, ctx.internal_port, node, now_ms);
  if (mac == nullptr) ctx.counters.drop(DropReason::kNeighborUnresolved);
  return mac;
}

// Encapsulates toward `node` from `outer_src` (fits, headroom and next hop checked).
Action encapsulate(WorkerContext& ctx, std::span<std::byte> frame, const ParsedFrame& p, const Mac& mac,
                   uint32_t outer_src, uint32_t node) noexcept {
  const uint8_t out = ctx.internal_port;
  const uint16_t id = pkt::hasDontFragment(frame, p) ? uint16_t{0} : ctx.next_outer_id++;
  const size_t len = pkt::encapsulateIpip(frame, p, mac, ctx.ports[out].mac,
                                          pkt::OuterIpv4{.src = outer_src, .dst = node, .id = id});
  ctx.counters.to_nodes.add();
  ctx.counters.tunneled.add();
  return Action{.kind = Action::Kind::kForward, .out_port = out, .prepended = static_cast<uint8_t>(pkt::kIpipOverhead),
                .length = static_cast<uint32_t>(len)};
}

// An ICMP error quoting nothing of ours (handleIcmpError below): on an address the
// kernel shares with SNAT (exception path) it is the kernel's, about its own
// connections; anywhere else it is dropped as `reason`.
Action icmpErrorNotOurs(WorkerContext& ctx, uint8_t in_port, const ParsedFrame& p, DropReason reason,
                        uint32_t now_ms) noexcept {
  const PortInfo& port = ctx.ports[in_port];
  const bool kernel_shared = port.role != PortRole::kExternal && port.exception_path && p.dst_ip == port.address;
  return kernel_shared ? toKernel(ctx, in_port, now_ms) : drop(ctx, reason);
}

// IPv4's packet work for the flow steps both families share (fwd/flow_ops.h).
struct Ipv4 : detail::Family<lb::FlowKey> {
  static const Mac* nextHopMac(WorkerContext& ctx, uint8_t port, uint32_t ip, uint32_t now_ms) noexcept {
    return fwd::nextHopMac(ctx, port, ip, now_ms);
  }
  static Action emit(WorkerContext& ctx, std::span<std::byte> frame, ParsedFrame& p, uint8_t out, const Mac& mac,
                     uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, uint16_t dst_port) noexcept {
    return fwd::emit(ctx, frame, p, out, mac, src_ip, src_port, dst_ip, dst_port);
  }
  static bool fitsTunnel(const WorkerContext& ctx, const ParsedFrame& p) noexcept { return fwd::fitsTunnel(ctx, p); }
  static Action tooBigForTunnel(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                std::span<std::byte> frame, const ParsedFrame& p, uint32_t vip,
                                uint32_t now_ms) noexcept {
    return fwd::tooBigForTunnel(ctx, snap, in_port, frame, p, vip, now_ms);
  }
  static const Mac* tunnelNextHop(WorkerContext& ctx, uint32_t node, uint32_t now_ms) noexcept {
    return fwd::tunnelNextHop(ctx, node, now_ms);
  }
  static Action encapsulate(WorkerContext& ctx, const ForwardingSnapshot& snap, std::span<std::byte> frame,
                            const ParsedFrame& p, const Mac& mac, uint32_t node, uint32_t flow_hash) noexcept {
    return fwd::encapsulate(ctx, frame, p, mac, snap.tunnel.sourceFor(flow_hash), node);
  }
  static void translateIcmpError(std::span<std::byte> frame, ParsedFrame& p, uint32_t src, uint32_t dst,
                                 uint32_t q_src, uint16_t q_sport, uint32_t q_dst, uint16_t q_dport) noexcept {
    pkt::translateIcmpError(frame, p, src, dst, q_src, q_sport, q_dst, q_dport);
  }
  static Action icmpErrorNotOurs(WorkerContext& ctx, uint8_t in_port, const ParsedFrame& p, DropReason reason,
                                 uint32_t now_ms) noexcept {
    return fwd::icmpErrorNotOurs(ctx, in_port, p, reason, now_ms);
  }
};

// An IPv4 datagram (unfragmented, or a first fragment) after the VLAN, ARP and fragment
// checks. `flow_hash` is FlowTable::hashOf(key) when the caller has it (burst path),
// else 0 with `have_hash` false.
// --- ICMP errors about full-NAT flows ----------------------------------------------------
// A destination-unreachable or time-exceeded message quoting a packet the box sent for a
// full-NAT flow: a router on the client's path quotes VIP:port -> client (it arrives on
// the external port, to the VIP), a node or a router on the node's path quotes
// SNAT:port -> node:nodePort (internal port, to the SNAT address). Read backwards, the
// quote is a key of the flow table. The error goes on to the other side of the flow as
// if that side's own packet had met the problem: to the node from the SNAT address
// quoting SNAT:port -> node:nodePort, or to the client from the VIP quoting
// client:port -> VIP:port. Outer and quoted addresses, quoted ports and the checksums
// change (pkt::translateIcmpError); the frag-needed MTU passes as it is, since full-NAT
// adds no bytes. This file parses and checks the quote; what follows the flow lookup is
// detail::translateFlowIcmpError (fwd/flow_ops.h), shared with the IPv6 twin,
// processor6.cc's handlePacketTooBig6.
//
// What is translated (why):
// - Type 3, every code. Frag-needed (code 4) is what path MTU discovery needs (DESIGN.md
//   sec. 2): without it a DF flow over a smaller link stalls for good. Port and protocol
//   unreachable from a node (a UDP service with no listener) and net/host unreachable or
//   administratively prohibited from a router end the peer's attempt at once, where
//   otherwise it waits out its timeouts; the peer's stack decides what each code means
//   (hard or soft error), the box only has to deliver it to the right socket.
// - Type 11 (time exceeded, codes 0 and 1). Hop limit hit behind the box, or a peer that
//   could not reassemble our fragments: both soft errors the peer's stack already knows
//   how to treat. The peer sees the VIP (or the SNAT address) as the sender, like every
//   other packet of the flow, so no address from the other side leaks out.
// - Everything else stays dropped as icmp_unsupported: redirects (RFC 1812 5.2.7.2: only
//   meaningful on the link they were sent on), source quench (deprecated, RFC 6633),
//   parameter problem (its pointer is about the header we rewrote), and anything that
//   does not quote a flow of ours - a short quote, a quote of something other than a
//   TCP/UDP first fragment (an ICMP error about an ICMP error among them, RFC 1122
//   3.2.2), a quote not sent from the address the error is addressed to, a bad ICMP
//   checksum: never forwarded on a guess.
// - A quote whose flow does not exist: no_flow, or the owner worker's by the same
//   steering as replies (by-port: the SNAT port or the client flow hash; rss: replies
//   are hashed by address pair, so such an error may land on a worker without the flow
//   and is dropped). A tunnel-mode flow's node answers the client directly, so an error
//   about VIP -> client quotes a packet the box never sent: icmp_unsupported.
// - On an address the kernel shares with SNAT (exception path), an error that quotes
//   nothing of ours is the kernel's (about its own connections): it goes there.
// Cost under a flood of forged errors: the checksum over the message, a bounded parse
// of the quote and one flow lookup; nothing is created.
bool isTranslatedIcmpError(uint8_t type) noexcept {
  return type == pkt::icmp::kDestUnreachable || type == pkt::icmp::kTimeExceeded;
}

[[gnu::noinline]] Action handleIcmpError(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame,
                                         ParsedFrame& p, uint32_t now_ms) noexcept {
  auto notOurs = [&](DropReason reason) noexcept { return icmpErrorNotOurs(ctx, in_port, p, reason, now_ms); };
  constexpr size_t kQuoteHeader = pkt::kIcmpMinLen;  // type, code, checksum, unused/MTU
  if (p.is_fragment || p.l4_len < kQuoteHeader + pkt::kIpv4MinLen + 8 || !pkt::icmpChecksumOk(frame, p)) {
    return notOurs(DropReason::kIcmpUnsupported);
  }
  const std::byte* in = frame.data() + p.l4_offset + kQuoteHeader;
  const uint8_t version_ihl = std::to_integer<uint8_t>(in[pkt::ipv4::kVersionIhl]);
  const size_t ihl = size_t{version_ihl & 0x0fu} * 4;
  const uint8_t proto = std::to_integer<uint8_t>(in[pkt::ipv4::kProto]);
  // RFC 792: the quote holds the header and at least 8 bytes of data (the ports).
  if ((version_ihl >> 4) != 4 || ihl < pkt::kIpv4MinLen || p.l4_len < kQuoteHeader + ihl + 8 ||
      (proto != pkt::kProtoTcp && proto != pkt::kProtoUdp) ||
      (pkt::load16(in + pkt::ipv4::kFragOff) & pkt::ipv4::kOffsetMask) != 0) {
    return notOurs(DropReason::kIcmpUnsupported);
  }
  const uint32_t q_src = pkt::load32(in + pkt::ipv4::kSrc);
  const uint32_t q_dst = pkt::load32(in + pkt::ipv4::kDst);
  const uint16_t q_sport = pkt::load16(in + ihl);
  const uint16_t q_dport = pkt::load16(in + ihl + 2);
  // We sent the quoted packet, so it came from the address the error is addressed to.
  if (q_src != p.dst_ip) return notOurs(DropReason::kIcmpUnsupported);
  const lb::FlowKey key{.src_ip = q_dst, .dst_ip = q_src, .src_port = q_dport, .dst_port = q_sport, .proto = proto};
  return detail::translateFlowIcmpError<Ipv4>(ctx, in_port, frame, p, key, now_ms);
}

// knownFlow's endings other than the common one, for a flow it found from the side it
// belongs to: a client reopening a closed tuple, a flow whose node drained past its
// timeout, a tunnel-mode flow, TTL running out. Out of line, so that the burst loop,
// which inlines knownFlow, holds only the common ending. Returns as knownFlow does.
template <class Frame>
[[gnu::noinline]] bool knownFlowRare(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                     std::span<std::byte> frame, Frame& p, lb::Flow& flow, bool from_client,
                                     uint32_t flow_hash, uint32_t now_ms, Action& out) noexcept {
  if (from_client && detail::isReopen(p, flow)) {
    // The client reuses the 4-tuple of a connection that has closed (its port came
    // round again while the node sat in TIME_WAIT): a new connection, like conntrack
    // treats it, with a fresh backend choice from today's table - the old node may be
    // draining or gone. The old record (and its SNAT port's quarantine) ends here; the
    // new flow takes another SNAT port.
    endFlow(ctx, flow);
    ctx.flows.erase(&flow);
    return false;
  }
  if (!snap.cut_stats_ids.empty() && snap.cutsFlowsOf(flow.stats_id)) {
    // Its node has drained for longer than health.drain_timeout_s: the flow ends,
    // in both directions (the client's retransmissions then meet no flow).
    endFlow(ctx, flow);
    ctx.flows.erase(&flow);
    out = drop(ctx, DropReason::kDrainTimeout);
  } else if (from_client && (flow.flags & lb::kFlowTunnel)) {
    ParsedFrame built;
    out = detail::existingTunnel<Ipv4>(ctx, snap, in_port, frame, fullParse(p, built), flow, flow_hash, now_ms);
  } else if (p.ttl <= 1) {
    out = drop(ctx, DropReason::kTtlExceeded);
  } else {
    out = existingFullNat(ctx, frame, p, flow, /*to_node=*/from_client, now_ms);
  }
  return true;
}

// The fast path: a frame of a flow this worker knows, seen from the side it belongs to.
// Its first packet passed every check of decideDatagram (martians, VIP, service), and
// the key pins source and destination, so only the TTL is left to check. Returns true
// with `out` set when it decided; false when decideDatagram's checks must (no flow, the
// wrong side's key, or a client reopening a closed flow, whose record is gone by then).
// `key` is keyOf(p) and `flow_hash` FlowTable::hashOf(key). Inline: the burst loop calls
// it for every keyed frame before anything else. `Frame`: ParsedFrame, or the burst
// path's pkt::SimpleIpv4 (a frame of the common shape: no ParsedFrame is built for it
// unless it leaves this path), whose key comes as lb::FlowKeyWords. `role` is
// ctx.ports[in_port].role, a constant where the burst loop is specialised per role.
// kCurrentIndex (the burst loop): the flow table's lookupInCurrentIndex(), so while the
// index grows a flow may be missed; the caller checks again before a new flow is made.
template <bool kCurrentIndex = false, class Frame, class Key>
[[gnu::always_inline]] inline bool knownFlow(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                             PortRole role, std::span<std::byte> frame, Frame& p, const Key& key,
                                             uint32_t flow_hash, uint32_t now_ms, Action& out) noexcept {
  if (role == PortRole::kExternal && ctx.steer_clients) [[unlikely]] {
    // Several workers on a device that may move a flow's frames between queues: the
    // flow hash decides which worker owns a client flow (lb/reply_steering.h).
    const uint32_t owner = ctx.steering.clientOwner(flow_hash);
    if (owner != ctx.id) {
      out = Action{.kind = Action::Kind::kRedirect, .out_port = static_cast<uint8_t>(owner)};
      return true;
    }
  }
  const lb::FlowTable::Hit hit =
      kCurrentIndex ? ctx.flows.lookupInCurrentIndex(key, flow_hash) : ctx.flows.lookup(key, flow_hash);
  const bool from_client = role == PortRole::kExternal && hit.flow != nullptr && !hit.by_node_key;
  const bool from_node = role == PortRole::kInternal && hit.flow != nullptr && hit.by_node_key;
  if (!from_client && !from_node) return false;
  lb::Flow& flow = *hit.flow;
  // A superset of knownFlowRare's cases, each one test: a closing flow (a reopen is a
  // client's bare SYN on one), drained nodes somewhere, a tunnel-mode flow, TTL 1.
  const bool rare = (from_client && (flow.state == lb::FlowState::kTcpClosing || (flow.flags & lb::kFlowTunnel))) ||
                    !snap.cut_stats_ids.empty() || p.ttl <= 1;
  if (rare) [[unlikely]] return knownFlowRare(ctx, snap, in_port, frame, p, flow, from_client, flow_hash, now_ms, out);
  out = existingFullNat(ctx, frame, p, flow, /*to_node=*/from_client, now_ms);
  return true;
}

// `flow_checked`: knownFlow() already ran for this frame (the burst loop) and said no.
Action decideDatagram(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                      std::span<std::byte> frame, ParsedFrame& p, bool have_hash, uint32_t flow_hash,
                      uint32_t now_ms, bool flow_checked = false) noexcept {
  const PortInfo& port = ctx.ports[in_port];
  const bool l4_balanced = hasFlowKey(p);
  if (l4_balanced && !flow_checked) {
    const lb::FlowKey key = keyOf(p);
    Action known;
    if (knownFlow(ctx, snap, in_port, port.role, frame, p, key, have_hash ? flow_hash : lb::FlowTable::hashOf(key), now_ms,
                  known)) {
      return known;
    }
  }

  if (isMartianSource(ctx, snap, p.src_ip)) return drop(ctx, DropReason::kMartian);
  if (p.proto == pkt::kProtoIcmp && isTranslatedIcmpError(p.icmp_type)) [[unlikely]] {
    if (port.role == PortRole::kExternal ? snap.isVip(p.dst_ip) : isSnatAddress(snap, p.dst_ip)) {
      return handleIcmpError(ctx, in_port, frame, p, now_ms);
    }
  }
  if (port.role == PortRole::kExternal) {
    if (snap.isVip(p.dst_ip)) {
      if (p.proto == pkt::kProtoIcmp) return handleIcmp(ctx, in_port, frame, p);
      if (!l4_balanced) return drop(ctx, DropReason::kUnsupportedProtocol);
      if (p.ttl <= 1) [[unlikely]] {
        // Tunnel mode delivers TTL 1 (the box is the VIP's owner, not a router: above).
        const ServicePort* sp = snap.find(p.dst_ip, p.dst_port, p.proto);
        if (sp == nullptr || sp->mode != ForwardingMode::kTunnel) return drop(ctx, DropReason::kTtlExceeded);
      }
      return detail::newFlowToNode<Ipv4>(ctx, snap, in_port, frame, p, keyOf(p), have_hash, flow_hash, now_ms);
    }
  } else if (l4_balanced && isSnatAddress(snap, p.dst_ip) && isSnatReply(ctx, port, p)) {
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
    // Echo requests are answered here, kernel or not (the most common probe needs no
    // round trip); other ICMP goes to the kernel when there is one (the answers to its
    // own pings and probes), else it is icmp_unsupported as before.
    if (p.proto == pkt::kProtoIcmp && (p.icmp_type == pkt::icmp::kEchoRequest || !port.exception_path)) {
      return handleIcmp(ctx, in_port, frame, p);
    }
    return toKernel(ctx, in_port, now_ms);
  }
  // Nothing is ever sent to an outer source but nodes' ICMP errors about IPIP packets;
  // counted apart, since "protocol unreachable" there means a node cannot decapsulate.
  if (snap.tunnel.isSource(p.dst_ip)) return drop(ctx, DropReason::kToTunnelSource);
  return drop(ctx, DropReason::kNotForUs);
}

// A later fragment of a datagram whose first fragment went into the tunnel: the same
// outer addresses, the fragment itself untouched.
Action laterFragmentToTunnel(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                             std::span<std::byte> frame, const ParsedFrame& p, lb::FragmentEntry& e,
                             uint32_t offset, uint32_t now_ms) noexcept {
  if (!fitsTunnel(ctx, p)) return tooBigForTunnel(ctx, snap, in_port, frame, p, p.dst_ip, now_ms);
  const Mac* mac = tunnelNextHop(ctx, e.new_dst_ip, now_ms);
  if (!mac) return Action{};
  BackendCounters& stats = ctx.backend_stats.at(e.stats_id);
  stats.packets_in.add();
  stats.bytes_in.add(frame.size());
  ctx.counters.fragments_forwarded.add();
  const bool more = (pkt::load16(frame.data() + p.l3_offset + pkt::ipv4::kFragOff) & pkt::ipv4::kFlagMf) != 0;
  const Action a = encapsulate(ctx, frame, p, *mac, e.new_src_ip, e.new_dst_ip);
  e.received += p.l4_len;
  if (!more) e.total = offset + p.l4_len;
  if (e.total != 0 && e.received >= e.total) ctx.fragments.erase(&e);
  return a;
}

// --- Fragment policy ---------------------------------------------------------------------
// IPv4 fragments of TCP and UDP datagrams are forwarded, every fragment of a datagram to
// the same place as its first fragment, rewritten like it. Why: the large DPDK and XDP
// balancers drop fragments, which silently breaks UDP protocols whose datagrams exceed
// the path MTU (DNS with EDNS0/DNSSEC, SIP, QUIC/IKE handshakes, tunnels) and TCP on
// paths that ignore DF; a balancer in front of a Kubernetes Service must carry them.
// The box never reassembles (no buffering, no copies): the node's and the client's
// kernels do, as they would behind any router.
//
// How: only the first fragment (offset 0) carries the ports, so it alone goes through
// the flow table (existing flow or a new one, both directions). Forwarding it records,
// under the datagram's identity (source, destination, protocol, IP id), the addresses it
// was rewritten to and the port it left by (lb::FragmentTable); later fragments get the
// same address rewrite and the same next hop. The TCP/UDP checksum covers the whole
// datagram but lives in the first fragment only, so the incremental update of the first
// fragment (pseudo-header addresses and ports, RFC 1624) is the whole correction; later
// fragments change only their IPv4 header (and its checksum).
//
// Every fragment of a datagram also leaves with a new IP id, one per datagram from a
// per-worker counter. Why: the receiver reassembles by (source, destination, protocol,
// id), and full-NAT maps many clients onto one SNAT address toward a node (and many
// nodes onto one VIP toward a client). Two clients whose ids happen to match would have
// their fragments mixed in the node's reassembly queue - by accident, or on purpose by a
// sender that picks the id of someone else's datagram. Ids the box hands out cannot be
// chosen by a sender and do not repeat until 65536 fragmented datagrams later.
//
// Out of order: a later fragment that arrives before its first fragment is dropped and
// counted (fragment_no_flow); it is not held. Why: holding means keeping mbufs past the
// burst that received them - a pool any sender could drain with fragments that never get
// a first one - and releasing them later from a path that emits only the frame in hand.
// Senders emit a datagram's fragments in order and one path rarely reorders them; when it
// does, the datagram is lost like any lost packet and the sender's timers (TCP, DNS
// retries) deal with it. Fragments after the first may come in any order among themselves.
//
// Dropped as malformed (fragment_malformed): MF with an empty payload or one that is not a
// multiple of 8 bytes (RFC 791), a fragment ending past 65535 bytes, and a later fragment
// that overlaps the first (it could overwrite the ports or checksum the box translated -
// RFC 1858's overlapping-fragment attack). Fragments of other protocols (ICMP among them)
// are dropped (fragment): nothing to balance them by. A first fragment whose bucket in
// the fragment table is full of datagrams under way is dropped (fragment_table_full)
// rather than evicting one of them, whose other fragments are already in flight.
// Tunnel mode: the first fragment goes into the tunnel like any packet of its flow, and
// the table gives the later fragments the first one's outer header (node and outer
// source); fragments travel unchanged inside it (no new IP id: the client's address is
// kept, so ids of different clients cannot collide at the node), each with an outer
// header of its own.
[[gnu::noinline]] Action handleFragment(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                        std::span<std::byte> frame, ParsedFrame& p, bool have_hash,
                                        uint32_t flow_hash, uint32_t now_ms) noexcept {
  // Fragments for the port's own address go to its kernel, which reassembles them. On an
  // address shared with SNAT only the first fragment carries the port that tells a
  // full-NAT reply from the kernel's traffic: such datagrams take the path below, and a
  // first fragment for the kernel leaves an entry that sends the rest after it.
  if (const PortInfo& port = ctx.ports[in_port];
      port.exception_path && p.dst_ip == port.address && !isSnatAddress(snap, p.dst_ip)) [[unlikely]] {
    if (isMartianSource(ctx, snap, p.src_ip)) return drop(ctx, DropReason::kMartian);
    return toKernel(ctx, in_port, now_ms);
  }
  if (p.proto != pkt::kProtoTcp && p.proto != pkt::kProtoUdp) return drop(ctx, DropReason::kFragment);
  const std::byte* ip = frame.data() + p.l3_offset;
  const uint16_t frag = pkt::load16(ip + pkt::ipv4::kFragOff);
  const bool more = (frag & pkt::ipv4::kFlagMf) != 0;
  const uint32_t offset = uint32_t{static_cast<uint16_t>(frag & pkt::ipv4::kOffsetMask)} * 8;
  const uint32_t payload = p.l4_len;
  if ((more && (payload == 0 || payload % 8 != 0)) || offset + payload + p.ip_header_len > 65535) {
    return drop(ctx, DropReason::kFragmentMalformed);
  }
  const lb::FragmentKey key{.src_ip = p.src_ip, .dst_ip = p.dst_ip, .id = pkt::load16(ip + pkt::ipv4::kId),
                            .proto = p.proto};

  if (p.first_fragment) {
    lb::FragmentEntry* e = ctx.fragments.insert(key, now_ms);
    if (e == nullptr) return drop(ctx, DropReason::kFragmentTableFull);
    const lb::FlowKey flow_key = keyOf(p);  // as received; the rewrite changes `p`
    const Action a = decideDatagram(ctx, snap, in_port, frame, p, have_hash, flow_hash, now_ms);
    if (a.kind == Action::Kind::kToKernel) [[unlikely]] {
      // The kernel's datagram on an address shared with SNAT (its port is one SNAT never
      // hands out): the rest of it follows to the kernel, which reassembles.
      e->received = payload;
      e->first_len = static_cast<uint16_t>(payload);
      e->in_port = in_port;
      e->to_kernel = 1;
      return a;
    }
    // Not sent on (or answered with frag-needed, out of the port it came in on).
    if (a.kind != Action::Kind::kForward || a.out_port == in_port) {
      ctx.fragments.erase(e);
      return a;
    }
    const lb::FlowTable::Hit hit = ctx.flows.lookup(flow_key);
    if (a.prepended != 0) {
      // Tunnel mode: the datagram stays as the client sent it (its IP id included: the
      // client's address is kept, so ids cannot collide at the node as full-NAT's can);
      // later fragments get the first one's outer addresses, read back from its header.
      const std::byte* outer = frame.data() - a.prepended + pkt::kEthHeaderLen;
      e->new_src_ip = pkt::load32(outer + pkt::ipv4::kSrc);
      e->new_dst_ip = pkt::load32(outer + pkt::ipv4::kDst);
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
    e->new_src_ip = p.src_ip;  // rewritten by now
    e->new_dst_ip = p.dst_ip;
    e->stats_id = hit.flow != nullptr ? hit.flow->stats_id : 0;
    e->received = payload;
    e->first_len = static_cast<uint16_t>(payload);
    e->in_port = in_port;
    e->out_port = a.out_port;
    e->to_node = hit.flow != nullptr && !hit.by_node_key;
    e->new_id = ctx.next_fragment_id++;
    pkt::setIpv4Id(frame, p, e->new_id);
    ctx.counters.fragments_forwarded.add();
    return a;
  }

  lb::FragmentEntry* e = ctx.fragments.find(key, now_ms);
  if (e == nullptr || e->in_port != in_port) return drop(ctx, DropReason::kFragmentNoFlow);
  if (offset < e->first_len) return drop(ctx, DropReason::kFragmentMalformed);
  if (e->to_kernel) [[unlikely]] {
    const Action a = toKernel(ctx, in_port, now_ms);
    e->received += payload;
    if (!more) e->total = offset + payload;
    if (e->total != 0 && e->received >= e->total) ctx.fragments.erase(e);
    return a;
  }
  if (e->tunnel) [[unlikely]] return laterFragmentToTunnel(ctx, snap, in_port, frame, p, *e, offset, now_ms);
  if (p.ttl <= 1) return drop(ctx, DropReason::kTtlExceeded);
  const uint8_t out = e->out_port;
  const Mac* mac = nextHopMac(ctx, out, e->new_dst_ip, now_ms);
  if (!mac) return drop(ctx, DropReason::kNeighborUnresolved);
  detail::countFullNat(ctx, e->stats_id, e->to_node, frame.size());
  ctx.counters.fragments_forwarded.add();
  // Ports 0: a later fragment has no L4 header, and the rewrite leaves its payload alone.
  const Action a = emit(ctx, frame, p, out, *mac, e->new_src_ip, 0, e->new_dst_ip, 0);
  pkt::setIpv4Id(frame, p, e->new_id);
  e->received += payload;
  if (!more) e->total = offset + payload;
  // Every byte has passed: the entry is free for the next datagram. (Duplicated
  // fragments can end it early; the rest of such a datagram is dropped as
  // fragment_no_flow, which a duplicate-free path never sees.)
  if (e->total != 0 && e->received >= e->total) ctx.fragments.erase(e);
  return a;
}

// Everything after parsing. `flow_hash` is FlowTable::hashOf(key) when the caller has
// it (burst path), else 0 with `have_hash` false.
[[gnu::always_inline]] inline Action decide(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
              std::span<std::byte> frame, ParsedFrame& p, bool have_hash, uint32_t flow_hash,
              uint32_t now_ms, bool flow_checked = false) noexcept {
  // Ports are configured untagged in this version; a tag means a misconfigured switch.
  if (p.has_vlan) return drop(ctx, DropReason::kVlan);
  if (p.l3 == pkt::L3::kArp) return handleArp(ctx, snap, in_port, frame, p, now_ms);
  if (p.l3 == pkt::L3::kIpv6) [[unlikely]] return detail::decide6(ctx, snap, in_port, frame, p, now_ms);
  if (p.is_fragment) [[unlikely]] return handleFragment(ctx, snap, in_port, frame, p, have_hash, flow_hash, now_ms);
  return decideDatagram(ctx, snap, in_port, frame, p, have_hash, flow_hash, now_ms, flow_checked);
}

}  // namespace

uint32_t WorkerContext::defaultAffinityCapacity(uint32_t flow_capacity) noexcept {
  return std::max<uint32_t>(1024, flow_capacity / 4);
}

uint32_t WorkerContext::defaultFlow6Capacity(uint32_t flow_capacity) noexcept {
  return std::max<uint32_t>(1024, flow_capacity / 4);
}

WorkerContext::WorkerContext(unsigned worker_id, std::vector<PortInfo> port_infos, uint32_t flow_capacity,
                             uint32_t affinity_capacity, uint32_t backend_stats_capacity, uint32_t flow6_capacity)
    : id(worker_id),
      ports(std::move(port_infos)),
      flows(flow_capacity),
      backend_stats(backend_stats_capacity),
      affinity(affinity_capacity != 0 ? affinity_capacity : defaultAffinityCapacity(flow_capacity)),
      next_fragment_id(static_cast<uint16_t>(worker_id << 12)),
      flows6(flow6_capacity != 0 ? flow6_capacity : defaultFlow6Capacity(flow_capacity)),
      affinity6(defaultAffinityCapacity(flows6.capacity())),
      next_fragment_id6(worker_id << 24) {
  for (PortInfo& port : ports) {
    if (port.prefix_len > 32) {
      throw std::invalid_argument("worker " + std::to_string(worker_id) + ": IPv4 prefix length " +
                                  std::to_string(port.prefix_len) + " (0..32)");
    }
    if (port.link_local6.isZero()) port.link_local6 = pkt::linkLocalFromMac(port.mac);
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].role == PortRole::kExternal) external_port = static_cast<uint8_t>(i);
    if (ports[i].role == PortRole::kInternal) internal_port = static_cast<uint8_t>(i);
  }
}

Action processFrame(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                    std::span<std::byte> frame, uint32_t now_ms, size_t headroom) noexcept {
  ctx.frame_headroom = headroom;
  ParsedFrame parsed;
  const ParseStatus status = pkt::parseFrame(frame, parsed);
  if (status != ParseStatus::kOk) return drop(ctx, reasonFor(status));
  return decide(ctx, snap, in_port, frame, parsed, false, 0, now_ms);
}

namespace {

// What the burst's first stage learns of a frame for the second.
struct Staged {
  pkt::SimpleIpv4 simple;  // is_simple: the common shape's fields
  uint32_t hash;           // keyed: FlowTable::hashOf(the frame's key)
  bool is_simple;
  bool keyed;              // it has a flow key (the common shape always has)
  ParseStatus status;      // !is_simple: parseFrame's verdict (in `parsed`)
};

// The burst's decisions for frames off the known-flow path, out of line so that the
// loop around knownFlow keeps its values in registers. A frame of the common shape
// whose flow knownFlow did not find (or that reopens one):
[[gnu::noinline]] Action decideSimple(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                      std::span<std::byte> frame, const Staged& s, ParsedFrame& parsed,
                                      uint32_t now_ms) noexcept {
  pkt::toParsedFrame(s.simple, parsed);
  // The burst loop looked in the index array in use only: while the index grows, its
  // flow may sit in the old array, so decideDatagram looks again, in both.
  const bool flow_checked = !ctx.flows.indexGrowing();
  return decide(ctx, snap, in_port, frame, parsed, true, s.hash, now_ms, flow_checked);
}
// Any other frame, parsed whole in stage 1.
[[gnu::noinline]] Action decideParsed(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                                      std::span<std::byte> frame, const Staged& s, ParsedFrame& p,
                                      uint32_t now_ms) noexcept {
  if (s.status != ParseStatus::kOk) return drop(ctx, reasonFor(s.status));
  // Fragments go to handleFragment, which looks their flow up itself.
  const bool try_known = s.keyed && !p.is_fragment;
  Action out;
  if (try_known && knownFlow(ctx, snap, in_port, ctx.ports[in_port].role, frame, p, keyOf(p), s.hash, now_ms, out)) {
    return out;
  }
  return decide(ctx, snap, in_port, frame, p, s.keyed, s.hash, now_ms, try_known);
}

// Stage 2 of processBurst for frames that came in on a port of role `kRole`: every
// decision in arrival order; see processBurst.
template <PortRole kRole>
void decideStaged(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                  std::span<const std::span<std::byte>> frames, std::span<Action> actions, size_t n,
                  std::span<Staged, kMaxBurst> staged, std::span<ParsedFrame, kMaxBurst> parsed,
                  uint32_t now_ms) noexcept {
  for (size_t i = 0; i < n; ++i) {
    Staged& s = staged[i];
    if (s.is_simple) [[likely]] {
      if (!knownFlow</*kCurrentIndex=*/true>(ctx, snap, in_port, kRole, frames[i], s.simple, keyOf(s.simple), s.hash,
                                              now_ms, actions[i])) {
        actions[i] = decideSimple(ctx, snap, in_port, frames[i], s, parsed[i], now_ms);
      }
    } else {
      actions[i] = decideParsed(ctx, snap, in_port, frames[i], s, parsed[i], now_ms);
    }
  }
}

}  // namespace

void processBurst(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                  std::span<const std::span<std::byte>> frames, std::span<Action> actions,
                  uint32_t now_ms, size_t headroom) noexcept {
  ctx.frame_headroom = headroom;
  const size_t n = std::min({frames.size(), actions.size(), kMaxBurst});
  // Filled in place (no per-burst zeroing, no copies). A frame of the common shape
  // (pkt::SimpleIpv4: untagged IPv4 without options, not a fragment, TCP or UDP) keeps
  // only its few fields; a ParsedFrame is built for it only if it leaves the known-flow
  // path. Every other frame is parsed whole.
  std::array<Staged, kMaxBurst> staged;
  std::array<ParsedFrame, kMaxBurst> parsed;
  // Stage 1: parse, hash, prefetch the index slots. Stage 2: decide, in arrival order: a
  // frame of a known flow straight away (knownFlow), every other frame through all the
  // checks. The records are not prefetched: a prefetch of each frame's record a few
  // decisions ahead measured no faster with 4096 flows (records in L2) nor with 1M, and
  // it cost ~17 instructions a frame (docs/BENCHMARKS.md).
  for (size_t i = 0; i < n; ++i) {
    Staged& s = staged[i];
    s.is_simple = pkt::parseSimpleIpv4(frames[i], s.simple);
    if (s.is_simple) [[likely]] {
      s.keyed = true;
      s.hash = lb::FlowTable::hashOf(keyOf(s.simple));
    } else {
      s.status = pkt::parseFrame(frames[i], parsed[i]);
      s.keyed = s.status == ParseStatus::kOk && hasFlowKey(parsed[i]);
      s.hash = s.keyed ? lb::FlowTable::hashOf(keyOf(parsed[i])) : 0;
    }
    if (s.keyed) ctx.flows.prefetchSlot(s.hash);
  }
  if (ctx.ports[in_port].role == PortRole::kExternal) {
    decideStaged<PortRole::kExternal>(ctx, snap, in_port, frames, actions, n, staged, parsed, now_ms);
  } else {
    decideStaged<PortRole::kInternal>(ctx, snap, in_port, frames, actions, n, staged, parsed, now_ms);
  }
}

void onSnapshot(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms) noexcept {
  ctx.snat.setAddresses(snap.snat_addresses);
  // A lower budget than the half-open flows already held takes effect as new SYNs
  // arrive (each evicts the oldest) and as those flows expire: nothing is scanned here.
  ctx.flows.setHalfOpenLimit(
      static_cast<uint32_t>(uint64_t{ctx.flows.capacity()} * snap.half_open_budget_percent / 100));
  for (const StaticNeighbor& n : snap.static_neighbors) {
    ctx.neighbors.learn(n.ip, n.mac, now_ms, /*is_static=*/true);
  }
  detail::onSnapshot6(ctx, snap, now_ms);
  ctx.applied_generation.store(snap.generation, std::memory_order_relaxed);
}

size_t slowTick(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                uint32_t expiry_budget, std::span<ArpRequest> requests) noexcept {
  detail::FlowEnder<lb::FlowKey> ender(ctx);
  ctx.counters.expired_flows.add(ctx.flows.expire(now_ms, expiry_budget, snap.timeouts, &ender));
  // IPv6 flows, affinity and fragments at the same pace (processor6.cc).
  ctx.counters.expired_flows.add(detail::expire6(ctx, snap, now_ms, expiry_budget));
  // Affinity entries at the same pace (in buckets of kWays entries), after the flows
  // that just ended released theirs.
  (void)ctx.affinity.expire(now_ms, (expiry_budget + lb::AffinityTable::kWays - 1) / lb::AffinityTable::kWays);
  ctx.counters.active_flows.set(ctx.flows.size() + ctx.flows6.size());
  ctx.counters.half_open_flows.set(ctx.flows.halfOpen() + ctx.flows6.halfOpen());
  ctx.counters.flow_index_slots.set(ctx.flows.indexSlots());
  (void)ctx.fragments.sweep(now_ms, (expiry_budget + lb::FragmentTable::kWays - 1) / lb::FragmentTable::kWays);

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
