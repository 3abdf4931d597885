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
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmp6 = 58;

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
inline constexpr uint8_t kTimeExceeded = 11;  // kDestUnreachable: pkt/encap.h
}

// IPv6 (RFC 8200): fixed 40-byte header, then extension headers.
inline constexpr size_t kIpv6HeaderLen = 40;
namespace ipv6 {
inline constexpr size_t kVersionClassFlow = 0, kPayloadLen = 4, kNextHeader = 6, kHopLimit = 7,
                        kSrc = 8, kDst = 24;
// Extension header types (RFC 8200 4, RFC 4302, RFC 4303).
inline constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kEsp = 50, kAh = 51,
                         kNoNext = 59, kDestOpts = 60;
// Fragment header: next header, reserved, offset (13 bits) | 2 reserved bits | M, id.
inline constexpr size_t kFragHeaderLen = 8;
inline constexpr size_t kFragOffsetFlags = 2, kFragId = 4;
inline constexpr uint16_t kFragMore = 0x0001;
inline constexpr uint16_t kFragOffsetMask = 0xfff8;
}  // namespace ipv6

// ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861).
namespace icmp6 {
inline constexpr uint8_t kPacketTooBig = 2;
inline constexpr uint8_t kEchoRequest = 128, kEchoReply = 129;
// Error messages: type, code, checksum, 4 bytes (PTB: the MTU), then the invoking packet.
inline constexpr size_t kErrorQuote = 8;
inline constexpr uint8_t kNeighborSolicitation = 135, kNeighborAdvertisement = 136;
// NS/NA body: type, code, checksum, 4 bytes (reserved / NA flags), target address.
inline constexpr size_t kNdTarget = 8, kNdMinLen = 24;
inline constexpr uint32_t kNaRouter = 0x80000000u, kNaSolicited = 0x40000000u, kNaOverride = 0x20000000u;
// Options: type, length in units of 8 bytes.
inline constexpr uint8_t kOptSourceLinkAddr = 1, kOptTargetLinkAddr = 2;
inline constexpr uint8_t kNdHopLimit = 255;
}  // namespace icmp6

}  // namespace ng::pkt
