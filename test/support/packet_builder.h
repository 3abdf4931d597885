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

namespace ng::test {

using Bytes = std::vector<std::byte>;
using pkt::Mac;

[[nodiscard]] uint32_t ip(std::string_view dotted);  // aborts on a bad literal
[[nodiscard]] Mac mac(std::string_view text);

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

  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1000,
                     uint32_t ack = 0);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& icmpEcho(uint8_t type, uint16_t id, uint16_t seq);
  PacketBuilder& l4Checksum(uint16_t csum);  // override TCP/UDP/ICMP checksum
  PacketBuilder& payload(size_t n, uint8_t fill = 0xab);

  [[nodiscard]] Bytes build() const;

 private:
  enum class L4 { kNone, kTcp, kUdp, kIcmp };
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

}  // namespace ng::test
