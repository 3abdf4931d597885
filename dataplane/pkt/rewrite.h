#pragma once
// In-place rewrites of a parsed frame. Checksums are updated incrementally (RFC 1624),
// so a frame whose L4 checksum was wrong on arrival is still wrong on departure.
// Preconditions: `p` is the ParsedFrame of `frame` with status kOk and the layer the
// function edits present; the frame length never changes.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
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

namespace detail {
// The NAT rewrites work on the wire's bytes as native integers: one's-complement sums do
// not depend on byte order as long as every word is in the same order, so the new
// values are byte-swapped once instead of every word being swapped twice.
[[nodiscard]] inline uint16_t raw16(const std::byte* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
[[nodiscard]] inline uint32_t raw32(const std::byte* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void putRaw16(std::byte* p, uint16_t v) noexcept { std::memcpy(p, &v, 2); }
inline void putRaw32(std::byte* p, uint32_t v) noexcept { std::memcpy(p, &v, 4); }
[[nodiscard]] constexpr uint32_t wire32(uint32_t host) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(host);
  return host;
}
[[nodiscard]] constexpr uint16_t wire16(uint16_t host) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(host);
  return host;
}
// Source and destination ports are the first 4 bytes of both TCP and UDP headers: the
// word they make on the wire, read natively.
[[nodiscard]] constexpr uint32_t wirePorts(uint16_t src_port, uint16_t dst_port) noexcept {
  return wire32(uint32_t{src_port} << 16 | dst_port);
}
// A router's TTL step on the TTL/protocol word read natively: the word less this (the
// caller checked TTL > 1, so nothing borrows into the protocol byte). Its checksum
// change, ~before + (before - kTtlStep), is the constant ~kTtlStep.
inline constexpr uint16_t kTtlStep = wire16(0x0100);
}  // namespace detail

// A router's full-NAT step: TTL decrement (caller checked TTL > 1) + rewriteIpv4Tuple in
// one pass, with one checksum delta per header (the address change is shared by IPv4 and
// TCP/UDP). A known flow's frames take forwardNatKnown below instead.
void forwardNat(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port) noexcept;

// The addresses and ports of one direction of an IPv4 TCP/UDP flow, host byte order.
struct Ipv4Tuple {
  uint32_t src_ip = 0;
  uint16_t src_port = 0;
  uint32_t dst_ip = 0;
  uint16_t dst_port = 0;
};

// The checksum change of `from` -> `to` (pkt::NatDelta, checksum.h). A flow fixes both
// tuples, so its change is computed once when the flow is created and every frame of the
// flow applies it (forwardNatKnown) instead of deriving it from the frame.
[[nodiscard]] NatDelta natDelta(const Ipv4Tuple& from, const Ipv4Tuple& to) noexcept;

// forwardNat of a frame whose tuple is `delta`'s `from` (a known flow's frame: the flow
// table matched its key exactly), to `to`: the checksums take the stored change.
// Preconditions as forwardNat's, and TCP or UDP with its header (a first fragment or a
// whole datagram). The same bytes and the same `p` as forwardNat (rewrite_test compares
// them). Inline: the established-flow path. What it reads is read before the first
// store to the frame: the compiler must assume a store through std::byte may change any
// memory, so a read after it is a reload.
// `Frame` is ParsedFrame or SimpleIpv4 (parse.h), whose headers sit at fixed offsets.
template <class Frame>
[[gnu::always_inline]] inline void forwardNatKnown(std::span<std::byte> frame, Frame& p, const Ipv4Tuple& to,
                                                   NatDelta delta) noexcept {
  using detail::kTtlStep, detail::putRaw16, detail::putRaw32, detail::raw16, detail::wire32;
  std::byte* ip = frame.data() + p.l3_offset;
  std::byte* l4 = frame.data() + p.l4_offset;
  const bool is_tcp = p.proto == kProtoTcp;
  const uint32_t new_src = wire32(to.src_ip);
  const uint32_t new_dst = wire32(to.dst_ip);
  const uint32_t new_ports = detail::wirePorts(to.src_port, to.dst_port);
  const uint16_t ttl_word = raw16(ip + ipv4::kTtl);
  const uint16_t ip_csum = raw16(ip + ipv4::kChecksum);
  const size_t csum_off = is_tcp ? tcp::kChecksum : udp::kChecksum;
  const uint16_t l4_csum = raw16(l4 + csum_off);

  putRaw16(ip + ipv4::kTtl, static_cast<uint16_t>(ttl_word - kTtlStep));
  putRaw16(ip + ipv4::kChecksum,
           applyFoldedDelta(ip_csum, uint32_t{delta.addresses} + static_cast<uint16_t>(~kTtlStep)));
  putRaw32(ip + ipv4::kSrc, new_src);
  putRaw32(ip + ipv4::kDst, new_dst);
  if (is_tcp || l4_csum != 0) {  // a UDP checksum of 0 ("none") stays so
    const uint16_t updated = applyFoldedDelta(l4_csum, delta.l4);
    putRaw16(l4 + csum_off, !is_tcp && updated == 0 ? uint16_t{0xffff} : updated);
  }
  putRaw32(l4, new_ports);
  if constexpr (std::is_same_v<Frame, ParsedFrame>) {  // the burst path's SimpleIpv4 is not read again
    p.ttl = static_cast<uint8_t>(p.ttl - 1);
    p.src_ip = to.src_ip;
    p.dst_ip = to.dst_ip;
    p.src_port = to.src_port;
    p.dst_port = to.dst_port;
  }
}

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
