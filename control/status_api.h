#pragma once
// The box's HTTP status API (cpp-httplib), served from its own thread, never a worker.
//   GET /healthz   200 "ok" while the process runs
//   GET /readyz    200 once the data plane forwards with the first generation, else 503
//   GET /v1/stats  counters summed over workers, drops by reason, generation (JSON)
// Counters are read with relaxed loads while workers write them: a reader may see values
// one burst old, never torn ones.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dataplane/fwd/counters.h"

namespace httplib {
class Server;
}

namespace ng::control {

struct StatusSources {
  std::function<uint64_t()> generation;  // currently published generation
  std::function<bool()> ready;
  std::vector<const fwd::WorkerCounters*> workers;
};

// Sums per-worker counters into the /v1/stats JSON document.
[[nodiscard]] nlohmann::json statsJson(const StatusSources& sources);

class StatusApi {
 public:
  explicit StatusApi(StatusSources sources);
  ~StatusApi();
  StatusApi(const StatusApi&) = delete;
  StatusApi& operator=(const StatusApi&) = delete;

  // Binds `listen` ("host:port") and serves from a background thread. Throws
  // std::runtime_error naming the address when it cannot bind (start-up only).
  void start(const std::string& listen);
  void stop();

 private:
  StatusSources sources_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace ng::control
