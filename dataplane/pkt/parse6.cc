#include "dataplane/pkt/parse6.h"

#include "dataplane/pkt/headers.h"

namespace ng::pkt::detail {

ParseStatus parseIpv6(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  const size_t avail = f.size() - out.l3_offset;
  if (avail < kIpv6HeaderLen) return ParseStatus::kTruncated;
  const std::byte* ip = f.data() + out.l3_offset;
  if ((std::to_integer<uint8_t>(ip[ipv6::kVersionClassFlow]) >> 4) != 6) return ParseStatus::kBadIpHeader;
  const uint16_t payload = load16(ip + ipv6::kPayloadLen);
  uint8_t next = std::to_integer<uint8_t>(ip[ipv6::kNextHeader]);
  // A jumbogram says "0" here and puts its length in a Hop-by-Hop option; Ethernet frames
  // never need one, and the NAT rewrite would otherwise see a datagram without a length.
  if (payload == 0 && next == ipv6::kHopByHop) return ParseStatus::kJumbogram;
  const size_t total = kIpv6HeaderLen + size_t{payload};
  if (total > avail) return ParseStatus::kTruncated;  // frames may be longer (padding), never shorter
  out.ttl = std::to_integer<uint8_t>(ip[ipv6::kHopLimit]);
  out.ip_total_len = static_cast<uint16_t>(total <= 0xffff ? total : 0xffff);
  if (total > 0xffff) return ParseStatus::kBadIpHeader;  // 40 + 65535 does not fit the IPv4-shaped fields
  out.l3 = L3::kIpv6;

  // Walk the chain. Each header is at least 8 bytes and the loop runs at most
  // kMaxExtHeaders times: constant work per frame.
  size_t off = kIpv6HeaderLen;  // from the IPv6 header's start
  for (unsigned n = 0;; ++n) {
    const bool ext = next == ipv6::kHopByHop || next == ipv6::kRouting || next == ipv6::kFragment ||
                     next == ipv6::kDestOpts || next == ipv6::kAh;
    if (!ext) break;
    if (n == kMaxExtHeaders || off - kIpv6HeaderLen >= kMaxExtHeaderBytes) return ParseStatus::kExtHeaderChain;
    // RFC 8200 4.1: Hop-by-Hop only right after the IPv6 header.
    if (next == ipv6::kHopByHop && n != 0) return ParseStatus::kExtHeaderChain;
    if (off + 8 > total) return ParseStatus::kTruncated;
    const std::byte* h = ip + off;
    const uint8_t this_type = next;
    next = std::to_integer<uint8_t>(h[0]);
    size_t len = 0;
    if (this_type == ipv6::kFragment) {
      if (out.frag6_offset != 0) return ParseStatus::kExtHeaderChain;  // one per datagram
      len = ipv6::kFragHeaderLen;
      out.frag6_offset = static_cast<uint16_t>(out.l3_offset + off);
      const uint16_t off_flags = load16(h + ipv6::kFragOffsetFlags);
      const bool more = (off_flags & ipv6::kFragMore) != 0;
      const bool first = (off_flags & ipv6::kFragOffsetMask) == 0;
      // An atomic fragment (offset 0, M 0; RFC 6946) is a whole datagram.
      out.is_fragment = more || !first;
      out.first_fragment = first;
    } else if (this_type == ipv6::kAh) {
      len = (std::to_integer<size_t>(h[1]) + 2) * 4;  // RFC 4302: 4-byte units, minus 2
    } else {
      len = (std::to_integer<size_t>(h[1]) + 1) * 8;  // RFC 8200: 8-byte units, minus 1
      if (this_type == ipv6::kRouting) {
        const uint8_t left = std::to_integer<uint8_t>(h[3]);
        if (left > out.routing_left) out.routing_left = left;
      }
    }
    if (off + len > total) return ParseStatus::kTruncated;
    off += len;
    // Past the Fragment header of a later fragment comes payload, not headers.
    if (this_type == ipv6::kFragment && !out.first_fragment) break;
  }
  if (off - kIpv6HeaderLen > kMaxExtHeaderBytes) return ParseStatus::kExtHeaderChain;
  out.proto = next;
  out.ip_header_len = static_cast<uint16_t>(off);
  out.l4_offset = static_cast<uint16_t>(out.l3_offset + off);
  out.l4_len = static_cast<uint16_t>(total - off);
  if (!out.first_fragment) return ParseStatus::kOk;
  const ParseStatus st = parseL4(f, out);
  if (st != ParseStatus::kOk) return st;
  // RFC 8200 8.1: IPv6 receivers discard UDP with a zero checksum; the NAT rewrite must
  // never turn one into a datagram the node accepts.
  if (out.proto == kProtoUdp && load16(f.data() + out.l4_offset + udp::kChecksum) == 0) {
    return ParseStatus::kBadL4Header;
  }
  return ParseStatus::kOk;
}

}  // namespace ng::pkt::detail
