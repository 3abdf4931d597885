#pragma once
// IPv6 parsing for parseFrame() (pkt/parse.h is the interface; this header holds the
// bounds and the internal entry points).
//
// Extension-header chain: Hop-by-Hop (first only), Routing, Fragment (once), Destination
// Options and AH are walked; any other next-header value ends the chain and becomes the
// upper-layer protocol (TCP, UDP, ICMPv6 are parsed; ESP, No Next Header and the rest are
// left to the classifier, which drops them as unsupported). The walk stops after
// kMaxExtHeaders headers or kMaxExtHeaderBytes bytes of them, so a long chain - or one
// that repeats a header to make the parser loop - is rejected (kExtHeaderChain) after a
// fixed amount of work, whatever the frame says.

#include <cstddef>
#include <span>

#include "dataplane/pkt/parse.h"

namespace ng::pkt {

inline constexpr unsigned kMaxExtHeaders = 8;
inline constexpr size_t kMaxExtHeaderBytes = 512;

namespace detail {
// `out.l3_offset` is set; fills the IPv6 fields of `out` (see ParsedFrame).
[[nodiscard]] ParseStatus parseIpv6(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
// TCP/UDP/ICMP(v6) after out.l4_offset / l4_len / proto are set (parse.cc).
[[nodiscard]] ParseStatus parseL4(std::span<const std::byte> frame, ParsedFrame& out) noexcept;
}  // namespace detail

}  // namespace ng::pkt
