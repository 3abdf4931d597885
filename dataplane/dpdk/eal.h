#pragma once
// DPDK Environment Abstraction Layer: start-up, shutdown and the EAL argument list.
//
// Threading: construct and destroy on the process's main thread (it becomes lcore 0, the
// control lcore). One Eal per process, for the whole process: rte_eal_init cannot run a
// second time, not even after rte_eal_cleanup.
// Failure: the constructor throws std::runtime_error (start-up only); nothing here calls
// rte_exit.
// Note (DPDK 22.11): --in-memory is refused together with --no-huge (which implies legacy
// memory); to run several --no-huge processes side by side use --no-shconf (no shared
// files, no lock) or a distinct --file-prefix each.
// Lifetime: every other DPDK object (Mempool, Port, RcuPublisher, Worker) must be
// destroyed before the Eal, so declare the Eal first.

#include <cstdarg>
#include <cstdint>
#include <string>
#include <vector>

namespace ng::dpdk {

// Builds the EAL argument list (without argv[0]):
//   -l 0,<worker_lcores...>         lcore 0 is the main (control) lcore;
//   --vdev=<dev>                    for each device starting with "net_" (virtual device);
//   -a <dev>                        for any other device (PCI address[,devargs]);
//   <extra...>                      operator-supplied arguments, passed through;
//   --log-level=lib.eal:notice      unless `extra` sets --log-level: EAL's INFO chatter
//                                   off, warnings and errors still printed.
// Throws std::invalid_argument when a worker lcore is 0 or repeated, or when `extra`
// already chooses lcores with -l or -c: the lcore list comes from `worker_lcores`.
// Exception: `extra` may map lcores to CPUs with --lcores (as "--lcores=MAP" or
// "--lcores", "MAP"; e.g. "--lcores=0@0,1@1,2@1" runs workers 1 and 2 on CPU 1 of a
// two-CPU machine). Then no -l is emitted, and MAP must name lcore 0 and every worker
// lcore (std::invalid_argument otherwise).
[[nodiscard]] std::vector<std::string> ealArgs(const std::vector<std::string>& extra,
                                               const std::vector<unsigned>& worker_lcores,
                                               const std::vector<std::string>& devices);

class Eal {
 public:
  // Calls rte_eal_init with argv = {"nodegate", args...}. Throws std::runtime_error with
  // rte_strerror(rte_errno) and the arguments when EAL refuses to start, or when an Eal
  // was already constructed in this process.
  explicit Eal(std::vector<std::string> args);
  // rte_eal_cleanup. Worker lcores must have returned (rte_eal_mp_wait_lcore) before.
  ~Eal();
  Eal(const Eal&) = delete;
  Eal& operator=(const Eal&) = delete;

  [[nodiscard]] const std::vector<std::string>& args() const noexcept { return args_; }

 private:
  std::vector<std::string> args_;
  // argv handed to rte_eal_init; EAL may permute it, so it is kept alive with its strings.
  std::vector<std::string> argv_storage_;
  std::vector<char*> argv_;
};

// Start-up/shutdown logging of this library through DPDK's logger (log type
// "nodegate.dpdk", so `--log-level=nodegate.dpdk:debug` works). Never on the hot path.
// `level` is an RTE_LOG_* value.
void log(uint32_t level, const char* format, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace ng::dpdk
