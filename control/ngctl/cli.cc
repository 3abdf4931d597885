#include "control/ngctl/cli.h"

#include <arpa/inet.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/ngctl/api_client.h"
#include "control/ngctl/format.h"

namespace ng::ngctl {
namespace {

using nlohmann::json;

constexpr const char* kFooter = R"(Exit codes:
  0  success
  1  the API answered with an error (HTTP 4xx/5xx) or an unreadable response
  2  NodeGate unreachable (connection refused, timeout, name resolution)
  3  usage error or invalid local input (options, URL, token file, JSON file)
Environment: NGCTL_API (default for --api), NGCTL_TOKEN_FILE (default for --token-file).)";

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t first = s.find_first_not_of(ws);
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

std::string utcNow() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

// Kubernetes object names are DNS-1123 subdomains at most; checking here keeps a stray
// '/' or '?' from turning into a different URL.
bool isKubernetesName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  const auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'; };
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return std::all_of(s.begin(), s.end(), ok) && alnum(s.front()) && alnum(s.back());
}

bool isIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 2, column 1: ..." without
// the bracketed id, which means nothing to an operator.
std::string jsonErrorText(const std::exception& e) {
  std::string s = e.what();
  if (s.starts_with("[json.exception.")) {
    if (const size_t close = s.find("] "); close != std::string::npos) s.erase(0, close + 2);
  }
  return s;
}

struct Session {
  std::ostream& out;
  std::ostream& err;
  ApiClient& client;
  std::string api;        // as the user gave it, for messages
  std::string tokenFile;  // "" when no token is sent
};

// Prints why a request failed and returns the exit code. Only for HTTP statuses >= 300.
int reportHttpError(Session& s, std::string_view method, const std::string& path, const Reply& reply) {
  std::string apiError;
  try {
    const json body = json::parse(reply.body);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) apiError = body["error"];
  } catch (const json::exception&) {
    // Not the API's JSON error shape (a proxy in between?): show the start of the body.
    apiError = trim(reply.body.substr(0, std::min<size_t>(reply.body.find('\n'), 200)));
  }
  s.err << "ngctl: " << method << " " << path << ": HTTP " << reply.status;
  if (const char* phrase = reasonPhrase(reply.status); *phrase != '\0') s.err << " " << phrase;
  if (!apiError.empty()) s.err << ": " << apiError;
  s.err << "\n";
  if (reply.status == 401) {
    if (s.tokenFile.empty()) {
      s.err << "ngctl: hint: the box requires a bearer token; pass --token-file FILE or set "
               "NGCTL_TOKEN_FILE\n";
    } else {
      s.err << "ngctl: hint: the box rejected the token from " << s.tokenFile
            << "; it must match the file named by api.token_file on the box\n";
    }
  } else if (reply.status == 413) {
    s.err << "ngctl: hint: request too large; the box limits request bodies (64 KiB by default)\n";
  }
  return kExitApiError;
}

int reportUnreachable(Session& s, const TransportError& e) {
  s.err << "ngctl: cannot reach NodeGate at " << s.api << ": " << e.reason << "\n";
  return kExitUnreachable;
}

// GET path and parse the JSON answer; on failure prints and returns the exit code.
std::expected<json, int> getJson(Session& s, const std::string& path) {
  auto reply = s.client.get(path);
  if (!reply) return std::unexpected(reportUnreachable(s, reply.error()));
  if (reply->status < 200 || reply->status >= 300) {
    return std::unexpected(reportHttpError(s, "GET", path, *reply));
  }
  try {
    return json::parse(reply->body);
  } catch (const json::exception& e) {
    s.err << "ngctl: GET " << path << ": the response is not JSON: " << jsonErrorText(e) << "\n";
    return std::unexpected(kExitApiError);
  }
}

int cmdList(Session& s) {
  auto doc = getJson(s, "/v1/vips");
  if (!doc) return doc.error();
  s.out << formatVipTable(*doc);
  return kExitOk;
}

int cmdShow(Session& s, const std::string& vip) {
  if (!isIpLiteral(vip)) {
    s.err << "ngctl: show: '" << vip << "' is not an IPv4 or IPv6 address\n";
    return kExitUsage;
  }
  auto doc = getJson(s, "/v1/vips/" + vip);
  if (!doc) return doc.error();
  s.out << formatVipDetail(*doc);
  return kExitOk;
}

struct WatchOptions {
  bool watch = false;
  double interval = 2.0;
  int count = 0;  // 0: until stopped
};

bool stopped(const CliEnvironment& env) { return env.stop != nullptr && env.stop->load(); }

int cmdStats(Session& s, const WatchOptions& w, const CliEnvironment& env) {
  if (!w.watch) {
    auto doc = getJson(s, "/v1/stats");
    if (!doc) return doc.error();
    s.out << formatStats(*doc);
    return kExitOk;
  }
  if (env.watching) env.watching(true);
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(w.interval));
  std::optional<json> prev;
  Clock::time_point prevAt;
  int rc = kExitOk;
  Clock::time_point next = Clock::now();
  for (int i = 0; (w.count == 0 || i < w.count) && !stopped(env); ++i) {
    // Sleep in short slices so Ctrl-C ends the watch at once.
    while (Clock::now() < next && !stopped(env)) {
      std::this_thread::sleep_for(std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50)));
    }
    if (stopped(env)) break;
    next += interval;
    if (i > 0) s.out << "\n";
    s.out << "--- " << utcNow() << " ---\n";
    auto doc = getJson(s, "/v1/stats");
    const Clock::time_point at = Clock::now();
    if (next < at) next = at + interval;  // a slow answer delays the schedule, no catch-up burst
    if (!doc) {
      // Keep watching through a restart of the box; the rates restart from scratch.
      rc = doc.error();
      prev.reset();
      s.out.flush();
      continue;
    }
    rc = kExitOk;
    if (prev) {
      s.out << formatStatsDelta(*prev, *doc, std::chrono::duration<double>(at - prevAt).count());
    } else {
      s.out << formatStats(*doc);
    }
    s.out.flush();
    prev = std::move(*doc);
    prevAt = at;
  }
  if (env.watching) env.watching(false);
  return rc;
}

int cmdApply(Session& s, const std::string& file, const CliEnvironment& env) {
  std::string text;
  if (file == "-") {
    if (env.in == nullptr) {
      s.err << "ngctl: apply: no standard input to read\n";
      return kExitUsage;
    }
    std::ostringstream buf;
    buf << env.in->rdbuf();
    text = buf.str();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      s.err << "ngctl: cannot read " << file << ": " << std::strerror(errno) << "\n";
      return kExitUsage;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  const std::string label = file == "-" ? "<stdin>" : file;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    s.err << "ngctl: " << label << ": invalid JSON: " << jsonErrorText(e) << "\n";
    return kExitUsage;
  }
  if (!doc.is_object()) {
    s.err << "ngctl: " << label << ": expected a JSON object with \"namespace\" and \"name\"\n";
    return kExitUsage;
  }
  for (const char* key : {"namespace", "name"}) {
    if (!doc.contains(key) || !doc[key].is_string()) {
      s.err << "ngctl: " << label << ": missing string field \"" << key << "\"\n";
      return kExitUsage;
    }
    if (!isKubernetesName(doc[key].get<std::string>())) {
      s.err << "ngctl: " << label << ": \"" << key << "\" '" << doc[key].get<std::string>()
            << "' is not a Kubernetes name (lower-case letters, digits, '-', '.')\n";
      return kExitUsage;
    }
  }
  const std::string ns = doc["namespace"];
  const std::string name = doc["name"];
  const std::string path = "/v1/loadbalancers/" + ns + "/" + name;
  auto reply = s.client.put(path, doc.dump());
  if (!reply) return reportUnreachable(s, reply.error());
  if (reply->status < 200 || reply->status >= 300) return reportHttpError(s, "PUT", path, *reply);
  try {
    s.out << formatIngress(json::parse(reply->body));
  } catch (const json::exception&) {
    s.out << ns << "/" << name << ": applied (the box sent no JSON status)\n";
  }
  return kExitOk;
}

int cmdDelete(Session& s, const std::string& ref) {
  const size_t slash = ref.find('/');
  const std::string ns = ref.substr(0, slash);
  const std::string name = slash == std::string::npos ? "" : ref.substr(slash + 1);
  if (!isKubernetesName(ns) || !isKubernetesName(name)) {
    s.err << "ngctl: delete: expected NAMESPACE/NAME (lower-case letters, digits, '-', '.'), got '" << ref
          << "'\n";
    return kExitUsage;
  }
  const std::string path = "/v1/loadbalancers/" + ns + "/" + name;
  auto reply = s.client.del(path);
  if (!reply) return reportUnreachable(s, reply.error());
  if (reply->status < 200 || reply->status >= 300) return reportHttpError(s, "DELETE", path, *reply);
  s.out << ns << "/" << name << ": deleted\n";
  return kExitOk;
}

}  // namespace

int runNgctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             const CliEnvironment& env) try {
  CLI::App app{"ngctl: inspect and drive a NodeGate load balancer through its HTTP API", "ngctl"};
  app.footer(kFooter);
  app.require_subcommand(0, 1);  // none: told below, so an unknown command is named

  std::string api = env.api.value_or(kDefaultApi);
  std::string tokenFile = env.tokenFile.value_or("");
  double timeout = 5;
  app.add_option("--api", api, "NodeGate API base URL (env NGCTL_API)")
      ->type_name("URL")
      ->capture_default_str();
  app.add_option("--token-file", tokenFile,
                 "file holding the bearer token for mutating calls (env NGCTL_TOKEN_FILE)")
      ->type_name("FILE");
  std::string caFile;
  bool insecure = false;
  app.add_option("--ca-file", caFile, "https: verify the box's certificate against this PEM file")
      ->type_name("FILE");
  app.add_flag("--insecure", insecure, "https: do not verify the box's certificate");
  app.add_option("--timeout", timeout, "seconds to wait for connect and for the answer")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();

  CLI::App* list = app.add_subcommand("list", "VIP table, like ipvsadm -Ln");
  std::string vip;
  CLI::App* show = app.add_subcommand("show", "one VIP in detail: counters, health, probes");
  show->add_option("VIP", vip, "the VIP address")->required();
  WatchOptions watch;
  CLI::App* stats = app.add_subcommand("stats", "box counters and non-zero drops");
  CLI::Option* watchFlag = stats->add_flag("--watch", watch.watch, "repeat with per-second rates until Ctrl-C");
  stats->add_option("--interval", watch.interval, "seconds between samples with --watch")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.01, 86400.0))
      ->needs(watchFlag)
      ->capture_default_str();
  stats->add_option("--count", watch.count, "stop after N samples with --watch (0: never)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->needs(watchFlag);
  std::string file;
  CLI::App* apply = app.add_subcommand("apply", "PUT a load balancer document (needs namespace and name)");
  apply->add_option("-f,--file", file, "JSON file, '-' for standard input")->type_name("FILE")->required();
  std::string ref;
  CLI::App* remove = app.add_subcommand("delete", "DELETE a load balancer");
  remove->add_option("NAMESPACE/NAME", ref, "the load balancer to delete")->required();

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e, out, err);  // --help
    err << "ngctl: " << e.what() << "\nRun 'ngctl --help' for usage.\n";
    return kExitUsage;
  }

  auto url = parseApiUrl(api);
  if (!url) {
    err << "ngctl: --api: " << url.error() << "\n";
    return kExitUsage;
  }
  std::string token;
  if (!tokenFile.empty()) {
    std::ifstream in(tokenFile, std::ios::binary);
    if (!in) {
      err << "ngctl: cannot read token file " << tokenFile << ": " << std::strerror(errno) << "\n";
      return kExitUsage;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    token = trim(buf.str());
    if (token.empty()) {
      err << "ngctl: token file " << tokenFile << " is empty\n";
      return kExitUsage;
    }
  }
  ApiClient client(ClientOptions{
      .url = *url,
      .token = token,
      .timeout = std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(timeout * 1000))),
      .ca_file = caFile,
      .insecure = insecure,
  });
  Session session{.out = out, .err = err, .client = client, .api = api, .tokenFile = tokenFile};

  if (list->parsed()) return cmdList(session);
  if (show->parsed()) return cmdShow(session, vip);
  if (stats->parsed()) return cmdStats(session, watch, env);
  if (apply->parsed()) return cmdApply(session, file, env);
  if (remove->parsed()) return cmdDelete(session, ref);
  err << "ngctl: no command given; see ngctl --help\n";
  return kExitUsage;
} catch (const std::exception& e) {
  // Nothing above is expected to throw; if it does, say so instead of aborting.
  err << "ngctl: internal error: " << e.what() << "\n";
  return kExitApiError;
}

}  // namespace ng::ngctl
