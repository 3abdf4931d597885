#pragma once
// In-place rewrites of a parsed frame. Checksums are updated incrementally (RFC 1624),
// so a frame whose L4 checksum was wrong on arrival is still wrong on departure.
// Preconditions: `p` is the ParsedFrame of `frame` with status kOk and the layer the
// function edits present; the frame length never changes.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/parse.h"

namespace ng::pkt {

// Inline: every forwarded frame takes it.
inline void setEthernet(std::span<std::byte> frame, const Mac& dst, const Mac& src) noexcept {
  storeMac(frame.data(), dst);
  storeMac(frame.data() + 6, src);
}

// Rewrites IPv4 source/destination and TCP/UDP ports (full-NAT), fixing the IPv4 header
// checksum and the TCP/UDP checksum (pseudo-header included). A UDP checksum of zero
// ("none") stays zero. Updates `p`'s address and port fields to the new values.
void rewriteIpv4Tuple(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip,
                      uint16_t src_port, uint32_t dst_ip, uint16_t dst_port) noexcept;

// A router's full-NAT step: TTL decrement (caller checked TTL > 1) + rewriteIpv4Tuple in
// one pass, with one checksum delta per header (the address change is shared by IPv4 and
// TCP/UDP).
void forwardNat(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port) noexcept;

// Sets the IPv4 identification to `id` (host order), fixing the header checksum
// incrementally. For fragments the box renumbers (fwd/processor.cc, fragment policy).
void setIpv4Id(std::span<std::byte> frame, const ParsedFrame& p, uint16_t id) noexcept;

// Turns an ARP request into our reply: "`p.arp_tpa` is at `our_mac`", addressed to the
// requester at L2 and in the ARP body.
void arpRequestToReply(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac) noexcept;

// Turns an ICMP echo request into the echo reply from its destination: swaps the
// addresses, sets type 0 and TTL 64, sends it back to the L2 source from `our_mac`.
void icmpEchoToReply(std::span<std::byte> frame, ParsedFrame& p, const Mac& our_mac) noexcept;

// True when the ICMP message of `p` (IPv4, first fragment) sums to the checksum it carries.
[[nodiscard]] bool icmpChecksumOk(std::span<const std::byte> frame, const ParsedFrame& p) noexcept;

// Translates an ICMP error (destination unreachable, time exceeded) that quotes a packet
// of a full-NAT flow. Outer header: TTL - 1 (caller checked > 1), addresses `outer_src`
// -> `outer_dst`, header checksum updated incrementally; updates p.ttl, p.src_ip,
// p.dst_ip. Quoted packet: its IPv4 addresses and TCP/UDP ports become inner_src:
// inner_sport -> inner_dst:inner_dport, its header checksum and (when the quote holds
// it) its TCP/UDP checksum updated incrementally (RFC 1624), so a quote that was right
// stays right and a wrong one stays wrong. The ICMP checksum is then recomputed over the
// whole message: the caller verified the old one (icmpChecksumOk). The fourth word (the
// frag-needed MTU) is left as it is. Preconditions (fwd/processor.cc checks): the
// message holds 8 bytes of ICMP header, the quoted IPv4 header (IHL >= 5) and at least
// the 8 bytes after it.
void translateIcmpError(std::span<std::byte> frame, ParsedFrame& p, uint32_t outer_src, uint32_t outer_dst,
                        uint32_t inner_src, uint16_t inner_sport, uint32_t inner_dst, uint16_t inner_dport) noexcept;

// Writes a broadcast ARP request "who has target_ip? tell src_ip" (60 bytes, zero
// padded). Returns the length written, or 0 when `frame` is shorter than 60 bytes.
size_t writeArpRequestFrame(std::span<std::byte> frame, const Mac& src_mac, uint32_t src_ip,
                            uint32_t target_ip) noexcept;

}  // namespace ng::pkt
