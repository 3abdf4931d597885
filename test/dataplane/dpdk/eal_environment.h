#pragma once
// One EAL per DPDK test binary (EAL initialises once per process), as a gtest global
// Environment. Started in SetUp, not at static initialisation: gtest_discover_tests runs
// each binary with --gtest_list_tests, which must not start EAL.
//
// Always --no-huge -m 256 --no-pci --no-shconf: DPDK 22.11 refuses --in-memory with
// --no-huge (--no-huge implies legacy memory), and --no-shconf creates no shared files
// and takes no lock, so the binaries (ctest runs each test in its own process) run side
// by side all the same.

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/dpdk/eal.h"

namespace ng::test {

class EalEnvironment : public ::testing::Environment {
 public:
  // `prepare`, when given, runs first (before EAL starts its threads, which inherit
  // what it sets up, a network namespace say) and returns why the suite cannot run
  // here, or "" to go on; skipReason() then tells the tests.
  EalEnvironment(std::string file_prefix, std::vector<unsigned> worker_lcores,
                 std::vector<std::string> extra_args = {}, std::function<std::string()> prepare = {})
      : file_prefix_(std::move(file_prefix)),
        worker_lcores_(std::move(worker_lcores)),
        extra_args_(std::move(extra_args)),
        prepare_(std::move(prepare)) {}

  void SetUp() override {
    if (prepare_) {
      skip_ = prepare_();
      if (!skip_.empty()) return;
    }
    std::vector<std::string> args = {"--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                                     "--file-prefix=" + file_prefix_, "--log-level=*:error"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    try {
      eal_ = std::make_unique<dpdk::Eal>(dpdk::ealArgs(args, worker_lcores_, {}));
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
  void TearDown() override { eal_.reset(); }

  // Why the suite is skipped ("" = it runs).
  [[nodiscard]] const std::string& skipReason() const noexcept { return skip_; }

 private:
  std::string file_prefix_;
  std::vector<unsigned> worker_lcores_;
  std::vector<std::string> extra_args_;
  std::function<std::string()> prepare_;
  std::string skip_;
  std::unique_ptr<dpdk::Eal> eal_;
};

// Registers the binary's EalEnvironment with gtest (which owns it) and returns it.
inline EalEnvironment* addEalEnvironment(EalEnvironment* env) {
  ::testing::AddGlobalTestEnvironment(env);
  return env;
}

}  // namespace ng::test
