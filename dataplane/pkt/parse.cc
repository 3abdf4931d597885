#include "dataplane/pkt/parse.h"

#include <cstring>
#include <type_traits>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse6.h"

namespace ng::pkt {
namespace {

ParseStatus parseArp(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  if (f.size() < out.l3_offset + kArpLen) return ParseStatus::kTruncated;
  const std::byte* a = f.data() + out.l3_offset;
  if (load16(a + arp::kHtype) != 1 || load16(a + arp::kPtype) != kEtherTypeIpv4 ||
      std::to_integer<uint8_t>(a[arp::kHlen]) != 6 || std::to_integer<uint8_t>(a[arp::kPlen]) != 4) {
    return ParseStatus::kBadArp;
  }
  out.arp_op = load16(a + arp::kOper);
  if (out.arp_op != arp::kRequest && out.arp_op != arp::kReply) return ParseStatus::kBadArp;
  out.arp_sha = loadMac(a + arp::kSha);
  out.arp_spa = load32(a + arp::kSpa);
  out.arp_tpa = load32(a + arp::kTpa);
  out.l3 = L3::kArp;
  return ParseStatus::kOk;
}

ParseStatus parseL4(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  const std::byte* l4 = f.data() + out.l4_offset;
  switch (out.proto) {
    case kProtoTcp: {
      if (out.l4_len < kTcpMinLen) return ParseStatus::kTruncated;
      const size_t data_off = (std::to_integer<size_t>(l4[tcp::kDataOff]) >> 4) * 4;
      if (data_off < kTcpMinLen || data_off > out.l4_len) return ParseStatus::kBadL4Header;
      out.src_port = load16(l4 + tcp::kSrcPort);
      out.dst_port = load16(l4 + tcp::kDstPort);
      out.tcp_flags = std::to_integer<uint8_t>(l4[tcp::kFlags]);
      return ParseStatus::kOk;
    }
    case kProtoUdp: {
      if (out.l4_len < kUdpLen) return ParseStatus::kTruncated;
      const uint16_t len = load16(l4 + udp::kLength);
      // The UDP length covers the whole datagram: a first fragment carries only part of
      // it, so there the length can only be checked against the header itself.
      if (len < kUdpLen || (len > out.l4_len && !out.is_fragment)) return ParseStatus::kBadL4Header;
      out.src_port = load16(l4 + udp::kSrcPort);
      out.dst_port = load16(l4 + udp::kDstPort);
      return ParseStatus::kOk;
    }
    case kProtoIcmp:
    case kProtoIcmp6: {  // only reached from parse6.cc: same type/code layout
      if (out.l4_len < kIcmpMinLen) return ParseStatus::kTruncated;
      out.icmp_type = std::to_integer<uint8_t>(l4[icmp::kType]);
      out.icmp_code = std::to_integer<uint8_t>(l4[icmp::kCode]);
      return ParseStatus::kOk;
    }
    default:
      return ParseStatus::kOk;  // other protocols: the classifier decides
  }
}

ParseStatus parseIpv4(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  const size_t avail = f.size() - out.l3_offset;
  if (avail < kIpv4MinLen) return ParseStatus::kTruncated;
  const std::byte* ip = f.data() + out.l3_offset;
  const uint8_t version_ihl = std::to_integer<uint8_t>(ip[ipv4::kVersionIhl]);
  const size_t ihl = (version_ihl & 0x0f) * size_t{4};
  if ((version_ihl >> 4) != 4 || ihl < kIpv4MinLen) return ParseStatus::kBadIpHeader;
  if (avail < ihl) return ParseStatus::kTruncated;
  const uint16_t total = load16(ip + ipv4::kTotalLen);
  if (total < ihl) return ParseStatus::kBadIpHeader;
  if (total > avail) return ParseStatus::kTruncated;  // frames may be longer (padding), never shorter
  if (!detail::ipv4HeaderChecksumOk(ip, ihl)) return ParseStatus::kIpChecksum;

  const uint16_t frag = load16(ip + ipv4::kFragOff);
  out.src_ip = load32(ip + ipv4::kSrc);
  out.dst_ip = load32(ip + ipv4::kDst);
  out.proto = std::to_integer<uint8_t>(ip[ipv4::kProto]);
  out.ttl = std::to_integer<uint8_t>(ip[ipv4::kTtl]);
  out.ip_total_len = total;
  out.ip_header_len = static_cast<uint16_t>(ihl);
  out.is_fragment = (frag & (ipv4::kFlagMf | ipv4::kOffsetMask)) != 0;
  out.first_fragment = (frag & ipv4::kOffsetMask) == 0;
  out.l4_offset = static_cast<uint16_t>(out.l3_offset + ihl);
  out.l4_len = static_cast<uint16_t>(total - ihl);
  out.l3 = L3::kIpv4;
  if (!out.first_fragment) return ParseStatus::kOk;
  return parseL4(f, out);
}

}  // namespace

namespace detail {

bool parseSimpleIpv4(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  SimpleIpv4 simple;
  if (!pkt::parseSimpleIpv4(f, simple)) return false;
  toParsedFrame(simple, out);
  return true;
}

ParseStatus parseFrameGeneral(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  // memset, not `out = ParsedFrame{}`: the compiler builds the braced temporary with narrow
  // stores and copies it with wide loads, a store-forwarding stall on every packet.
  static_assert(std::is_trivially_copyable_v<ParsedFrame>);
  std::memset(&out, 0, sizeof(out));
  out.first_fragment = true;
  if (f.size() < kEthHeaderLen) return ParseStatus::kTruncated;
  size_t off = 12;
  uint16_t type = load16(f.data() + off);
  if (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
    if (f.size() < kEthHeaderLen + kVlanTagLen) return ParseStatus::kTruncated;
    out.has_vlan = true;
    out.vlan_tci = load16(f.data() + off + 2);
    off += kVlanTagLen;
    type = load16(f.data() + off);
  }
  out.ether_type = type;
  out.l3_offset = static_cast<uint16_t>(off + 2);
  switch (type) {
    case kEtherTypeArp:
      return parseArp(f, out);
    case kEtherTypeIpv4:
      return parseIpv4(f, out);
    case kEtherTypeIpv6:
      return detail::parseIpv6(f, out);
    default:
      return ParseStatus::kUnsupportedEtherType;
  }
}

ParseStatus parseL4(std::span<const std::byte> frame, ParsedFrame& out) noexcept {
  return ng::pkt::parseL4(frame, out);
}
}  // namespace detail

void toParsedFrame(const SimpleIpv4& s, ParsedFrame& out) noexcept {
  // Every field as parseFrame's general path writes it (pinned by parse_test).
  std::memset(&out, 0, sizeof(out));
  out.ether_type = kEtherTypeIpv4;
  out.l3_offset = SimpleIpv4::l3_offset;
  out.l3 = L3::kIpv4;
  out.src_ip = s.src_ip();
  out.dst_ip = s.dst_ip();
  out.proto = s.proto;
  out.ttl = s.ttl;
  out.ip_total_len = s.ip_total_len;
  out.ip_header_len = kIpv4MinLen;
  out.first_fragment = true;
  out.l4_offset = SimpleIpv4::l4_offset;
  out.l4_len = static_cast<uint16_t>(s.ip_total_len - kIpv4MinLen);
  out.src_port = s.src_port();
  out.dst_port = s.dst_port();
  out.tcp_flags = s.tcp_flags;
}

ParseStatus parseFrame(std::span<const std::byte> f, ParsedFrame& out) noexcept {
  if (detail::parseSimpleIpv4(f, out)) return ParseStatus::kOk;
  return detail::parseFrameGeneral(f, out);
}

const char* parseStatusName(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::kOk: return "ok";
    case ParseStatus::kTruncated: return "truncated";
    case ParseStatus::kUnsupportedEtherType: return "unsupported_ether_type";
    case ParseStatus::kBadArp: return "bad_arp";
    case ParseStatus::kBadIpHeader: return "bad_ip_header";
    case ParseStatus::kIpChecksum: return "ip_checksum";
    case ParseStatus::kBadL4Header: return "bad_l4_header";
    case ParseStatus::kExtHeaderChain: return "ext_header_chain";
    case ParseStatus::kJumbogram: return "jumbogram";
  }
  return "unknown";
}

}  // namespace ng::pkt
