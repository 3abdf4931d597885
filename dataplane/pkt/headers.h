#pragma once
// Wire constants and header layouts (Ethernet, 802.1Q, ARP, IPv4, TCP, UDP, ICMP).
// Offsets are relative to the start of each header.

#include <cstddef>
#include <cstdint>

namespace ng::pkt {

inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kVlanTagLen = 4;
inline constexpr size_t kMinFrameLen = 60;  // without FCS

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

// ARP for Ethernet/IPv4 (RFC 826): 28 bytes.
inline constexpr size_t kArpLen = 28;
namespace arp {
inline constexpr size_t kHtype = 0, kPtype = 2, kHlen = 4, kPlen = 5, kOper = 6;
inline constexpr size_t kSha = 8, kSpa = 14, kTha = 18, kTpa = 24;
inline constexpr uint16_t kRequest = 1, kReply = 2;
}  // namespace arp

// IPv4 (RFC 791).
inline constexpr size_t kIpv4MinLen = 20;
namespace ipv4 {
inline constexpr size_t kVersionIhl = 0, kTotalLen = 2, kId = 4, kFragOff = 6, kTtl = 8,
                        kProto = 9, kChecksum = 10, kSrc = 12, kDst = 16;
inline constexpr uint16_t kFlagMf = 0x2000;
inline constexpr uint16_t kOffsetMask = 0x1fff;
}  // namespace ipv4

// TCP (RFC 9293).
inline constexpr size_t kTcpMinLen = 20;
namespace tcp {
inline constexpr size_t kSrcPort = 0, kDstPort = 2, kSeq = 4, kAck = 8, kDataOff = 12,
                        kFlags = 13, kChecksum = 16;
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAckFlag = 0x10;
}  // namespace tcp

// UDP (RFC 768).
inline constexpr size_t kUdpLen = 8;
namespace udp {
inline constexpr size_t kSrcPort = 0, kDstPort = 2, kLength = 4, kChecksum = 6;
}

// ICMP (RFC 792): type, code, checksum, then id/seq for echo.
inline constexpr size_t kIcmpMinLen = 8;
namespace icmp {
inline constexpr size_t kType = 0, kCode = 1, kChecksum = 2;
inline constexpr uint8_t kEchoReply = 0, kEchoRequest = 8;
}

}  // namespace ng::pkt
