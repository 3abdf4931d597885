#include "control/ngctl/format.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ng::ngctl {
namespace {

using nlohmann::json;

// --- tolerant field access: the API may be older or newer than this ngctl ----------------

const json* field(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string text(const json& j, std::string_view key, std::string fallback = "-") {
  const json* v = field(j, key);
  if (v == nullptr || v->is_null()) return fallback;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  return fallback;
}

std::optional<double> number(const json& j, std::string_view key) {
  const json* v = field(j, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

const json& objectOrEmpty(const json& j, std::string_view key) {
  static const json kEmptyObject = json::object();
  const json* v = field(j, key);
  return v != nullptr && v->is_object() ? *v : kEmptyObject;
}

const json& arrayOrEmpty(const json& j, std::string_view key) {
  static const json kEmptyArray = json::array();
  const json* v = field(j, key);
  return v != nullptr && v->is_array() ? *v : kEmptyArray;
}

std::string fixed1(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Counters exactly as sent (uint64 survives; a float prints with one decimal).
std::string exact(const json& j, std::string_view key) {
  const json* v = field(j, key);
  if (v == nullptr) return "-";
  if (v->is_number_integer()) return v->dump();
  if (v->is_number_float()) return fixed1(v->get<double>());
  return "-";
}

std::string humanField(const json& j, std::string_view key) {
  const auto v = number(j, key);
  return v ? humanize(*v) : "-";
}

// "10.100.0.100:80", "[2001:db8::1]:80".
std::string hostPort(const std::string& host, const std::string& port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

// --- aligned columns -----------------------------------------------------------------------

enum class Align { kLeft, kRight };

class Table {
 public:
  explicit Table(std::vector<Align> align) : align_(std::move(align)) {}

  void add(std::vector<std::string> row) {
    row.resize(align_.size());
    rows_.push_back(std::move(row));
  }
  [[nodiscard]] bool empty() const { return rows_.empty(); }

  // Two spaces between columns, each as wide as its widest cell; no trailing blanks.
  [[nodiscard]] std::string render(std::string_view indent = "") const {
    std::vector<size_t> width(align_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t c = 0; c < row.size(); ++c) {
        if (c > 0) line += "  ";
        const size_t pad = width[c] - row[c].size();
        if (align_[c] == Align::kRight) line.append(pad, ' ');
        line += row[c];
        if (align_[c] == Align::kLeft) line.append(pad, ' ');
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// --- shared pieces -----------------------------------------------------------------------

// The per-port and per-backend counter keys of /v1/vips, in the order people read them.
constexpr std::array<std::string_view, 6> kTrafficKeys = {
    "packets_in", "bytes_in", "packets_out", "bytes_out", "new_flows", "active_flows"};

// Keys of `counters` and `rates` in kTrafficKeys order, then any the box added since.
std::vector<std::string> trafficKeys(const json& owner) {
  std::vector<std::string> keys(kTrafficKeys.begin(), kTrafficKeys.end());
  for (const char* group : {"counters", "rates"}) {
    for (const auto& [k, v] : objectOrEmpty(owner, group).items()) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  return keys;
}

std::string healthSummary(const json& backend) {
  const json& health = objectOrEmpty(backend, "health");
  std::string s = text(health, "state");
  const std::string reason = text(health, "reason", "");
  if (!reason.empty()) s += " (" + reason + ")";
  return s;
}

bool allDown(const json& port) {
  if (const json* v = field(port, "all_backends_down"); v != nullptr && v->is_boolean()) {
    return v->get<bool>();
  }
  const json& backends = arrayOrEmpty(port, "backends");
  return std::all_of(backends.begin(), backends.end(), [](const json& b) {
    return text(objectOrEmpty(b, "health"), "state") == "down";
  });
}

// "" when traffic flows; otherwise the marker an operator must not miss.
std::string portWarning(const json& port) {
  if (arrayOrEmpty(port, "backends").empty()) return "!! NO BACKENDS";
  return allDown(port) ? "!! ALL BACKENDS DOWN" : "";
}

std::string dropsLine(const json& drops) {
  std::string s;
  for (const auto& [name, value] : drops.items()) {
    if (!value.is_number() || value.get<double>() == 0) continue;
    s += (s.empty() ? "" : "  ") + name + "=" + value.dump();
  }
  return s;
}

}  // namespace

std::string humanize(double value) {
  if (!std::isfinite(value) || value < 0) return "-";
  static constexpr std::array<const char*, 7> kUnits = {"", "K", "M", "G", "T", "P", "E"};
  double x = value;
  size_t unit = 0;
  char buf[64];
  while (true) {
    if (unit == 0 && x == std::floor(x) && x < 1000) {
      std::snprintf(buf, sizeof buf, "%.0f", x);
      return buf;
    }
    if (x < 9.95) {
      std::snprintf(buf, sizeof buf, "%.1f%s", x, kUnits[unit]);
      return buf;
    }
    if (std::round(x) < 1000 || unit + 1 == kUnits.size()) {
      std::snprintf(buf, sizeof buf, "%.0f%s", std::round(x), kUnits[unit]);
      return buf;
    }
    x /= 1000;
    ++unit;
  }
}

std::string formatVipTable(const json& doc) {
  std::string out = "NodeGate generation " + text(doc, "generation") + " at " + text(doc, "time") + "\n";
  using enum Align;
  Table t({kLeft, kLeft, kLeft, kRight, kRight, kRight, kRight, kRight, kRight, kLeft});
  t.add({"Prot LocalAddress:Port", "Mode", "Owner", "ActFlows", "NewFlows/s", "InPkt/s", "OutPkt/s",
         "InBytes/s", "OutBytes/s"});
  t.add({"  -> RemoteAddress:Port", "Weight", "Health", "", "", "", "", "", "", "Node"});
  const json& vips = arrayOrEmpty(doc, "vips");
  for (const json& vip : vips) {
    const std::string address = text(vip, "vip");
    const json& ports = arrayOrEmpty(vip, "ports");
    if (ports.empty()) {
      t.add({"-    " + address, text(vip, "mode"), text(vip, "owner"), "", "", "", "", "", "",
             "!! NO PORTS"});
      continue;
    }
    for (const json& port : ports) {
      const json& counters = objectOrEmpty(port, "counters");
      const json& rates = objectOrEmpty(port, "rates");
      std::string proto = text(port, "protocol");
      proto.resize(std::max<size_t>(proto.size(), 4), ' ');
      t.add({proto + " " + hostPort(address, text(port, "port")), text(vip, "mode"), text(vip, "owner"),
             humanField(counters, "active_flows"), humanField(rates, "new_flows"),
             humanField(rates, "packets_in"), humanField(rates, "packets_out"),
             humanField(rates, "bytes_in"), humanField(rates, "bytes_out"), portWarning(port)});
      for (const json& b : arrayOrEmpty(port, "backends")) {
        const json& bc = objectOrEmpty(b, "counters");
        const json& br = objectOrEmpty(b, "rates");
        t.add({"  -> " + hostPort(text(b, "address"), text(b, "node_port")), text(b, "weight"),
               healthSummary(b), humanField(bc, "active_flows"), humanField(br, "new_flows"),
               humanField(br, "packets_in"), humanField(br, "packets_out"), humanField(br, "bytes_in"),
               humanField(br, "bytes_out"), text(b, "node")});
      }
    }
  }
  out += t.render();
  if (vips.empty()) out += "(no VIPs)\n";
  if (const std::string drops = dropsLine(objectOrEmpty(doc, "drops")); !drops.empty()) {
    out += "Drops: " + drops + "\n";
  }
  return out;
}

std::string formatVipDetail(const json& vip) {
  std::string out;
  {
    Table t({Align::kLeft, Align::kLeft});
    t.add({"VIP:", text(vip, "vip")});
    t.add({"Owner:", text(vip, "owner")});
    t.add({"Source:", text(vip, "source")});
    t.add({"Mode:", text(vip, "mode") + " (ipMode " + text(vip, "ip_mode") + ")"});
    out += t.render();
  }
  const std::string address = text(vip, "vip");
  const json& ports = arrayOrEmpty(vip, "ports");
  if (ports.empty()) out += "\n(no ports)\n";
  for (const json& port : ports) {
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict, PR 105329) on "\n" + string.
    out += '\n';
    out += text(port, "protocol") + " " + hostPort(address, text(port, "port"));
    if (const std::string name = text(port, "name", ""); !name.empty()) out += "  name " + name;
    out += "  nodePort " + text(port, "node_port") + "  externalTrafficPolicy " +
           text(port, "external_traffic_policy") + "\n";
    if (const std::string warning = portWarning(port); !warning.empty()) out += "  " + warning + "\n";

    const json& backends = arrayOrEmpty(port, "backends");
    for (const json& b : backends) {
      const json& health = objectOrEmpty(b, "health");
      out += "  Backend " + text(b, "node") + "  " + hostPort(text(b, "address"), text(b, "node_port")) +
             "  weight " + text(b, "weight");
      if (const json* s = field(b, "serving"); s != nullptr && s->is_boolean()) {
        out += s->get<bool>() ? "  serving" : "  not serving";
      }
      out += "\n";
      std::string h = text(health, "state");
      const std::string reason = text(health, "reason", "");
      const std::string detail = text(health, "detail", "");
      if (!reason.empty() || !detail.empty()) {
        h += " (" + reason + (!reason.empty() && !detail.empty() ? ": " : "") + detail + ")";
      }
      if (const std::string since = text(health, "since", ""); !since.empty()) h += " since " + since;
      if (text(health, "state") == "unchecked") h += ", no probe configured";
      out += "    health:  " + h + "\n";
      if (const std::string probe = text(health, "probe", ""); !probe.empty()) {
        out += "    probe:   " + probe + "\n";
      }
    }

    // Every counter of the port and of each backend, exact; rates with one decimal.
    const std::vector<std::string> keys = trafficKeys(port);
    std::vector<Align> align(keys.size() + 1, Align::kRight);
    align[0] = Align::kLeft;
    Table t(align);
    std::vector<std::string> header{"Counters"};
    header.insert(header.end(), keys.begin(), keys.end());
    t.add(header);
    auto addRows = [&](const std::string& label, const json& owner) {
      const json& counters = objectOrEmpty(owner, "counters");
      const json& rates = objectOrEmpty(owner, "rates");
      std::vector<std::string> total{label + " total"};
      std::vector<std::string> perSecond{label + " /s"};
      for (const std::string& k : keys) {
        total.push_back(exact(counters, k));
        const auto r = number(rates, k);
        perSecond.push_back(r ? fixed1(*r) : "-");
      }
      t.add(total);
      t.add(perSecond);
    };
    addRows("port", port);
    for (const json& b : backends) addRows(text(b, "node"), b);
    out += t.render("  ");
  }
  return out;
}

namespace {

bool isGauge(std::string_view name) { return name == "active_flows"; }

}  // namespace

std::string formatStats(const json& stats) {
  std::string out = "Generation " + text(stats, "generation") + ", workers " + text(stats, "workers") + "\n";
  Table counters({Align::kLeft, Align::kRight});
  counters.add({"Counter", "Value"});
  for (const auto& [name, value] : objectOrEmpty(stats, "counters").items()) {
    counters.add({name, value.is_number() ? value.dump() : "-"});
  }
  out += counters.render();
  Table drops({Align::kLeft, Align::kRight});
  drops.add({"Drop", "Count"});
  bool any = false;
  for (const auto& [name, value] : objectOrEmpty(stats, "drops").items()) {
    if (!value.is_number() || value.get<double>() == 0) continue;
    drops.add({name, value.dump()});
    any = true;
  }
  out += "\n";
  out += any ? drops.render() : std::string("Drops: none\n");
  return out;
}

std::string formatStatsDelta(const json& prev, const json& cur, double seconds) {
  std::string out = "Generation " + text(cur, "generation") + ", workers " + text(cur, "workers") +
                    ", rates over " + fixed1(seconds) + " s\n";
  auto rate = [&](const json& before, std::string_view name, const json& now) -> std::string {
    const auto a = number(before, name);
    if (!a || !now.is_number() || !(seconds > 0)) return "-";
    const double b = now.get<double>();
    return b < *a ? "-" : humanize((b - *a) / seconds);
  };
  const json& prevCounters = objectOrEmpty(prev, "counters");
  Table counters({Align::kLeft, Align::kRight, Align::kRight});
  counters.add({"Counter", "Value", "Per-second"});
  for (const auto& [name, value] : objectOrEmpty(cur, "counters").items()) {
    counters.add({name, value.is_number() ? value.dump() : "-",
                  isGauge(name) ? "-" : rate(prevCounters, name, value)});
  }
  out += counters.render();
  const json& prevDrops = objectOrEmpty(prev, "drops");
  Table drops({Align::kLeft, Align::kRight, Align::kRight});
  drops.add({"Drop", "Count", "Per-second"});
  bool any = false;
  for (const auto& [name, value] : objectOrEmpty(cur, "drops").items()) {
    if (!value.is_number() || value.get<double>() == 0) continue;
    drops.add({name, value.dump(), rate(prevDrops, name, value)});
    any = true;
  }
  out += "\n";
  out += any ? drops.render() : std::string("Drops: none\n");
  return out;
}

std::string formatIngress(const json& response) {
  std::string out = text(response, "namespace") + "/" + text(response, "name") + ": ";
  std::string ingress;
  for (const json& i : arrayOrEmpty(response, "ingress")) {
    std::string one = text(i, "ip", "");
    if (one.empty()) one = text(i, "hostname");
    if (const std::string mode = text(i, "ipMode", ""); !mode.empty()) one += " (ipMode " + mode + ")";
    ingress += (ingress.empty() ? "" : ", ") + one;
  }
  out += ingress.empty() ? "applied, no ingress assigned yet" : "ingress " + ingress;
  return out + "\n";
}

}  // namespace ng::ngctl
