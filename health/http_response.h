#pragma once
// Judges a health-check HTTP response from the bytes read so far (Kubernetes semantics,
// KUBERNETES.md "kube-proxy health endpoints"). Pure function over bytes, no I/O, so the
// prober, the unit tests and a fuzzer all drive the same code.
//
//   200 -> kOk, weight from `X-Load-Balancing-Endpoint-Weight` (a non-negative integer),
//          else from the JSON body's top-level `localEndpoints`, else none
//   503 -> kDrain (the node is alive and says "no new flows")
//   any other status -> kFail / kHttpStatus;  not HTTP, truncated, too big -> kBadResponse

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "health/probe_outcome.h"

namespace ng::health {

inline constexpr size_t kMaxHttpResponseBytes = 16 * 1024;

// `bytes`: everything received so far; `eof`: the peer closed (nothing more will come).
// Returns nullopt while more bytes are needed to decide; never nullopt when `eof` is true
// or bytes.size() > limit. Decides as early as it can: a non-200 status or a 200 with a
// valid weight header needs no body; garbage is rejected from its first bytes.
[[nodiscard]] std::optional<ProbeOutcome> judgeHttpResponse(std::string_view bytes, bool eof,
                                                            size_t limit = kMaxHttpResponseBytes);

// The request a probe sends (HTTP/1.1, Connection: close). `host` is "addr:port".
[[nodiscard]] std::string httpRequest(std::string_view path, std::string_view host);

}  // namespace ng::health
