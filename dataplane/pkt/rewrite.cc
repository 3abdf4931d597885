#include "dataplane/pkt/rewrite.h"

#include <cstring>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"

namespace ng::pkt {
namespace {

constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint16_t wordAt(const std::byte* p) noexcept { return load16(p); }

// forwardNat and rewriteIpv4Tuple: the TTL step is the only difference.
void natRewrite(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port, bool decrement_ttl) noexcept {
  using detail::putRaw16, detail::putRaw32, detail::raw16, detail::raw32, detail::wire32;
  std::byte* ip = frame.data() + p.l3_offset;
  const uint32_t new_src = wire32(src_ip);
  const uint32_t new_dst = wire32(dst_ip);
  // Shared by the IPv4 header and the TCP/UDP pseudo-header.
  const uint64_t address_delta =
      checksumDelta32(raw32(ip + ipv4::kSrc), new_src) + checksumDelta32(raw32(ip + ipv4::kDst), new_dst);
  uint64_t header_delta = address_delta;
  if (decrement_ttl) {
    // The TTL/protocol word as a whole (detail::kTtlStep): a byte store followed by a
    // word load of the same bytes would stall store forwarding.
    const uint16_t before = raw16(ip + ipv4::kTtl);
    const uint16_t after = static_cast<uint16_t>(before - detail::kTtlStep);
    putRaw16(ip + ipv4::kTtl, after);
    header_delta += checksumDelta16(before, after);
    p.ttl = static_cast<uint8_t>(p.ttl - 1);
  }
  putRaw16(ip + ipv4::kChecksum, applyChecksumDelta(raw16(ip + ipv4::kChecksum), header_delta));
  putRaw32(ip + ipv4::kSrc, new_src);
  putRaw32(ip + ipv4::kDst, new_dst);

  if (p.first_fragment && (p.proto == kProtoTcp || p.proto == kProtoUdp)) {
    std::byte* l4 = frame.data() + p.l4_offset;
    const uint32_t new_ports = detail::wirePorts(src_port, dst_port);
    const size_t csum_off = p.proto == kProtoTcp ? tcp::kChecksum : udp::kChecksum;
    uint16_t csum = raw16(l4 + csum_off);
    // UDP over IPv4 may carry no checksum (0); it must stay "none".
    if (p.proto == kProtoTcp || csum != 0) {
      csum = applyChecksumDelta(csum, address_delta + checksumDelta32(raw32(l4), new_ports));
      if (p.proto == kProtoUdp && csum == 0) csum = 0xffff;  // 0 would mean "none"
      putRaw16(l4 + csum_off, csum);
    }
    putRaw32(l4, new_ports);
    p.src_port = src_port;
    p.dst_port = dst_port;
  }
  p.src_ip = src_ip;
  p.dst_ip = dst_ip;
}

}  // namespace

void rewriteIpv4Tuple(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip,
                      uint16_t src_port, uint32_t dst_ip, uint16_t dst_port) noexcept {
  natRewrite(frame, p, src_ip, src_port, dst_ip, dst_port, /*decrement_ttl=*/false);
}

void forwardNat(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip, uint16_t src_port,
                uint32_t dst_ip, uint16_t dst_port) noexcept {
  natRewrite(frame, p, src_ip, src_port, dst_ip, dst_port, /*decrement_ttl=*/true);
}

NatDelta natDelta(const Ipv4Tuple& from, const Ipv4Tuple& to) noexcept {
  using detail::wire32;
  const auto ports = [](const Ipv4Tuple& t) { return detail::wirePorts(t.src_port, t.dst_port); };
  const uint64_t addresses = checksumDelta32(wire32(from.src_ip), wire32(to.src_ip)) +
                             checksumDelta32(wire32(from.dst_ip), wire32(to.dst_ip));
  return {.addresses = foldChecksum(addresses),
          .l4 = foldChecksum(addresses + checksumDelta32(ports(from), ports(to)))};
}

bool icmpChecksumOk(std::span<const std::byte> frame, const ParsedFrame& p) noexcept {
  // A correct message sums (checksum included) to 0xffff: its "checksum" is then 0.
  return internetChecksum(frame.subspan(p.l4_offset, p.l4_len)) == 0;
}

void translateIcmpError(std::span<std::byte> frame, ParsedFrame& p, uint32_t outer_src, uint32_t outer_dst,
                        uint32_t inner_src, uint16_t inner_sport, uint32_t inner_dst, uint16_t inner_dport) noexcept {
  // Outer header: a router's TTL step and the new addresses, one incremental update.
  std::byte* ip = frame.data() + p.l3_offset;
  uint16_t hc = load16(ip + ipv4::kChecksum);
  const uint16_t ttl_word = load16(ip + ipv4::kTtl);
  const auto new_ttl_word = static_cast<uint16_t>(ttl_word - 0x0100);
  hc = checksumUpdate16(hc, ttl_word, new_ttl_word);
  hc = checksumUpdate32(hc, load32(ip + ipv4::kSrc), outer_src);
  hc = checksumUpdate32(hc, load32(ip + ipv4::kDst), outer_dst);
  store16(ip + ipv4::kTtl, new_ttl_word);
  store32(ip + ipv4::kSrc, outer_src);
  store32(ip + ipv4::kDst, outer_dst);
  store16(ip + ipv4::kChecksum, hc);
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  p.src_ip = outer_src;
  p.dst_ip = outer_dst;

  std::byte* m = frame.data() + p.l4_offset;
  std::byte* in = m + kIcmpMinLen;
  const size_t ihl = (std::to_integer<size_t>(in[0]) & 0x0f) * 4;
  std::byte* in_l4 = in + ihl;
  const size_t quoted_l4 = p.l4_len - kIcmpMinLen - ihl;
  const uint32_t old_src = load32(in + ipv4::kSrc);
  const uint32_t old_dst = load32(in + ipv4::kDst);
  // The quoted header as the peer we send it to would have built it.
  uint16_t qc = load16(in + ipv4::kChecksum);
  qc = checksumUpdate32(qc, old_src, inner_src);
  qc = checksumUpdate32(qc, old_dst, inner_dst);
  store16(in + ipv4::kChecksum, qc);
  const uint8_t inner_proto = std::to_integer<uint8_t>(in[ipv4::kProto]);
  const size_t csum_off = inner_proto == kProtoTcp ? tcp::kChecksum : udp::kChecksum;
  if (quoted_l4 >= csum_off + 2) {
    const uint16_t old = load16(in_l4 + csum_off);
    // UDP checksum 0 means "none" and stays so.
    if (!(inner_proto == kProtoUdp && old == 0)) {
      uint16_t c = checksumUpdate32(old, old_src, inner_src);
      c = checksumUpdate32(c, old_dst, inner_dst);
      c = checksumUpdate16(c, load16(in_l4), inner_sport);
      c = checksumUpdate16(c, load16(in_l4 + 2), inner_dport);
      if (inner_proto == kProtoUdp && c == 0) c = 0xffff;
      store16(in_l4 + csum_off, c);
    }
  }
  store32(in + ipv4::kSrc, inner_src);
  store32(in + ipv4::kDst, inner_dst);
  store16(in_l4, inner_sport);
  store16(in_l4 + 2, inner_dport);
  // The message changed in many places: recompute (the caller verified the old sum).
  store16(m + icmp::kChecksum, 0);
  store16(m + icmp::kChecksum, internetChecksum(std::span<const std::byte>(m, p.l4_len)));
}

void setIpv4Id(std::span<std::byte> frame, const ParsedFrame& p, uint16_t id) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  const uint16_t before = load16(ip + ipv4::kId);
  store16(ip + ipv4::kChecksum, checksumUpdate16(load16(ip + ipv4::kChecksum), before, id));
  store16(ip + ipv4::kId, id);
}

void arpRequestToReply(std::span<std::byte> frame, const ParsedFrame& p, const Mac& our_mac) noexcept {
  std::byte* a = frame.data() + p.l3_offset;
  store16(a + arp::kOper, arp::kReply);
  storeMac(a + arp::kTha, p.arp_sha);
  store32(a + arp::kTpa, p.arp_spa);
  storeMac(a + arp::kSha, our_mac);
  store32(a + arp::kSpa, p.arp_tpa);
  setEthernet(frame, p.arp_sha, our_mac);
}

void icmpEchoToReply(std::span<std::byte> frame, ParsedFrame& p, const Mac& our_mac) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  // Swapping source and destination leaves the header sum unchanged; TTL does not.
  const uint16_t old_ttl_word = wordAt(ip + ipv4::kTtl);
  ip[ipv4::kTtl] = std::byte{64};
  uint16_t ip_csum = checksumUpdate16(load16(ip + ipv4::kChecksum), old_ttl_word, wordAt(ip + ipv4::kTtl));
  store16(ip + ipv4::kChecksum, ip_csum);
  store32(ip + ipv4::kSrc, p.dst_ip);
  store32(ip + ipv4::kDst, p.src_ip);
  std::swap(p.src_ip, p.dst_ip);
  p.ttl = 64;

  std::byte* icmp_hdr = frame.data() + p.l4_offset;
  const uint16_t old_type_word = wordAt(icmp_hdr + icmp::kType);
  icmp_hdr[icmp::kType] = std::byte{icmp::kEchoReply};
  store16(icmp_hdr + icmp::kChecksum, checksumUpdate16(load16(icmp_hdr + icmp::kChecksum),
                                                       old_type_word, wordAt(icmp_hdr + icmp::kType)));
  p.icmp_type = icmp::kEchoReply;

  const Mac requester = loadMac(frame.data() + 6);
  setEthernet(frame, requester, our_mac);
}

size_t writeArpRequestFrame(std::span<std::byte> frame, const Mac& src_mac, uint32_t src_ip,
                            uint32_t target_ip) noexcept {
  if (frame.size() < kMinFrameLen) return 0;
  std::memset(frame.data(), 0, kMinFrameLen);
  setEthernet(frame, kBroadcast, src_mac);
  store16(frame.data() + 12, kEtherTypeArp);
  std::byte* a = frame.data() + kEthHeaderLen;
  store16(a + arp::kHtype, 1);
  store16(a + arp::kPtype, kEtherTypeIpv4);
  a[arp::kHlen] = std::byte{6};
  a[arp::kPlen] = std::byte{4};
  store16(a + arp::kOper, arp::kRequest);
  storeMac(a + arp::kSha, src_mac);
  store32(a + arp::kSpa, src_ip);
  // Target hardware address stays zero (unknown).
  store32(a + arp::kTpa, target_ip);
  return kMinFrameLen;
}

}  // namespace ng::pkt
