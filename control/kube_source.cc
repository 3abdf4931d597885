#include "control/kube_source.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "control/status_api.h"

namespace ng::control {
namespace {

using nlohmann::json;

int64_t unixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

json reflectorJson(const kube::ReflectorStatus& s) {
  json j{{"synced", s.synced},
         {"resource_version", s.resource_version},
         {"objects", s.objects},
         {"lists", s.lists},
         {"watches", s.watches},
         {"relists_after_expiry", s.relists_after_expiry},
         {"events", s.events},
         {"malformed", s.malformed},
         {"failures", s.failures},
         {"failing_since", nullptr},
         {"last_error", s.last_error},
         {"last_contact", nullptr}};
  if (s.failing_since) j["failing_since"] = formatTime(unixMs(*s.failing_since));
  if (s.last_contact.time_since_epoch().count() != 0) j["last_contact"] = formatTime(unixMs(s.last_contact));
  return j;
}

}  // namespace

std::expected<kube::KubeAccess, std::string> kubeAccessFor(const conf::KubernetesConfig& config) {
  if (!config.kubeconfig.empty()) return kube::loadKubeconfig(config.kubeconfig, config.context);
  if (config.server.empty()) return kube::inClusterAccess();
  std::ifstream in(config.ca_file);
  if (!in) return std::unexpected("kubernetes.ca_file: cannot read " + config.ca_file);
  std::stringstream pem;
  pem << in.rdbuf();
  if (pem.str().empty()) return std::unexpected("kubernetes.ca_file: " + config.ca_file + " is empty");
  return kube::KubeAccess{.server = config.server, .ca_pem = pem.str(), .token_file = config.token_file};
}

std::expected<std::unique_ptr<KubeSource>, std::string> KubeSource::create(const conf::KubernetesConfig& config,
                                                                           conf::Mode mode, KubeController::Apply apply) {
  auto access = kubeAccessFor(config);
  if (!access) return std::unexpected(access.error());
  std::unique_ptr<KubeSource> source(new KubeSource());
  source->server_ = access->server;
  for (auto* client : {&source->services_client_, &source->nodes_client_, &source->writes_client_,
                       &source->events_client_}) {
    auto made = kube::HttpApiClient::create(*access);
    if (!made) return std::unexpected("kubernetes: " + made.error());
    *client = std::move(*made);
  }
  source->events_ = std::make_unique<KubeEventRecorder>(*source->events_client_);
  source->controller_ = std::make_unique<KubeController>(
      KubeController::Options{.class_name = config.class_name,
                              .node_address = config.node_address,
                              .ip_mode = mode == conf::Mode::kFullNat ? "Proxy" : "VIP"},
      *source->writes_client_, std::move(apply), source->events_.get());
  source->services_ = std::make_unique<kube::Reflector>(
      *source->services_client_, kube::Reflector::Options{.path = "/api/v1/services"},
      source->controller_->serviceSink());
  source->nodes_ = std::make_unique<kube::Reflector>(
      *source->nodes_client_, kube::Reflector::Options{.path = "/api/v1/nodes"}, source->controller_->nodeSink());
  return source;
}

KubeSource::~KubeSource() { stop(); }

void KubeSource::start() {
  spdlog::info("kubernetes: watching Services and Nodes at {}", server_);
  controller_thread_ = std::jthread([this](std::stop_token stop) { controller_->run(stop); });
  services_thread_ = std::jthread([this](std::stop_token stop) { services_->run(stop); });
  nodes_thread_ = std::jthread([this](std::stop_token stop) { nodes_->run(stop); });
}

void KubeSource::stop() {
  // Reflectors first (they feed the controller), then the controller (it may be waiting
  // for the control thread, which it gives up on a stop), then the Events.
  for (std::jthread* t : {&services_thread_, &nodes_thread_, &controller_thread_}) {
    if (t->joinable()) {
      t->request_stop();
      t->join();
    }
  }
  if (writes_client_) writes_client_->cancel();
  events_.reset();
}

json KubeSource::status() const {
  const KubeController::Stats c = controller_->stats();
  const kube::ReflectorStatus s = services_->status();
  const kube::ReflectorStatus n = nodes_->status();
  // Fail static: whichever watch has been failing longest says since when.
  json failing_since = nullptr;
  std::optional<std::chrono::system_clock::time_point> since;
  for (const auto* r : {&s, &n}) {
    if (r->failing_since && (!since || *r->failing_since < *since)) since = r->failing_since;
  }
  if (since) failing_since = formatTime(unixMs(*since));
  return json{{"server", server_},
              {"synced", c.synced},
              {"failing_since", failing_since},
              {"services_cached", c.services},
              {"load_balancers", c.ours},
              {"candidate_nodes", c.candidate_nodes},
              {"passes", c.passes},
              {"applies", c.applies},
              {"status_writes", c.status_writes},
              {"finalizer_writes", c.finalizer_writes},
              {"write_failures", c.write_failures},
              {"retrying", c.retrying},
              {"last_write_error", c.last_error},
              {"events", {{"posted", events_ ? events_->posted() : 0},
                          {"dropped", events_ ? events_->dropped() : 0},
                          {"failed", events_ ? events_->failed() : 0}}},
              {"watch", {{"services", reflectorJson(s)}, {"nodes", reflectorJson(n)}}}};
}

}  // namespace ng::control
