#include "dataplane/pkt/encap.h"

#include <algorithm>
#include <cstring>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/rewrite6.h"

namespace ng::pkt {

bool hasDontFragment(std::span<const std::byte> frame, const ParsedFrame& p) noexcept {
  return (load16(frame.data() + p.l3_offset + ipv4::kFragOff) & kFlagDf) != 0;
}

size_t encapsulateIpip(std::span<std::byte> frame, const ParsedFrame& p, const Mac& dst_mac, const Mac& src_mac,
                       const OuterIpv4& outer) noexcept {
  const std::byte* inner = frame.data() + p.l3_offset;
  // Read what the outer header copies before its bytes overwrite the old Ethernet header.
  const std::byte tos = inner[1];
  const uint16_t df = load16(inner + ipv4::kFragOff) & kFlagDf;
  std::byte* start = frame.data() - kIpipOverhead;
  storeMac(start, dst_mac);
  storeMac(start + 6, src_mac);
  store16(start + 12, kEtherTypeIpv4);
  std::byte* ip = start + kEthHeaderLen;
  ip[ipv4::kVersionIhl] = std::byte{0x45};
  ip[1] = tos;
  store16(ip + ipv4::kTotalLen, static_cast<uint16_t>(p.ip_total_len + kIpipOverhead));
  store16(ip + ipv4::kId, outer.id);
  store16(ip + ipv4::kFragOff, df);
  ip[ipv4::kTtl] = std::byte{kOuterTtl};
  ip[ipv4::kProto] = std::byte{kProtoIpip};
  store16(ip + ipv4::kChecksum, 0);
  store32(ip + ipv4::kSrc, outer.src);
  store32(ip + ipv4::kDst, outer.dst);
  store16(ip + ipv4::kChecksum, internetChecksum(std::span<const std::byte>(ip, kIpv4MinLen)));
  return kEthHeaderLen + kIpipOverhead + p.ip_total_len;
}

size_t writeFragNeeded(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac, uint32_t from,
                       uint16_t mtu) noexcept {
  // RFC 792: the internet header plus the first 64 bits of the original datagram's data.
  const size_t quote = std::min<size_t>(size_t{p.ip_header_len} + 8, p.ip_total_len);
  const size_t ip_len = kIpv4MinLen + kIcmpMinLen + quote;
  const size_t len = kEthHeaderLen + ip_len;
  if (p.l3_offset != kEthHeaderLen || len > frame.size()) return 0;
  const Mac sender = loadMac(frame.data() + 6);
  std::byte* ip = frame.data() + kEthHeaderLen;
  std::byte* icmp_hdr = ip + kIpv4MinLen;
  // The quoted bytes move 28 bytes further in: copy them before writing the headers.
  std::memmove(icmp_hdr + kIcmpMinLen, ip, quote);

  storeMac(frame.data(), sender);
  storeMac(frame.data() + 6, our_mac);
  store16(frame.data() + 12, kEtherTypeIpv4);
  ip[ipv4::kVersionIhl] = std::byte{0x45};
  // Precedence 6, "internetwork control", as RFC 1812 sec. 4.3.2.5 asks of ICMP errors.
  ip[1] = std::byte{0xc0};
  store16(ip + ipv4::kTotalLen, static_cast<uint16_t>(ip_len));
  store16(ip + ipv4::kId, 0);
  store16(ip + ipv4::kFragOff, 0);
  ip[ipv4::kTtl] = std::byte{64};
  ip[ipv4::kProto] = std::byte{kProtoIcmp};
  store16(ip + ipv4::kChecksum, 0);
  store32(ip + ipv4::kSrc, from);
  store32(ip + ipv4::kDst, p.src_ip);
  store16(ip + ipv4::kChecksum, internetChecksum(std::span<const std::byte>(ip, kIpv4MinLen)));

  icmp_hdr[icmp::kType] = std::byte{icmp::kDestUnreachable};
  icmp_hdr[icmp::kCode] = std::byte{icmp::kFragNeeded};
  store16(icmp_hdr + icmp::kChecksum, 0);
  store16(icmp_hdr + 4, 0);  // unused
  store16(icmp_hdr + 6, mtu);
  store16(icmp_hdr + icmp::kChecksum,
          internetChecksum(std::span<const std::byte>(icmp_hdr, kIcmpMinLen + quote)));
  return len;
}

size_t encapsulateIp6ip6(std::span<std::byte> frame, const ParsedFrame& p, const Mac& dst_mac, const Mac& src_mac,
                         const OuterIpv6& outer) noexcept {
  const std::byte* inner = frame.data() + p.l3_offset;
  // The traffic class sits in bits 4..11 of the first word (RFC 8200 sec. 3); read it
  // before the outer header's bytes overwrite the old Ethernet header.
  const uint32_t traffic_class = (load32(inner) >> 20) & 0xff;
  std::byte* start = frame.data() - kIp6ip6Overhead;
  storeMac(start, dst_mac);
  storeMac(start + 6, src_mac);
  store16(start + 12, kEtherTypeIpv6);
  std::byte* ip = start + kEthHeaderLen;
  store32(ip + ipv6::kVersionClassFlow, (uint32_t{6} << 28) | (traffic_class << 20) | (outer.flow_label & 0xfffff));
  store16(ip + ipv6::kPayloadLen, p.ip_total_len);
  ip[ipv6::kNextHeader] = std::byte{kProtoIpv6};
  ip[ipv6::kHopLimit] = std::byte{kOuterHopLimit};
  storeIp6(ip + ipv6::kSrc, outer.src);
  storeIp6(ip + ipv6::kDst, outer.dst);
  return kEthHeaderLen + kIpv6HeaderLen + p.ip_total_len;
}

size_t writePacketTooBig6(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac, const Ip6& from,
                          uint32_t mtu) noexcept {
  constexpr size_t kHeaders = kEthHeaderLen + kIpv6HeaderLen + icmp6::kErrorQuote;
  if (p.l3_offset != kEthHeaderLen || frame.size() < kHeaders) return 0;
  // As much of the invoking packet as fits in 1280 bytes of IPv6 and in the frame (which
  // is always the case for a packet that exceeded an MTU of 1280 or more).
  const size_t quote = std::min({size_t{p.ip_total_len}, kIpv6MinMtu - kIpv6HeaderLen - icmp6::kErrorQuote,
                                 frame.size() - kHeaders});
  const Mac sender = loadMac(frame.data() + 6);
  const Ip6 client = loadIp6(frame.data() + kEthHeaderLen + ipv6::kSrc);
  std::byte* ip = frame.data() + kEthHeaderLen;
  std::byte* msg = ip + kIpv6HeaderLen;
  // The quoted bytes move 48 bytes further in: copy them before writing the headers.
  std::memmove(msg + icmp6::kErrorQuote, ip, quote);

  storeMac(frame.data(), sender);
  storeMac(frame.data() + 6, our_mac);
  store16(frame.data() + 12, kEtherTypeIpv6);
  const size_t msg_len = icmp6::kErrorQuote + quote;
  store32(ip + ipv6::kVersionClassFlow, uint32_t{6} << 28);
  store16(ip + ipv6::kPayloadLen, static_cast<uint16_t>(msg_len));
  ip[ipv6::kNextHeader] = std::byte{kProtoIcmp6};
  ip[ipv6::kHopLimit] = std::byte{64};
  storeIp6(ip + ipv6::kSrc, from);
  storeIp6(ip + ipv6::kDst, client);
  msg[0] = std::byte{icmp6::kPacketTooBig};
  msg[1] = std::byte{0};
  store16(msg + 2, 0);
  store32(msg + 4, mtu);
  store16(msg + 2, checksum6(from, client, kProtoIcmp6, std::span<const std::byte>(msg, msg_len)));
  return kEthHeaderLen + kIpv6HeaderLen + msg_len;
}

}  // namespace ng::pkt
