#pragma once
// ngctl's text output: pure functions from the status API's JSON documents (docs/api.md)
// to the tables an operator reads. No I/O, no clock; safe on any thread.
//
// Tolerance: every field may be missing or of the wrong type (an older or newer box);
// a missing string prints as "-", a missing number as "-" in tables and is skipped in
// sums. Nothing here throws on a well-formed nlohmann::json value of any shape.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace ng::ngctl {

// Counts and rates for humans, SI steps of 1000: 950 -> "950", 3.5 -> "3.5",
// 1500 -> "1.5K", 15300 -> "15K", 2.3e6 -> "2.3M". One decimal below 10 of a unit,
// none above; a value that would round to 1000 moves up a unit ("1.0M", not "1000K").
// Negative or non-finite input prints "-".
[[nodiscard]] std::string humanize(double value);

// `ngctl list`: the /v1/vips document as an ipvsadm -Ln style table. One line per
// VIP:port, one "  -> address:nodePort" line per backend, columns aligned, a trailing
// "!! ALL BACKENDS DOWN" marker on VIP:port lines whose backends all are down, and a
// footer with the non-zero drops. Ends with a newline.
[[nodiscard]] std::string formatVipTable(const nlohmann::json& vips);

// `ngctl show VIP`: one VIP object (an element of /v1/vips "vips") in detail: every
// counter exactly, rates, backend health with reason, detail, since and probe URL.
[[nodiscard]] std::string formatVipDetail(const nlohmann::json& vip);

// `ngctl stats`: generation, workers, every counter, non-zero drops.
[[nodiscard]] std::string formatStats(const nlohmann::json& stats);

// `ngctl stats --watch`: like formatStats with a per-second column computed from `prev`
// over `seconds` (gauges such as active_flows get no rate; a counter that went backwards,
// e.g. after a restart, prints "-"). Drops that are non-zero in `cur` are listed.
[[nodiscard]] std::string formatStatsDelta(const nlohmann::json& prev, const nlohmann::json& cur,
                                           double seconds);

// `ngctl apply`: the PUT /v1/loadbalancers response as one line,
// "shop/web: ingress 10.100.0.100 (ipMode Proxy)".
[[nodiscard]] std::string formatIngress(const nlohmann::json& response);

}  // namespace ng::ngctl
