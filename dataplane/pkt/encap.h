#pragma once
// Tunnel mode's byte-level work: IPv4-in-IPv4 encapsulation (RFC 2003) and the ICMP
// "fragmentation needed" answer (RFC 792, RFC 1191) the box owes a client whose packet
// would not fit the tunnel. Plain C++ over byte spans, no DPDK, noexcept, no allocation.
//
// Both work on an untagged Ethernet + IPv4 frame that parseFrame() accepted, in place.
// Encapsulation grows the frame at the front: the caller guarantees kIpipOverhead
// writable bytes before frame.data() (an mbuf's headroom). The frag-needed answer is
// written over the received frame, which is always longer than the answer when the
// received packet exceeded a link MTU (the answer is at most 14 + 20 + 8 + 60 + 8 bytes).
//
// The IPv6 twins (RFC 2473 IPv6-in-IPv6 with a 40-byte outer header, RFC 4443 ICMPv6
// Packet Too Big) have the same shape and work on an untagged Ethernet + IPv6 frame.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/pkt/parse.h"

namespace ng::pkt {

inline constexpr uint8_t kProtoIpip = 4;       // IPv4 encapsulated in IPv4
inline constexpr size_t kIpipOverhead = 20;    // the outer IPv4 header, no options
inline constexpr uint8_t kOuterTtl = 64;
inline constexpr uint16_t kFlagDf = 0x4000;    // IPv4 "don't fragment"

// ICMP destination unreachable / fragmentation needed (RFC 792, next-hop MTU RFC 1191).
namespace icmp {
inline constexpr uint8_t kDestUnreachable = 3, kFragNeeded = 4;
}

// The outer header's variable fields.
struct OuterIpv4 {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t id = 0;
};

// True when the inner packet of `frame` asks not to be fragmented (DF set).
[[nodiscard]] bool hasDontFragment(std::span<const std::byte> frame, const ParsedFrame& p) noexcept;

// Encapsulates the IPv4 packet of `frame` (p.l3_offset == kEthHeaderLen, no VLAN) for
// the node `outer.dst`: writes a new Ethernet header (dst_mac <- src_mac) and the outer
// IPv4 header into the kIpipOverhead bytes before frame.data() and the first 14 bytes
// of the old frame. Outer header: version 4, IHL 5, TOS copied from the inner header,
// total length = inner total length + 20, `outer.id`, DF copied from the inner header
// (no fragment offset), TTL kOuterTtl, protocol 4, checksum computed, `outer.src`,
// `outer.dst`. The inner packet is left exactly as received (RFC 2003 sec. 3.1: the
// box is the VIP's owner, not a router forwarding it; see fwd/tunnel.cc).
// Returns the length of the new frame, which starts kIpipOverhead bytes before
// frame.data(): 14 + 20 + the inner total length (Ethernet padding is dropped).
[[nodiscard]] size_t encapsulateIpip(std::span<std::byte> frame, const ParsedFrame& p, const Mac& dst_mac,
                                     const Mac& src_mac, const OuterIpv4& outer) noexcept;

// Replaces `frame` by an ICMP type 3 code 4 to the sender of its IPv4 packet: Ethernet
// back to the frame's source MAC from `our_mac`, IPv4 from `from` (the VIP the packet
// was for) with TTL 64 and IP id 0, next-hop MTU `mtu`, quoting the packet's IP header
// and the first 8 bytes of its payload (RFC 792), ICMP checksum computed. Returns the
// answer's length, or 0 (frame untouched) when the frame is too short to hold it.
[[nodiscard]] size_t writeFragNeeded(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac,
                                     uint32_t from, uint16_t mtu) noexcept;

// --- IPv6-in-IPv6 (RFC 2473) -------------------------------------------------------------
inline constexpr uint8_t kProtoIpv6 = 41;        // IPv6 encapsulated (next header 41)
inline constexpr size_t kIp6ip6Overhead = 40;    // the outer IPv6 header, no extension headers
inline constexpr uint8_t kOuterHopLimit = 64;
// RFC 4443 sec. 2.4 (c): an ICMPv6 error fits in the IPv6 minimum MTU.
inline constexpr size_t kIpv6MinMtu = 1280;

struct OuterIpv6 {
  Ip6 src{};
  Ip6 dst{};
  uint32_t flow_label = 0;  // low 20 bits used
};

// Encapsulates the IPv6 packet of `frame` (p.l3_offset == kEthHeaderLen, no VLAN) for the
// node `outer.dst`: writes a new Ethernet header (dst_mac <- src_mac) and the outer IPv6
// header into the kIp6ip6Overhead bytes before frame.data() and the first 14 bytes of the
// old frame. Outer header: version 6, traffic class copied from the inner header, flow
// label `outer.flow_label` (20 bits), payload length = inner 40 + inner payload length,
// next header 41, hop limit kOuterHopLimit, `outer.src`, `outer.dst`. No encapsulation
// limit option (RFC 2473 sec. 4.1.1 leaves it to the entry point; the box never
// re-encapsulates). The inner packet is left exactly as received. Returns the length of
// the new frame, which starts kIp6ip6Overhead bytes before frame.data(): 14 + 40 + the
// inner p.ip_total_len (Ethernet padding dropped).
[[nodiscard]] size_t encapsulateIp6ip6(std::span<std::byte> frame, const ParsedFrame& p, const Mac& dst_mac,
                                       const Mac& src_mac, const OuterIpv6& outer) noexcept;

// Replaces `frame` by an ICMPv6 Packet Too Big (type 2, code 0) to the sender of its IPv6
// packet: Ethernet back to the frame's source MAC from `our_mac`, IPv6 from `from` (the
// VIP the packet was for) with hop limit 64, traffic class and flow label 0, MTU `mtu`,
// quoting as much of the invoking packet as keeps the answer within kIpv6MinMtu bytes of
// IPv6 (RFC 4443 sec. 3.2, 2.4 (c)) and within `frame`, checksum computed. Returns the
// answer's length, or 0 (frame untouched) when the frame is not an untagged IPv6 frame.
[[nodiscard]] size_t writePacketTooBig6(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac,
                                        const Ip6& from, uint32_t mtu) noexcept;

}  // namespace ng::pkt
