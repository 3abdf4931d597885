#include "dataplane/pkt/rewrite.h"

#include <cstring>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"

namespace ng::pkt {
namespace {

constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint16_t wordAt(const std::byte* p) noexcept { return load16(p); }

}  // namespace

void setEthernet(std::span<std::byte> frame, const Mac& dst, const Mac& src) noexcept {
  storeMac(frame.data(), dst);
  storeMac(frame.data() + 6, src);
}

void rewriteIpv4Tuple(std::span<std::byte> frame, ParsedFrame& p, uint32_t src_ip,
                      uint16_t src_port, uint32_t dst_ip, uint16_t dst_port) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  uint16_t ip_csum = load16(ip + ipv4::kChecksum);
  ip_csum = checksumUpdate32(ip_csum, p.src_ip, src_ip);
  ip_csum = checksumUpdate32(ip_csum, p.dst_ip, dst_ip);
  store16(ip + ipv4::kChecksum, ip_csum);
  store32(ip + ipv4::kSrc, src_ip);
  store32(ip + ipv4::kDst, dst_ip);

  if (p.first_fragment && (p.proto == kProtoTcp || p.proto == kProtoUdp)) {
    std::byte* l4 = frame.data() + p.l4_offset;
    const size_t csum_off = p.proto == kProtoTcp ? tcp::kChecksum : udp::kChecksum;
    uint16_t csum = load16(l4 + csum_off);
    // UDP over IPv4 may carry no checksum (0); it must stay "none".
    const bool keep_zero = p.proto == kProtoUdp && csum == 0;
    if (!keep_zero) {
      csum = checksumUpdate32(csum, p.src_ip, src_ip);
      csum = checksumUpdate32(csum, p.dst_ip, dst_ip);
      csum = checksumUpdate16(csum, p.src_port, src_port);
      csum = checksumUpdate16(csum, p.dst_port, dst_port);
      if (p.proto == kProtoUdp && csum == 0) csum = 0xffff;  // 0 would mean "none"
      store16(l4 + csum_off, csum);
    }
    store16(l4 + 0, src_port);  // source/destination ports are the first 4 bytes of both
    store16(l4 + 2, dst_port);
    p.src_port = src_port;
    p.dst_port = dst_port;
  }
  p.src_ip = src_ip;
  p.dst_ip = dst_ip;
}

void decrementTtl(std::span<std::byte> frame, ParsedFrame& p) noexcept {
  std::byte* ip = frame.data() + p.l3_offset;
  // TTL shares its 16-bit word with the protocol byte.
  const uint16_t old_word = wordAt(ip + ipv4::kTtl);
  ip[ipv4::kTtl] = static_cast<std::byte>(p.ttl - 1);
  const uint16_t new_word = wordAt(ip + ipv4::kTtl);
  store16(ip + ipv4::kChecksum, checksumUpdate16(load16(ip + ipv4::kChecksum), old_word, new_word));
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
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
