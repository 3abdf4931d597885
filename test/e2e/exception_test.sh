#!/usr/bin/env bash
# End-to-end: the exception path and VIP announcements, in network namespaces.
#
# Usage: test/e2e/exception_test.sh <nodegate-binary> <repo-root>
#
# The box has NO management interface (scripts/netns.sh with NG_NETNS_MGMT=0): its
# kernel reaches the network only through NodeGate's kernel interfaces ng-ext/ng-int
# (dataplane.exception_path), which carry the data ports' MACs and addresses. conf/demo.conf
# with the exception path on, no health.source_address (there is no 10.200.0.2 any more:
# the kernel sources probes from 10.200.0.1, which is also the SNAT address), and
# garp_interval_s = 2. Checks:
#   (a) the kernel interfaces exist with the ports' addresses and MACs;
#   (b) health probes reach the nodes through the exception path and the internal data
#       port: a node whose /healthz turns 503 is taken out and comes back at 200
#       (/v1/vips), and the box's kernel resolved the nodes by ARP;
#   (c) 100 HTTP requests through the VIP succeed (full-NAT replies to the shared SNAT
#       address are not taken by the kernel);
#   (d) a TCP service of the box's kernel (an HTTP server bound to 10.100.0.1:8022,
#       standing in for SSH) answers the client through the external data port;
#   (e) the client pings the box's external address: every echo answered, no duplicate;
#   (f) a VIP added at runtime (SIGHUP) is announced: the client sees a gratuitous ARP
#       (request, sender = target = the new VIP, the external port's MAC, broadcast;
#       captured with a raw socket in the client namespace), and every VIP again within
#       the 2 s interval;
#   (g) /v1/stats: to_kernel, from_kernel, garp_sent > 0, no exception drops; /metrics
#       has the new counters;
#   (h) it stops on SIGTERM with exit 0 and the kernel interfaces are gone;
# and always tears down, then checks that no namespace and no process of the run is left.
# NG_E2E_WORKERS=2 runs the same with two workers (ctest e2e_exception_workers).
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main "e2e_exception$([[ "${NG_E2E_WORKERS:-1}" == 2 ]] && echo _workers)" "ngex$$-" "$@"

readonly REQUESTS=100
readonly BOX_EXT=10.100.0.1
readonly NEW_VIP=10.100.0.101

export NG_NETNS_MGMT=0
e2e_up || exit 1
if ip -n "$lb" link show mgmt0 >/dev/null 2>&1; then
  fail "topology: the box has mgmt0 although NG_NETNS_MGMT=0"
  exit 1
fi
e2e_demo_conf "$work/nodegate.conf"
sed -i -E \
  -e 's/ *source_address = "[0-9.]+";//' \
  -e 's|^( *flows = .*)$|\1\n  exception_path = { enabled = true; rate_pps = 20000; };\n  garp_interval_s = 2;|' \
  "$work/nodegate.conf"
if ! grep -q 'exception_path = { enabled = true' "$work/nodegate.conf" || grep -q source_address "$work/nodegate.conf"; then
  fail "config: conf/demo.conf no longer has the lines this test rewrites"
  exit 1
fi
if [[ "${NG_E2E_WORKERS:-1}" == 2 ]]; then
  # Two workers (as e2e_workers: net_af_packet qpairs=2, lcores floating over our CPUs):
  # each owns one queue pair of every kernel interface; ARP replies for the box are
  # shared between the workers and handed to the kernel once.
  cpus="$(taskset -pc $$ | sed -E 's/.*: *//')"
  sed -i -E \
    -e 's/^( *workers = )\[ 1 \];/\1[ 1, 2 ];/' \
    -e "s/^( *eal = \[ .*)\" \];/\1\", \"--lcores=(0-2)@(${cpus})\" ];/" \
    -e 's/(device = "net_af_packet[01],iface=(ext0|int0))"/\1,qpairs=2"/' \
    "$work/nodegate.conf"
  if ! grep -q 'workers = \[ 1, 2 \]' "$work/nodegate.conf" || (($(grep -c 'qpairs=2' "$work/nodegate.conf") != 2)); then
    fail "config: conf/demo.conf no longer has the lines the two-worker run rewrites"
    exit 1
  fi
  say "two workers"
fi
e2e_start "$work/nodegate.conf" || exit 1

# (a) the kernel interfaces.
ext_mac="$(grep -o 'port ext (.*mac [0-9a-f:]*' "$work/nodegate.log" | grep -o '[0-9a-f:]*$')"
ok=1
for pair in "ng-ext $BOX_EXT/24" "ng-int $NG_LB_INT_ADDR/24"; do
  read -r dev addr <<<"$pair"
  ip -n "$lb" -4 -o addr show dev "$dev" 2>/dev/null | grep -q " $addr " || ok=0
done
kmac="$(ip -n "$lb" -o link show ng-ext 2>/dev/null | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)"
if ((ok)) && [[ -n "$ext_mac" && "$kmac" == "$ext_mac" ]]; then
  pass "(a) kernel interfaces ng-ext $BOX_EXT/24 (MAC $kmac = port ext's) and ng-int $NG_LB_INT_ADDR/24"
else
  fail "(a) kernel interfaces: $(ip -n "$lb" -br addr 2>&1 | tr '\n' ';') ng-ext MAC '$kmac', port ext MAC '$ext_mac'"
fi

if [[ "${NG_E2E_WORKERS:-1}" == 2 ]]; then
  queues="$(ip -n "$lb" -d link show ng-int 2>/dev/null | grep -o 'numqueues [0-9]*')"
  if [[ "$queues" == "numqueues 2" ]]; then
    pass "(a) ng-int has one queue per worker ($queues)"
  else
    fail "(a) ng-int: '$queues', want numqueues 2 (one per worker)"
  fi
fi

# (b) the health probes travel the exception path (there is no other way out): nodes
# start "up", so turn n1's kube-proxy /healthz to 503 and back and watch its verdict
# follow, and check that the kernel resolved the nodes by ARP through the data port.
node_state() {  # node_state ADDRESS: the health state of that node's backend
  api /v1/vips | python3 -c '
import json, sys
try:
    vips = json.load(sys.stdin)["vips"]
    print(next(b["health"]["state"] for v in vips for p in v["ports"] for b in p["backends"]
               if b["address"] == sys.argv[1]))
except Exception:
    print("none")
' "$1" 2>/dev/null
}
wait_state() {  # wait_state ADDRESS STATE...: up to 15 s; prints the last state seen
  local i st
  for ((i = 0; i < 75; i++)); do
    st="$(node_state "$1")"
    for want in "${@:2}"; do [[ "$st" == "$want" ]] && { echo "$st"; return 0; }; done
    sleep 0.2
  done
  echo "$st"
  return 1
}
n1="${NG_NODE_ADDRS[0]}"
ng_node_health "$P" n1 kube-proxy 503
if st="$(wait_state "$n1" draining down)"; then
  ng_node_health "$P" n1 kube-proxy 200
  if st2="$(wait_state "$n1" up)"; then
    pass "(b) n1's verdict followed its /healthz through the exception path: 503 -> $st, 200 -> $st2"
  else
    fail "(b) n1 did not come back up after /healthz 200 (state $st2)"
  fi
else
  ng_node_health "$P" n1 kube-proxy 200
  fail "(b) n1 answered 503 but its state stayed '$st': probes do not get through"
fi
neigh="$(ip -n "$lb" neigh show dev ng-int 2>/dev/null | grep -c 'lladdr')"
if ((neigh >= 3)); then
  pass "(b) the box's kernel resolved $neigh neighbours on ng-int (ARP through the data port)"
else
  fail "(b) the box's kernel knows $neigh neighbours on ng-int: $(ip -n "$lb" neigh 2>&1 | tr '\n' ';')"
fi

# (c) traffic through the VIP.
say "(c) $REQUESTS requests to http://$NG_VIP/whoami"
e2e_requests "$REQUESTS" "$work/requests.txt"
checkpoint
good="$(grep -cxE 'n1|n2|n3' "$work/requests.txt")"
if ((good == REQUESTS)); then
  pass "(c) $REQUESTS/$REQUESTS requests through the VIP succeeded"
else
  fail "(c) $((REQUESTS - good)) of $REQUESTS requests failed: $(grep -vxE 'n[123]' "$work/requests.txt" | sort | uniq -c | tr '\n' ' ')"
fi

# (d) a TCP service of the box's kernel on its external address.
mkdir -p "$work/www" && printf 'box-kernel\n' >"$work/www/hello"
ip netns exec "$lb" /usr/bin/python3 -m http.server --bind "$BOX_EXT" --directory "$work/www" 8022 \
  </dev/null >"$work/boxhttp.log" 2>&1 &
seen_pids+=("$!")
got=""
for ((i = 0; i < 50; i++)); do
  got="$(ip netns exec "$client" curl -s --max-time 2 "http://$BOX_EXT:8022/hello" 2>/dev/null)" && [[ "$got" == box-kernel ]] && break
  sleep 0.1
done
if [[ "$got" == box-kernel ]]; then
  pass "(d) the client reached the box kernel's TCP service on $BOX_EXT:8022 through the data port"
else
  fail "(d) no answer from the box kernel's service on $BOX_EXT:8022 (got '$got'; $(tail -n 3 "$work/boxhttp.log"))"
fi

# (e) ping the box's address (answered by the worker; the kernel must not answer too).
ping_out="$(ip netns exec "$client" ping -c 5 -i 0.2 -W 1 "$BOX_EXT" 2>&1)"
if grep -q ' 5 received' <<<"$ping_out" && ! grep -q 'duplicates' <<<"$ping_out"; then
  pass "(e) ping $BOX_EXT: 5/5 answered, no duplicates"
else
  fail "(e) ping $BOX_EXT: $(tail -n 2 <<<"$ping_out" | tr '\n' ' ')"
fi

# (f) a VIP added at runtime is announced, and every VIP again within the interval.
ip netns exec "$client" /usr/bin/python3 "$repo/test/e2e/garp_sniff.py" eth0 6 >"$work/garp.txt" 2>&1 &
sniff_pid=$!
seen_pids+=("$sniff_pid")
sleep 0.5
python3 - "$work/nodegate.conf" "$NEW_VIP" <<'PY'
import sys
path, vip = sys.argv[1], sys.argv[2]
text = open(path).read()
extra = ('  { namespace = "default"; name = "web2"; vip = "%s";\n'
         '    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; } );\n'
         '    external_traffic_policy = "Cluster"; },\n' % vip)
open(path, "w").write(text.replace("services = (\n", "services = (\n" + extra, 1))
PY
kill -HUP "$ng_pid"
step sleep 6.5
checkpoint
first_new="$(grep -m1 " ip=$NEW_VIP " "$work/garp.txt")"
want="garp op=1 ip=$NEW_VIP src=$ext_mac dst=ff:ff:ff:ff:ff:ff sha=$ext_mac tha=00:00:00:00:00:00 len=60"
old_seen="$(grep -c " ip=$NG_VIP " "$work/garp.txt")"
if [[ "$first_new" == "$want" ]] && ((old_seen >= 1)); then
  pass "(f) gratuitous ARP for the new VIP $NEW_VIP seen by the client ($first_new); $NG_VIP re-announced $old_seen x in 6 s"
else
  fail "(f) want '$want' and $NG_VIP again; saw: $(head -n 6 "$work/garp.txt" | tr '\n' ';')"
fi
if body="$(ip netns exec "$client" curl -s --max-time 3 "http://$NEW_VIP/whoami")" && [[ "$body" =~ ^n[123]$ ]]; then
  pass "(f) the new VIP $NEW_VIP serves ($body)"
else
  fail "(f) the new VIP $NEW_VIP does not serve ('$body')"
fi

# (g) counters.
api /v1/stats >"$work/stats.json"
if verdict="$(python3 - "$work/stats.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    c, d = s["counters"], s["drops"]
    tk, fk, g = int(c["to_kernel"]), int(c["from_kernel"]), int(c["garp_sent"])
    rl, qf, nx = int(d["exception_rate_limit"]), int(d["exception_queue_full"]), int(d["local_no_exception_path"])
except Exception as e:  # noqa: BLE001 - any malformed answer is a failure
    print(f"bad /v1/stats answer: {e!r}")
    sys.exit(1)
print(f"to_kernel={tk} from_kernel={fk} garp_sent={g} exception_rate_limit={rl} exception_queue_full={qf} local_no_exception_path={nx}")
sys.exit(0 if tk > 0 and fk > 0 and g >= 3 and rl == 0 and qf == 0 and nx == 0 else 1)
PY
)"; then
  pass "(g) $verdict"
else
  fail "(g) $verdict"
fi
metrics="$(api /metrics)"
if grep -q '^nodegate_to_kernel_total{worker="0"} [1-9]' <<<"$metrics" &&
   grep -q '^nodegate_garp_sent_total{worker="0"} [1-9]' <<<"$metrics" &&
   grep -q '^nodegate_drops_total{reason="exception_rate_limit"} 0' <<<"$metrics"; then
  pass "(g) /metrics: to_kernel, garp_sent, exception_rate_limit"
else
  fail "(g) /metrics lacks the exception path counters: $(grep -m3 -E 'kernel|garp' <<<"$metrics")"
fi

# (h) clean stop; the kernel interfaces go with the process.
if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "(h) nodegate exited 0 on SIGTERM"; else fail "(h) nodegate exit status $ng_rc on SIGTERM"; fi
  if ip -n "$lb" link show ng-ext >/dev/null 2>&1 || ip -n "$lb" link show ng-int >/dev/null 2>&1; then
    fail "(h) kernel interfaces left after exit: $(ip -n "$lb" -br link | tr '\n' ';')"
  else
    pass "(h) kernel interfaces ng-ext and ng-int gone with the process"
  fi
fi
exit 0   # the EXIT trap tears down and reports
