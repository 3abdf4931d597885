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
// The IPv6-in-IPv6 variant (RFC 2473, 40-byte outer header, ICMPv6 Packet Too Big) will
// sit next to these with the same shape.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/pkt/bytes.h"
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

}  // namespace ng::pkt
