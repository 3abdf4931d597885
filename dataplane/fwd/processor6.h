#pragma once
// Internal to ng_fwd: the IPv6 half of the pipeline (processor6.cc, nd.cc), called by
// processor.cc. Same contracts as fwd/processor.h: one worker's context, noexcept, no
// allocation, no locks, no logging; every dropped frame counts one DropReason.

#include <cstdint>
#include <span>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/parse.h"

namespace ng::fwd::detail {

// Everything after parsing for an IPv6 frame (p.l3 == kIpv6; VLAN already refused).
[[nodiscard]] Action decide6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                             std::span<std::byte> frame, pkt::ParsedFrame& p, uint32_t now_ms) noexcept;

// onSnapshot's IPv6 part: SNAT6 addresses, half-open budget of flows6, static neighbours.
void onSnapshot6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms) noexcept;

// slowTick's IPv6 part: expires up to `budget` IPv6 flow records and sweeps the IPv6
// affinity and fragment tables at the same pace. Returns the flows removed.
uint32_t expire6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms, uint32_t budget) noexcept;

// --- nd.cc: Neighbor Discovery, ICMPv6 echo, next-hop resolution -----------------------

// ICMPv6 to the box: NS/NA (types 135/136; validated per RFC 4861 7.1) and echo requests
// to `dst` when it is ours. `src`/`dst` are the frame's addresses.
[[nodiscard]] Action handleNd(WorkerContext& ctx, const ForwardingSnapshot& snap, uint8_t in_port,
                              std::span<std::byte> frame, pkt::ParsedFrame& p, const pkt::Ip6& src,
                              const pkt::Ip6& dst, uint32_t now_ms) noexcept;
[[nodiscard]] Action handleEcho6(WorkerContext& ctx, uint8_t in_port, std::span<std::byte> frame,
                                 pkt::ParsedFrame& p) noexcept;

// The MAC of the next hop toward `dst` out of `port`; nullptr (and an NS queued when one
// is due) when unknown or there is no next hop.
[[nodiscard]] const Mac* nextHopMac6(WorkerContext& ctx, uint8_t port, const pkt::Ip6& dst,
                                     uint32_t now_ms) noexcept;

// Sources no router forwards from (RFC 4291: unspecified, loopback, multicast; IPv4-mapped
// per RFC 5156) plus the box's own addresses, VIPs and SNAT addresses.
// Tunnel mode's ICMP answer budget (processor.cc): true when the worker's token bucket
// (TunnelSettings::icmp_rate / icmp_burst) has an answer left, which it takes.
[[nodiscard]] bool takeIcmpToken(WorkerContext& ctx, const TunnelSettings& t, uint32_t now_ms) noexcept;

[[nodiscard]] bool isMartianSource6(const WorkerContext& ctx, const ForwardingSnapshot& snap,
                                    const pkt::Ip6& src) noexcept;

}  // namespace ng::fwd::detail
