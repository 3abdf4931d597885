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
#include <cstdint>
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

// Where a response ends on the connection (RFC 9112 section 6.3), so that a kept-alive
// connection can carry the next probe. Independent of the verdict: judgeHttpResponse()
// may decide from the head alone, this says whether the rest has arrived too.
struct HttpResponseEnd {
  enum Kind : uint8_t {
    kNeedMore,  // the head, or the body its Content-Length / chunks announce, is incomplete
    kAt,        // the response is exactly `length` bytes (head + body)
    kAtClose,   // no length (or a transfer coding other than chunked): ends when the
                // server closes, so the connection cannot carry another request
    kInvalid,   // not a well-formed HTTP/1.x head or chunked body
  };
  Kind kind = kNeedMore;
  size_t length = 0;        // kAt only
  bool keep_alive = false;  // kAt only: HTTP/1.1 without "Connection: close", or HTTP/1.0
                            // with "Connection: keep-alive" (RFC 9112 section 9.3)
};

// `bytes`: everything received since the request was sent. 1xx, 204 and 304 responses
// have no body; a chunked body ends after its trailer section.
[[nodiscard]] HttpResponseEnd findHttpResponseEnd(std::string_view bytes) noexcept;

// Both of the above from one parse of the head: what the prober asks after every read.
// Equal to {judgeHttpResponse(bytes, eof, limit), findHttpResponseEnd(bytes)}.
struct HttpExchange {
  std::optional<ProbeOutcome> verdict;
  HttpResponseEnd end;
};
[[nodiscard]] HttpExchange judgeHttpExchange(std::string_view bytes, bool eof,
                                             size_t limit = kMaxHttpResponseBytes);

enum class HttpConnection : uint8_t {
  kClose,      // one request per connection (the server closes after answering)
  kKeepAlive,  // ask the server to keep the connection for the next probe
};

// The request a probe sends: an HTTP/1.1 GET with "Connection: close" or
// "Connection: keep-alive". `host` is "addr:port".
[[nodiscard]] std::string httpRequest(std::string_view path, std::string_view host,
                                      HttpConnection connection = HttpConnection::kClose);

}  // namespace ng::health
