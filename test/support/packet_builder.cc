#include "test/support/packet_builder.h"

#include <arpa/inet.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"

namespace ng::test {

using namespace ng::pkt;

uint32_t ip(std::string_view dotted) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(dotted).c_str(), &a) != 1) {
    std::fprintf(stderr, "bad IPv4 literal in test: %.*s\n", static_cast<int>(dotted.size()),
                 dotted.data());
    std::abort();
  }
  return ntohl(a.s_addr);
}

Mac mac(std::string_view text) {
  Mac m{};
  unsigned v[6];
  if (std::sscanf(std::string(text).c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3],
                  &v[4], &v[5]) != 6) {
    std::abort();
  }
  for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v[i]);
  return m;
}

PacketBuilder& PacketBuilder::eth(const Mac& src, const Mac& dst) {
  src_ = src;
  dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::vlan(uint16_t tci) { vlan_ = tci; return *this; }
PacketBuilder& PacketBuilder::etherType(uint16_t type) { ether_type_ = type; return *this; }

PacketBuilder& PacketBuilder::arp(uint16_t op, const Mac& sha, uint32_t spa, const Mac& tha,
                                  uint32_t tpa) {
  arp_ = true;
  arp_op_ = op;
  arp_sha_ = sha;
  arp_spa_ = spa;
  arp_tha_ = tha;
  arp_tpa_ = tpa;
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(uint32_t src, uint32_t dst, uint8_t ttl) {
  ipv4_ = true;
  ip_src_ = src;
  ip_dst_ = dst;
  ttl_ = ttl;
  return *this;
}
PacketBuilder& PacketBuilder::ipId(uint16_t id) { ip_id_ = id; return *this; }
PacketBuilder& PacketBuilder::ipFrag(uint16_t v) { frag_ = v; return *this; }
PacketBuilder& PacketBuilder::ipOptions(size_t bytes) { ip_options_ = bytes; return *this; }
PacketBuilder& PacketBuilder::ipProto(uint8_t proto) { ip_proto_ = proto; return *this; }
PacketBuilder& PacketBuilder::ipTotalLen(uint16_t len) { ip_total_len_ = len; return *this; }
PacketBuilder& PacketBuilder::ipChecksum(uint16_t csum) { ip_checksum_ = csum; return *this; }
PacketBuilder& PacketBuilder::ipVersionIhl(uint8_t v) { version_ihl_ = v; return *this; }

PacketBuilder& PacketBuilder::ipv6(const pkt::Ip6& src, const pkt::Ip6& dst, uint8_t hop_limit) {
  ipv6_ = true;
  ip6_src_ = src;
  ip6_dst_ = dst;
  ttl_ = hop_limit;
  return *this;
}
PacketBuilder& PacketBuilder::ext6(uint8_t type, size_t bytes, uint8_t byte3) {
  ext6_.push_back(Ext6{.type = type, .bytes = bytes, .byte3 = byte3, .frag_offset = 0, .frag_more = false, .frag_id = 0});
  return *this;
}
PacketBuilder& PacketBuilder::frag6(uint16_t offset, bool more, uint32_t id) {
  ext6_.push_back(Ext6{.type = ipv6::kFragment, .bytes = 8, .byte3 = 0, .frag_offset = offset, .frag_more = more,
                       .frag_id = id});
  return *this;
}
PacketBuilder& PacketBuilder::ip6PayloadLen(uint16_t len) { ip6_payload_len_ = len; return *this; }
PacketBuilder& PacketBuilder::ip6NextHeader(uint8_t next) { ip6_next_ = next; return *this; }
PacketBuilder& PacketBuilder::icmp6Echo(uint8_t type, uint16_t id, uint16_t seq) {
  l4_ = L4::kIcmp6Echo;
  icmp_type_ = type;
  icmp_id_ = id;
  icmp_seq_ = seq;
  return *this;
}
PacketBuilder& PacketBuilder::icmp6Error(uint8_t type, uint8_t code, uint32_t word, Bytes quoted) {
  l4_ = L4::kIcmp6Error;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_word_ = word;
  quoted_ = std::move(quoted);
  return *this;
}
PacketBuilder& PacketBuilder::ndSolicit(const pkt::Ip6& target, std::optional<Mac> lla) {
  l4_ = L4::kNs;
  nd_target_ = target;
  nd_lla_ = lla;
  return *this;
}
PacketBuilder& PacketBuilder::ndAdvert(const pkt::Ip6& target, uint32_t flags, std::optional<Mac> lla) {
  l4_ = L4::kNa;
  nd_target_ = target;
  nd_flags_ = flags;
  nd_lla_ = lla;
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                                  uint32_t ack) {
  l4_ = L4::kTcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  seq_ = seq;
  ack_ = ack;
  return *this;
}
PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::kUdp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::icmpEcho(uint8_t type, uint16_t id, uint16_t seq) {
  l4_ = L4::kIcmp;
  icmp_type_ = type;
  icmp_id_ = id;
  icmp_seq_ = seq;
  return *this;
}
PacketBuilder& PacketBuilder::icmpError(uint8_t type, uint8_t code, uint32_t word, Bytes quoted) {
  l4_ = L4::kIcmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_id_ = static_cast<uint16_t>(word >> 16);
  icmp_seq_ = static_cast<uint16_t>(word);
  quoted_ = std::move(quoted);
  return *this;
}
PacketBuilder& PacketBuilder::l4Checksum(uint16_t csum) { l4_checksum_ = csum; return *this; }
PacketBuilder& PacketBuilder::payload(size_t n, uint8_t fill) {
  payload_len_ = n;
  payload_fill_ = fill;
  return *this;
}

Bytes PacketBuilder::build() const {
  Bytes f;
  auto put8 = [&](uint8_t v) { f.push_back(std::byte{v}); };
  auto put16 = [&](uint16_t v) { put8(static_cast<uint8_t>(v >> 8)); put8(static_cast<uint8_t>(v)); };
  auto put32 = [&](uint32_t v) { put16(static_cast<uint16_t>(v >> 16)); put16(static_cast<uint16_t>(v)); };
  auto putMac = [&](const Mac& m) { for (uint8_t b : m) put8(b); };

  putMac(dst_);
  putMac(src_);
  if (vlan_) {
    put16(kEtherTypeVlan);
    put16(*vlan_);
  }
  const uint16_t inner_type = arp_ ? kEtherTypeArp : ipv4_ ? kEtherTypeIpv4 : ipv6_ ? kEtherTypeIpv6 : 0x88b5;
  put16(ether_type_.value_or(inner_type));

  if (arp_) {
    put16(1);
    put16(kEtherTypeIpv4);
    put8(6);
    put8(4);
    put16(arp_op_);
    putMac(arp_sha_);
    put32(arp_spa_);
    putMac(arp_tha_);
    put32(arp_tpa_);
  } else if (ipv4_) {
    const size_t l3 = f.size();
    const size_t ihl = kIpv4MinLen + ip_options_;
    const size_t l4_len = l4_ == L4::kTcp ? kTcpMinLen
                          : l4_ == L4::kUdp ? kUdpLen
                          : l4_ == L4::kIcmp ? kIcmpMinLen + quoted_.size()
                                             : 0;
    const uint8_t proto = ip_proto_.value_or(l4_ == L4::kTcp ? kProtoTcp
                                             : l4_ == L4::kUdp ? kProtoUdp
                                             : l4_ == L4::kIcmp ? kProtoIcmp
                                                                : 253);
    put8(version_ihl_.value_or(static_cast<uint8_t>(0x40 | (ihl / 4))));
    put8(0);
    put16(ip_total_len_.value_or(static_cast<uint16_t>(ihl + l4_len + payload_len_)));
    put16(ip_id_);
    put16(frag_);
    put8(ttl_);
    put8(proto);
    put16(0);
    put32(ip_src_);
    put32(ip_dst_);
    for (size_t i = 0; i < ip_options_; ++i) put8(1);  // NOP
    const uint16_t hcsum = ip_checksum_.value_or(
        internetChecksum(std::span<const std::byte>(f).subspan(l3, ihl)));
    store16(f.data() + l3 + ipv4::kChecksum, hcsum);

    const size_t l4 = f.size();
    if (l4_ == L4::kTcp) {
      put16(sport_);
      put16(dport_);
      put32(seq_);
      put32(ack_);
      put8(0x50);
      put8(tcp_flags_);
      put16(65535);
      put16(0);
      put16(0);
    } else if (l4_ == L4::kUdp) {
      put16(sport_);
      put16(dport_);
      put16(static_cast<uint16_t>(kUdpLen + payload_len_));
      put16(0);
    } else if (l4_ == L4::kIcmp) {
      put8(icmp_type_);
      put8(icmp_code_);
      put16(0);
      put16(icmp_id_);
      put16(icmp_seq_);
      f.insert(f.end(), quoted_.begin(), quoted_.end());
    }
    for (size_t i = 0; i < payload_len_; ++i) put8(payload_fill_);
    const auto seg = std::span<const std::byte>(f).subspan(l4);
    if (l4_ == L4::kIcmp) {
      store16(f.data() + l4 + icmp::kChecksum, l4_checksum_.value_or(internetChecksum(seg)));
    } else if (l4_ != L4::kNone) {
      // Pseudo-header: src, dst, zero, protocol, L4 length.
      uint32_t sum = 0;
      sum += ip_src_ >> 16;
      sum += ip_src_ & 0xffff;
      sum += ip_dst_ >> 16;
      sum += ip_dst_ & 0xffff;
      sum += proto;
      sum += static_cast<uint32_t>(seg.size());
      uint16_t c = checksumFinish(checksumAdd(seg, sum));
      if (l4_ == L4::kUdp && c == 0) c = 0xffff;
      const size_t off = l4_ == L4::kTcp ? tcp::kChecksum : udp::kChecksum;
      store16(f.data() + l4 + off, l4_checksum_.value_or(c));
    }
  } else if (ipv6_) {
    buildIpv6(f);
  } else {
    for (size_t i = 0; i < payload_len_; ++i) put8(payload_fill_);
  }
  while (f.size() < kMinFrameLen) put8(0);
  return f;
}

void PacketBuilder::buildIpv6(Bytes& f) const {
  auto put8 = [&](uint8_t v) { f.push_back(std::byte{v}); };
  auto put16 = [&](uint16_t v) { put8(static_cast<uint8_t>(v >> 8)); put8(static_cast<uint8_t>(v)); };
  auto put32 = [&](uint32_t v) { put16(static_cast<uint16_t>(v >> 16)); put16(static_cast<uint16_t>(v)); };
  auto putIp6 = [&](const pkt::Ip6& a) {
    put32(static_cast<uint32_t>(a.hi >> 32));
    put32(static_cast<uint32_t>(a.hi));
    put32(static_cast<uint32_t>(a.lo >> 32));
    put32(static_cast<uint32_t>(a.lo));
  };
  const uint8_t upper = ip6_next_.value_or(l4_ == L4::kTcp ? kProtoTcp
                                           : l4_ == L4::kUdp ? kProtoUdp
                                           : l4_ == L4::kNone ? ipv6::kNoNext
                                                              : kProtoIcmp6);
  const size_t l3 = f.size();
  put32(0x60000000);
  put16(0);  // payload length, below
  put8(ext6_.empty() ? upper : ext6_.front().type);
  put8(ttl_);
  putIp6(ip6_src_);
  putIp6(ip6_dst_);
  for (size_t i = 0; i < ext6_.size(); ++i) {
    const Ext6& e = ext6_[i];
    const uint8_t next = i + 1 < ext6_.size() ? ext6_[i + 1].type : upper;
    const size_t start = f.size();
    put8(next);
    if (e.type == ipv6::kFragment) {
      put8(0);
      put16(static_cast<uint16_t>((e.frag_offset & ipv6::kFragOffsetMask) | (e.frag_more ? ipv6::kFragMore : 0)));
      put32(e.frag_id);
      continue;
    }
    put8(static_cast<uint8_t>(e.type == ipv6::kAh ? e.bytes / 4 - 2 : e.bytes / 8 - 1));
    if (e.type == ipv6::kRouting) {
      put8(0);  // routing type 0 (deprecated; any type with segments left > 0 is refused)
      put8(e.byte3);
    } else {
      // One PadN option filling the rest (Hop-by-Hop / Destination Options), or AH's
      // reserved field.
      put8(1);
      put8(static_cast<uint8_t>(e.bytes - 4));
    }
    while (f.size() < start + e.bytes) put8(0);
  }
  const size_t l4 = f.size();
  switch (l4_) {
    case L4::kTcp:
      put16(sport_); put16(dport_); put32(seq_); put32(ack_); put8(0x50); put8(tcp_flags_); put16(65535);
      put16(0); put16(0);
      break;
    case L4::kUdp:
      put16(sport_); put16(dport_); put16(static_cast<uint16_t>(kUdpLen + payload_len_)); put16(0);
      break;
    case L4::kIcmp6Echo:
      put8(icmp_type_); put8(0); put16(0); put16(icmp_id_); put16(icmp_seq_);
      break;
    case L4::kNs:
    case L4::kNa:
      put8(l4_ == L4::kNs ? icmp6::kNeighborSolicitation : icmp6::kNeighborAdvertisement);
      put8(0); put16(0);
      put32(l4_ == L4::kNa ? nd_flags_ : 0);
      putIp6(nd_target_);
      if (nd_lla_) {
        put8(l4_ == L4::kNs ? icmp6::kOptSourceLinkAddr : icmp6::kOptTargetLinkAddr);
        put8(1);
        for (uint8_t b : *nd_lla_) put8(b);
      }
      break;
    case L4::kIcmp6Error:
      put8(icmp_type_); put8(icmp_code_); put16(0); put32(icmp_word_);
      f.insert(f.end(), quoted_.begin(), quoted_.end());
      break;
    case L4::kNone:
    case L4::kIcmp:
      break;
  }
  for (size_t i = 0; i < payload_len_; ++i) put8(payload_fill_);
  store16(f.data() + l3 + ipv6::kPayloadLen,
          ip6_payload_len_.value_or(static_cast<uint16_t>(f.size() - l3 - kIpv6HeaderLen)));
  if (l4_ == L4::kNone || l4_ == L4::kIcmp) return;
  const auto seg = std::span<const std::byte>(f).subspan(l4);
  uint32_t sum = 0;
  for (unsigned i = 0; i < 8; ++i) sum += ip6_src_.word(i) + ip6_dst_.word(i);
  sum += static_cast<uint32_t>(seg.size() >> 16) + static_cast<uint32_t>(seg.size() & 0xffff);
  sum += upper;
  uint16_t c = checksumFinish(checksumAdd(seg, sum));
  if (l4_ == L4::kUdp && c == 0) c = 0xffff;
  const size_t off = l4_ == L4::kTcp ? tcp::kChecksum : l4_ == L4::kUdp ? udp::kChecksum : icmp::kChecksum;
  store16(f.data() + l4 + off, l4_checksum_.value_or(c));
}

pkt::Ip6 ip6(std::string_view text) {
  std::string s(text);
  in6_addr a{};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) std::abort();
  return pkt::loadIp6(reinterpret_cast<const std::byte*>(a.s6_addr));
}

std::vector<Bytes> fragmentIpv6(const Bytes& frame, size_t fragment_payload, uint32_t id) {
  const size_t l3 = kEthHeaderLen;
  const size_t payload = load16(frame.data() + l3 + ipv6::kPayloadLen);
  const uint8_t next = std::to_integer<uint8_t>(frame[l3 + ipv6::kNextHeader]);
  const size_t step = std::max<size_t>(8, fragment_payload / 8 * 8);
  std::vector<Bytes> out;
  for (size_t off = 0; off < payload; off += step) {
    const size_t n = std::min(step, payload - off);
    Bytes f(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(l3 + kIpv6HeaderLen));
    std::byte* ip = f.data() + l3;
    store16(ip + ipv6::kPayloadLen, static_cast<uint16_t>(ipv6::kFragHeaderLen + n));
    ip[ipv6::kNextHeader] = std::byte{ipv6::kFragment};
    const bool more = off + n < payload;
    f.push_back(std::byte{next});
    f.push_back(std::byte{0});
    f.push_back(static_cast<std::byte>((off >> 8) & 0xff));
    f.push_back(static_cast<std::byte>((off & 0xf8) | (more ? 1 : 0)));
    for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<std::byte>(id >> s));
    f.insert(f.end(), frame.begin() + static_cast<ptrdiff_t>(l3 + kIpv6HeaderLen + off),
             frame.begin() + static_cast<ptrdiff_t>(l3 + kIpv6HeaderLen + off + n));
    while (f.size() < kMinFrameLen) f.push_back(std::byte{0});
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<Bytes> fragmentIpv4(const Bytes& frame, size_t fragment_payload) {
  const size_t l3 = kEthHeaderLen;
  const size_t ihl = (std::to_integer<size_t>(frame[l3]) & 0x0f) * 4;
  const size_t total = load16(frame.data() + l3 + ipv4::kTotalLen);
  const size_t payload = total - ihl;
  const size_t step = std::max<size_t>(8, fragment_payload / 8 * 8);
  if (payload <= step) return {frame};
  std::vector<Bytes> out;
  for (size_t off = 0; off < payload; off += step) {
    const size_t n = std::min(step, payload - off);
    Bytes f(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(l3 + ihl));
    f.insert(f.end(), frame.begin() + static_cast<ptrdiff_t>(l3 + ihl + off),
             frame.begin() + static_cast<ptrdiff_t>(l3 + ihl + off + n));
    std::byte* ip = f.data() + l3;
    store16(ip + ipv4::kTotalLen, static_cast<uint16_t>(ihl + n));
    const bool more = off + n < payload;
    store16(ip + ipv4::kFragOff, static_cast<uint16_t>((more ? ipv4::kFlagMf : 0) | (off / 8)));
    store16(ip + ipv4::kChecksum, 0);
    store16(ip + ipv4::kChecksum, internetChecksum(std::span<const std::byte>(ip, ihl)));
    while (f.size() < kMinFrameLen) f.push_back(std::byte{0});
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ng::test
