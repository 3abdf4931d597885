#pragma once
// NodeGate configuration: the schema of DESIGN.md section 5 as plain C++ values, and the
// libconfig++ loader that fills it. No DPDK here. Addresses the data plane owns on its ports
// are IPv4 (host byte order) with an optional IPv6 side; addresses of Services, nodes,
// pools and source ranges are IpAddress / IpPrefix of either family (conf/ip_address.h).
//
// Threading: loadConfig/parseConfig are pure functions, safe on any thread.
// Errors: returned, never thrown; each names the file, the line and the setting path,
// e.g. "demo.conf:31: services.[0].ports.[0].node_port: 70000 is outside 1..65535".
// The first problem found is reported. Two shapes carry no setting path: libconfig
// syntax errors ("FILE:LINE: syntax error") and unreadable files ("FILE: cannot open:
// reason"). docs/config.md lists every setting and check.

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/ip_address.h"

namespace ng::conf {

enum class Mode { kFullNat, kTunnel };
enum class PortRole { kExternal, kInternal };
enum class Protocol { kTcp, kUdp };
enum class TrafficPolicy { kCluster, kLocal };
// How an externalTrafficPolicy Cluster Service's nodes are probed (KUBERNETES.md).
enum class ClusterProbe { kKubeProxy, kTcp, kNone };
// What a Service port does when none of its nodes passes its health check.
enum class AllDownPolicy { kFailOpen, kDrop };
// Kubernetes sessionAffinity: None, or ClientIP (same client address -> same node).
enum class SessionAffinity { kNone, kClientIp };

using Mac = std::array<uint8_t, 6>;

struct Ipv4Prefix {
  uint32_t address = 0;  // host byte order
  uint8_t length = 32;
  friend bool operator==(const Ipv4Prefix&, const Ipv4Prefix&) = default;
};

struct PortConfig {
  std::string name;
  std::string device;  // DPDK device string: "net_af_packet0,iface=ext0", "0000:03:00.0"
  PortRole role = PortRole::kExternal;
  Ipv4Prefix address;  // the box's own address on this port
  std::optional<uint32_t> gateway;
  // The box's IPv6 address on this port (setting "address6", host bits = the address) and
  // its IPv6 gateway ("gateway6": inside that prefix, or link-local as routers usually
  // advertise). Needed for IPv6 VIPs (external) and IPv6 nodes (internal).
  std::optional<IpPrefix> address6;
  std::optional<IpAddress> gateway6;
  uint16_t mtu = 1500;  // 68..9000
  // Name of the port's kernel interface when dataplane.exception_path is enabled
  // (default "ng-" + name; 1..15 characters, Linux's IFNAMSIZ). Boot-only.
  std::string kernel_iface;
};

// The exception path (fwd/exception.h): one kernel (TAP) interface per data port, with
// the port's MAC and address, takes the traffic for the box itself that the data plane
// does not handle (SSH, BGP, the health prober's answers); the kernel's frames leave by
// the data port. Boot-only.
struct ExceptionPathConfig {
  bool enabled = false;
  // Frames each worker may hand to the kernel per second (1..1000000), and at once after
  // a quiet spell (burst, 1..65536).
  uint32_t rate_pps = 10'000;
  uint32_t burst = 512;
};

struct FlowConfig {
  uint32_t capacity = 1'048'576;          // IPv4 flows per worker, 1..2^28
  // IPv6 flows per worker (a table of their own), 1024..2^28; 0 (setting absent) = a
  // quarter of capacity, at least 1024 (fwd::WorkerContext::defaultFlow6Capacity).
  uint32_t capacity6 = 0;
  uint32_t tcp_timeout = 900;             // seconds, established TCP
  uint32_t tcp_transitory_timeout = 60;   // seconds, closing TCP (SNAT port quarantine)
  uint32_t udp_timeout = 120;             // seconds
  uint32_t tcp_half_open_timeout = 10;    // seconds, SYN-sent TCP (no answer yet), 1..3600
  uint32_t half_open_budget = 25;         // percent of capacity half-open flows may hold, 1..100
};

// Each worker keeps one port rotation per SNAT address in a fixed array.
inline constexpr size_t kMaxSnatAddresses = 64;

struct SnatConfig {
  // Either family, at most kMaxSnatAddresses of each. Default: the internal port's
  // address, and its address6 when it has one. IPv6 flows take IPv6 sources.
  std::vector<IpAddress> addresses;
  [[nodiscard]] std::vector<IpAddress> of(IpFamily family) const;
};

// Tunnel mode's box-wide settings (docs/config.md, dataplane.tunnel). Live-reloadable.
struct TunnelConfig {
  // Outer source addresses of IPIP packets, one per flow by flow hash (the node's RSS
  // spreads flows by them). /16../32; network and broadcast addresses of a /30 or wider
  // are not used. Unset: the internal port's address alone.
  std::optional<Ipv4Prefix> source;
  // Outer source addresses of IPv6-in-IPv6 packets, the same way: an IPv6 prefix /112
  // ../128 without host bits; a prefix shorter than /127 does not use its first address
  // (the subnet-router anycast address, RFC 4291 sec. 2.6.1). Unset: the internal port's
  // address6 alone (an IPv6 tunnel-mode VIP then needs one).
  std::optional<IpPrefix> source6;
  uint32_t icmp_rate = 100;  // ICMP frag-needed / ICMPv6 Packet Too Big answers per second per worker, 0..1000000 (0 = none)
  uint32_t icmp_burst = 20;  // token bucket depth, 1..100000
};

struct DataplaneConfig {
  std::vector<std::string> eal;   // extra EAL arguments
  std::vector<unsigned> workers = {1};  // worker lcore ids; never the main lcore (0)
  std::vector<PortConfig> ports;  // exactly one external and one internal port
  Mode mode = Mode::kFullNat;
  SnatConfig snat;
  FlowConfig flows;
  // Packet buffers in the mempool; 0 = sized from ports, queues and descriptors. Raise it
  // for devices that hold buffers of their own (net_pcap with infinite_rx keeps a copy
  // of the whole capture). 0..16777216.
  uint32_t mbufs = 0;
  // Idle back-off: the longest a worker sleeps between empty polls, microseconds
  // (0..10000); 0 = busy-poll always (dedicated cores). Boot-only.
  uint32_t idle_sleep_us = 100;
  TunnelConfig tunnel;
  ExceptionPathConfig exception_path;
  // Every VIP is announced again (gratuitous ARP) this often, seconds (0..3600); 0 = only
  // when it appears. Reloads live.
  uint32_t garp_interval_s = 30;
};

struct ApiConfig {
  std::string listen = "127.0.0.1:9080";  // host:port; non-loopback needs token_file
  std::string token_file;                 // bearer token for mutating calls ("" = none)
  std::string tls_cert;                   // PEM; both or neither of tls_cert/tls_key
  std::string tls_key;
};

// True for 127.0.0.0/8, [::1] and localhost hosts of an api.listen value.
[[nodiscard]] bool isLoopbackListen(std::string_view listen) noexcept;

struct HealthConfig {
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  ClusterProbe cluster_probe = ClusterProbe::kKubeProxy;
  uint16_t kube_proxy_port = 10256;        // kube-proxy's /healthz
  std::optional<uint32_t> source_address;  // bind probes to it; default: kernel's choice
  AllDownPolicy all_down = AllDownPolicy::kFailOpen;
  // A node that drains (503) keeps its established flows this long, then they are cut;
  // 0 = until they end by themselves.
  uint32_t drain_timeout_s = 0;
};

struct PoolConfig {
  std::string name;
  std::vector<IpPrefix> cidrs;  // networks (host bits zero) of either family
};

enum class NodeAddressType { kInternalIp, kExternalIp };

// The Kubernetes controller (KUBERNETES.md). Where the API server is: `kubeconfig`, or
// `server` + `ca_file` + `token_file`, or (all three empty) the in-cluster service account.
struct KubernetesConfig {
  bool enabled = false;
  std::string kubeconfig;
  std::string context;     // kubeconfig context; "" = its current-context
  std::string server;      // "https://host:port"
  std::string ca_file;
  std::string token_file;
  // The loadBalancerClass handled; "" = act as the cluster's default load balancer and
  // handle only Services without a class.
  std::string class_name = "nodegate.io/lb";  // setting "class"
  // Which node address NodePort traffic goes to; the other type is the fallback.
  NodeAddressType node_address = NodeAddressType::kInternalIp;

  bool operator==(const KubernetesConfig&) const = default;
};

struct NodeConfig {
  std::string name;
  // One address per family, IPv4 first (setting "address", or "addresses" for a
  // dual-stack node). A VIP's traffic goes to the node address of the VIP's family; a
  // node without one is not a backend of that VIP.
  std::vector<IpAddress> addresses;
  [[nodiscard]] std::optional<IpAddress> address(IpFamily family) const;
  // Static neighbour entry for the node's address (benchmarks, static L2 set-ups);
  // normally the worker resolves it with ARP.
  std::optional<Mac> mac;
};

inline constexpr uint32_t kDefaultSessionAffinityTimeout = 10800;  // seconds (Kubernetes')
inline constexpr uint32_t kMaxSessionAffinityTimeout = 86400;

struct ServicePortConfig {
  std::string name;
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;       // 1..65535
  uint16_t node_port = 0;  // 1..65535
};

struct ServiceConfig {
  std::string namespace_name;  // setting "namespace"
  std::string name;
  // One VIP per family, IPv4 first (setting "vip", or "vips" for dual stack: Kubernetes'
  // ipFamilies). Every port is served on each.
  std::vector<IpAddress> vips;
  std::vector<ServicePortConfig> ports;
  TrafficPolicy external_traffic_policy = TrafficPolicy::kCluster;
  uint16_t health_check_node_port = 0;  // required with Local: GET node:port/healthz
  std::optional<Mode> mode;  // default: dataplane.mode
  std::vector<std::string> node_names;  // setting "nodes"; empty = every node
  // loadBalancerSourceRanges: clients allowed to open flows; empty = every source.
  // Networks (host bits zero) of either family, each listed once. When the list is not
  // empty, a VIP admits only clients in the ranges of its own family: an IPv4 VIP of a
  // Service that lists only IPv6 ranges admits nobody (as kube-proxy filters).
  std::vector<IpPrefix> source_ranges;
  SessionAffinity session_affinity = SessionAffinity::kNone;
  // sessionAffinityConfig.clientIP.timeoutSeconds: 1..86400; settable only with ClientIP.
  uint32_t session_affinity_timeout = kDefaultSessionAffinityTimeout;
};

struct Config {
  std::string source;  // file name the config came from
  DataplaneConfig dataplane;
  ApiConfig api;
  std::string state_dir = "/var/lib/nodegate";
  HealthConfig health;
  std::vector<PoolConfig> pools;
  KubernetesConfig kubernetes;
  std::vector<NodeConfig> nodes;
  std::vector<ServiceConfig> services;

  [[nodiscard]] const PortConfig* port(PortRole role) const noexcept;
};

struct ConfigError {
  std::string message;  // "FILE:LINE: SETTING: what is wrong"
};

// Reads and validates a config file.
[[nodiscard]] std::expected<Config, ConfigError> loadConfig(const std::string& path);
// Same, from text; `source_name` is used in error messages.
[[nodiscard]] std::expected<Config, ConfigError> parseConfig(std::string_view text,
                                                             std::string_view source_name);

// Helpers shared with the rest of the control plane.
[[nodiscard]] std::optional<uint32_t> parseIpv4(std::string_view text) noexcept;
[[nodiscard]] std::optional<Ipv4Prefix> parseIpv4Prefix(std::string_view text) noexcept;
[[nodiscard]] std::string formatIpv4(uint32_t address);
[[nodiscard]] std::optional<Mac> parseMac(std::string_view text) noexcept;
// "10.0.0.1:80", "[fd00::1]:80".
[[nodiscard]] std::string formatEndpoint(const IpAddress& address, uint16_t port);

}  // namespace ng::conf
