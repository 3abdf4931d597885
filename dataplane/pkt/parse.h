#pragma once
// Bounds-checked parsing of Ethernet (with one 802.1Q tag), ARP, IPv4, IPv6 (with its
// extension-header chain, pkt/parse6.cc), TCP, UDP, ICMP and ICMPv6 over a byte span.
// Reads nothing outside the span and nothing past the IPv4 total length / IPv6 payload
// length; never allocates, never throws. The result records header offsets so the
// rewrite functions can edit the frame in place.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/pkt/bytes.h"

namespace ng::pkt {

enum class ParseStatus : uint8_t {
  kOk,
  kTruncated,             // a header runs past the frame or past the IP total length
  kUnsupportedEtherType,  // not ARP or IPv4 (after at most one VLAN tag)
  kBadArp,                // ARP that is not Ethernet/IPv4, or an unknown operation
  kBadIpHeader,           // version != 4, IHL < 5, total length < IHL or > frame
  kIpChecksum,            // IPv4 header checksum does not verify
  kBadL4Header,           // TCP data offset < 5 or past the segment, UDP length wrong
                          // (< 8, or past the datagram when it is not fragmented); IPv6:
                          // a UDP checksum of zero (RFC 8200 8.1)
  kExtHeaderChain,        // IPv6 extension-header chain too long, HBH not first, two
                          // Fragment headers (parse6.cc has the bounds)
  kJumbogram,             // IPv6 payload length 0 with a Hop-by-Hop header (RFC 2675)
};

enum class L3 : uint8_t { kNone, kArp, kIpv4, kIpv6 };

// Written entirely by parseFrame(), which is the only way to make one: no default member
// initialisers, so an array of them on a worker's stack costs nothing to declare.
struct ParsedFrame {
  // Ethernet
  uint16_t ether_type;   // after the VLAN tag, if any
  bool has_vlan;
  uint16_t vlan_tci;
  uint16_t l3_offset;
  L3 l3;

  // ARP (l3 == kArp)
  uint16_t arp_op;
  Mac arp_sha;
  uint32_t arp_spa;
  uint32_t arp_tpa;

  // IPv4 (l3 == kIpv4); addresses and ports in host byte order.
  // IPv6 (l3 == kIpv6): src_ip/dst_ip stay 0 - the addresses are read from the frame
  // (pkt::loadIp6 at l3_offset + ipv6::kSrc/kDst), which keeps this struct, zeroed for
  // every IPv4 packet, as small as before. proto = the upper-layer protocol after the
  // extension headers, ttl = hop limit, ip_total_len = 40 + payload length,
  // ip_header_len = 40 + extension headers up to the upper-layer header.
  uint32_t src_ip;
  uint32_t dst_ip;
  uint8_t proto;
  uint8_t ttl;
  uint16_t ip_total_len;
  uint16_t ip_header_len;
  bool is_fragment;   // MF set or offset != 0 (IPv6: a Fragment header that is not atomic)
  bool first_fragment; // offset == 0 (L4 header present)

  // L4 (parsed for TCP/UDP/ICMP when first_fragment); l4_offset from frame start
  uint16_t l4_offset;
  uint16_t l4_len;        // bytes from l4_offset to the end of the IP datagram
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t tcp_flags;
  uint8_t icmp_type;
  uint8_t icmp_code;

  // IPv6 only: offset of the Fragment header from the frame start (0 = none), and the
  // largest "segments left" of any Routing header (0 = none or all consumed).
  uint16_t frag6_offset;
  uint8_t routing_left;
};

struct ParseResult {
  ParseStatus status = ParseStatus::kTruncated;
  ParsedFrame frame;
};

// Parses into `out` (every field written), for callers that keep results in place: a
// returned ParseResult copied into an array costs store-forwarding stalls per packet.
[[nodiscard]] ParseStatus parseFrame(std::span<const std::byte> frame, ParsedFrame& out) noexcept;

[[nodiscard]] inline ParseResult parseFrame(std::span<const std::byte> frame) noexcept {
  ParseResult r;
  r.status = parseFrame(frame, r.frame);
  return r;
}

[[nodiscard]] const char* parseStatusName(ParseStatus status) noexcept;

namespace detail {
// parseFrame's two halves, public for the test that pins them to each other.
// parseSimpleIpv4: the common shape (untagged Ethernet, IPv4 without options, not a
// fragment, TCP or UDP with a header that fits, header checksum good) in a few loads.
// true: `out` holds exactly what parseFrameGeneral would write, status kOk. false: not
// that shape (or malformed); `out` is unspecified and parseFrameGeneral decides.
[[nodiscard]] bool parseSimpleIpv4(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
[[nodiscard]] ParseStatus parseFrameGeneral(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
}  // namespace detail

}  // namespace ng::pkt
