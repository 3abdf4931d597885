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
};

enum class L3 : uint8_t { kNone, kArp, kIpv4 };

struct ParsedFrame {
  // Ethernet
  uint16_t ether_type = 0;   // after the VLAN tag, if any
  bool has_vlan = false;
  uint16_t vlan_tci = 0;
  uint16_t l3_offset = 0;
  L3 l3 = L3::kNone;

  // ARP (l3 == kArp)
  uint16_t arp_op = 0;
  Mac arp_sha{};
  uint32_t arp_spa = 0;
  uint32_t arp_tpa = 0;

  // IPv4 (l3 == kIpv4); addresses and ports in host byte order
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint8_t proto = 0;
  uint8_t ttl = 0;
  uint16_t ip_total_len = 0;
  uint16_t ip_header_len = 0;
  bool is_fragment = false;   // MF set or offset != 0
  bool first_fragment = true; // offset == 0 (L4 header present)

  // L4 (parsed for TCP/UDP/ICMP when first_fragment); l4_offset from frame start
  uint16_t l4_offset = 0;
  uint16_t l4_len = 0;        // bytes from l4_offset to the end of the IP datagram
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
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
