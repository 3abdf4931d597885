#pragma once
// In-place rewrites of parsed IPv6 frames, and the ND frames the box writes. Same rules
// as pkt/rewrite.h: `p` is the ParsedFrame of `frame` with status kOk and l3 == kIpv6;
// the frame length never changes; NAT checksums are updated incrementally (RFC 1624),
// so a frame that arrived with a wrong checksum leaves with a wrong one.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/pkt/parse.h"

namespace ng::pkt {

[[nodiscard]] inline Ip6 srcIp6(std::span<const std::byte> frame, const ParsedFrame& p) noexcept {
  return loadIp6(frame.data() + p.l3_offset + 8);
}
[[nodiscard]] inline Ip6 dstIp6(std::span<const std::byte> frame, const ParsedFrame& p) noexcept {
  return loadIp6(frame.data() + p.l3_offset + 24);
}

// Full-NAT step for IPv6: hop limit - 1 (caller checked > 1), new addresses, and for a
// TCP/UDP datagram or first fragment new ports with the checksum fixed for pseudo-header
// and ports. Later fragments (no L4 header) get addresses and hop limit only. Updates
// p.ttl, p.src_port, p.dst_port.
void forwardNat6(std::span<std::byte> frame, ParsedFrame& p, const Ip6& src_ip, uint16_t src_port,
                 const Ip6& dst_ip, uint16_t dst_port) noexcept;

// Sets the Fragment header's identification (p.frag6_offset != 0). Not covered by any
// checksum.
void setIpv6FragmentId(std::span<std::byte> frame, const ParsedFrame& p, uint32_t id) noexcept;

// Checksum of an upper-layer message with the IPv6 pseudo-header (RFC 8200 8.1), ready
// to store; `message` has its checksum field as it is (zero it first to compute).
[[nodiscard]] uint16_t checksum6(const Ip6& src, const Ip6& dst, uint8_t next_header,
                                 std::span<const std::byte> message) noexcept;
// True when the ICMPv6 message of `p` (first fragment, not fragmented) verifies.
[[nodiscard]] bool icmp6ChecksumOk(std::span<const std::byte> frame, const ParsedFrame& p) noexcept;

// ICMPv6 echo request -> echo reply from its destination: swaps the addresses, sets type
// 129 and hop limit 64, sends it back to the L2 source from `our_mac`.
void icmp6EchoToReply(std::span<std::byte> frame, ParsedFrame& p, const Mac& our_mac) noexcept;

// Turns a Neighbor Solicitation (validated by the caller) into our Neighbor
// Advertisement for its target: from `src` (the target) to `dst` / `dst_mac`, hop limit
// 255, flags `na_flags` (icmp6::kNa*), with a target link-layer option carrying
// `our_mac` when the frame has room for one (86 bytes from the Ethernet header on: any NS
// that carried an option). Bytes past the NA become Ethernet padding (payload length
// says where the NA ends). Returns false when even the bare NA does not fit.
bool neighborSolicitationToAdvert(std::span<std::byte> frame, ParsedFrame& p, const Ip6& src, const Ip6& dst,
                                  const Mac& dst_mac, const Mac& our_mac, uint32_t na_flags) noexcept;

// Translates an ICMPv6 error (Packet Too Big) that quotes a packet of a full-NAT flow:
// the outer addresses become `outer_src` -> `outer_dst` (hop limit - 1, caller checked
// > 1), the quoted IPv6 header and its TCP/UDP ports become inner_src:inner_sport ->
// inner_dst:inner_dport, the quoted L4 checksum is updated incrementally when the quote
// holds it, and the ICMPv6 checksum is recomputed over the message. Preconditions: the
// message holds the 40-byte quoted header plus 4 bytes of ports right after it (no
// quoted extension headers) - fwd/processor6.cc checks.
void translateIcmp6Error(std::span<std::byte> frame, ParsedFrame& p, const Ip6& outer_src, const Ip6& outer_dst,
                         const Ip6& inner_src, uint16_t inner_sport, const Ip6& inner_dst, uint16_t inner_dport) noexcept;

// The 86-byte multicast NS "who has `target`? tell `src_ip` at `src_mac`".
inline constexpr size_t kNsFrameLen = 14 + 40 + 24 + 8;
size_t writeNsFrame(std::span<std::byte> frame, const Mac& src_mac, const Ip6& src_ip,
                    const Ip6& target) noexcept;

// The 86-byte unsolicited Neighbor Advertisement announcing `target` at `src_mac` (RFC
// 4861 7.2.6): to all-nodes ff02::1 (33:33:00:00:00:01) from `src_ip` (the port's
// link-local address), hop limit 255, Solicited = 0, Override = 1, Router = 0, a target
// link-layer address option with `src_mac`, ICMPv6 checksum. 0 when `frame` is shorter.
inline constexpr size_t kNaFrameLen = 14 + 40 + 24 + 8;
size_t writeUnsolicitedNaFrame(std::span<std::byte> frame, const Mac& src_mac, const Ip6& src_ip,
                               const Ip6& target) noexcept;

}  // namespace ng::pkt
