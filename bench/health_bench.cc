// Health prober at scale: N distinct HTTP targets probed every second by one HealthEngine
// (one asio loop, one thread) against responders in a forked child process.
//   health_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// The argued-about number (DESIGN.md section 6, "health probes per second") is the
// prober's CPU as % of one core at 10,000 targets / 1 s interval; the goal is < 10 %.
//
// Setup (not measured): a child process listens on 127.1.x.y : 4 ports (every target is
// a distinct ProbeSpec, each address:port its own listener) and answers like a
// kube-proxy healthCheckNodePort: 200, X-Load-Balancing-Endpoint-Weight, a JSON body,
// then FIN. After a warm-up, one window is measured (counters, all plain numbers):
//   cpu_pct            user+sys CPU of the measured client as % of one core; the
//                      responder child is not included (BM_HealthProber: the whole
//                      process, i.e. the engine thread, the main thread only sleeps;
//                      BM_BlockingClientBaseline: the client thread)
//   user_cpu_pct       the user-space part of cpu_pct (the rest is the kernel's)
//   probes_per_s       probes completed per second of wall time
//   cpu_us_per_probe   CPU per completed probe
//   failures           non-OK results in the window (should be 0; engine only)
//   responder_cpu_pct  the child's CPU, for scale (engine only)
//   targets_serving    targets serving at the end (should equal targets; engine only)
// BM_BlockingClientBaseline: the same exchange by a minimal blocking client, same run.
//
// Arguments: /targets/window_seconds. Default 10000 targets, 10 s window, 3 s warm-up.
// NG_HEALTH_BENCH_QUICK=1 (set for the ctest smoke run) uses 200 targets, a 1 s window
// and a 1.5 s warm-up so the whole run stays within a few seconds.

#include <benchmark/benchmark.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "health/health_engine.h"

namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

constexpr int kPorts = 4;

bool quickMode() {
  const char* q = std::getenv("NG_HEALTH_BENCH_QUICK");
  return q != nullptr && q[0] != '\0' && q[0] != '0';
}

std::string loopbackAddress(int i) {  // 127.1.0.1, 127.1.0.2, ... 250 per /24
  return "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

// 10,000 listeners plus the connections in flight on both sides: ask for 64k file
// descriptors (allowed as root), else take the hard limit.
void raiseFileLimit() {
  rlimit rl{.rlim_cur = 65536, .rlim_max = 65536};
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) return;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

// ---- the responder (child process) ---------------------------------------------------

const std::string kBody =
    R"({"service":{"namespace":"bench","name":"web"},"localEndpoints":1,"serviceProxyHealthy":true})";
const std::string kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
    "X-Load-Balancing-Endpoint-Weight: 1\r\nContent-Length: " +
    std::to_string(kBody.size()) + "\r\n\r\n" + kBody;

struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::array<char, 1024> buf;
  std::string request;

  void readRequest() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](std::error_code ec, size_t n) {
      if (ec) return;
      self->request.append(self->buf.data(), n);
      if (self->request.find("\r\n\r\n") == std::string::npos) return self->readRequest();
      asio::async_write(self->socket, asio::buffer(kResponse), [self](std::error_code ec, size_t) {
        if (ec) return;
        // Like Go's net/http (kube-proxy) answering "Connection: close": FIN right after
        // the response, then wait for the client to close before letting go.
        self->socket.shutdown(tcp::socket::shutdown_send, ec);
        self->awaitClose();
      });
    });
  }
  void awaitClose() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](std::error_code ec, size_t) {
      if (!ec) self->awaitClose();
    });
  }
};

void acceptLoop(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](std::error_code ec, tcp::socket s) {
    if (!ec) std::make_shared<Conn>(std::move(s))->readRequest();
    if (ec != asio::error::operation_aborted) acceptLoop(acceptor);
  });
}

[[noreturn]] void responderMain(int addresses, int out_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
  raiseFileLimit();
  std::string report;
  try {
    asio::io_context io(1);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<uint16_t> ports;
    for (int a = 0; a < addresses; ++a) {
      const auto address = asio::ip::make_address(loopbackAddress(a));
      for (int p = 0; p < kPorts; ++p) {
        auto acc = std::make_unique<tcp::acceptor>(io);
        // The first address picks free ports; the other addresses reuse them (nothing
        // else binds 127.1.x.y, and a wildcard listener on the port would have failed).
        const tcp::endpoint ep(address, a == 0 ? 0 : ports[p]);
        acc->open(ep.protocol());
        acc->bind(ep);
        acc->listen(4096);
        if (a == 0) ports.push_back(acc->local_endpoint().port());
        acceptLoop(*acc);
        acceptors.push_back(std::move(acc));
      }
    }
    for (auto p : ports) report += std::to_string(p) + " ";
    report += "\n";
    (void)!write(out_fd, report.data(), report.size());
    close(out_fd);
    io.run();
  } catch (const std::exception& e) {
    report = std::string("error ") + e.what() + "\n";
    (void)!write(out_fd, report.data(), report.size());
  }
  _exit(0);
}

struct Responder {
  pid_t pid = -1;
  std::vector<uint16_t> ports;
  std::string error;

  explicit Responder(int addresses) {
    int fds[2];
    if (pipe(fds) != 0) {
      error = "pipe failed";
      return;
    }
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      responderMain(addresses, fds[1]);
    }
    close(fds[1]);
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    if (line.empty() || line.starts_with("error")) {
      error = "responder: " + (line.empty() ? std::string("no answer") : line);
      return;
    }
    size_t pos = 0;
    while (pos < line.size()) {
      size_t used = 0;
      ports.push_back(static_cast<uint16_t>(std::stoi(line.substr(pos), &used)));
      pos += used + 1;
    }
  }
  ~Responder() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // utime + stime of the child from /proc (clock ticks), in seconds.
  [[nodiscard]] double cpuSeconds() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) return 0;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 (1-based)
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
};

struct Cpu {
  double user = 0;
  double sys = 0;
  [[nodiscard]] double total() const { return user + sys; }
  Cpu operator-(const Cpu& o) const { return {user - o.user, sys - o.sys}; }
};

Cpu cpuOf(int who) {  // RUSAGE_SELF or RUSAGE_THREAD
  rusage ru{};
  getrusage(who, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return {s(ru.ru_utime), s(ru.ru_stime)};
}

struct Setup {
  int targets;
  std::chrono::seconds window;
  std::chrono::milliseconds warmup;
  Responder responder;
  std::vector<ng::health::ProbeSpec> probes;

  explicit Setup(const benchmark::State& state)
      : targets(static_cast<int>(state.range(0))),
        window(state.range(1)),
        warmup(quickMode() ? 1500 : 3000),
        responder((raiseFileLimit(), (targets + kPorts - 1) / kPorts)) {
    if (!responder.error.empty()) return;
    for (int i = 0; i < targets; ++i) {
      probes.push_back({.kind = ng::health::ProbeKind::kHttp,
                        .address = loopbackAddress(i / kPorts),
                        .port = responder.ports[i % kPorts]});
    }
  }
};

// The engine: every target once a second, the whole machinery under test.
void BM_HealthProber(benchmark::State& state) {
  Setup setup(state);
  if (!setup.responder.error.empty()) {
    state.SkipWithError(setup.responder.error.c_str());
    return;
  }
  std::vector<ng::health::TargetSpec> specs;
  for (const auto& p : setup.probes) {
    specs.push_back({.probe = p,
                     .timing = {.interval_ms = 1000, .timeout_ms = 1000, .rise = 2, .fall = 3}});
  }
  ng::health::HealthEngine engine(ng::health::HealthEngine::Options{}, nullptr);
  engine.setTargets(std::move(specs));
  engine.start();
  std::this_thread::sleep_for(setup.warmup);

  Cpu cpu;
  double wall = 0, child_cpu = 0;
  uint64_t probes = 0, failures = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const Cpu cpu0 = cpuOf(RUSAGE_SELF);  // the engine thread; main only sleeps
    const double child0 = setup.responder.cpuSeconds();
    const uint64_t done0 = engine.probesCompleted();
    const uint64_t fail0 = engine.probeFailures();
    std::this_thread::sleep_for(setup.window);
    probes = engine.probesCompleted() - done0;
    failures = engine.probeFailures() - fail0;
    cpu = cpuOf(RUSAGE_SELF) - cpu0;
    child_cpu = setup.responder.cpuSeconds() - child0;
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  engine.stop();
  int serving = 0;
  std::map<std::string, int> reasons;  // why probes failed, for the operator running this
  for (const auto& s : engine.statuses()) {
    serving += s.serving;
    if (s.failures != 0) ++reasons[s.last_detail];
  }
  for (const auto& [detail, n] : reasons)
    std::fprintf(stderr, "health_bench: %d targets last failed with: %s\n", n, detail.c_str());

  if (probes == 0) state.SkipWithError("no probe completed in the window");
  state.counters["targets"] = setup.targets;
  state.counters["cpu_pct"] = 100.0 * cpu.total() / wall;
  state.counters["user_cpu_pct"] = 100.0 * cpu.user / wall;
  state.counters["probes_per_s"] = static_cast<double>(probes) / wall;
  state.counters["cpu_us_per_probe"] = probes ? cpu.total() * 1e6 / static_cast<double>(probes) : 0;
  state.counters["failures"] = static_cast<double>(failures);
  state.counters["responder_cpu_pct"] = 100.0 * child_cpu / wall;
  state.counters["targets_serving"] = serving;
}

// The baseline, measured in the same run against the same responder: the same exchange
// (socket, SO_LINGER 0, connect, GET, read the answer, close) done by the simplest
// blocking client, paced like the engine (a batch every 5 ms, targets per second in
// all). On loopback the kernel runs the TCP work of both ends in the sender's context
// (the responder's SYN handling, accept queue, wake-ups), so this is what any prober
// pays here before its own code; compare cpu_us_per_probe and user_cpu_pct.
void BM_BlockingClientBaseline(benchmark::State& state) {
  Setup setup(state);
  if (!setup.responder.error.empty()) {
    state.SkipWithError(setup.responder.error.c_str());
    return;
  }
  std::vector<asio::ip::tcp::endpoint> endpoints;
  for (const auto& p : setup.probes)
    endpoints.emplace_back(asio::ip::make_address(p.address), p.port);
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: baseline\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  size_t next = 0;
  uint64_t failures = 0;
  auto probeOne = [&] {
    const auto& ep = endpoints[next++ % endpoints.size()];
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    bool ok = ::connect(fd, ep.data(), ep.size()) == 0 &&
              ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                  static_cast<ssize_t>(request.size());
    size_t got = 0;
    char buf[1024];
    while (ok && got < kResponse.size()) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) ok = false;
      else got += static_cast<size_t>(n);
    }
    ::close(fd);
    failures += !ok;
  };
  const auto batch_every = 5ms;
  const int per_batch = std::max(1, setup.targets / 200);  // targets per second
  auto runFor = [&](std::chrono::steady_clock::duration d) {
    uint64_t n = 0;
    const auto end = std::chrono::steady_clock::now() + d;
    auto tick = std::chrono::steady_clock::now();
    while (tick < end) {
      for (int i = 0; i < per_batch; ++i, ++n) probeOne();
      tick += batch_every;
      std::this_thread::sleep_until(tick);
    }
    return n;
  };
  runFor(std::chrono::milliseconds(setup.warmup));

  Cpu cpu;
  double wall = 0;
  uint64_t probes = 0;
  for (auto _ : state) {
    failures = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const Cpu cpu0 = cpuOf(RUSAGE_THREAD);
    probes = runFor(setup.window);
    cpu = cpuOf(RUSAGE_THREAD) - cpu0;
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (failures != 0) state.SkipWithError("baseline client probes failed");
  state.counters["targets"] = setup.targets;
  state.counters["cpu_pct"] = 100.0 * cpu.total() / wall;
  state.counters["user_cpu_pct"] = 100.0 * cpu.user / wall;
  state.counters["probes_per_s"] = static_cast<double>(probes) / wall;
  state.counters["cpu_us_per_probe"] = probes ? cpu.total() * 1e6 / static_cast<double>(probes) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (auto* b : {benchmark::RegisterBenchmark("BM_HealthProber", BM_HealthProber),
                  benchmark::RegisterBenchmark("BM_BlockingClientBaseline", BM_BlockingClientBaseline)}) {
    if (quickMode()) {
      b->Args({200, 1});
    } else {
      b->Args({10000, 10});
    }
    // One iteration is one measured window; min_time does not apply.
    b->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
