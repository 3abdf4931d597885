// nodegate: the appliance's process. Parses the command line, loads the config, brings up
// DPDK (EAL, mempool, ports, worker lcores), publishes the first ForwardingSnapshot,
// serves the status API, and runs the control loop (signals: SIGINT/SIGTERM stop,
// SIGHUP reloads the config). This file and dataplane/dpdk/ are the only code that sees
// DPDK; everything it wires together is testable without it.

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "conf/config.h"
#include "control/compiler.h"
#include "control/status_api.h"
#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/worker.h"

namespace {

namespace dp = ng::dpdk;
using ng::conf::Config;

int checkConfig(const std::string& path) {
  auto cfg = ng::conf::loadConfig(path);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  std::cout << path << ": OK (" << cfg->nodes.size() << " nodes, " << cfg->services.size()
            << " services)\n";
  return 0;
}

// Boot-only settings (DESIGN.md sec. 5): a reload that changes them is applied for
// everything else and says that these need a restart.
bool bootSettingsEqual(const Config& a, const Config& b) {
  if (a.dataplane.eal != b.dataplane.eal || a.dataplane.workers != b.dataplane.workers ||
      a.dataplane.mbufs != b.dataplane.mbufs ||
      a.dataplane.ports.size() != b.dataplane.ports.size() ||
      a.dataplane.flows.capacity != b.dataplane.flows.capacity || a.api.listen != b.api.listen) {
    return false;
  }
  for (size_t i = 0; i < a.dataplane.ports.size(); ++i) {
    const auto& x = a.dataplane.ports[i];
    const auto& y = b.dataplane.ports[i];
    if (x.name != y.name || x.device != y.device || x.role != y.role || !(x.address == y.address) ||
        x.gateway != y.gateway || x.mtu != y.mtu) {
      return false;
    }
  }
  return true;
}

ng::fwd::PortInfo portInfo(const ng::conf::PortConfig& pc, const dp::Port& port) {
  return ng::fwd::PortInfo{
      .role = pc.role == ng::conf::PortRole::kExternal ? ng::fwd::PortRole::kExternal : ng::fwd::PortRole::kInternal,
      .mac = port.mac(),
      .address = pc.address.address,
      .prefix_len = pc.address.length,
      .gateway = pc.gateway.value_or(0),
      .mtu = pc.mtu};
}

int run(const std::string& config_path) {
  auto loaded = ng::conf::loadConfig(config_path);
  if (!loaded) {
    spdlog::error("{}", loaded.error().message);
    return 2;
  }
  Config cfg = std::move(*loaded);
  if (cfg.dataplane.workers.size() != 1) {
    // Several workers need RSS-aware SNAT port choice so replies reach the flow's owner.
    spdlog::error("{}: dataplane.workers: this version runs exactly one worker lcore", config_path);
    return 2;
  }

  // Signals are taken synchronously by the control loop (sigtimedwait); block them before
  // EAL creates its threads so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<std::string> devices;
  for (const auto& p : cfg.dataplane.ports) devices.push_back(p.device);
  dp::Eal eal(dp::ealArgs(cfg.dataplane.eal, cfg.dataplane.workers, devices));

  const auto n = static_cast<uint16_t>(cfg.dataplane.workers.size());
  uint16_t max_mtu = 0;
  for (const auto& p : cfg.dataplane.ports) max_mtu = std::max(max_mtu, p.mtu);
  const uint32_t mbufs = cfg.dataplane.mbufs != 0
                             ? cfg.dataplane.mbufs
                             : dp::Mempool::mbufCount({.ports = static_cast<uint32_t>(devices.size()),
                                                       .rx_queues_per_port = n, .tx_queues_per_port = n,
                                                       .lcores = n + 1u});
  dp::Mempool pool("ng_mbufs", mbufs, dp::Mempool::dataRoomFor(max_mtu));
  std::vector<dp::Port> ports;
  std::vector<ng::fwd::PortInfo> infos;
  for (const auto& pc : cfg.dataplane.ports) {
    ports.push_back(dp::Port::open(pc.device, n, n, pc.mtu, pool.get()));
    infos.push_back(portInfo(pc, ports.back()));
    spdlog::info("port {} ({}): {} {}/{} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", pc.name, pc.device,
                 pc.role == ng::conf::PortRole::kExternal ? "external" : "internal",
                 ng::conf::formatIpv4(pc.address.address), pc.address.length, infos.back().mac[0],
                 infos.back().mac[1], infos.back().mac[2], infos.back().mac[3], infos.back().mac[4],
                 infos.back().mac[5]);
  }

  dp::RcuPublisher publisher(n);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<ng::fwd::WorkerContext>> contexts;
  std::vector<std::unique_ptr<dp::Worker>> workers;
  for (uint16_t i = 0; i < n; ++i) {
    contexts.push_back(std::make_unique<ng::fwd::WorkerContext>(i, infos, cfg.dataplane.flows.capacity));
    std::vector<dp::QueueRef> queues;
    for (const dp::Port& port : ports) queues.push_back({.port_id = port.id(), .queue_id = i});
    workers.push_back(std::make_unique<dp::Worker>(*contexts[i], std::move(queues), publisher, i, stop, pool.get()));
  }

  ng::control::SnapshotCompiler compiler;
  uint64_t generation = 1;
  publisher.publish(compiler.compile(cfg, generation));
  {
    const auto& st = compiler.lastStats();
    spdlog::info("generation {}: {} service ports, {} Maglev tables", generation, st.service_ports, st.maglev_tables);
  }

  ng::control::StatusSources sources;
  // The API thread is no RCU reader, so it must not dereference a snapshot the control
  // thread may free; it reads this copy of the number instead.
  std::atomic<uint64_t> published{generation};
  sources.generation = [&published] { return published.load(std::memory_order_relaxed); };
  sources.ready = [&contexts] {
    for (const auto& c : contexts) {
      if (c->applied_generation.load(std::memory_order_relaxed) == ~uint64_t{0}) return false;
    }
    return true;
  };
  for (const auto& c : contexts) sources.workers.push_back(&c->counters);
  ng::control::StatusApi api(sources);
  api.start(cfg.api.listen);
  spdlog::info("status API on http://{}/ (/healthz /readyz /v1/stats)", cfg.api.listen);

  for (uint16_t i = 0; i < n; ++i) workers[i]->launchOn(cfg.dataplane.workers[i]);
  spdlog::info("nodegate running: {} worker(s), mode fullnat", n);

  const timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
  for (;;) {
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("signal {}: stopping", sig);
      break;
    }
    if (sig != SIGHUP) continue;
    auto next = ng::conf::loadConfig(config_path);
    if (!next) {
      spdlog::error("reload rejected, generation {} keeps serving: {}", generation, next.error().message);
      continue;
    }
    if (!bootSettingsEqual(cfg, *next)) {
      spdlog::warn("reload: boot-only settings (dataplane eal/workers/ports/mbufs/flows.capacity, api.listen) changed; "
                   "they take effect after a restart");
    }
    // Keep the running boot-only settings; take everything else from the new file.
    next->dataplane.eal = cfg.dataplane.eal;
    next->dataplane.workers = cfg.dataplane.workers;
    next->dataplane.ports = cfg.dataplane.ports;
    next->dataplane.flows.capacity = cfg.dataplane.flows.capacity;
    next->dataplane.mbufs = cfg.dataplane.mbufs;
    next->api.listen = cfg.api.listen;
    std::unique_ptr<ng::fwd::ForwardingSnapshot> snapshot;
    try {
      snapshot = compiler.compile(*next, generation + 1);
    } catch (const std::exception& e) {
      // Validation should have caught it; whatever slipped through must not stop the box.
      spdlog::error("reload rejected, generation {} keeps serving: {}", generation, e.what());
      continue;
    }
    cfg = std::move(*next);
    publisher.publish(std::move(snapshot));
    published.store(++generation, std::memory_order_relaxed);
    const auto& st = compiler.lastStats();
    spdlog::info("reload: generation {}: {} service ports, {} Maglev tables ({} rebuilt), {} slots moved", generation,
                 st.service_ports, st.maglev_tables, st.maglev_built, st.slots_moved);
  }

  stop.store(true);
  for (auto& w : workers) w->join();
  api.stop();
  spdlog::info("final counters: {}", ng::control::statsJson(sources).dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"NodeGate: Kubernetes LoadBalancer Services on DPDK"};
  std::string config_path;
  std::string check_path;
  app.add_option("-c,--config", config_path, "Config file to run with");
  app.add_option("--check-config", check_path, "Validate FILE and exit (0 = valid)");
  CLI11_PARSE(app, argc, argv);

  if (!check_path.empty()) return checkConfig(check_path);
  if (config_path.empty()) {
    std::cerr << "nodegate: --config FILE is required (or --check-config FILE); see --help\n";
    return 2;
  }
  try {
    return run(config_path);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
