#!/usr/bin/env bash
# Network-namespace topology for the NodeGate demo and end-to-end tests.
#
#   ${P}client                ${P}lb (the box)               ${P}sw               ${P}n1..n3
#   eth0 10.100.0.2/24 ── veth ── ext0   int0 ── veth ── p-lb ┐                  eth0 10.200.0.1x/24
#   default via 10.100.0.1        (no IPv4, no IPv6:          br0 ─ p-n1..p-n3 ── veth ── (HTTP :30080,
#                                  NodeGate owns them)         │                   UDP :30053, health
#                                                              │                   :10256, :32000)
#                                 mgmt0 10.200.0.2/24 ── veth ─ p-mgmt ┘
#
# ext0 and int0 carry no kernel address and have IPv6 disabled, so the kernel of the box
# never answers for it: the user-space LB (DPDK net_af_packet, conf/demo.conf) owns them.
# mgmt0 is the box's management interface on the node network: the kernel's own
# address, from which NodeGate's health probes reach the nodes (arp_ignore=1 keeps the
# kernel from answering for it on the data ports).
# Every node also runs a health server: kube-proxy's :10256/healthz and a Service's
# healthCheckNodePort :32000/healthz, each answering what a state file says
# (ng_node_health), so tests can turn a node 503 or change its weight.
# Offloads are off on every veth end, because the LB reads frames with AF_PACKET, where
# partial checksums and 64 KiB GSO/GRO super-frames would otherwise break forwarding.
# Every node runs a real HTTP server on :30080 serving `whoami` (its name) and `big.bin`
# (50 MiB of deterministic bytes, one file hard-linked into every node's directory), and
# a UDP echo server on :30053 that answers each datagram with "NAME " + the datagram.
#
# With NG_NETNS_ROUTER=1 in the environment (set it before sourcing, so every function
# agrees), a router ${P}rtr joins the node network (eth0 10.200.0.254 on br0) and reaches
# the client over a second link (rtr/eth1 10.150.0.1 <-> client/eth1 10.150.0.2); the
# nodes route 10.100.0.0/24 (the client side, VIPs' clients) via the router. That is the
# path of direct server return (tunnel mode): replies from the nodes reach the client
# through ${P}rtr, never through the box. rp_filter is off on the router and the client
# (the client's replies arrive on eth1, its route to the VIPs is via eth0).
# NG_NETNS_MGMT=0 (environment, read by ng_netns_up) builds the box without mgmt0: its
# kernel then reaches the nodes and the client only through NodeGate's exception path
# (kernel interfaces behind the data ports, dataplane.exception_path in the config).
#
# Interfaces are created directly inside their namespaces, so their names never meet in
# the root namespace and two topologies with different prefixes coexist.
#
# CLI:     scripts/netns.sh up PREFIX | down PREFIX | status PREFIX
# Library: source scripts/netns.sh, then
#   ng_netns_up PREFIX         build it (returns non-zero on failure; call down anyway)
#   ng_netns_down PREFIX       kill every process in its namespaces, delete them, and the
#                              work directory; safe to call twice or on a partial build
#   ng_netns_names PREFIX      the namespace names, one per line
#   ng_netns_workdir PREFIX    directory with the served files and the servers' logs
#   ng_netns_big_sha256 PREFIX sha256 of big.bin
#   ng_netns_pids PREFIX       pids of every process inside the namespaces
#   ng_api PREFIX PATH         GET the box's API (inside ${P}lb), body on stdout
#   ng_api_code PREFIX PATH    the same, HTTP status code only
#   ng_node_health PREFIX NODE kube-proxy|hcnp CODE [WEIGHT]
#                              what the node's health endpoint answers from now on: CODE
#                              200 or 503, WEIGHT = X-Load-Balancing-Endpoint-Weight (hcnp)
#   ng_node_link PREFIX NODE up|down
#                              the node's link (down = the node vanishes from the network)
#   ng_wait_ready PREFIX PID [SECONDS]
#                              poll /readyz every 0.1 s: 0 once it is 200, 1 after
#                              SECONDS (default 30), 2 when PID (nodegate) has exited
# IPv6 (NG_NETNS_IPV6=1 when building): the client gets $NG_CLIENT_ADDR6/64 (default
# route via the box's $NG_GATEWAY_ADDR6), the nodes $NG_NODE_ADDRS6, mgmt0 $NG_LB_MGMT_ADDR6,
# and every server listens on both families; ext0 and int0 stay without IPv6 in the kernel
# (NodeGate answers Neighbor Solicitations there itself). Addresses skip DAD (nodad), so
# they are usable at once. Default: IPv6 off everywhere. With NG_NETNS_ROUTER=1 too, the
# router gets $NG_ROUTER_NODE_ADDR6 (br0) and $NG_ROUTER_CLIENT_ADDR6 (<-> client eth1
# $NG_CLIENT_SIDE_ADDR6), forwards IPv6, and the nodes route the client's /64 via it.
# Needs root, iproute2, ethtool, python3 and curl.

# Topology constants, shared with the demo and the tests.
# shellcheck disable=SC2034  # used by the scripts that source this file
NG_CLIENT_ADDR=10.100.0.2
NG_GATEWAY_ADDR=10.100.0.1
NG_VIP=10.100.0.100
NG_LB_INT_ADDR=10.200.0.1
NG_LB_MGMT_ADDR=10.200.0.2
NG_KUBE_PROXY_PORT=10256
NG_HCNP=32000
NG_NODE_NAMES=(n1 n2 n3)
NG_NODE_ADDRS=(10.200.0.11 10.200.0.12 10.200.0.13)
NG_NODE_PORT=30080
NG_UDP_NODE_PORT=30053
NG_API=http://127.0.0.1:9080
NG_CLIENT_ADDR6=fd00:100::2
NG_GATEWAY_ADDR6=fd00:100::1
NG_VIP6=fd00:100::100
NG_LB_INT_ADDR6=fd00:200::1
NG_LB_MGMT_ADDR6=fd00:200::2
NG_NODE_ADDRS6=(fd00:200::11 fd00:200::12 fd00:200::13)
NG_BIG_BYTES=$((50 * 1024 * 1024))
NG_ROUTER_NODE_ADDR=10.200.0.254
NG_ROUTER_CLIENT_ADDR=10.150.0.1
# With NG_NETNS_ROUTER=1 and NG_NETNS_IPV6=1: the router's IPv6 addresses and the
# client's on its second link (the IPv6 path of direct server return).
NG_ROUTER_NODE_ADDR6=fd00:200::fe
NG_ROUTER_CLIENT_ADDR6=fd00:150::1
NG_CLIENT_SIDE_ADDR6=fd00:150::2
NG_CLIENT_SIDE_ADDR=10.150.0.2

ng_netns_names() {
  local p="$1" n
  printf '%s\n' "${p}client" "${p}lb" "${p}sw"
  for n in "${NG_NODE_NAMES[@]}"; do printf '%s\n' "${p}${n}"; done
  if [[ "${NG_NETNS_ROUTER:-0}" == 1 ]]; then printf '%s\n' "${p}rtr"; fi
}

ng_netns_workdir() { printf '%s/nodegate-netns.%s\n' "${NG_NETNS_TMP:-/tmp}" "$1"; }

ng_netns_big_sha256() { cat "$(ng_netns_workdir "$1")/big.bin.sha256"; }

ng_api() { ip netns exec "${1}lb" curl -s --max-time 2 "$NG_API$2"; }
ng_api_code() { ip netns exec "${1}lb" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$NG_API$2"; }

ng_wait_ready() {
  local p="$1" pid="$2" limit="${3:-30}" i
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 2
    [[ "$(ng_api_code "$p" /readyz)" == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

ng_node_health() {
  local p="$1" n="$2" which="$3" code="$4" weight="${5:-1}"
  printf '%s %s\n' "$code" "$weight" >"$(ng_netns_workdir "$p")/health/$n/$which.tmp"
  mv "$(ng_netns_workdir "$p")/health/$n/$which.tmp" "$(ng_netns_workdir "$p")/health/$n/$which"
}

ng_node_link() { ip -n "${1}${2}" link set eth0 "$3"; }

_ng_netns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF -- "$1"; }

ng_netns_pids() {
  local ns
  while read -r ns; do
    _ng_netns_exists "$ns" && ip netns pids "$ns" 2>/dev/null
  done < <(ng_netns_names "$1")
  return 0
}

# Offloads off on one veth end; ethtool refuses a whole request when one feature cannot
# change on some kernels, so fall back to one feature at a time and ignore the rest.
_ng_offloads_off() {
  local ns="$1" dev="$2" f
  ip netns exec "$ns" ethtool -K "$dev" rx off tx off sg off tso off gso off gro off \
    >/dev/null 2>&1 && return 0
  for f in rx tx sg tso gso gro; do
    ip netns exec "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
  done
}

# IPv6 off on one interface (no ND/MLD noise; the kernel of the box stays silent).
_ng_ipv6_off() {
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" >/dev/null 2>&1 || true
}

# The node's HTTP server: ThreadingHTTPServer on 0.0.0.0:PORT serving DIR, with an
# X-Node: NAME header on every answer; one line per request on stderr (the node's log).
_NG_SERVER_PY='
import functools, http.server, socket, sys
name, root, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    def server_bind(self):  # "::" takes IPv4 too (IPV6_V6ONLY off)
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):  # every answer says which node served it
        self.send_header("X-Node", name)
        super().end_headers()
handler = functools.partial(Handler, directory=root)
print(f"{name}: serving {root} on {host} port {port}", file=sys.stderr, flush=True)
Server((host, port), handler).serve_forever()
'

# The node's UDP echo server on 0.0.0.0:PORT: every datagram is answered, to its sender,
# with "NAME " followed by the datagram itself, so a client sees which node answered what.
_NG_UDP_PY='
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
host = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if ":" in host:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((host, port))
print(f"{name}: UDP echo on {host} port {port}", file=sys.stderr, flush=True)
prefix = name.encode() + b" "
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(prefix + data, peer)
'

# Asks a UDP echo server at HOST:PORT once (1 s); prints its answer, fails without one.
_NG_UDP_ASK_PY='
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"ready?", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(65535)[0].decode())
'

# The node's health endpoints (kube-proxy stand-in): :10256/healthz like kube-proxy's
# own, :32000/healthz like a Service's healthCheckNodePort (any path), each answering the
# code (and weight) in DIR/kube-proxy or DIR/hcnp, re-read on every request.
_NG_HEALTH_PY='
import http.server, json, socket, sys, threading, time
name, state_dir, kp_port, hcnp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host = sys.argv[5] if len(sys.argv) > 5 else "0.0.0.0"
def state(which):
    try:
        code, weight = open(f"{state_dir}/{which}").read().split()
        return int(code), int(weight)
    except (OSError, ValueError):
        return 200, 1
def handler_for(which):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            code, weight = state(which)
            if which == "kube-proxy":
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body = {"lastUpdated": now, "currentTime": now, "nodeEligible": code == 200}
            else:
                body = {"service": {"namespace": "default", "name": "web"},
                        "localEndpoints": weight if code == 200 else 0, "serviceProxyHealthy": True}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Content-Type-Options", "nosniff")
            if which == "hcnp":
                self.send_header("X-Load-Balancing-Endpoint-Weight", str(weight if code == 200 else 0))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return H
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
servers = [Server((host, kp_port), handler_for("kube-proxy")), Server((host, hcnp_port), handler_for("hcnp"))]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(f"{name}: health on :{kp_port} and :{hcnp_port}", file=sys.stderr, flush=True)
servers[0].serve_forever()
'

# 50 MiB of deterministic bytes (seeded Mersenne Twister) and their sha256.
_NG_BIGFILE_PY='
import hashlib, random, sys
path, size = sys.argv[1], int(sys.argv[2])
data = random.Random(20240601).randbytes(size)
with open(path, "wb") as f:
    f.write(data)
with open(path + ".sha256", "w") as f:
    f.write(hashlib.sha256(data).hexdigest() + "\n")
'

_ng_netns_up_body() {
  set -euo pipefail
  local p="$1" ns n i dev
  local mgmt="${NG_NETNS_MGMT:-1}"
  local w; w="$(ng_netns_workdir "$p")"
  local v6="${NG_NETNS_IPV6:-0}" bind=0.0.0.0
  ((v6)) && bind="::"
  local client="${p}client" lb="${p}lb" sw="${p}sw"
  step() { printf '[netns] %s\n' "$*"; }

  ((EUID == 0)) || { echo "[netns] error: needs root" >&2; return 1; }
  for c in ip ethtool python3 curl sysctl; do
    command -v "$c" >/dev/null || { echo "[netns] error: '$c' not found (scripts/install-deps.sh)" >&2; return 1; }
  done
  while read -r ns; do
    if _ng_netns_exists "$ns"; then
      echo "[netns] error: namespace $ns exists; run: scripts/netns.sh down $p" >&2
      return 1
    fi
  done < <(ng_netns_names "$p")

  step "namespaces ${p}{client,lb,sw,$(IFS=,; echo "${NG_NODE_NAMES[*]}")}"
  while read -r ns; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # 'default' covers the interfaces created below, 'all' the ones that exist.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1 || true
  done < <(ng_netns_names "$p")

  step "links client/eth0 <-> lb/ext0, lb/int0 <-> sw/br0 <-> n*/eth0"
  ip link add eth0 netns "$client" type veth peer name ext0 netns "$lb"
  ip link add int0 netns "$lb" type veth peer name p-lb netns "$sw"
  ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip netns exec "$sw" sysctl -qw net.bridge.bridge-nf-call-iptables=0 >/dev/null 2>&1 || true
  ip -n "$sw" link set p-lb master br0
  if ((mgmt)); then
    ip link add mgmt0 netns "$lb" type veth peer name p-mgmt netns "$sw"
    ip -n "$sw" link set p-mgmt master br0
  fi
  for n in "${NG_NODE_NAMES[@]}"; do
    ip link add eth0 netns "${p}${n}" type veth peer name "p-$n" netns "$sw"
    ip -n "$sw" link set "p-$n" master br0
  done

  step "IPv6 and offloads (rx tx sg tso gso gro) off on every veth end"
  _ng_ipv6_off "$client" eth0; _ng_offloads_off "$client" eth0
  for dev in ext0 int0; do _ng_ipv6_off "$lb" "$dev"; _ng_offloads_off "$lb" "$dev"; done
  local sw_ports=(p-lb "${NG_NODE_NAMES[@]/#/p-}")
  ((mgmt)) && sw_ports+=(p-mgmt) && _ng_ipv6_off "$lb" mgmt0
  for dev in br0 "${sw_ports[@]}"; do
    _ng_ipv6_off "$sw" "$dev"; _ng_offloads_off "$sw" "$dev"
  done
  for n in "${NG_NODE_NAMES[@]}"; do _ng_ipv6_off "${p}${n}" eth0; _ng_offloads_off "${p}${n}" eth0; done
  if ((v6)); then
    step "IPv6 back on for the client, the nodes and mgmt0 (NG_NETNS_IPV6=1)"
    for ns in "$client" "${NG_NODE_NAMES[@]/#/$p}"; do
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 \
        net.ipv6.conf.eth0.accept_ra=0 >/dev/null
    done
    # Only mgmt0: writing all.disable_ipv6 would turn IPv6 back on for ext0 and int0 too.
    ((mgmt)) && ip netns exec "$lb" sysctl -qw net.ipv6.conf.mgmt0.disable_ipv6=0 \
      net.ipv6.conf.mgmt0.accept_ra=0 >/dev/null
  fi
  # The box must stay silent on its data ports: no address, no IPv6, so no ARP/ND/RST.
  for dev in ext0 int0; do
    [[ "$(ip netns exec "$lb" sysctl -n "net.ipv6.conf.$dev.disable_ipv6" 2>/dev/null || echo 1)" == 1 ]] \
      || { echo "[netns] error: could not disable IPv6 on $lb/$dev" >&2; return 1; }
  done

  step "addresses: client $NG_CLIENT_ADDR (gw $NG_GATEWAY_ADDR), nodes ${NG_NODE_ADDRS[*]}; lb ports up, unaddressed"
  ip -n "$client" addr add "$NG_CLIENT_ADDR/24" dev eth0
  ip -n "$client" link set eth0 up
  ip -n "$client" route add default via "$NG_GATEWAY_ADDR" dev eth0
  ip -n "$lb" link set ext0 up
  ip -n "$lb" link set int0 up
  # The kernel answers ARP only on the interface that has the address (mgmt0), never on
  # the data ports NodeGate owns.
  ip netns exec "$lb" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 >/dev/null
  if ((mgmt)); then
    ip -n "$lb" addr add "$NG_LB_MGMT_ADDR/24" dev mgmt0
    ip -n "$lb" link set mgmt0 up
  fi
  ip -n "$sw" link set br0 up
  for dev in "${sw_ports[@]}"; do ip -n "$sw" link set "$dev" up; done
  for i in "${!NG_NODE_NAMES[@]}"; do
    n="${NG_NODE_NAMES[$i]}"
    ip -n "${p}${n}" addr add "${NG_NODE_ADDRS[$i]}/24" dev eth0
    ip -n "${p}${n}" link set eth0 up
  done
  if ((v6)); then
    step "IPv6: client $NG_CLIENT_ADDR6 (gw $NG_GATEWAY_ADDR6), nodes ${NG_NODE_ADDRS6[*]}, mgmt0 $NG_LB_MGMT_ADDR6"
    ip -n "$client" -6 addr add "$NG_CLIENT_ADDR6/64" dev eth0 nodad
    ip -n "$client" -6 route add default via "$NG_GATEWAY_ADDR6" dev eth0
    ((mgmt)) && ip -n "$lb" -6 addr add "$NG_LB_MGMT_ADDR6/64" dev mgmt0 nodad
    for i in "${!NG_NODE_NAMES[@]}"; do
      ip -n "${p}${NG_NODE_NAMES[$i]}" -6 addr add "${NG_NODE_ADDRS6[$i]}/64" dev eth0 nodad
    done
  fi

  if [[ "${NG_NETNS_ROUTER:-0}" == 1 ]]; then
    local rtr="${p}rtr"
    step "router $rtr: eth0 $NG_ROUTER_NODE_ADDR on br0, eth1 $NG_ROUTER_CLIENT_ADDR <-> client eth1 $NG_CLIENT_SIDE_ADDR"
    ip link add eth0 netns "$rtr" type veth peer name p-rtr netns "$sw"
    ip -n "$sw" link set p-rtr master br0
    ip link add eth1 netns "$client" type veth peer name eth1 netns "$rtr"
    _ng_ipv6_off "$sw" p-rtr; _ng_offloads_off "$sw" p-rtr
    for dev in eth0 eth1; do _ng_ipv6_off "$rtr" "$dev"; _ng_offloads_off "$rtr" "$dev"; done
    _ng_ipv6_off "$client" eth1; _ng_offloads_off "$client" eth1
    ip -n "$sw" link set p-rtr up
    ip -n "$rtr" addr add "$NG_ROUTER_NODE_ADDR/24" dev eth0
    ip -n "$rtr" addr add "$NG_ROUTER_CLIENT_ADDR/24" dev eth1
    ip -n "$rtr" link set eth0 up
    ip -n "$rtr" link set eth1 up
    ip -n "$client" addr add "$NG_CLIENT_SIDE_ADDR/24" dev eth1
    ip -n "$client" link set eth1 up
    ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
      net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0 >/dev/null
    ip netns exec "$client" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0 >/dev/null
    ip -n "$rtr" route add "${NG_CLIENT_ADDR%.*}.0/24" via "$NG_CLIENT_SIDE_ADDR" dev eth1
    for n in "${NG_NODE_NAMES[@]}"; do
      ip -n "${p}${n}" route add "${NG_CLIENT_ADDR%.*}.0/24" via "$NG_ROUTER_NODE_ADDR" dev eth0
    done
    if ((v6)); then
      step "router $rtr IPv6: eth0 $NG_ROUTER_NODE_ADDR6, eth1 $NG_ROUTER_CLIENT_ADDR6 <-> client eth1 $NG_CLIENT_SIDE_ADDR6; nodes route ${NG_CLIENT_ADDR6%::*}::/64 via it"
      ip netns exec "$rtr" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 \
        net.ipv6.conf.eth1.disable_ipv6=0 net.ipv6.conf.all.forwarding=1 >/dev/null
      ip netns exec "$client" sysctl -qw net.ipv6.conf.eth1.disable_ipv6=0 net.ipv6.conf.eth1.accept_ra=0 >/dev/null
      ip -n "$rtr" -6 addr add "$NG_ROUTER_NODE_ADDR6/64" dev eth0 nodad
      ip -n "$rtr" -6 addr add "$NG_ROUTER_CLIENT_ADDR6/64" dev eth1 nodad
      ip -n "$client" -6 addr add "$NG_CLIENT_SIDE_ADDR6/64" dev eth1 nodad
      ip -n "$rtr" -6 route add "${NG_CLIENT_ADDR6%::*}::/64" via "$NG_CLIENT_SIDE_ADDR6" dev eth1
      for n in "${NG_NODE_NAMES[@]}"; do
        ip -n "${p}${n}" -6 route add "${NG_CLIENT_ADDR6%::*}::/64" via "$NG_ROUTER_NODE_ADDR6" dev eth0
      done
    fi
  fi

  step "files: $w/{whoami,big.bin} ($((NG_BIG_BYTES >> 20)) MiB)"
  rm -rf "$w"
  mkdir -p "$w/www"
  python3 -c "$_NG_BIGFILE_PY" "$w/big.bin" "$NG_BIG_BYTES"
  for n in "${NG_NODE_NAMES[@]}"; do
    mkdir -p "$w/www/$n" "$w/health/$n"
    printf '%s\n' "$n" >"$w/www/$n/whoami"
    ln "$w/big.bin" "$w/www/$n/big.bin"
  done

  step "HTTP servers on :$NG_NODE_PORT in ${NG_NODE_NAMES[*]}"
  for n in "${NG_NODE_NAMES[@]}"; do
    ip netns exec "${p}${n}" python3 -c "$_NG_SERVER_PY" "$n" "$w/www/$n" "$NG_NODE_PORT" "$bind" \
      </dev/null >>"$w/$n.log" 2>&1 &
  done
  step "UDP echo servers on :$NG_UDP_NODE_PORT in ${NG_NODE_NAMES[*]}"
  for n in "${NG_NODE_NAMES[@]}"; do
    ip netns exec "${p}${n}" python3 -c "$_NG_UDP_PY" "$n" "$NG_UDP_NODE_PORT" "$bind" \
      </dev/null >>"$w/$n.udp.log" 2>&1 &
  done
  step "health servers on :$NG_KUBE_PROXY_PORT and :$NG_HCNP in ${NG_NODE_NAMES[*]}"
  for n in "${NG_NODE_NAMES[@]}"; do
    ip netns exec "${p}${n}" python3 -c "$_NG_HEALTH_PY" "$n" "$w/health/$n" "$NG_KUBE_PROXY_PORT" "$NG_HCNP" "$bind" \
      </dev/null >>"$w/$n.health.log" 2>&1 &
  done
  local deadline=$((SECONDS + 15)) got
  for i in "${!NG_NODE_NAMES[@]}"; do
    n="${NG_NODE_NAMES[$i]}"
    until got="$(ip netns exec "${p}${n}" curl -s --max-time 1 "http://127.0.0.1:$NG_NODE_PORT/whoami")" \
        && [[ "$got" == "$n" ]] \
        && ip netns exec "${p}${n}" curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$NG_KUBE_PROXY_PORT/healthz" \
        && ip netns exec "${p}${n}" curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$NG_HCNP/healthz" \
        && [[ "$(ip netns exec "${p}${n}" python3 -c "$_NG_UDP_ASK_PY" 127.0.0.1 "$NG_UDP_NODE_PORT" 2>/dev/null)" \
              == "$n ready?" ]] \
        && { ((mgmt == 0)) ||
             ip netns exec "$lb" curl -sf --max-time 1 -o /dev/null "http://${NG_NODE_ADDRS[$i]}:$NG_KUBE_PROXY_PORT/healthz"; } \
        && { ((!v6 || mgmt == 0)) || ip netns exec "$lb" curl -sf --max-time 1 -o /dev/null \
               "http://[${NG_NODE_ADDRS6[$i]}]:$NG_KUBE_PROXY_PORT/healthz"; }; do
      if ((SECONDS >= deadline)); then
        echo "[netns] error: HTTP or UDP server in ${p}${n} did not answer; its log:" >&2
        cat "$w/$n.log" "$w/$n.udp.log" "$w/$n.health.log" >&2 || true
        return 1
      fi
      sleep 0.1
    done
  done
  step "up: topology '${p}' ready"
}

ng_netns_up() {
  [[ -n "${1:-}" ]] || { echo "usage: ng_netns_up PREFIX" >&2; return 2; }
  # A subshell with errexit, whatever the caller's options are.
  (_ng_netns_up_body "$1")
}

ng_netns_down() {
  local p="${1:-}" ns pids w i
  [[ -n "$p" ]] || { echo "usage: ng_netns_down PREFIX" >&2; return 2; }
  pids="$(ng_netns_pids "$p" | sort -u | tr '\n' ' ')"
  if [[ -n "${pids// /}" ]]; then
    # shellcheck disable=SC2086  # a list of pids
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -z "$(ng_netns_pids "$p")" ]] && break
      sleep 0.1
    done
    pids="$(ng_netns_pids "$p" | sort -u | tr '\n' ' ')"
    if [[ -n "${pids// /}" ]]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ -z "$(ng_netns_pids "$p")" ]] && break
        sleep 0.1
      done
    fi
  fi
  while read -r ns; do
    if _ng_netns_exists "$ns"; then
      ip netns del "$ns" 2>/dev/null || echo "[netns] warning: could not delete $ns" >&2
    fi
  done < <(ng_netns_names "$p")
  w="$(ng_netns_workdir "$p")"
  [[ -d "$w" ]] && rm -rf "$w"
  # Report failure if anything of ours is left.
  while read -r ns; do
    _ng_netns_exists "$ns" && return 1
  done < <(ng_netns_names "$p")
  return 0
}

_ng_netns_status() {
  local p="$1" ns
  while read -r ns; do
    if _ng_netns_exists "$ns"; then
      printf '%-24s up   pids: %s\n' "$ns" "$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    else
      printf '%-24s down\n' "$ns"
    fi
  done < <(ng_netns_names "$p")
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  usage() { echo "usage: $0 up|down|status PREFIX   (e.g. $0 up ngdemo-)" >&2; exit 2; }
  (($# == 2)) || usage
  [[ "$2" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "bad PREFIX '$2'" >&2; exit 2; }
  case "$1" in
    up)
      while read -r ns; do
        if _ng_netns_exists "$ns"; then
          echo "[netns] error: namespace $ns exists; run: $0 down $2" >&2
          exit 1   # not ours to tear down from here
        fi
      done < <(ng_netns_names "$2")
      if ! ng_netns_up "$2"; then
        echo "[netns] up failed; tearing down" >&2
        ng_netns_down "$2" || true
        exit 1
      fi
      ;;
    down) ng_netns_down "$2" && echo "[netns] down: topology '$2' removed" ;;
    status) _ng_netns_status "$2" ;;
    *) usage ;;
  esac
fi
