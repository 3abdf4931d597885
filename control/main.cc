// nodegate: the appliance's process. Parses the command line, loads the config, brings up
// DPDK (EAL, mempool, ports, worker lcores), publishes the first ForwardingSnapshot,
// serves the status API, and runs the control loop (signals: SIGINT/SIGTERM stop,
// SIGHUP reloads the config). This file and dataplane/dpdk/ are the only code that sees
// DPDK; everything it wires together is testable without it.

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <ctime>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "conf/config.h"
#include "control/command_queue.h"
#include "control/control_plane.h"
#include "control/health_glue.h"
#include "control/kube_source.h"
#include "control/status_model.h"
#include "control/status_api.h"
#include "dataplane/dpdk/eal.h"
#include "dataplane/dpdk/kernel_iface.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/dpdk/ring.h"
#include "dataplane/dpdk/worker.h"
#include "dataplane/lb/reply_steering.h"

#include <rte_ethdev.h>

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

ng::fwd::PortInfo portInfo(const ng::conf::PortConfig& pc, const dp::Port& port, bool exception_path) {
  return ng::fwd::PortInfo{
      .role = pc.role == ng::conf::PortRole::kExternal ? ng::fwd::PortRole::kExternal : ng::fwd::PortRole::kInternal,
      .mac = port.mac(),
      .address = pc.address.address,
      .prefix_len = pc.address.length,
      .gateway = pc.gateway.value_or(0),
      .mtu = pc.mtu,
      .exception_path = exception_path,
      .address6 = pc.address6 ? ng::control::toIp6(pc.address6->address) : ng::fwd::Ip6{},
      .prefix_len6 = pc.address6 ? pc.address6->length : uint8_t{64},
      .gateway6 = pc.gateway6 ? ng::control::toIp6(*pc.gateway6) : ng::fwd::Ip6{}};
}

// SNAT ports when the exception path shares a SNAT address with the kernel (the SNAT
// address is a port's own address, as in the default config): a node's packet to that
// address is a full-NAT reply when its port is one SNAT hands out, else the kernel's
// (fwd/exception.h). So SNAT must never hand out a port the kernel may use as a source
// port for its own connections (health probes, BGP): its ephemeral range, read from this
// network namespace. SNAT keeps the larger of the two ranges around it (below the
// default 32768-60999: 1024-32767). Returns nullopt when no SNAT address is a port's
// address (then SNAT keeps every port) and throws when nothing is left.
std::optional<std::pair<uint16_t, uint16_t>> snatRangeBesideKernel(const Config& cfg) {
  bool shared = false;
  for (const ng::conf::IpAddress& snat : cfg.dataplane.snat.of(ng::conf::IpFamily::kIpv4)) {
    for (const auto& p : cfg.dataplane.ports) shared = shared || p.address.address == snat.v4();
  }
  if (!shared) return std::nullopt;
  unsigned lo = 32768, hi = 60999;  // Linux's default, if the file cannot be read
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u %u", &lo, &hi) != 2) {
      lo = 32768;
      hi = 60999;
    }
    std::fclose(f);
  }
  const unsigned kMin = ng::lb::SnatAllocator::kPortMin;
  const unsigned below = lo > kMin ? lo - kMin : 0;    // kMin .. lo-1
  const unsigned above = hi < 65535 ? 65535 - hi : 0;  // hi+1 .. 65535
  if (below == 0 && above == 0) {
    throw std::runtime_error("exception path: the kernel's ephemeral ports (net.ipv4.ip_local_port_range " +
                             std::to_string(lo) + "-" + std::to_string(hi) +
                             ") leave SNAT no ports on the shared address; narrow the range or use other "
                             "dataplane.snat.addresses");
  }
  if (below >= above) return std::pair{static_cast<uint16_t>(kMin), static_cast<uint16_t>(lo - 1)};
  return std::pair{static_cast<uint16_t>(hi + 1), uint16_t{65535}};
}

// Frames one worker may have waiting for another; a full ring drops and counts
// (redirect_full). On a device without predictable RSS about half of a busy flow's
// frames take the ring, at the sender's RX rate, and the owner may be off its CPU for a
// while (workers sharing CPUs): sized like the RX descriptors of both ports together,
// twice over. (1024 dropped 171 of 43k frames of a 50 MiB download on a two-CPU box.)
constexpr uint32_t kRedirectRingSize = 4096;

// How full-NAT replies find their worker (lb/reply_steering.h): by the internal port's
// RSS when the device reports a key and RETA and hashes TCP and UDP with ports (then SNAT
// port choice puts replies on the right queue), else by SNAT port (and client flows by
// flow hash) through the rings.
ng::lb::ReplySteering replySteering(const Config& cfg, const std::vector<dp::Port>& ports, uint16_t workers) {
  if (workers == 1) return {};
  for (size_t i = 0; i < ports.size(); ++i) {
    if (cfg.dataplane.ports[i].role != ng::conf::PortRole::kInternal) continue;
    const auto& layout = ports[i].rssLayout();
    constexpr uint64_t kNeed = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
    if (layout && (layout->hash_functions & kNeed) == kNeed) {
      std::string why;
      auto rss = ng::lb::ReplySteering::byRss(workers, layout->key, layout->reta, &why);
      if (rss) {
        spdlog::info("{} workers: replies steered by RSS on port {} (RETA of {}); SNAT ports chosen per worker",
                     workers, cfg.dataplane.ports[i].name, layout->reta.size());
        return std::move(*rss);
      }
      spdlog::warn("port {}: RSS layout not usable for steering ({}); steering by SNAT port",
                   cfg.dataplane.ports[i].name, why);
    }
    spdlog::info("{} workers: port {} has no predictable RSS; replies steered by SNAT port (port % {}), "
                 "client flows by flow hash, through redirect rings", workers, cfg.dataplane.ports[i].name, workers);
  }
  return ng::lb::ReplySteering::byPort(workers);
}

// Health-driven generations at most this often: with the rise/fall hysteresis this
// bounds the rebuilds a flapping node can cause.
constexpr auto kHealthRebuildGap = std::chrono::milliseconds(500);

int run(const std::string& config_path) {
  auto loaded = ng::conf::loadConfig(config_path);
  if (!loaded) {
    spdlog::error("{}", loaded.error().message);
    return 2;
  }
  Config cfg = std::move(*loaded);
  // Signals are taken synchronously by the control loop (sigtimedwait); block them before
  // EAL creates its threads so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that closes its end (an API client, the Kubernetes API server, a TLS
  // connection) must cost an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> devices;
  for (const auto& p : cfg.dataplane.ports) devices.push_back(p.device);
  dp::Eal eal(dp::ealArgs(cfg.dataplane.eal, cfg.dataplane.workers, devices));

  const auto n = static_cast<uint16_t>(cfg.dataplane.workers.size());
  uint16_t max_mtu = 0;
  for (const auto& p : cfg.dataplane.ports) max_mtu = std::max(max_mtu, p.mtu);
  const bool exception_path = cfg.dataplane.exception_path.enabled;
  // With the exception path every data port has a kernel interface with as many queues.
  const auto n_ports = static_cast<uint32_t>(devices.size() * (exception_path ? 2 : 1));
  const uint32_t mbufs = cfg.dataplane.mbufs != 0
                             ? cfg.dataplane.mbufs
                             : dp::Mempool::mbufCount({.ports = n_ports,
                                                       .rx_queues_per_port = n, .tx_queues_per_port = n,
                                                       .lcores = n + 1u,
                                                       .ring_slots = n > 1 ? n * kRedirectRingSize : 0});
  dp::Mempool pool("ng_mbufs", mbufs, dp::Mempool::dataRoomFor(max_mtu));
  std::vector<dp::Port> ports;
  std::vector<ng::fwd::PortInfo> infos;
  for (const auto& pc : cfg.dataplane.ports) {
    ports.push_back(dp::Port::open(pc.device, n, n, pc.mtu, pool.get()));
    infos.push_back(portInfo(pc, ports.back(), exception_path));
    spdlog::info("port {} ({}): {} {}/{} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", pc.name, pc.device,
                 pc.role == ng::conf::PortRole::kExternal ? "external" : "internal",
                 ng::conf::formatIpv4(pc.address.address), pc.address.length, infos.back().mac[0],
                 infos.back().mac[1], infos.back().mac[2], infos.back().mac[3], infos.back().mac[4],
                 infos.back().mac[5]);
  }

  // Exception path: one kernel interface per data port (dataplane/dpdk/kernel_iface.h),
  // before the workers exist; they go (and the kernel's interfaces with them) after.
  std::vector<dp::KernelInterface> kernel_ifaces;
  std::optional<std::pair<uint16_t, uint16_t>> snat_range;
  if (exception_path) {
    snat_range = snatRangeBesideKernel(cfg);
    for (size_t i = 0; i < cfg.dataplane.ports.size(); ++i) {
      const auto& pc = cfg.dataplane.ports[i];
      dp::keepKernelOffDataPort(pc.device);
      kernel_ifaces.push_back(dp::KernelInterface::create(
          dp::KernelInterfaceSpec{
              .iface = pc.kernel_iface, .mac = infos[i].mac, .address = pc.address.address,
              .prefix_len = pc.address.length,
              .default_gateway = pc.role == ng::conf::PortRole::kExternal ? pc.gateway.value_or(0) : 0,
              .mtu = pc.mtu, .queues = n, .index = static_cast<unsigned>(i)},
          pool.get()));
      spdlog::info("port {}: exception path through kernel interface {} ({}/{})", pc.name, pc.kernel_iface,
                   ng::conf::formatIpv4(pc.address.address), pc.address.length);
    }
    if (snat_range) {
      spdlog::info("exception path: a SNAT address is a port's address; SNAT ports {}-{}, the kernel's "
                   "ephemeral ports outside", snat_range->first, snat_range->second);
    }
  }

  const ng::lb::ReplySteering steering = replySteering(cfg, ports, n);
  // One redirect ring per worker when there are several (dataplane/dpdk/worker.h).
  std::vector<std::unique_ptr<dp::MbufRing>> rings;
  dp::WorkerRings worker_rings;
  for (uint16_t i = 0; n > 1 && i < n; ++i) {
    rings.push_back(std::make_unique<dp::MbufRing>("ng_redirect_" + std::to_string(i), kRedirectRingSize));
    worker_rings.peers.push_back(rings.back()->get());
  }

  dp::RcuPublisher publisher(n);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<ng::fwd::WorkerContext>> contexts;
  std::vector<std::unique_ptr<dp::Worker>> workers;
  std::vector<ng::control::WorkerSource> worker_sources;
  const uint64_t boot_seed = std::random_device{}() * 0x9e3779b97f4a7c15ULL ^
                             static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (uint16_t i = 0; i < n; ++i) {
    contexts.push_back(std::make_unique<ng::fwd::WorkerContext>(
        i, infos, cfg.dataplane.flows.capacity, /*affinity_capacity=*/0, ng::fwd::kBackendStatsCapacity,
        cfg.dataplane.flows.capacity6));
    if (snat_range) contexts.back()->snat.setPortRange(snat_range->first, snat_range->second);
    contexts.back()->exception.configure(cfg.dataplane.exception_path.rate_pps, cfg.dataplane.exception_path.burst,
                                         0);
    contexts.back()->snat.reseed(boot_seed + i);  // a restart must not replay the last run's SNAT ports
    contexts.back()->steerReplies(steering);       // after reseed: which of those ports are this worker's
    std::vector<dp::QueueRef> queues;
    for (const dp::Port& port : ports) queues.push_back({.port_id = port.id(), .queue_id = i});
    dp::KernelQueues kernel;
    for (const dp::KernelInterface& k : kernel_ifaces) {
      kernel.slots.push_back(dp::QueueRef{.port_id = k.port().id(), .queue_id = i});
    }
    workers.push_back(std::make_unique<dp::Worker>(*contexts[i], std::move(queues), publisher, i, stop, pool.get(),
                                                   dp::WorkerOptions{.idle_sleep_max_us = cfg.dataplane.idle_sleep_us},
                                                   worker_rings, std::move(kernel)));
    worker_sources.push_back(ng::control::WorkerSource{.id = i,
                                                       .lcore = cfg.dataplane.workers[i],
                                                       .counters = &contexts[i]->counters,
                                                       .backend_stats = &contexts[i]->backend_stats,
                                                       .applied_generation = &contexts[i]->applied_generation,
                                                       .flow_capacity = contexts[i]->flows.capacity(),
                                                       .flow6_capacity = contexts[i]->flows6.capacity()});
  }
  auto model = std::make_shared<ng::control::StatusModel>(std::move(worker_sources), rte_get_tsc_hz());

  // Probes leave through the kernel (management interface), never through a worker.
  std::atomic<bool> health_changed{false};
  ng::health::HealthEngine health(
      ng::health::HealthEngine::Options{
          .source_address = cfg.health.source_address ? ng::conf::formatIpv4(*cfg.health.source_address) : ""},
      [&health_changed] { health_changed.store(true, std::memory_order_release); });

  ng::control::CommandQueue commands;
  ng::control::StatusSources sources;
  sources.model = model;
  sources.health = [&health](const ng::nodeport::ProbeTarget& target) -> std::optional<ng::control::HealthDetail> {
    auto status = health.status(ng::control::probeSpecOf(target));
    if (!status) return std::nullopt;
    return ng::control::healthDetail(*status);
  };
  sources.ready = [&contexts] {
    for (const auto& c : contexts) {
      if (c->applied_generation.load(std::memory_order_relaxed) == ~uint64_t{0}) return false;
    }
    return true;
  };
  std::unique_ptr<ng::control::ControlPlane> control;
  // The API threads never compile: they ask the control thread and wait for the answer.
  // (The API starts only once `control` exists.)
  sources.reload = [&commands, &control] {
    auto result = commands.call<ng::control::ReloadResult>([&control] { return control->reload("API"); },
                                                           std::chrono::seconds(30));
    return result.value_or(ng::control::ReloadResult{.ok = false, .message = "control thread busy; try again"});
  };
  sources.load_balancers = [&commands, &control](ng::control::LoadBalancerCall call) {
    // Answered by the control thread, possibly only after the next flush() publishes.
    auto promise = std::make_shared<std::promise<ng::control::LoadBalancerAnswer>>();
    auto answer = promise->get_future();
    commands.post([&control, call = std::move(call), promise] {
      control->loadBalancers(call, [promise](ng::control::LoadBalancerAnswer a) { promise->set_value(std::move(a)); });
    });
    if (answer.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return ng::control::LoadBalancerAnswer{.status = 503, .body = R"({"error": "control thread busy; try again"})"};
    }
    return answer.get();
  };
  std::unique_ptr<ng::control::KubeSource> kube;  // made once `control` exists
  if (cfg.kubernetes.enabled) {
    sources.kubernetes = [&kube] { return kube ? kube->status() : nlohmann::json{{"synced", false}}; };
    sources.node_ready = [&kube](const std::string& node) -> std::optional<std::string> {
      return kube ? kube->nodeReady(node) : std::nullopt;
    };
  }
  ng::control::StatusApi api(sources);
  control = std::make_unique<ng::control::ControlPlane>(config_path, cfg, publisher, model, health,
                                                        [&api](std::string token) { api.setToken(std::move(token)); });
  if (auto started = control->start(); !started) {
    spdlog::error("{}: {}", config_path, started.error());
    return 2;
  }
  // The Kubernetes source: its controller hands changes to the control thread and waits
  // (off the control thread) until the generation carrying them is published.
  if (cfg.kubernetes.enabled) {
    auto apply = [&commands, &control](std::vector<ng::control::KubeChange> changes,
                                       std::stop_token stop) -> std::optional<ng::control::KubeController::Applied> {
      auto promise = std::make_shared<std::promise<ng::control::KubeController::Applied>>();
      auto applied = promise->get_future();
      commands.post([&control, changes = std::move(changes), promise]() mutable {
        control->kubernetes(std::move(changes), [promise](std::vector<ng::control::KubeOutcome> o, uint64_t g) {
          promise->set_value({std::move(o), g});
        });
      });
      for (int i = 0; i < 300 && !stop.stop_requested(); ++i) {  // 30 s
        if (applied.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) return applied.get();
      }
      return std::nullopt;
    };
    auto made = ng::control::KubeSource::create(cfg.kubernetes, cfg.dataplane.mode, std::move(apply));
    if (!made) {
      spdlog::error("{}: {}", config_path, made.error());
      return 2;
    }
    kube = std::move(*made);
  }
  health.start();
  api.start(cfg.api);
  spdlog::info("API on {}://{}/ (/v1/vips /v1/status /metrics /v1/loadbalancers; token {})",
               cfg.api.tls_cert.empty() ? "http" : "https", cfg.api.listen,
               cfg.api.token_file.empty() ? "not required" : "required for changes");

  for (uint16_t i = 0; i < n; ++i) workers[i]->launchOn(cfg.dataplane.workers[i]);
  spdlog::info("nodegate running: {} worker(s), default mode {}", n, ng::control::modeName(cfg.dataplane.mode));
  if (kube) kube->start();

  const timespec tick{.tv_sec = 0, .tv_nsec = 20'000'000};  // commands wait at most this long
  auto next_sample = std::chrono::steady_clock::now();
  auto last_health_rebuild = std::chrono::steady_clock::time_point{};
  auto next_drain_check = std::chrono::steady_clock::time_point{};
  for (;;) {
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("signal {}: stopping", sig);
      break;
    }
    if (sig == SIGHUP) (void)control->reload("SIGHUP");
    commands.runPending();
    const auto now = std::chrono::steady_clock::now();
    control->flush(now);
    if (now - last_health_rebuild >= kHealthRebuildGap) {
      // With a drain timeout, a verdict also changes when time passes: look once a second.
      const bool drain_check = control->config().health.drain_timeout_s != 0 && now >= next_drain_check;
      if (health_changed.exchange(false, std::memory_order_acquire) || drain_check) {
        control->onHealthChange();
        last_health_rebuild = now;
        next_drain_check = now + std::chrono::seconds(1);
      }
    }
    if (now >= next_sample) {
      model->sample(now);
      next_sample = now + std::chrono::seconds(1);
    }
  }

  if (kube) kube->stop();  // before the control thread stops answering it
  health.stop();
  stop.store(true);
  for (auto& w : workers) w->join();
  api.stop();
  spdlog::info("final counters: {}", ng::control::statsJson(*model).dump());
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
