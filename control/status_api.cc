#include "control/status_api.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ng::control {
namespace {

constexpr size_t kMaxRequestBody = 64 * 1024;

}  // namespace

nlohmann::json statsJson(const StatusSources& sources) {
  using fwd::WorkerCounters;
  struct Field {
    const char* name;
    fwd::Counter WorkerCounters::*member;
  };
  static constexpr Field kFields[] = {
      {"rx_packets", &WorkerCounters::rx_packets},   {"rx_bytes", &WorkerCounters::rx_bytes},
      {"tx_packets", &WorkerCounters::tx_packets},   {"tx_bytes", &WorkerCounters::tx_bytes},
      {"to_nodes", &WorkerCounters::to_nodes},       {"to_clients", &WorkerCounters::to_clients},
      {"new_flows", &WorkerCounters::new_flows},     {"expired_flows", &WorkerCounters::expired_flows},
      {"active_flows", &WorkerCounters::active_flows}, {"arp_replies", &WorkerCounters::arp_replies},
      {"arp_requests", &WorkerCounters::arp_requests},
      {"icmp_echo_replies", &WorkerCounters::icmp_echo_replies},
      {"busy_polls", &WorkerCounters::busy_polls},   {"idle_polls", &WorkerCounters::idle_polls},
  };
  nlohmann::json counters = nlohmann::json::object();
  for (const Field& f : kFields) {
    uint64_t sum = 0;
    for (const WorkerCounters* w : sources.workers) sum += (w->*f.member).get();
    counters[f.name] = sum;
  }
  nlohmann::json drops = nlohmann::json::object();
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    uint64_t sum = 0;
    for (const WorkerCounters* w : sources.workers) sum += w->drops[r].get();
    drops[fwd::dropReasonName(static_cast<fwd::DropReason>(r))] = sum;
  }
  return nlohmann::json{{"generation", sources.generation ? sources.generation() : 0},
                        {"workers", sources.workers.size()},
                        {"counters", std::move(counters)},
                        {"drops", std::move(drops)}};
}

StatusApi::StatusApi(StatusSources sources) : sources_(std::move(sources)) {}

StatusApi::~StatusApi() { stop(); }

void StatusApi::start(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("api.listen '" + listen + "': expected host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(listen.substr(colon + 1));

  server_ = std::make_unique<httplib::Server>();
  server_->set_payload_max_length(kMaxRequestBody);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = sources_.ready && sources_.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready: no generation forwarded yet\n", "text/plain");
  });
  server_->Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(statsJson(sources_).dump(2) + "\n", "application/json");
  });
  if (!server_->bind_to_port(host, port)) {
    throw std::runtime_error("api.listen '" + listen + "': cannot bind (in use or bad address)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void StatusApi::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ng::control
