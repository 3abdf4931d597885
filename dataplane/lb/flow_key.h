#pragma once
// The 5-tuple that identifies one direction of a flow, as it appears on the wire.
// Addresses and ports are in host byte order.
//
// Two key types: FlowKey (IPv4, 16 bytes) and FlowKey6 (IPv6, 40 bytes). They live in
// separate flow tables (lb::FlowTable, lb::FlowTable6: the same template) so IPv4 entries
// stay as small as before IPv6 existed; both have the same field names, so code written
// once over `Key` (SNAT port choice, fragment and affinity tables) serves both.

#include <compare>
#include <cstdint>

#include "dataplane/pkt/ip6.h"

namespace ng::lb {

using Ip6 = pkt::Ip6;

struct FlowKey {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;  // IPPROTO_TCP / IPPROTO_UDP
  uint8_t pad[3] = {0, 0, 0};  // always zero, so keys compare and hash as 16 bytes

  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
static_assert(sizeof(FlowKey) == 16);

struct FlowKey6 {
  Ip6 src_ip;
  Ip6 dst_ip;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;  // IPPROTO_TCP / IPPROTO_UDP
  uint8_t pad[3] = {0, 0, 0};  // always zero

  friend bool operator==(const FlowKey6&, const FlowKey6&) = default;
};
static_assert(sizeof(FlowKey6) == 40);

// The key type of an address type (uint32_t -> FlowKey, Ip6 -> FlowKey6).
template <class Addr> struct KeyOfAddr;
template <> struct KeyOfAddr<uint32_t> { using type = FlowKey; };
template <> struct KeyOfAddr<Ip6> { using type = FlowKey6; };
template <class Addr> using FlowKeyFor = typename KeyOfAddr<Addr>::type;

}  // namespace ng::lb
