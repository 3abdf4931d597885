#pragma once
// ngctl's command line: parses the arguments (CLI11), talks to the box (ApiClient) and
// prints (format.h). Everything the process would take from its surroundings comes in
// through CliEnvironment, so tests run the whole CLI in-process.
//
// Exit codes (also in `ngctl --help`):
//   0 success
//   1 the API answered with an error status or an unreadable response
//   2 NodeGate unreachable: connection refused, timeout, name resolution
//   3 usage error or invalid local input (options, URL, token file, JSON file)

#include <atomic>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace ng::ngctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitApiError = 1;
inline constexpr int kExitUnreachable = 2;
inline constexpr int kExitUsage = 3;

inline constexpr const char* kDefaultApi = "http://127.0.0.1:9080";

struct CliEnvironment {
  std::optional<std::string> api;        // NGCTL_API
  std::optional<std::string> tokenFile;  // NGCTL_TOKEN_FILE
  std::istream* in = nullptr;            // for `apply -f -`; nullptr: no stdin
  // `stats --watch` stops when this becomes true (main's SIGINT handler sets it).
  const std::atomic<bool>* stop = nullptr;
  // Called with true while `stats --watch` runs, false after: main lets Ctrl-C stop the
  // watch loop cleanly then, and kill the process at any other time.
  std::function<void(bool)> watching;
};

// `args` excludes the program name. Writes results to `out`, messages to `err`
// ("ngctl: ..."); returns one of the exit codes above. Never throws.
[[nodiscard]] int runNgctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                           const CliEnvironment& env);

}  // namespace ng::ngctl
