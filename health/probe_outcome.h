#pragma once
// The result of one probe, as a Prober reports it to the engine. Plain value, no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace ng::health {

enum class FailReason : uint8_t {
  kNone,         // the probe succeeded
  kRefused,      // TCP RST on connect (nothing listens)
  kTimeout,      // no complete answer within timeout_ms
  kUnreachable,  // host or network unreachable (ICMP / no route)
  kHttpStatus,   // an HTTP status other than 200 (503 is a drain, still this reason)
  kBadResponse,  // not HTTP, truncated, or larger than the response limit
  kTls,          // TLS handshake failed (includes certificate verification)
  kError,        // anything else (invalid address, local socket error, reset mid-read)
};

[[nodiscard]] const char* failReasonName(FailReason reason) noexcept;  // "none", "refused", ...

struct ProbeOutcome {
  enum Result : uint8_t {
    kOk,     // healthy; HTTP 200 or TCP connect
    kDrain,  // alive but asks for no new flows (HTTP 503, kube-proxy semantics)
    kFail,   // unhealthy
  };
  Result result = kFail;
  FailReason reason = FailReason::kError;
  int http_status = 0;             // 0 when no status line was read (TCP, errors)
  std::optional<uint32_t> weight;  // reported by a 200 (header or localEndpoints); else none
  std::string detail;              // human text: "HTTP 200", "connection refused", ...

  [[nodiscard]] static ProbeOutcome ok(std::string detail, int http_status = 0,
                                       std::optional<uint32_t> weight = std::nullopt) {
    return {kOk, FailReason::kNone, http_status, weight, std::move(detail)};
  }
  [[nodiscard]] static ProbeOutcome fail(FailReason reason, std::string detail,
                                         int http_status = 0) {
    return {kFail, reason, http_status, std::nullopt, std::move(detail)};
  }
  [[nodiscard]] static ProbeOutcome drain(std::string detail, int http_status = 503) {
    return {kDrain, FailReason::kHttpStatus, http_status, std::nullopt, std::move(detail)};
  }
};

}  // namespace ng::health
