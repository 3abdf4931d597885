#include "dataplane/dpdk/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace ng::dpdk {
namespace {

// rte_eal_init may run once per process; a second attempt fails with EALREADY or worse
// (after rte_eal_cleanup), so we refuse it with a clear message instead.
std::atomic<bool> g_eal_constructed{false};

int logType() noexcept {
  // Registered on first use; rte_log_register_type_and_pick_level applies any matching
  // --log-level pattern EAL has already parsed.
  static const int type = [] {
    const int t = rte_log_register_type_and_pick_level("nodegate.dpdk", RTE_LOG_INFO);
    return t < 0 ? static_cast<int>(RTE_LOGTYPE_EAL) : t;
  }();
  return type;
}

std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Lcore ids of an EAL --lcores map: elements separated by commas outside parentheses,
// each `LCORES[@CPUS]`, LCORES a number, a range a-b or a parenthesised list of those.
std::vector<unsigned> lcoresOfMap(std::string_view map) {
  std::vector<unsigned> ids;
  auto addSet = [&](std::string_view set) {
    if (!set.empty() && set.front() == '(' && set.back() == ')') set = set.substr(1, set.size() - 2);
    size_t pos = 0;
    while (pos <= set.size()) {
      const size_t comma = std::min(set.find(',', pos), set.size());
      const std::string_view item = set.substr(pos, comma - pos);
      const size_t dash = item.find('-');
      try {
        const unsigned first = static_cast<unsigned>(std::stoul(std::string(item.substr(0, dash))));
        const unsigned last =
            dash == std::string_view::npos ? first : static_cast<unsigned>(std::stoul(std::string(item.substr(dash + 1))));
        for (unsigned i = first; i <= last && i < 1024; ++i) ids.push_back(i);
      } catch (const std::exception&) {
        throw std::invalid_argument("--lcores map '" + std::string(map) + "': cannot read '" + std::string(item) + "'");
      }
      pos = comma + 1;
    }
  };
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i <= map.size(); ++i) {
    const char c = i < map.size() ? map[i] : ',';
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      const std::string_view element = map.substr(begin, i - begin);
      int d = 0;
      size_t at = std::string_view::npos;
      for (size_t j = 0; j < element.size(); ++j) {
        if (element[j] == '(') ++d;
        if (element[j] == ')') --d;
        if (element[j] == '@' && d == 0) at = j;
      }
      addSet(element.substr(0, at));
      begin = i + 1;
    }
  }
  return ids;
}

}  // namespace

void log(uint32_t level, const char* format, ...) noexcept {
  char message[512];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(message, sizeof(message), format, ap);
  va_end(ap);
  rte_log(level, static_cast<uint32_t>(logType()), "NODEGATE: %s\n", message);
}

std::vector<std::string> ealArgs(const std::vector<std::string>& extra,
                                 const std::vector<unsigned>& worker_lcores,
                                 const std::vector<std::string>& devices) {
  std::optional<std::string> lcore_map;
  for (size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    if (startsWith(a, "--lcores")) {
      if (a == "--lcores" && i + 1 < extra.size()) {
        lcore_map = extra[i + 1];
      } else if (startsWith(a, "--lcores=")) {
        lcore_map = a.substr(std::string_view("--lcores=").size());
      } else {
        throw std::invalid_argument("EAL argument '" + a + "': want --lcores=MAP");
      }
      continue;
    }
    // -l, -l0-3, -c, -c0x3
    if (startsWith(a, "-l") || startsWith(a, "-c")) {
      throw std::invalid_argument("EAL argument '" + a +
                                  "' chooses lcores; set them with the worker list (or map them with --lcores)");
    }
  }
  std::vector<unsigned> seen;
  std::string lcores = "0";  // main lcore: control thread
  for (unsigned lcore : worker_lcores) {
    if (lcore == 0) {
      throw std::invalid_argument("lcore 0 is the control lcore and cannot be a worker");
    }
    if (std::find(seen.begin(), seen.end(), lcore) != seen.end()) {
      throw std::invalid_argument("worker lcore " + std::to_string(lcore) + " listed twice");
    }
    seen.push_back(lcore);
    lcores += ',' + std::to_string(lcore);
  }

  std::vector<std::string> args;
  if (lcore_map) {
    const std::vector<unsigned> mapped = lcoresOfMap(*lcore_map);
    seen.push_back(0);
    for (unsigned lcore : seen) {
      if (std::find(mapped.begin(), mapped.end(), lcore) == mapped.end()) {
        throw std::invalid_argument("--lcores=" + *lcore_map + " does not map lcore " + std::to_string(lcore) +
                                    (lcore == 0 ? " (the control lcore)" : " (a worker)"));
      }
    }
  } else {
    args = {"-l", lcores};
  }
  for (const auto& dev : devices) {
    if (startsWith(dev, "net_")) {
      args.push_back("--vdev=" + dev);
    } else {
      args.push_back("-a");
      args.push_back(dev);
    }
  }
  args.insert(args.end(), extra.begin(), extra.end());
  const bool has_log_level = std::any_of(extra.begin(), extra.end(), [](const std::string& a) {
    return startsWith(a, "--log-level");
  });
  if (!has_log_level) args.emplace_back("--log-level=lib.eal:notice");
  return args;
}

Eal::Eal(std::vector<std::string> args) : args_(std::move(args)) {
  if (g_eal_constructed.exchange(true)) {
    throw std::runtime_error("EAL already initialised in this process (one Eal per process)");
  }
  argv_storage_.reserve(args_.size() + 1);
  argv_storage_.emplace_back("nodegate");
  argv_storage_.insert(argv_storage_.end(), args_.begin(), args_.end());
  for (auto& s : argv_storage_) argv_.push_back(s.data());
  argv_.push_back(nullptr);

  const int ret = rte_eal_init(static_cast<int>(argv_storage_.size()), argv_.data());
  if (ret < 0) {
    const int err = rte_errno;
    // Not resetting g_eal_constructed: EAL may be half initialised and cannot be retried.
    throw std::runtime_error("rte_eal_init failed: " + std::string(rte_strerror(err)) +
                             " (args: " + join(args_) + ")");
  }
  log(RTE_LOG_INFO, "EAL up: %s", join(args_).c_str());
}

Eal::~Eal() {
  const int ret = rte_eal_cleanup();
  if (ret < 0) {
    std::fprintf(stderr, "NODEGATE: rte_eal_cleanup failed: %s\n", rte_strerror(-ret));
  }
}

}  // namespace ng::dpdk
