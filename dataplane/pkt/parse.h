#pragma once
// Bounds-checked parsing of Ethernet (with one 802.1Q tag), ARP, IPv4, TCP, UDP and ICMP
// over a byte span. Reads nothing outside the span and nothing past the IPv4 total
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
                          // (< 8, or past the datagram when it is not fragmented)
};

enum class L3 : uint8_t { kNone, kArp, kIpv4 };

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

  // IPv4 (l3 == kIpv4); addresses and ports in host byte order
  uint32_t src_ip;
  uint32_t dst_ip;
  uint8_t proto;
  uint8_t ttl;
  uint16_t ip_total_len;
  uint16_t ip_header_len;
  bool is_fragment;   // MF set or offset != 0
  bool first_fragment; // offset == 0 (L4 header present)

  // L4 (parsed for TCP/UDP/ICMP when first_fragment); l4_offset from frame start
  uint16_t l4_offset;
  uint16_t l4_len;        // bytes from l4_offset to the end of the IP datagram
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t tcp_flags;
  uint8_t icmp_type;
  uint8_t icmp_code;
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

}  // namespace ng::pkt
