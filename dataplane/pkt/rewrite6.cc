#include "dataplane/pkt/rewrite6.h"

#include <cstring>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/rewrite.h"

namespace ng::pkt {
namespace {

// The delta of a 16-byte address change: eight words (at most 8 * 0x1fffe per address,
// so two addresses and two ports cannot overflow 32 bits).
uint32_t delta128(const Ip6& before, const Ip6& after) noexcept {
  uint32_t d = 0;
  for (unsigned i = 0; i < 8; ++i) d += checksumDelta16(before.word(i), after.word(i));
  return d;
}
uint32_t addIp6(uint32_t sum, const Ip6& a) noexcept {
  for (unsigned i = 0; i < 8; ++i) sum += a.word(i);
  return sum;
}

// An ND message from `src_ip` to the multicast group `dst` (hop limit 255): `type`, its
// flags word, `target` and one link-layer address option (`option`: source or target)
// carrying `src_mac`, with its ICMPv6 checksum. NS and NA have this one layout.
constexpr size_t kNdFrameLen = kEthHeaderLen + kIpv6HeaderLen + 24 + 8;
size_t writeNdFrame(std::span<std::byte> frame, const Mac& src_mac, const Ip6& src_ip, const Ip6& dst,
                    uint8_t type, uint32_t flags, const Ip6& target, uint8_t option) noexcept {
  if (frame.size() < kNdFrameLen) return 0;
  std::memset(frame.data(), 0, kNdFrameLen);
  setEthernet(frame, multicastMac(dst), src_mac);
  store16(frame.data() + 12, kEtherTypeIpv6);
  std::byte* ip = frame.data() + kEthHeaderLen;
  ip[0] = std::byte{0x60};
  store16(ip + ipv6::kPayloadLen, 32);
  ip[ipv6::kNextHeader] = std::byte{kProtoIcmp6};
  ip[ipv6::kHopLimit] = std::byte{icmp6::kNdHopLimit};
  storeIp6(ip + ipv6::kSrc, src_ip);
  storeIp6(ip + ipv6::kDst, dst);
  std::byte* m = ip + kIpv6HeaderLen;
  m[0] = std::byte{type};
  store32(m + 4, flags);
  storeIp6(m + icmp6::kNdTarget, target);
  m[24] = std::byte{option};
  m[25] = std::byte{1};  // length in units of 8 bytes
  storeMac(m + 26, src_mac);
  store16(m + 2, checksum6(src_ip, dst, kProtoIcmp6, std::span<const std::byte>(m, 32)));
  return kNdFrameLen;
}

}  // namespace

void forwardNat6(std::span<std::byte> frame, ParsedFrame& p, const Ip6& src_ip, uint16_t src_port,
                 const Ip6& dst_ip, uint16_t dst_port) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  const Ip6 old_src = loadIp6(ip + ipv6::kSrc);
  const Ip6 old_dst = loadIp6(ip + ipv6::kDst);
  // No IPv6 header checksum: the hop limit is a plain byte.
  ip[ipv6::kHopLimit] = static_cast<std::byte>(p.ttl - 1);
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  storeIp6(ip + ipv6::kSrc, src_ip);
  storeIp6(ip + ipv6::kDst, dst_ip);
  if (p.first_fragment && (p.proto == kProtoTcp || p.proto == kProtoUdp)) {
    std::byte* l4 = frame.data() + p.l4_offset;
    const size_t csum_off = p.proto == kProtoTcp ? tcp::kChecksum : udp::kChecksum;
    const uint32_t delta = delta128(old_src, src_ip) + delta128(old_dst, dst_ip) +
                           checksumDelta16(load16(l4), src_port) + checksumDelta16(load16(l4 + 2), dst_port);
    uint16_t csum = applyChecksumDelta(load16(l4 + csum_off), delta);
    // UDP over IPv6 must carry a checksum (the parser refused 0); 0 is sent as 0xffff.
    if (p.proto == kProtoUdp && csum == 0) csum = 0xffff;
    store16(l4 + csum_off, csum);
    store16(l4, src_port);
    store16(l4 + 2, dst_port);
    p.src_port = src_port;
    p.dst_port = dst_port;
  }
}

void translateIcmp6Error(std::span<std::byte> frame, ParsedFrame& p, const Ip6& outer_src, const Ip6& outer_dst,
                         const Ip6& inner_src, uint16_t inner_sport, const Ip6& inner_dst, uint16_t inner_dport) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  ip[ipv6::kHopLimit] = static_cast<std::byte>(p.ttl - 1);
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  storeIp6(ip + ipv6::kSrc, outer_src);
  storeIp6(ip + ipv6::kDst, outer_dst);
  std::byte* m = frame.data() + p.l4_offset;
  std::byte* in = m + icmp6::kErrorQuote;
  std::byte* in_l4 = in + kIpv6HeaderLen;
  const size_t quoted_l4 = p.l4_len - icmp6::kErrorQuote - kIpv6HeaderLen;
  const uint8_t inner_proto = std::to_integer<uint8_t>(in[ipv6::kNextHeader]);
  const size_t csum_off = inner_proto == kProtoTcp ? tcp::kChecksum : udp::kChecksum;
  if (quoted_l4 >= csum_off + 2) {
    // The quoted segment's own checksum, kept consistent with its new addresses and
    // ports (RFC 1624), as a node would compute it for the packet it thinks it sent.
    const uint32_t delta = delta128(loadIp6(in + ipv6::kSrc), inner_src) + delta128(loadIp6(in + ipv6::kDst), inner_dst) +
                           checksumDelta16(load16(in_l4), inner_sport) + checksumDelta16(load16(in_l4 + 2), inner_dport);
    const uint16_t old = load16(in_l4 + csum_off);
    if (!(inner_proto == kProtoUdp && old == 0)) {
      uint16_t c = applyChecksumDelta(old, delta);
      if (inner_proto == kProtoUdp && c == 0) c = 0xffff;
      store16(in_l4 + csum_off, c);
    }
  }
  storeIp6(in + ipv6::kSrc, inner_src);
  storeIp6(in + ipv6::kDst, inner_dst);
  store16(in_l4, inner_sport);
  store16(in_l4 + 2, inner_dport);
  // The message changed throughout: recompute (the caller verified the old checksum).
  store16(m + 2, 0);
  store16(m + 2, checksum6(outer_src, outer_dst, kProtoIcmp6, std::span<const std::byte>(m, p.l4_len)));
}

void setIpv6FragmentId(std::span<std::byte> frame, const ParsedFrame& p, uint32_t id) noexcept {
  store32(frame.data() + p.frag6_offset + ipv6::kFragId, id);
}

uint16_t checksum6(const Ip6& src, const Ip6& dst, uint8_t next_header,
                   std::span<const std::byte> message) noexcept {
  uint32_t sum = addIp6(addIp6(0, src), dst);
  sum += static_cast<uint32_t>(message.size() >> 16) + static_cast<uint32_t>(message.size() & 0xffff);
  sum += next_header;
  return checksumFinish(checksumAdd(message, sum));
}

bool icmp6ChecksumOk(std::span<const std::byte> frame, const ParsedFrame& p) noexcept {
  const std::byte* ip = frame.data() + p.l3_offset;
  // A correct message sums (with its checksum) to 0xffff: checksum6 of it is then 0.
  return checksum6(loadIp6(ip + ipv6::kSrc), loadIp6(ip + ipv6::kDst), kProtoIcmp6,
                   frame.subspan(p.l4_offset, p.l4_len)) == 0;
}

void icmp6EchoToReply(std::span<std::byte> frame, ParsedFrame& p, const Mac& our_mac) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  const Ip6 src = loadIp6(ip + ipv6::kSrc);
  const Ip6 dst = loadIp6(ip + ipv6::kDst);
  // Swapping the addresses leaves the pseudo-header sum as it was; only the type changes.
  storeIp6(ip + ipv6::kSrc, dst);
  storeIp6(ip + ipv6::kDst, src);
  ip[ipv6::kHopLimit] = std::byte{64};
  p.ttl = 64;
  std::byte* m = frame.data() + p.l4_offset;
  const uint16_t old_word = load16(m);
  m[0] = std::byte{icmp6::kEchoReply};
  store16(m + 2, checksumUpdate16(load16(m + 2), old_word, load16(m)));
  p.icmp_type = icmp6::kEchoReply;
  const Mac requester = loadMac(frame.data() + 6);
  setEthernet(frame, requester, our_mac);
}

bool neighborSolicitationToAdvert(std::span<std::byte> frame, ParsedFrame& p, const Ip6& src, const Ip6& dst,
                                  const Mac& dst_mac, const Mac& our_mac, uint32_t na_flags) noexcept {
  const size_t l4 = p.l4_offset;
  if (frame.size() < l4 + icmp6::kNdMinLen) return false;
  const bool tlla = frame.size() >= l4 + icmp6::kNdMinLen + 8;
  const size_t len = icmp6::kNdMinLen + (tlla ? 8 : 0);
  std::byte* ip = frame.data() + p.l3_offset;
  store16(ip + ipv6::kPayloadLen, static_cast<uint16_t>(l4 - p.l3_offset - kIpv6HeaderLen + len));
  ip[ipv6::kHopLimit] = std::byte{icmp6::kNdHopLimit};
  storeIp6(ip + ipv6::kSrc, src);
  storeIp6(ip + ipv6::kDst, dst);
  std::byte* m = frame.data() + l4;
  const Ip6 target = loadIp6(m + icmp6::kNdTarget);
  m[0] = std::byte{icmp6::kNeighborAdvertisement};
  m[1] = std::byte{0};
  store16(m + 2, 0);
  store32(m + 4, na_flags);
  storeIp6(m + icmp6::kNdTarget, target);
  if (tlla) {
    m[24] = std::byte{icmp6::kOptTargetLinkAddr};
    m[25] = std::byte{1};
    storeMac(m + 26, our_mac);
  }
  store16(m + 2, checksum6(src, dst, kProtoIcmp6, std::span<const std::byte>(m, len)));
  setEthernet(frame, dst_mac, our_mac);
  p.ttl = icmp6::kNdHopLimit;
  p.icmp_type = icmp6::kNeighborAdvertisement;
  p.l4_len = static_cast<uint16_t>(len);
  p.ip_total_len = static_cast<uint16_t>(l4 - p.l3_offset + len);
  return true;
}

size_t writeNsFrame(std::span<std::byte> frame, const Mac& src_mac, const Ip6& src_ip,
                    const Ip6& target) noexcept {
  static_assert(kNsFrameLen == kNdFrameLen);
  return writeNdFrame(frame, src_mac, src_ip, solicitedNode(target), icmp6::kNeighborSolicitation,
                      /*flags=*/0, target, icmp6::kOptSourceLinkAddr);
}

size_t writeUnsolicitedNaFrame(std::span<std::byte> frame, const Mac& src_mac, const Ip6& src_ip,
                               const Ip6& target) noexcept {
  static_assert(kNaFrameLen == kNdFrameLen);
  const Ip6 all_nodes{.hi = 0xff02000000000000ULL, .lo = 1};
  // Override: the announcement must replace a cached MAC (a VIP that moved here);
  // not Solicited (RFC 4861 7.2.6), not a router.
  return writeNdFrame(frame, src_mac, src_ip, all_nodes, icmp6::kNeighborAdvertisement, icmp6::kNaOverride,
                      target, icmp6::kOptTargetLinkAddr);
}

}  // namespace ng::pkt
