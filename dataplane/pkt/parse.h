#pragma once
// Bounds-checked parsing of Ethernet (with one 802.1Q tag), ARP, IPv4, IPv6 (with its
// extension-header chain, pkt/parse6.cc), TCP, UDP, ICMP and ICMPv6 over a byte span.
// Reads nothing outside the span and nothing past the IPv4 total length / IPv6 payload
// length; never allocates, never throws. The result records header offsets so the
// rewrite functions can edit the frame in place.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/headers.h"

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

// The common shape, nearly every packet of a flow: untagged Ethernet, IPv4 without
// options, not a fragment, TCP or UDP with a header that fits, header checksum good. Its
// headers sit at fixed offsets, so it needs only the fields below (the established-flow
// path of fwd::processBurst takes it without building a ParsedFrame). `proto`, `ttl`
// and `tcp_flags` are named as in ParsedFrame, so code written over either reads them
// the same; `proto` is also in `ports`, kept as a field for that code.
struct SimpleIpv4 {
  static constexpr uint16_t l3_offset = kEthHeaderLen;
  static constexpr uint16_t l4_offset = kEthHeaderLen + kIpv4MinLen;
  // The addresses and ports as two words, host byte order: what the flow index hashes
  // and compares (lb::FlowKeyWords), each from one load and one byte swap.
  uint64_t addresses;  // src_ip | dst_ip << 32
  uint64_t ports;      // src_port | dst_port << 16 | proto << 32
  uint16_t ip_total_len;
  uint8_t proto;      // kProtoTcp or kProtoUdp
  uint8_t ttl;
  uint8_t tcp_flags;  // 0 for UDP

  [[nodiscard]] uint32_t src_ip() const noexcept { return static_cast<uint32_t>(addresses); }
  [[nodiscard]] uint32_t dst_ip() const noexcept { return static_cast<uint32_t>(addresses >> 32); }
  [[nodiscard]] uint16_t src_port() const noexcept { return static_cast<uint16_t>(ports); }
  [[nodiscard]] uint16_t dst_port() const noexcept { return static_cast<uint16_t>(ports >> 16); }
};

namespace detail {
// The one's-complement sum of a correct IPv4 header is 0xffff. Summed as native 32-bit
// words (IHL is a multiple of 4): byte order does not change a one's-complement sum's
// check against 0xffff, and five loads beat ten.
// `ihl` >= 20 (the callers check it); the 20 bytes every header has are summed unrolled.
// Folding to 16 bits with end-around carries keeps the value modulo 0xffff (2^16 and
// 2^32 are both 1 modulo 0xffff), and a fold of a non-zero sum ends in 0xffff exactly
// when the sum is a multiple of 0xffff: one remainder by a constant instead of four
// folds. The sum is never zero here (the version nibble is 4).
[[nodiscard]] inline bool ipv4HeaderChecksumOk(const std::byte* header, size_t ihl) noexcept {
  auto word = [header](size_t i) noexcept {
    uint32_t w;
    std::memcpy(&w, header + i, 4);
    return uint64_t{w};
  };
  uint64_t sum = word(0) + word(4) + word(8) + word(12) + word(16);
  for (size_t i = kIpv4MinLen; i < ihl; i += 4) sum += word(i);
  return sum % 0xffff == 0 && sum != 0;
}
}  // namespace detail

// true: `frame` has the common shape and `out` holds its fields (parseFrame would
// return kOk and toParsedFrame(out) is what it would write). false: not that shape, or
// malformed; `out` is unspecified and parseFrame decides.
// Inline: the burst path hashes what it returns straight from registers. (Out of line,
// when the addresses were two 4-byte fields, the hash's 8-byte load over their fresh
// stores missed store-to-load forwarding on every frame: -17 % throughput.)
[[gnu::always_inline]] inline bool parseSimpleIpv4(std::span<const std::byte> f, SimpleIpv4& out) noexcept {
  // Checked in the order the bytes come, each test one load and one compare; anything
  // else is left to the general parser, which also names what is wrong.
  constexpr size_t kIp = SimpleIpv4::l3_offset;
  constexpr size_t kL4 = SimpleIpv4::l4_offset;
  if (f.size() < kL4 + kUdpLen) return false;
  const std::byte* d = f.data();
  if (load16(d + 12) != kEtherTypeIpv4 || d[kIp + ipv4::kVersionIhl] != std::byte{0x45}) return false;
  const uint16_t total = load16(d + kIp + ipv4::kTotalLen);
  const uint16_t frag = load16(d + kIp + ipv4::kFragOff);
  if (total > f.size() - kIp || total < kIpv4MinLen || (frag & (ipv4::kFlagMf | ipv4::kOffsetMask)) != 0) {
    return false;
  }
  const size_t l4_len = total - kIpv4MinLen;
  const uint8_t proto = std::to_integer<uint8_t>(d[kIp + ipv4::kProto]);
  uint8_t tcp_flags = 0;
  if (proto == kProtoTcp) {
    if (l4_len < kTcpMinLen) return false;
    const size_t data_off = (std::to_integer<size_t>(d[kL4 + tcp::kDataOff]) >> 4) * 4;
    if (data_off < kTcpMinLen || data_off > l4_len) return false;
    tcp_flags = std::to_integer<uint8_t>(d[kL4 + tcp::kFlags]);
  } else if (proto == kProtoUdp) {
    const uint16_t len = load16(d + kL4 + udp::kLength);
    if (l4_len < kUdpLen || len < kUdpLen || len > l4_len) return false;
  } else {
    return false;
  }
  if (!detail::ipv4HeaderChecksumOk(d + kIp, kIpv4MinLen)) return false;
  out.addresses = load32Pair(d + kIp + ipv4::kSrc);
  out.ports = load16Pair(d + kL4) | uint64_t{proto} << 32;
  out.ip_total_len = total;
  out.proto = proto;
  out.ttl = std::to_integer<uint8_t>(d[kIp + ipv4::kTtl]);
  out.tcp_flags = tcp_flags;
  return true;
}

// The ParsedFrame parseFrame writes for a frame of the common shape.
void toParsedFrame(const SimpleIpv4& simple, ParsedFrame& out) noexcept;

namespace detail {
// parseFrame's two halves, public for the test that pins them to each other.
// parseSimpleIpv4 + toParsedFrame. true: `out` holds exactly what parseFrameGeneral would
// write, status kOk. false: `out` is unspecified and parseFrameGeneral decides.
[[nodiscard]] bool parseSimpleIpv4(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
[[nodiscard]] ParseStatus parseFrameGeneral(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
}  // namespace detail

}  // namespace ng::pkt
