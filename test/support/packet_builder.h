#pragma once
// A small fluent builder for test frames (fixtures, integration tests, fuzzer seeds,
// benchmarks). Lengths and checksums are computed by build() unless overridden, so a
// fixture can also state a deliberately wrong value.
//
//   auto frame = PacketBuilder()
//                    .eth(mac("02:00:00:00:00:02"), mac("02:00:00:00:00:01"))
//                    .ipv4(ip("10.100.0.2"), ip("10.100.0.100"))
//                    .tcp(40000, 80, kSyn)
//                    .build();

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "dataplane/pkt/bytes.h"
#include "dataplane/pkt/ip6.h"

namespace ng::test {

using Bytes = std::vector<std::byte>;
using pkt::Mac;

[[nodiscard]] uint32_t ip(std::string_view dotted);  // aborts on a bad literal
[[nodiscard]] Mac mac(std::string_view text);
[[nodiscard]] pkt::Ip6 ip6(std::string_view text);  // "2001:db8::1"; aborts on a bad literal

class PacketBuilder {
 public:
  PacketBuilder& eth(const Mac& src, const Mac& dst);
  PacketBuilder& vlan(uint16_t tci);
  PacketBuilder& etherType(uint16_t type);  // override (default from the next header)

  PacketBuilder& arp(uint16_t op, const Mac& sha, uint32_t spa, const Mac& tha, uint32_t tpa);

  PacketBuilder& ipv4(uint32_t src, uint32_t dst, uint8_t ttl = 64);
  PacketBuilder& ipId(uint16_t id);
  PacketBuilder& ipFrag(uint16_t flags_and_offset);  // raw 16-bit field (MF = 0x2000)
  PacketBuilder& ipOptions(size_t bytes);            // NOP options, multiple of 4
  PacketBuilder& ipProto(uint8_t proto);             // override protocol
  PacketBuilder& ipTotalLen(uint16_t len);           // override total length
  PacketBuilder& ipChecksum(uint16_t csum);          // override header checksum
  PacketBuilder& ipVersionIhl(uint8_t value);        // override first byte

  // IPv6 (RFC 8200). Extension headers appear in the order they are added, between the
  // IPv6 header and the upper layer; lengths, next-header chain and the upper-layer
  // checksum (IPv6 pseudo-header) are computed by build().
  PacketBuilder& ipv6(const pkt::Ip6& src, const pkt::Ip6& dst, uint8_t hop_limit = 64);
  // A Hop-by-Hop / Destination Options / Routing / AH header of `bytes` bytes (a multiple
  // of 8, at least 8; AH: of 4, at least 12), padded with PadN; `byte3` goes to offset 3
  // (a Routing header's segments left).
  PacketBuilder& ext6(uint8_t type, size_t bytes = 8, uint8_t byte3 = 0);
  // A Fragment header: `offset` in bytes (a multiple of 8), M flag, identification.
  PacketBuilder& frag6(uint16_t offset, bool more, uint32_t id);
  PacketBuilder& ip6PayloadLen(uint16_t len);        // override payload length
  PacketBuilder& ip6NextHeader(uint8_t next);        // override the upper-layer protocol
  // ICMPv6 echo request/reply, Neighbor Solicitation (with a source link-layer option
  // when `lla` is given) and Neighbor Advertisement (flags icmp6::kNa*, target
  // link-layer option when `lla` is given).
  PacketBuilder& icmp6Echo(uint8_t type, uint16_t id, uint16_t seq);
  // An ICMPv6 error (e.g. Packet Too Big: type 2, `word` = MTU) quoting `quoted` (an
  // IPv6 packet from its first byte, e.g. a built frame without its 14-byte Ethernet
  // header).
  PacketBuilder& icmp6Error(uint8_t type, uint8_t code, uint32_t word, Bytes quoted);
  PacketBuilder& ndSolicit(const pkt::Ip6& target, std::optional<Mac> lla);
  PacketBuilder& ndAdvert(const pkt::Ip6& target, uint32_t flags, std::optional<Mac> lla);

  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1000,
                     uint32_t ack = 0);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& icmpEcho(uint8_t type, uint16_t id, uint16_t seq);
  // An ICMP error (e.g. frag-needed: type 3 code 4, `word` = the next-hop MTU in its low
  // 16 bits) quoting `quoted` (an IPv4 packet from its first byte).
  PacketBuilder& icmpError(uint8_t type, uint8_t code, uint32_t word, Bytes quoted);
  PacketBuilder& l4Checksum(uint16_t csum);  // override TCP/UDP/ICMP checksum
  PacketBuilder& payload(size_t n, uint8_t fill = 0xab);

  [[nodiscard]] Bytes build() const;

 private:
  void buildIpv6(Bytes& f) const;
  enum class L4 { kNone, kTcp, kUdp, kIcmp, kIcmp6Echo, kNs, kNa, kIcmp6Error };
  uint8_t icmp_code_ = 0;
  uint32_t icmp_word_ = 0;
  Bytes quoted_;
  struct Ext6 {
    uint8_t type;
    size_t bytes;
    uint8_t byte3;
    uint16_t frag_offset;
    bool frag_more;
    uint32_t frag_id;
  };
  bool ipv6_ = false;
  pkt::Ip6 ip6_src_{}, ip6_dst_{};
  std::vector<Ext6> ext6_;
  std::optional<uint16_t> ip6_payload_len_;
  std::optional<uint8_t> ip6_next_;
  pkt::Ip6 nd_target_{};
  uint32_t nd_flags_ = 0;
  std::optional<Mac> nd_lla_;
  Mac src_{}, dst_{};
  std::optional<uint16_t> vlan_;
  std::optional<uint16_t> ether_type_;
  bool arp_ = false;
  uint16_t arp_op_ = 0;
  Mac arp_sha_{}, arp_tha_{};
  uint32_t arp_spa_ = 0, arp_tpa_ = 0;
  bool ipv4_ = false;
  uint32_t ip_src_ = 0, ip_dst_ = 0;
  uint8_t ttl_ = 64;
  uint16_t ip_id_ = 0x1234;
  uint16_t frag_ = 0;
  size_t ip_options_ = 0;
  std::optional<uint8_t> ip_proto_;
  std::optional<uint16_t> ip_total_len_;
  std::optional<uint16_t> ip_checksum_;
  std::optional<uint8_t> version_ihl_;
  L4 l4_ = L4::kNone;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t tcp_flags_ = 0;
  uint32_t seq_ = 0, ack_ = 0;
  uint8_t icmp_type_ = 0;
  uint16_t icmp_id_ = 0, icmp_seq_ = 0;
  std::optional<uint16_t> l4_checksum_;
  size_t payload_len_ = 0;
  uint8_t payload_fill_ = 0;
};

// Splits an untagged Ethernet + IPv4 frame into IPv4 fragments of at most
// `fragment_payload` IP payload bytes each (rounded down to a multiple of 8, at least 8),
// the way a router or the sender's kernel does: same header (options copied to every
// fragment), total length, MF and offset set, header checksum recomputed. The L4 header
// and checksum stay in the first fragment, computed over the whole datagram. A frame
// whose payload fits is returned alone, unchanged.
[[nodiscard]] std::vector<Bytes> fragmentIpv4(const Bytes& frame, size_t fragment_payload);

// The IPv6 twin of fragmentIpv4 for a frame without extension headers: a Fragment
// header (identification `id`) after the IPv6 header, fragmentable part split in
// pieces of at most `fragment_payload` bytes (multiple of 8).
[[nodiscard]] std::vector<Bytes> fragmentIpv6(const Bytes& frame, size_t fragment_payload, uint32_t id);

}  // namespace ng::test
