// ngctl: the operator's command line for a NodeGate box (docs/ngctl.md). All of the work
// is in cli.cc so tests run it in-process; this file only wires the process to it:
// arguments, environment, standard streams and Ctrl-C.

#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "control/ngctl/cli.h"

namespace {

std::atomic<bool> gStop{false};
std::atomic<bool> gWatching{false};

// During `stats --watch`, Ctrl-C ends the loop (the command returns normally); at any
// other time, and on a second Ctrl-C, it kills the process as usual.
extern "C" void onSigint(int sig) {
  if (gWatching.load() && !gStop.load()) {
    gStop.store(true);
    return;
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

}  // namespace

int main(int argc, char** argv) {
  static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");
  struct sigaction sa {};
  sa.sa_handler = onSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  const ng::ngctl::CliEnvironment environment{
      .api = env("NGCTL_API"),
      .tokenFile = env("NGCTL_TOKEN_FILE"),
      .in = &std::cin,
      .stop = &gStop,
      .watching = [](bool on) { gWatching.store(on); },
  };
  return ng::ngctl::runNgctl(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr,
                             environment);
}
