#include "control/status_api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <stdexcept>

#include "control/ui/status_page.h"

namespace ng::control {
namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBody = 64 * 1024;
// Requests are served by a pool: a handful of slow or idle clients each hold one thread
// for at most the read timeout, and the others keep being served.
constexpr size_t kApiThreads = 16;

json countersJson(const TrafficCounters& c) {
  return json{{"packets_in", c.packets_in},   {"bytes_in", c.bytes_in},   {"packets_out", c.packets_out},
              {"bytes_out", c.bytes_out},     {"new_flows", c.new_flows}, {"active_flows", c.active_flows}};
}

json ratesJson(const TrafficRates& r) {
  return json{{"packets_in", r.packets_in}, {"bytes_in", r.bytes_in}, {"packets_out", r.packets_out},
              {"bytes_out", r.bytes_out},   {"new_flows", r.new_flows}};
}

std::optional<HealthDetail> healthOf(const StatusSources& sources, const std::optional<nodeport::ProbeTarget>& probe) {
  if (!probe || !sources.health) return std::nullopt;
  return sources.health(*probe);
}

// `h` is healthOf(probe), looked up once by the caller.
json healthJson(const std::optional<nodeport::ProbeTarget>& probe, const std::optional<HealthDetail>& h) {
  if (!probe) {
    return json{{"state", "unchecked"}, {"reason", ""}, {"detail", ""}, {"since", ""}, {"probe", ""}};
  }
  if (!h) {
    return json{{"state", "unknown"}, {"reason", ""}, {"detail", "no probe result yet"}, {"since", ""},
                {"probe", probe->url()}};
  }
  return json{{"state", h->state},
              {"reason", h->reason},
              {"detail", h->detail},
              {"since", h->since_unix_ms > 0 ? formatTime(h->since_unix_ms) : ""},
              {"probe", probe->url()},
              {"transitions", h->transitions}};
}

json vipObject(const StatusSources& sources, const VipView& vip) {
  const StatusModel& model = *sources.model;
  json ports = json::array();
  for (const PortView& port : vip.ports) {
    TrafficCounters port_totals;
    TrafficRates port_rates;
    json backends = json::array();
    for (const BackendView& b : port.backends) {
      const TrafficCounters totals = model.backendTotals(b.stats_id);
      const TrafficRates rates = model.backendRates(b.stats_id);
      port_totals += totals;
      port_rates += rates;
      backends.push_back(json{{"node", b.node},
                              {"address", b.address.str()},
                              {"node_port", b.node_port},
                              {"weight", b.weight},
                              {"serving", b.serving},
                              {"health", healthJson(b.probe, healthOf(sources, b.probe))},
                              {"counters", countersJson(totals)},
                              {"rates", ratesJson(rates)}});
    }
    ports.push_back(json{{"port", port.port},
                         {"protocol", protocolName(port.protocol)},
                         {"name", port.name},
                         {"node_port", port.node_port},
                         {"external_traffic_policy", policyName(port.policy)},
                         {"all_backends_down", port.all_down},
                         {"counters", countersJson(port_totals)},
                         {"rates", ratesJson(port_rates)},
                         {"backends", std::move(backends)}});
  }
  return json{{"vip", vip.vip.str()}, {"owner", vip.owner},       {"source", vip.source},
              {"mode", modeName(vip.mode)},        {"ip_mode", ipModeName(vip.mode)}, {"ports", std::move(ports)}};
}

uint64_t sumWorkers(const StatusModel& model, fwd::Counter fwd::WorkerCounters::*member) {
  uint64_t sum = 0;
  for (const WorkerSource& w : model.workers()) sum += (w.counters->*member).get();
  return sum;
}

uint64_t dropsFor(const StatusModel& model, size_t reason) {
  uint64_t sum = 0;
  for (const WorkerSource& w : model.workers()) sum += w.counters->drops[reason].get();
  return sum;
}

json dropsJson(const StatusModel& model) {
  json drops = json::object();
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    drops[fwd::dropReasonName(static_cast<fwd::DropReason>(r))] = dropsFor(model, r);
  }
  return drops;
}

json errorJson(std::string_view message) { return json{{"error", message}}; }

// Every distinct probe target of a view's backends.
std::set<nodeport::ProbeTarget> probesOf(const StatusView* view) {
  std::set<nodeport::ProbeTarget> probes;
  if (view == nullptr) return probes;
  for (const VipView& vip : view->vips) {
    for (const PortView& port : vip.ports) {
      for (const BackendView& b : port.backends) {
        if (b.probe) probes.insert(*b.probe);
      }
    }
  }
  return probes;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

// ---- Prometheus text exposition format (version 0.0.4) --------------------------------

std::string escapeLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class PromWriter {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string>>;
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  template <typename V>
  void sample(std::string_view name, const Labels& labels, V value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ',';
        out_ += labels[i].first;
        out_ += "=\"";
        out_ += escapeLabel(labels[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    if constexpr (std::is_floating_point_v<V>) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", value);
      out_ += buf;
    } else {
      out_ += std::to_string(value);
    }
    out_ += '\n';
  }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string formatTime(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool bearerMatches(std::string_view token, std::string_view authorization) noexcept {
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty() || !authorization.starts_with(kScheme)) return false;
  authorization.remove_prefix(kScheme.size());
  // Compare digests, not the strings: equal-length inputs make CRYPTO_memcmp's time
  // independent of where the first difference is, and of the token's length.
  unsigned char want[SHA256_DIGEST_LENGTH];
  unsigned char got[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), want);
  SHA256(reinterpret_cast<const unsigned char*>(authorization.data()), authorization.size(), got);
  return CRYPTO_memcmp(want, got, SHA256_DIGEST_LENGTH) == 0;
}

std::expected<std::string, std::string> readTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected("api.token_file '" + path + "': cannot open");
  std::string line;
  std::getline(in, line);
  const auto first = line.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::unexpected("api.token_file '" + path + "': empty");
  const auto last = line.find_last_not_of(" \t\r\n");
  return line.substr(first, last - first + 1);
}

json statsJson(const StatusModel& model) {
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
      {"idle_sleeps", &WorkerCounters::idle_sleeps},
      {"affinity_hits", &WorkerCounters::affinity_hits},
      {"affinity_overflows", &WorkerCounters::affinity_overflows},
      {"half_open_flows", &WorkerCounters::half_open_flows},
      {"flow_index_slots", &WorkerCounters::flow_index_slots},
      {"half_open_evictions", &WorkerCounters::half_open_evictions},
      {"fragments_forwarded", &WorkerCounters::fragments_forwarded},
      {"redirected", &WorkerCounters::redirected},
      {"redirect_received", &WorkerCounters::redirect_received},
      {"tunneled", &WorkerCounters::tunneled},
      {"tunnel_stateless", &WorkerCounters::tunnel_stateless},
      {"frag_needed_sent", &WorkerCounters::frag_needed_sent},
      {"to_kernel", &WorkerCounters::to_kernel},
      {"from_kernel", &WorkerCounters::from_kernel},
      {"garp_sent", &WorkerCounters::garp_sent},
      {"nd_replies", &WorkerCounters::nd_replies},
      {"nd_requests", &WorkerCounters::nd_requests},
      {"icmp6_echo_replies", &WorkerCounters::icmp6_echo_replies},
      {"icmp_errors_translated", &WorkerCounters::icmp_errors_translated},
      {"na_sent", &WorkerCounters::na_sent},
  };
  json counters = json::object();
  for (const Field& f : kFields) counters[f.name] = sumWorkers(model, f.member);
  const auto view = model.view();
  return json{{"generation", view ? view->generation : 0},
              {"workers", model.workers().size()},
              {"counters", std::move(counters)},
              {"drops", dropsJson(model)}};
}

json vipsJson(const StatusSources& sources) {
  const auto view = sources.model->view();
  json vips = json::array();
  if (view) {
    for (const VipView& vip : view->vips) vips.push_back(vipObject(sources, vip));
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return json{{"generation", view ? view->generation : 0},
              {"time", formatTime(now_ms)},
              {"vips", std::move(vips)},
              {"drops", dropsJson(*sources.model)}};
}

std::optional<json> vipJson(const StatusSources& sources, const conf::IpAddress& address) {
  const auto view = sources.model->view();
  if (!view) return std::nullopt;
  for (const VipView& vip : view->vips) {
    if (vip.vip == address) return vipObject(sources, vip);
  }
  return std::nullopt;
}

json nodesJson(const StatusSources& sources) {
  const auto view = sources.model->view();
  json nodes = json::array();
  if (!view) return json{{"generation", 0}, {"nodes", nodes}};
  // One pass over every backend, gathered per node address (not a pass per node: the
  // view can hold Services x nodes backends).
  struct NodeUse {
    std::set<nodeport::ProbeTarget> probes;
    std::set<std::string> services;
    bool serving = false;
  };
  std::map<conf::IpAddress, NodeUse> uses;
  for (const VipView& vip : view->vips) {
    for (const PortView& port : vip.ports) {
      for (const BackendView& b : port.backends) {
        NodeUse& use = uses[b.address];
        use.services.insert(vip.owner);
        use.serving = use.serving || b.serving;
        if (b.probe) use.probes.insert(*b.probe);
      }
    }
  }
  for (const NodeView& node : view->nodes) {
    NodeUse use;  // a dual-stack node's backends are spread over its two addresses
    for (const conf::IpAddress& a : node.addresses) {
      if (auto it = uses.find(a); it != uses.end()) {
        use.probes.insert(it->second.probes.begin(), it->second.probes.end());
        use.services.insert(it->second.services.begin(), it->second.services.end());
        use.serving = use.serving || it->second.serving;
      }
    }
    json addresses = json::array();
    for (const conf::IpAddress& a : node.addresses) addresses.push_back(a.str());
    json checks = json::array();
    for (const auto& probe : use.probes) {
      const auto h = healthOf(sources, probe);
      json check = healthJson(probe, h);
      if (h) {
        json history = json::array();
        for (const HealthChange& c : h->history) {
          history.push_back(json{{"time", formatTime(c.unix_ms)}, {"from", c.from}, {"to", c.to},
                                 {"reason", c.reason}, {"detail", c.detail}});
        }
        check["probes"] = h->probes;
        check["failures"] = h->failures;
        check["history"] = std::move(history);
      }
      checks.push_back(std::move(check));
    }
    json entry{{"name", node.name},
               {"address", node.addresses.empty() ? "" : node.addresses.front().str()},
               {"addresses", std::move(addresses)},
               {"services", use.services},
               {"serving", use.serving},
               {"health", std::move(checks)}};
    // For operators only: NotReady does not take a node out (health checks decide).
    if (sources.node_ready) {
      const auto ready = sources.node_ready(node.name);
      entry["kubernetes_ready"] = ready ? json(*ready) : json(nullptr);
    }
    nodes.push_back(std::move(entry));
  }
  return json{{"generation", view->generation}, {"nodes", std::move(nodes)}};
}

// The Kubernetes source's state; {"enabled": false} without one.
json kubernetesJson(const StatusSources& sources) {
  if (!sources.kubernetes) return json{{"enabled", false}};
  json k = sources.kubernetes();
  k["enabled"] = true;
  return k;
}

json statusJson(const StatusSources& sources) {
  const StatusModel& model = *sources.model;
  const auto view = model.view();
  json workers = json::array();
  for (size_t i = 0; i < model.workers().size(); ++i) {
    const WorkerSource& w = model.workers()[i];
    const uint64_t applied = w.applied_generation ? w.applied_generation->load(std::memory_order_relaxed) : 0;
    workers.push_back(json{{"id", w.id},
                           {"lcore", w.lcore},
                           {"applied_generation", applied == ~uint64_t{0} ? json(nullptr) : json(applied)},
                           {"busy_ratio", model.busyRatio(i)},
                           {"active_flows", w.counters->active_flows.get()},
                           {"flow_capacity", w.flow_capacity},
                           {"flow6_capacity", w.flow6_capacity},
                           {"new_flows", w.counters->new_flows.get()},
                           {"rx_packets", w.counters->rx_packets.get()},
                           {"redirected", w.counters->redirected.get()},
                           {"redirect_received", w.counters->redirect_received.get()}});
  }
  size_t up = 0, draining = 0, down = 0, unknown = 0;
  const std::set<nodeport::ProbeTarget> probes = probesOf(view.get());
  for (const auto& probe : probes) {
    const auto h = healthOf(sources, probe);
    if (!h) ++unknown;
    else if (h->state == "up") ++up;
    else if (h->state == "draining") ++draining;
    else ++down;
  }
  const ReloadRecord reload = model.lastReload();
  json generation = nullptr;
  if (view) {
    generation = json{{"number", view->generation},
                      {"compiled", formatTime(view->compiled_unix_ms)},
                      {"compile_ms", view->compile_ms},
                      {"service_ports", view->stats.service_ports},
                      {"maglev_tables", view->stats.maglev_tables},
                      {"maglev_built", view->stats.maglev_built},
                      {"slots_moved", view->stats.slots_moved}};
  }
  return json{{"ready", sources.ready && sources.ready()},
              {"generation", std::move(generation)},
              {"generations_published", model.generationsPublished()},
              {"last_reload", reload.attempted ? json{{"ok", reload.ok},
                                                      {"message", reload.message},
                                                      {"time", formatTime(reload.unix_ms)}}
                                               : json(nullptr)},
              {"kubernetes", kubernetesJson(sources)},
              {"health", json{{"targets", probes.size()}, {"up", up}, {"draining", draining},
                              {"down", down}, {"unknown", unknown}}},
              {"workers", std::move(workers)}};
}

std::string metricsText(const StatusSources& sources) {
  const StatusModel& model = *sources.model;
  const auto view = model.view();
  PromWriter w;
  w.family("nodegate_ready", "gauge", "1 once every worker forwards with a published generation.");
  w.sample("nodegate_ready", {}, (sources.ready && sources.ready()) ? 1 : 0);
  w.family("nodegate_generation", "gauge", "Number of the published forwarding generation.");
  w.sample("nodegate_generation", {}, view ? view->generation : 0);
  w.family("nodegate_generations_published_total", "counter", "Forwarding generations published since start.");
  w.sample("nodegate_generations_published_total", {}, model.generationsPublished());
  w.family("nodegate_compile_duration_seconds", "gauge", "Time the last generation took to compile.");
  w.sample("nodegate_compile_duration_seconds", {}, view ? view->compile_ms / 1000.0 : 0.0);
  w.family("nodegate_maglev_slots_moved", "gauge", "Maglev slots that changed backend in the last generation.");
  w.sample("nodegate_maglev_slots_moved", {}, view ? view->stats.slots_moved : 0);

  struct BackendRow {
    PromWriter::Labels labels;
    TrafficCounters totals;
    bool serving;
    uint32_t weight;
  };
  struct PortRow {
    PromWriter::Labels labels;
    TrafficCounters totals;
    bool all_down;
  };
  std::vector<BackendRow> backends;
  std::vector<PortRow> ports;
  if (view) {
    for (const VipView& vip : view->vips) {
      for (const PortView& port : vip.ports) {
        PortRow row{.labels = {{"vip", vip.vip.str()}, {"port", std::to_string(port.port)},
                               {"protocol", protocolName(port.protocol)}, {"service", vip.owner}},
                    .totals = {}, .all_down = port.all_down};
        for (const BackendView& b : port.backends) {
          BackendRow br{.labels = row.labels, .totals = model.backendTotals(b.stats_id), .serving = b.serving,
                        .weight = b.weight};
          br.labels.emplace_back("node", b.node);
          br.labels.emplace_back("backend", conf::formatEndpoint(b.address, b.node_port));
          row.totals += br.totals;
          backends.push_back(std::move(br));
        }
        ports.push_back(std::move(row));
      }
    }
  }
  auto directional = [&](std::string_view name, std::string_view help, auto&& rows, uint64_t TrafficCounters::*in,
                         uint64_t TrafficCounters::*out) {
    w.family(name, "counter", help);
    for (const auto& r : rows) {
      auto l = r.labels;
      l.emplace_back("direction", "in");
      w.sample(name, l, r.totals.*in);
      l.back().second = "out";
      w.sample(name, l, r.totals.*out);
    }
  };
  directional("nodegate_service_port_packets_total", "Frames per VIP:port; in = client to node, out = node to client.",
              ports, &TrafficCounters::packets_in, &TrafficCounters::packets_out);
  directional("nodegate_service_port_bytes_total", "Ethernet frame bytes per VIP:port and direction.", ports,
              &TrafficCounters::bytes_in, &TrafficCounters::bytes_out);
  w.family("nodegate_service_port_new_flows_total", "counter", "Flows created per VIP:port.");
  for (const auto& r : ports) w.sample("nodegate_service_port_new_flows_total", r.labels, r.totals.new_flows);
  w.family("nodegate_service_port_active_flows", "gauge", "Flows in the flow tables per VIP:port.");
  for (const auto& r : ports) w.sample("nodegate_service_port_active_flows", r.labels, r.totals.active_flows);
  w.family("nodegate_service_port_all_backends_down", "gauge",
           "1 when no node of the VIP:port passes its health check (health.all_down applies).");
  for (const auto& r : ports) w.sample("nodegate_service_port_all_backends_down", r.labels, r.all_down ? 1 : 0);

  directional("nodegate_backend_packets_total", "Frames per backend (node:nodePort) of a VIP:port and direction.",
              backends, &TrafficCounters::packets_in, &TrafficCounters::packets_out);
  directional("nodegate_backend_bytes_total", "Ethernet frame bytes per backend and direction.", backends,
              &TrafficCounters::bytes_in, &TrafficCounters::bytes_out);
  w.family("nodegate_backend_new_flows_total", "counter", "Flows created per backend.");
  for (const auto& r : backends) w.sample("nodegate_backend_new_flows_total", r.labels, r.totals.new_flows);
  w.family("nodegate_backend_active_flows", "gauge", "Flows in the flow tables per backend.");
  for (const auto& r : backends) w.sample("nodegate_backend_active_flows", r.labels, r.totals.active_flows);
  w.family("nodegate_backend_serving", "gauge", "1 when the backend gets new flows in this generation.");
  for (const auto& r : backends) w.sample("nodegate_backend_serving", r.labels, r.serving ? 1 : 0);
  w.family("nodegate_backend_weight", "gauge", "Reported weight of the backend (0 = drain).");
  for (const auto& r : backends) w.sample("nodegate_backend_weight", r.labels, r.weight);

  // Health, per distinct probe target.
  const std::set<nodeport::ProbeTarget> probes = probesOf(view.get());
  std::vector<std::pair<std::string, HealthDetail>> health;
  for (const auto& probe : probes) {
    if (auto h = healthOf(sources, probe)) health.emplace_back(probe.url(), std::move(*h));
  }
  w.family("nodegate_health_target_state", "gauge", "1 for the current state of each probe target.");
  for (const auto& [url, h] : health) {
    for (const char* state : {"up", "draining", "down"}) {
      w.sample("nodegate_health_target_state", {{"target", url}, {"state", state}}, h.state == state ? 1 : 0);
    }
  }
  w.family("nodegate_health_transitions_total", "counter", "State changes of each probe target.");
  for (const auto& [url, h] : health) w.sample("nodegate_health_transitions_total", {{"target", url}}, h.transitions);
  w.family("nodegate_health_probes_total", "counter", "Probes completed per target.");
  for (const auto& [url, h] : health) w.sample("nodegate_health_probes_total", {{"target", url}}, h.probes);
  w.family("nodegate_health_probe_failures_total", "counter", "Probes that did not succeed, per target.");
  for (const auto& [url, h] : health) w.sample("nodegate_health_probe_failures_total", {{"target", url}}, h.failures);

  // Workers.
  w.family("nodegate_worker_busy_ratio", "gauge", "Share of the last second a worker spent on polls that received frames.");
  for (size_t i = 0; i < model.workers().size(); ++i) {
    w.sample("nodegate_worker_busy_ratio", {{"worker", std::to_string(model.workers()[i].id)}}, model.busyRatio(i));
  }
  w.family("nodegate_flows_active", "gauge", "Flows in a worker's flow tables, IPv4 and IPv6.");
  for (const WorkerSource& ws : model.workers()) {
    w.sample("nodegate_flows_active", {{"worker", std::to_string(ws.id)}}, ws.counters->active_flows.get());
  }
  w.family("nodegate_flows_capacity", "gauge", "Capacity of a worker's IPv4 flow table.");
  for (const WorkerSource& ws : model.workers()) {
    w.sample("nodegate_flows_capacity", {{"worker", std::to_string(ws.id)}}, ws.flow_capacity);
  }
  w.family("nodegate_flows6_capacity", "gauge", "Capacity of a worker's IPv6 flow table.");
  for (const WorkerSource& ws : model.workers()) {
    w.sample("nodegate_flows6_capacity", {{"worker", std::to_string(ws.id)}}, ws.flow6_capacity);
  }
  w.family("nodegate_flows_half_open", "gauge", "Half-open (SYN-sent) flows in a worker's flow tables, IPv4 and IPv6.");
  for (const WorkerSource& ws : model.workers()) {
    w.sample("nodegate_flows_half_open", {{"worker", std::to_string(ws.id)}}, ws.counters->half_open_flows.get());
  }
  w.family("nodegate_flow_index_slots", "gauge",
           "Slots of a worker's IPv4 flow index in use; it doubles as flows arrive, up to 4 per flow of capacity.");
  for (const WorkerSource& ws : model.workers()) {
    w.sample("nodegate_flow_index_slots", {{"worker", std::to_string(ws.id)}}, ws.counters->flow_index_slots.get());
  }
  struct Field {
    const char* name;
    const char* help;
    fwd::Counter fwd::WorkerCounters::*member;
  };
  static constexpr Field kWorkerCounters[] = {
      {"nodegate_rx_packets_total", "Frames received on data ports.", &fwd::WorkerCounters::rx_packets},
      {"nodegate_rx_bytes_total", "Bytes received on data ports.", &fwd::WorkerCounters::rx_bytes},
      {"nodegate_tx_packets_total", "Frames sent on data ports.", &fwd::WorkerCounters::tx_packets},
      {"nodegate_tx_bytes_total", "Bytes sent on data ports.", &fwd::WorkerCounters::tx_bytes},
      {"nodegate_flows_created_total", "Flows created.", &fwd::WorkerCounters::new_flows},
      {"nodegate_flows_expired_total", "Flows removed by expiry.", &fwd::WorkerCounters::expired_flows},
      {"nodegate_arp_replies_total", "ARP requests answered.", &fwd::WorkerCounters::arp_replies},
      {"nodegate_arp_requests_total", "ARP requests sent to resolve next hops.", &fwd::WorkerCounters::arp_requests},
      {"nodegate_icmp_echo_replies_total", "ICMP echo requests answered.", &fwd::WorkerCounters::icmp_echo_replies},
      {"nodegate_worker_idle_sleeps_total", "Back-off sleeps of a worker after runs of empty polls.",
       &fwd::WorkerCounters::idle_sleeps},
      {"nodegate_affinity_hits_total", "New flows placed on the node a client's session affinity remembered.",
       &fwd::WorkerCounters::affinity_hits},
      {"nodegate_affinity_overflows_total", "New flows whose session affinity could not be remembered (table full).",
       &fwd::WorkerCounters::affinity_overflows},
      {"nodegate_flows_half_open_evictions_total",
       "Half-open flows evicted, oldest first, to make room for a new SYN (half-open budget or table full).",
       &fwd::WorkerCounters::half_open_evictions},
      {"nodegate_fragments_forwarded_total", "IPv4 fragments forwarded (first fragments included).",
       &fwd::WorkerCounters::fragments_forwarded},
      {"nodegate_redirected_total",
       "Frames a worker handed to the worker that owns them (full-NAT replies on another worker's queue, ARP reply copies).",
       &fwd::WorkerCounters::redirected},
      {"nodegate_redirect_received_total", "Frames a worker took from its redirect ring.",
       &fwd::WorkerCounters::redirect_received},
      {"nodegate_tunneled_total", "Frames sent to a node IPIP-encapsulated (tunnel mode).",
       &fwd::WorkerCounters::tunneled},
      {"nodegate_tunnel_stateless_total",
       "Tunnel-mode new flows forwarded by the stateless Maglev choice because the flow table was full.",
       &fwd::WorkerCounters::tunnel_stateless},
      {"nodegate_frag_needed_sent_total",
       "ICMP fragmentation-needed answers sent to clients whose packet would not fit the tunnel.",
       &fwd::WorkerCounters::frag_needed_sent},
      {"nodegate_to_kernel_total",
       "Frames for the box itself handed to the kernel interface of their port (exception path; ARP reply copies included).",
       &fwd::WorkerCounters::to_kernel},
      {"nodegate_from_kernel_total", "Frames the kernel sent out of a data port (exception path).",
       &fwd::WorkerCounters::from_kernel},
      {"nodegate_garp_sent_total", "Gratuitous ARPs sent to announce VIPs.", &fwd::WorkerCounters::garp_sent},
      {"nodegate_nd_replies_total", "IPv6 Neighbor Advertisements sent for the box's addresses and VIPs.",
       &fwd::WorkerCounters::nd_replies},
      {"nodegate_nd_requests_total", "IPv6 Neighbor Solicitations sent to resolve next hops.",
       &fwd::WorkerCounters::nd_requests},
      {"nodegate_icmp6_echo_replies_total", "ICMPv6 echo replies sent for VIPs and box addresses.",
       &fwd::WorkerCounters::icmp6_echo_replies},
      {"nodegate_icmp_errors_translated_total",
       "IPv4 ICMP errors about full-NAT flows forwarded to the flow's other side with the quoted packet translated.",
       &fwd::WorkerCounters::icmp_errors_translated},
      {"nodegate_na_sent_total", "Unsolicited IPv6 Neighbor Advertisements sent to announce IPv6 VIPs.",
       &fwd::WorkerCounters::na_sent},
  };
  for (const Field& f : kWorkerCounters) {
    w.family(f.name, "counter", f.help);
    for (const WorkerSource& ws : model.workers()) {
      w.sample(f.name, {{"worker", std::to_string(ws.id)}}, (ws.counters->*f.member).get());
    }
  }
  w.family("nodegate_drops_total", "counter", "Frames not forwarded, by reason (docs/api.md lists them).");
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    w.sample("nodegate_drops_total", {{"reason", fwd::dropReasonName(static_cast<fwd::DropReason>(r))}},
             dropsFor(model, r));
  }
  return w.take();
}

StatusApi::StatusApi(StatusSources sources) : sources_(std::move(sources)) {}

StatusApi::~StatusApi() { stop(); }

void StatusApi::setToken(std::string token) {
  std::lock_guard lock(token_mutex_);
  token_ = std::move(token);
}

bool StatusApi::authorized(std::string_view authorization) const {
  std::lock_guard lock(token_mutex_);
  return token_.empty() || bearerMatches(token_, authorization);
}

bool StatusApi::admit(const httplib::Request& req, httplib::Response& res) const {
  if (authorized(req.get_header_value("Authorization"))) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  reply(res, 401, errorJson("this call needs 'Authorization: Bearer <token>' (api.token_file)"));
  return false;
}

void StatusApi::start(const conf::ApiConfig& api) {
  const std::string& listen = api.listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("api.listen '" + listen + "': expected host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(listen.substr(colon + 1));

  if (!api.tls_cert.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(api.tls_cert.c_str(), api.tls_key.c_str());
    if (!tls->is_valid()) {
      throw std::runtime_error("api.tls_cert '" + api.tls_cert + "' / api.tls_key '" + api.tls_key +
                               "': cannot load the certificate and key (PEM)");
    }
    server_ = std::move(tls);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  server_->new_task_queue = [] { return new httplib::ThreadPool(kApiThreads); };
  server_->set_payload_max_length(kMaxRequestBody);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_timeout(5);
  server_->set_keep_alive_max_count(100);
  // Every error is JSON with a message, including the ones httplib produces itself
  // (413 for an oversize body, 404 for an unknown path, 400 for a malformed request).
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 413) message = "request body larger than " + std::to_string(kMaxRequestBody) + " bytes";
    if (res.status == 404) message = "no such endpoint: " + req.method + " " + req.path;
    res.set_content(errorJson(message).dump() + "\n", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(ui::statusPageHtml()), "text/html; charset=utf-8");
    res.set_header("Cache-Control", "no-store");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = sources_.ready && sources_.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready: no generation forwarded yet\n", "text/plain");
  });
  server_->Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, statsJson(*sources_.model));
  });
  server_->Get("/v1/vips", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, vipsJson(sources_));
  });
  server_->Get(R"(/v1/vips/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.matches[1];
    const auto address = conf::IpAddress::parse(text);
    if (!address) return reply(res, 400, errorJson("'" + text + "' is not an IP address"));
    if (auto vip = vipJson(sources_, *address)) return reply(res, 200, *vip);
    reply(res, 404, errorJson("no VIP " + text));
  });
  server_->Get("/v1/nodes", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, nodesJson(sources_));
  });
  server_->Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, statusJson(sources_));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metricsText(sources_), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Post("/v1/reload", [this](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res)) return;
    if (!sources_.reload) return reply(res, 501, errorJson("reload is not available"));
    const ReloadResult result = sources_.reload();
    if (!result.ok) return reply(res, 400, errorJson(result.message));
    reply(res, 200, json{{"generation", result.generation}, {"message", result.message}});
  });

  // The cloud-provider API. Reads need no token; every change does.
  auto lb_call = [this](LoadBalancerCall::Op op, bool mutating, const httplib::Request& req, httplib::Response& res) {
    if (mutating && !admit(req, res)) return;
    if (!sources_.load_balancers) return reply(res, 501, errorJson("load balancer API is not available"));
    LoadBalancerCall call{.op = op};
    if (req.matches.size() >= 3) {
      call.namespace_name = req.matches[1];
      call.name = req.matches[2];
    }
    if (op == LoadBalancerCall::Op::kEnsure || op == LoadBalancerCall::Op::kUpdateNodes) {
      try {
        call.body = json::parse(req.body);
      } catch (const json::parse_error& e) {
        return reply(res, 400, errorJson(std::string("body: not JSON: ") + e.what()));
      }
    }
    const LoadBalancerAnswer answer = sources_.load_balancers(std::move(call));
    res.status = answer.status;
    res.set_content(answer.body + "\n", "application/json");
  };
  using Op = LoadBalancerCall::Op;
  const std::string lb_path = R"(/v1/loadbalancers/([^/]+)/([^/]+))";
  server_->Get("/v1/loadbalancers", [lb_call](const httplib::Request& req, httplib::Response& res) {
    lb_call(Op::kList, false, req, res);
  });
  server_->Get(lb_path, [lb_call](const httplib::Request& req, httplib::Response& res) {
    lb_call(Op::kGet, false, req, res);
  });
  server_->Put(lb_path, [lb_call](const httplib::Request& req, httplib::Response& res) {
    lb_call(Op::kEnsure, true, req, res);
  });
  server_->Put(lb_path + "/nodes", [lb_call](const httplib::Request& req, httplib::Response& res) {
    lb_call(Op::kUpdateNodes, true, req, res);
  });
  server_->Delete(lb_path, [lb_call](const httplib::Request& req, httplib::Response& res) {
    lb_call(Op::kDelete, true, req, res);
  });

  // Port 0 (tests) binds any free port; port() tells which.
  bound_port_ = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound_port_ <= 0) {
    throw std::runtime_error("api.listen '" + listen + "': cannot bind (in use or bad address)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void StatusApi::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ng::control
