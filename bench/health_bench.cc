// Health prober at scale: N distinct HTTP targets probed every second by one HealthEngine
// (one asio loop, one thread) against responders in forked child processes.
//   health_bench --benchmark_repetitions=3
// The argued-about number (DESIGN.md section 6, "health probes per second") is the
// prober's CPU as % of one core at 10,000 targets / 1 s interval; the goal is < 10 %.
//
// Setup (not measured): child processes listen on 127.1.x.y : 4 ports (every target is
// a distinct ProbeSpec, each address:port its own listener; at most 5,000 targets per
// child, see kTargetsPerResponder) and answer like kube-proxy's healthCheckNodePort
// server (Go net/http): 200, X-Load-Balancing-Endpoint-Weight, a JSON body; the
// connection stays open for the next request unless the request said Connection: close
// (then the answer says so too, then FIN). After a warm-up, one window is measured
// (counters, all plain numbers):
//   cpu_pct            CPU time of the measured client as % of one core, user and kernel;
//                      the responder children are not included. BM_HealthProber: the
//                      engine's event loop thread (the threads HealthEngine::start()
//                      adds), from the scheduler's nanosecond count in /proc/self/task/
//                      <tid>/schedstat; BM_BlockingClientBaseline: the client thread
//                      (getrusage(RUSAGE_THREAD)).
//   user_cpu_pct       the user-space part of cpu_pct (the rest is the kernel's; the split
//                      is tick-sampled)
//   process_cpu_pct    BM_HealthProber: getrusage(RUSAGE_SELF) of the whole benchmark
//                      process, a cross-check of cpu_pct (main thread only sleeps)
//   probes_per_s       probes completed per second of wall time
//   cpu_us_per_probe   CPU per completed probe
//   failures           non-OK results in the window (should be 0; engine only)
//   connects_per_s     TCP connections the responders accepted (engine only)
//   responder_cpu_pct  the children's CPU, for scale (engine only)
//   targets_serving    targets serving at the end (should equal targets; engine only)
// BM_BlockingClientBaseline: the same exchange by a minimal blocking client, same run.
//
// Arguments: /targets/window_seconds/reuse. reuse:1 = one kept-alive connection per
// target (the engine's default), reuse:0 = a new connection with Connection: close per
// probe. Default 10000 targets, 10 s window, 3 s warm-up, both reuse values.
// NG_HEALTH_BENCH_QUICK=1 (set for the ctest smoke run) uses 200 targets, a 1 s window
// and a 1.5 s warm-up so the whole run stays within a few seconds.
// NG_HEALTH_BENCH_NETNS=1 or =rps: the responder in a network namespace of its own
// behind a veth pair (see netnsMode()); needs root.

#include <benchmark/benchmark.h>

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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

// NG_HEALTH_BENCH_NETNS=1: the responder runs in a network namespace of its own behind a
// veth pair, and this process in another one (see main()). A veth hands a packet to the
// receiving side's stack in the sender's context, as loopback does. NG_HEALTH_BENCH_NETNS
// =rps in addition pins this process to CPU 0 and the responder to CPU 1 and steers
// each side's received packets to its own CPU (RPS), so that the responder's receive
// processing runs on CPU 1 instead of inside the prober's send().
bool netnsMode() {
  const char* n = std::getenv("NG_HEALTH_BENCH_NETNS");
  return n != nullptr && n[0] != '\0' && n[0] != '0';
}
bool rpsMode() {
  const char* n = std::getenv("NG_HEALTH_BENCH_NETNS");
  return n != nullptr && std::string_view(n) == "rps";
}

// Target addresses, 250 per /24: 127.1.0.1, 127.1.0.2, ... on loopback; 10.99.0.1, ...
// (all local to the responder's namespace, routed over the veth pair) with NETNS.
std::string targetAddress(int i) {
  return (netnsMode() ? "10.99." : "127.1.") + std::to_string(i / 250) + "." +
         std::to_string(i % 250 + 1);
}

// Setup commands (ip, sysfs writes) for the namespace mode; not measured.
bool run(const std::string& command) {
  if (std::system(command.c_str()) == 0) return true;
  std::fprintf(stderr, "health_bench: failed: %s\n", command.c_str());
  return false;
}

bool pinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A network namespace (and mount namespace, for a /sys that shows its devices) of the
// calling process's own. Both vanish with the last process in them: nothing to clean up,
// and nothing of the host's network is touched.
bool enterPrivateNetwork() {
  return unshare(CLONE_NEWNET | CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
         mount("sysfs", "/sys", "sysfs", 0, nullptr) == 0 && run("ip link set lo up");
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
std::string response(bool close) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
         "X-Load-Balancing-Endpoint-Weight: 1\r\nContent-Length: " +
         std::to_string(kBody.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + kBody;
}
const std::string kResponse = response(false);      // to a keep-alive request
const std::string kResponseClose = response(true);  // to "Connection: close"

// Connections the responder accepted, in memory shared with the parent (set up before
// the fork): shows how many probes paid for a TCP handshake.
std::atomic<uint64_t>* g_accepts = nullptr;

// One accepted connection, served like Go's net/http (kube-proxy): every request is
// answered; after a "Connection: close" request the answer says so and the connection
// ends, otherwise the connection waits for the next request.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::array<char, 1024> buf;
  std::string request;

  void readRequest() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](std::error_code ec, size_t n) {
      if (ec) return;
      self->request.append(self->buf.data(), n);
      self->answer();
    });
  }
  void answer() {
    const size_t end = request.find("\r\n\r\n");
    if (end == std::string::npos) return readRequest();
    // Our clients write the header exactly so; a real server would parse it.
    const bool close = request.substr(0, end + 2).find("\r\nConnection: close\r\n") != std::string::npos;
    request.erase(0, end + 4);
    asio::async_write(socket, asio::buffer(close ? kResponseClose : kResponse),
                      [self = shared_from_this(), close](std::error_code ec, size_t) {
                        if (ec) return;
                        if (!close) return self->answer();
                        // FIN right after the response, then wait for the client to close
                        // before letting go.
                        self->socket.shutdown(tcp::socket::shutdown_send, ec);
                        self->awaitClose();
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
    if (!ec) {
      g_accepts->fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Conn>(std::move(s))->readRequest();
    }
    if (ec != asio::error::operation_aborted) acceptLoop(acceptor);
  });
}

// Namespace mode: the addresses of both ends of the veth pair and the device names.
constexpr const char* kProberSide = "10.98.0.1";
constexpr const char* kResponderSide = "10.98.0.2";

// `ns_fds`: namespace mode only, {read end of "veth is there", write end of "my
// namespace exists"}; -1 otherwise.
[[noreturn]] void responderMain(int first_address, int addresses, int out_fd,
                                std::array<int, 2> ns_fds, const std::string& veth) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
  raiseFileLimit();
  std::string report;
  try {
    if (ns_fds[0] >= 0) {
      if ((rpsMode() && !pinTo(1)) || !enterPrivateNetwork()) throw std::runtime_error("namespace setup");
      char c = 'n';
      (void)!write(ns_fds[1], &c, 1);
      if (read(ns_fds[0], &c, 1) != 1) throw std::runtime_error("no veth");
      if (!run("ip addr add " + std::string(kResponderSide) + "/30 dev " + veth + " && ip link set " +
               veth + " up && ip route add local 10.99.0.0/16 dev lo" +
               (rpsMode() ? " && echo 2 > /sys/class/net/" + veth + "/queues/rx-0/rps_cpus" : "")))
        throw std::runtime_error("veth setup");
    }
    asio::io_context io(1);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<uint16_t> ports;
    // In its own namespace every 10.99.x.y is local: one wildcard listener per port
    // serves them all (and keeps the descriptors for the connections).
    if (ns_fds[0] >= 0) addresses = 1;
    for (int a = 0; a < addresses; ++a) {
      const auto address = ns_fds[0] >= 0 ? asio::ip::address(asio::ip::address_v4::any())
                                          : asio::ip::make_address(targetAddress(first_address + a));
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
  std::atomic<uint64_t>* accepts_ = nullptr;
  std::string veth_;  // namespace mode: our end of the pair
  pid_t pid = -1;
  std::vector<uint16_t> ports;
  std::string error;

  // Serves targetAddress(first_address ...) for `addresses` addresses, kPorts each.
  Responder(int first_address, int addresses) {
    static int made = 0;
    const int n = made++;
    // Before the fork, so that parent and child share it.
    void* shared = mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
      error = "mmap failed";
      return;
    }
    accepts_ = new (shared) std::atomic<uint64_t>(0);
    g_accepts = accepts_;
    int fds[2];
    int to_child[2] = {-1, -1};
    int from_child[2] = {-1, -1};
    if (pipe(fds) != 0 || (netnsMode() && (pipe(to_child) != 0 || pipe(from_child) != 0))) {
      error = "pipe failed";
      return;
    }
    // Fresh names each time: a previous pair may still be going away.
    veth_ = "nghp" + std::to_string(n);
    const std::string peer = "nghr" + std::to_string(n);
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      responderMain(first_address, addresses, fds[1], {to_child[0], from_child[1]}, peer);
    }
    close(fds[1]);
    if (netnsMode()) {
      close(to_child[0]);
      close(from_child[1]);
      char c;
      const bool ok =
          read(from_child[0], &c, 1) == 1 &&
          run("ip link add " + veth_ + " type veth peer name " + peer + " netns " + std::to_string(pid) +
              " && ip addr add " + kProberSide + "/30 dev " + veth_ + " && ip link set " + veth_ +
              " up && ip route add 10.99.0.0/16 via " + kResponderSide + " dev " + veth_ +
              (rpsMode() ? " && echo 1 > /sys/class/net/" + veth_ + "/queues/rx-0/rps_cpus" : ""));
      if (ok) (void)!write(to_child[1], &c, 1);
      close(to_child[1]);
      close(from_child[0]);
      if (!ok) {
        error = "responder: veth setup failed";
        return;
      }
    }
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
    if (netnsMode() && pid > 0) run("ip link del " + veth_ + " 2>/dev/null || true");
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (accepts_ != nullptr) munmap(accepts_, sizeof *accepts_);
  }
  // Connections the responder accepted so far.
  [[nodiscard]] uint64_t accepts() const { return accepts_->load(std::memory_order_relaxed); }
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

// The thread ids of this process now.
std::vector<pid_t> threadIds() {
  std::vector<pid_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ids.push_back(static_cast<pid_t>(std::stoi(entry.path().filename().string())));
  std::sort(ids.begin(), ids.end());
  return ids;
}

// CPU time of the given threads of this process. The total is the scheduler's own
// count (/proc/.../schedstat, nanoseconds, every cycle the thread ran, the kernel work
// it did in system calls and the softirqs run in its context included); the user/system
// split comes from the tick-sampled utime/stime in /proc/.../stat and is applied to it.
Cpu threadsCpu(const std::vector<pid_t>& tids) {
  Cpu sum;
  for (const pid_t tid : tids) {
    const std::string dir = "/proc/self/task/" + std::to_string(tid);
    std::ifstream sched(dir + "/schedstat");
    double run_ns = 0;
    if (!(sched >> run_ns)) continue;  // the thread is gone
    std::ifstream f(dir + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    double utime = 0, stime = 0;
    if (const size_t paren = stat.rfind(')'); paren != std::string::npos) {
      std::istringstream rest(stat.substr(paren + 2));
      std::string field;
      for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 (1-based)
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
      }
    }
    const double total = run_ns * 1e-9;
    const double user_share = utime + stime > 0 ? utime / (utime + stime) : 0;
    sum.user += total * user_share;
    sum.sys += total * (1 - user_share);
  }
  return sum;
}

// File descriptors are capped at 20,000 per process here (the hard limit, which only
// CAP_SYS_RESOURCE could raise): a responder child serves at most this many targets, one
// listener each plus, with keep-alive, one kept connection each.
constexpr int kTargetsPerResponder = 5000;

struct Setup {
  int targets;
  std::chrono::seconds window;
  std::chrono::milliseconds warmup;
  std::vector<std::unique_ptr<Responder>> responders;
  std::string error;
  std::vector<ng::health::ProbeSpec> probes;

  explicit Setup(const benchmark::State& state)
      : targets(static_cast<int>(state.range(0))),
        window(state.range(1)),
        warmup(quickMode() ? 1500 : 3000) {
    raiseFileLimit();
    const int addresses = (targets + kPorts - 1) / kPorts;
    // Namespace mode: one child, wildcard listeners (see responderMain()).
    const int per_child = netnsMode() ? addresses : kTargetsPerResponder / kPorts;
    for (int first = 0; first < addresses && error.empty(); first += per_child) {
      responders.push_back(std::make_unique<Responder>(first, std::min(per_child, addresses - first)));
      error = responders.back()->error;
    }
    if (!error.empty()) return;
    for (int i = 0; i < targets; ++i) {
      const int address = i / kPorts;
      probes.push_back({.kind = ng::health::ProbeKind::kHttp,
                        .address = targetAddress(address),
                        .port = responders[address / per_child]->ports[i % kPorts]});
    }
  }
  [[nodiscard]] double responderCpuSeconds() const {
    double sum = 0;
    for (const auto& r : responders) sum += r->cpuSeconds();
    return sum;
  }
  [[nodiscard]] uint64_t accepts() const {
    uint64_t sum = 0;
    for (const auto& r : responders) sum += r->accepts();
    return sum;
  }
};

// The engine: every target once a second, the whole machinery under test. Third
// argument: 1 = kept-alive connections (the default Options), 0 = a new connection with
// "Connection: close" per probe.
void BM_HealthProber(benchmark::State& state) {
  Setup setup(state);
  if (!setup.error.empty()) {
    state.SkipWithError(setup.error.c_str());
    return;
  }
  std::vector<ng::health::TargetSpec> specs;
  for (const auto& p : setup.probes) {
    specs.push_back({.probe = p,
                     .timing = {.interval_ms = 1000, .timeout_ms = 1000, .rise = 2, .fall = 3}});
  }
  ng::health::HealthEngine engine(
      ng::health::HealthEngine::Options{.reuse_connections = state.range(2) != 0}, nullptr);
  engine.setTargets(std::move(specs));
  // The threads start() adds are the engine's (one: its event loop). Their CPU is the
  // prober's, all of it; this thread (which only sleeps) and the responder children are
  // not counted.
  const std::vector<pid_t> before = threadIds();
  engine.start();
  std::vector<pid_t> engine_threads;
  std::ranges::set_difference(threadIds(), before, std::back_inserter(engine_threads));
  if (engine_threads.empty()) {
    state.SkipWithError("no engine thread found in /proc/self/task");
    return;
  }
  std::this_thread::sleep_for(setup.warmup);

  Cpu cpu, process_cpu;
  double wall = 0, child_cpu = 0;
  uint64_t probes = 0, failures = 0, accepts = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const Cpu cpu0 = threadsCpu(engine_threads);
    const Cpu process0 = cpuOf(RUSAGE_SELF);
    const double child0 = setup.responderCpuSeconds();
    const uint64_t done0 = engine.probesCompleted();
    const uint64_t fail0 = engine.probeFailures();
    const uint64_t accepts0 = setup.accepts();
    std::this_thread::sleep_for(setup.window);
    probes = engine.probesCompleted() - done0;
    failures = engine.probeFailures() - fail0;
    cpu = threadsCpu(engine_threads) - cpu0;
    process_cpu = cpuOf(RUSAGE_SELF) - process0;
    child_cpu = setup.responderCpuSeconds() - child0;
    accepts = setup.accepts() - accepts0;
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
  state.counters["process_cpu_pct"] = 100.0 * process_cpu.total() / wall;
  state.counters["probes_per_s"] = static_cast<double>(probes) / wall;
  state.counters["cpu_us_per_probe"] = probes ? cpu.total() * 1e6 / static_cast<double>(probes) : 0;
  state.counters["failures"] = static_cast<double>(failures);
  state.counters["responder_cpu_pct"] = 100.0 * child_cpu / wall;
  state.counters["connects_per_s"] = static_cast<double>(accepts) / wall;
  state.counters["targets_serving"] = serving;
}

// The baseline, measured in the same run against the same responder: the same exchange
// done by the simplest blocking client, paced like the engine (a batch every 5 ms,
// targets per second in all). Third argument 0: socket, SO_LINGER 0, connect, GET with
// "Connection: close", read the answer, close. 1: one kept connection per target, GET
// with "Connection: keep-alive", read the answer. On loopback the kernel runs the TCP
// work of both ends in the sender's context (the responder's SYN handling, accept queue,
// wake-ups), so this is what any prober pays here before its own code; compare
// cpu_us_per_probe and user_cpu_pct.
void BM_BlockingClientBaseline(benchmark::State& state) {
  Setup setup(state);
  if (!setup.error.empty()) {
    state.SkipWithError(setup.error.c_str());
    return;
  }
  const bool keep_alive = state.range(2) != 0;
  std::vector<asio::ip::tcp::endpoint> endpoints;
  for (const auto& p : setup.probes)
    endpoints.emplace_back(asio::ip::make_address(p.address), p.port);
  const std::string request =
      std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: baseline\r\nAccept: */*\r\n") +
      (keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  const size_t answer = keep_alive ? kResponse.size() : kResponseClose.size();
  std::vector<int> kept(endpoints.size(), -1);
  size_t next = 0;
  uint64_t failures = 0;
  auto probeOne = [&] {
    const size_t i = next++ % endpoints.size();
    const auto& ep = endpoints[i];
    int fd = kept[i];
    bool ok = true;
    if (fd < 0) {
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ok = ::connect(fd, ep.data(), ep.size()) == 0;
    }
    ok = ok && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                   static_cast<ssize_t>(request.size());
    size_t got = 0;
    char buf[1024];
    while (ok && got < answer) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) ok = false;
      else got += static_cast<size_t>(n);
    }
    if (keep_alive && ok) {
      kept[i] = fd;
    } else {
      ::close(fd);
      kept[i] = -1;
    }
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
  for (int fd : kept) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (netnsMode()) {
    // Before any thread exists, so that every thread (the engine's) inherits both.
    if ((rpsMode() && !pinTo(0)) || !enterPrivateNetwork()) {
      std::fprintf(stderr, "health_bench: NG_HEALTH_BENCH_NETNS needs root (unshare, mount, ip)\n");
      return 1;
    }
  }
  benchmark::Initialize(&argc, argv);
  for (auto* b : {benchmark::RegisterBenchmark("BM_HealthProber", BM_HealthProber),
                  benchmark::RegisterBenchmark("BM_BlockingClientBaseline", BM_BlockingClientBaseline)}) {
    b->ArgNames({"targets", "window_s", "reuse"});
    for (int reuse : {1, 0}) {
      if (quickMode()) {
        b->Args({200, 1, reuse});
      } else {
        b->Args({10000, 10, reuse});
      }
    }
    // One iteration is one measured window; min_time does not apply.
    b->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
