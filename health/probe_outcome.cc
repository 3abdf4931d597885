#include "health/probe_outcome.h"

namespace ng::health {

const char* failReasonName(FailReason reason) noexcept {
  switch (reason) {
    case FailReason::kNone: return "none";
    case FailReason::kRefused: return "refused";
    case FailReason::kTimeout: return "timeout";
    case FailReason::kUnreachable: return "unreachable";
    case FailReason::kHttpStatus: return "http_status";
    case FailReason::kBadResponse: return "bad_response";
    case FailReason::kTls: return "tls";
    case FailReason::kError: return "error";
  }
  return "?";
}

}  // namespace ng::health
