#pragma once
// A /v1/vips document in the API's shape (docs/api.md): one VIP, one port, backend n1 up
// and n2 down (connection refused). Shared by the format and the client tests.

namespace ng::ngctl::test {

inline constexpr const char* kSampleVips = R"({
  "generation": 4, "time": "2026-11-24T03:00:00Z",
  "vips": [
    {"vip": "10.100.0.100", "owner": "default/web", "source": "config", "mode": "fullnat", "ip_mode": "Proxy",
     "ports": [
      {"port": 80, "protocol": "TCP", "name": "http", "node_port": 30080, "external_traffic_policy": "Cluster",
       "all_backends_down": false,
       "counters": {"packets_in": 120, "bytes_in": 9000, "packets_out": 110, "bytes_out": 150000, "new_flows": 12, "active_flows": 2},
       "rates": {"packets_in": 3.5, "bytes_in": 210.0, "packets_out": 3.0, "bytes_out": 4000.0, "new_flows": 0.5},
       "backends": [
        {"node": "n1", "address": "10.200.0.11", "node_port": 30080, "weight": 1, "serving": true,
         "health": {"state": "up", "reason": "", "detail": "", "since": "2026-11-24T02:59:00Z",
                    "probe": "http://10.200.0.11:10256/healthz"},
         "counters": {"packets_in": 100, "bytes_in": 7500, "packets_out": 95, "bytes_out": 1530000, "new_flows": 10, "active_flows": 2},
         "rates": {"packets_in": 3.5, "bytes_in": 210.0, "packets_out": 3.0, "bytes_out": 2300000.0, "new_flows": 0.5}},
        {"node": "n2", "address": "10.200.0.12", "node_port": 30080, "weight": 1, "serving": false,
         "health": {"state": "down", "reason": "refused", "detail": "connection refused",
                    "since": "2026-11-24T03:00:00Z", "probe": "http://10.200.0.12:10256/healthz"},
         "counters": {"packets_in": 20, "bytes_in": 1500, "packets_out": 15, "bytes_out": 0, "new_flows": 2, "active_flows": 0},
         "rates": {"packets_in": 0.0, "bytes_in": 0.0, "packets_out": 0.0, "bytes_out": 0.0, "new_flows": 0.0}}
       ]}
     ]}
  ],
  "drops": {"no_backend": 0, "no_service": 3, "ttl_exceeded": 0}
})";

}  // namespace ng::ngctl::test
