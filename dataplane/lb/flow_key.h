#pragma once
// The 5-tuple that identifies one direction of a flow, as it appears on the wire.
// Addresses and ports are in host byte order. IPv4 only in this generation of the
// data plane; IPv6 widens the addresses (issue: complete data plane).

#include <compare>
#include <cstdint>

namespace ng::lb {

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

}  // namespace ng::lb
