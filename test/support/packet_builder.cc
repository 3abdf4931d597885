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
  const uint16_t inner_type = arp_ ? kEtherTypeArp : ipv4_ ? kEtherTypeIpv4 : 0x88b5;
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
                          : l4_ == L4::kIcmp ? kIcmpMinLen
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
      put8(0);
      put16(0);
      put16(icmp_id_);
      put16(icmp_seq_);
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
  } else {
    for (size_t i = 0; i < payload_len_; ++i) put8(payload_fill_);
  }
  while (f.size() < kMinFrameLen) put8(0);
  return f;
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
