#!/usr/bin/env bash
# Reconfiguration latency benchmark (docs/BENCHMARKS.md): the time from a change to the
# first packet reaching the node the change made eligible, over N changes, for
#   rest: PUT /v1/loadbalancers/NS/NAME/nodes (the cloud-provider API), and
#   kube: a Node label change on the fake API server, seen by the controller's watch.
# A client in its namespace opens a new UDP flow to the VIP every millisecond; the first
# echo from the new node after the change ends the measurement (so it includes that
# node's answer, ~0.1 ms here). Root; builds and removes its own namespaces.
#
# Usage: scripts/bench-reconfig.sh [--changes N] [--gap-ms MS] [--only rest|kube] [build-dir]
set -uo pipefail

changes=100 gap_ms=300 only="" build=""
while (($#)); do
  case "$1" in
    --changes) changes="$2"; shift 2 ;;
    --gap-ms) gap_ms="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) build="$1"; shift ;;
  esac
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${build:-$repo/build}"
[[ -x "$build/control/nodegate" ]] || "$repo/scripts/build.sh" "$build" || exit 1

# shellcheck source=test/e2e/lib.sh
source "$repo/test/e2e/lib.sh"
NG_E2E_TIMEOUT=$((changes * gap_ms / 500 + 300))
export NG_E2E_TIMEOUT
e2e_main bench_reconfig "ngb$$-" "$build/control/nodegate" "$repo"
readonly PY=/usr/bin/python3 BENCH="$repo/bench/reconfig_latency.py"
readonly LB_VIP=10.100.0.120
e2e_up || exit 1
seconds=$(( (changes * gap_ms + 999) / 1000 + 3 ))

# client_run OUT: the client's flows for the whole run, in the background.
client_run() {
  ip netns exec "$client" "$PY" "$BENCH" client "$1" "$LB_VIP" 53 "$seconds" &
  client_pid=$!
  seen_pids+=("$client_pid")
  sleep 1
}

base_conf() {  # base_conf FILE: the demo's data plane, a pool, a state directory of its own
  sed -n '/^dataplane = {/,/^};/p' "$repo/conf/demo.conf" >"$1"
  cat >>"$1" <<CONF
api = { listen = "127.0.0.1:9080"; };
health = { interval_ms = 1000; timeout_ms = 500; rise = 2; fall = 2; source_address = "$NG_LB_MGMT_ADDR"; };
state_dir = "$1.state";
pools = ( { name = "default"; cidrs = [ "$LB_VIP/30" ]; } );
CONF
}

if [[ "$only" != kube ]]; then
  base_conf "$work/rest.conf"
  e2e_start "$work/rest.conf" || exit 1
  ip netns exec "$lb" curl -s -X PUT --max-time 10 "$NG_API/v1/loadbalancers/bench/udp" -d "{
    \"ports\": [{\"name\": \"echo\", \"protocol\": \"UDP\", \"port\": 53, \"nodePort\": $NG_UDP_NODE_PORT}],
    \"nodes\": [{\"name\": \"n1\", \"address\": \"${NG_NODE_ADDRS[0]}\"}]}" >/dev/null
  client_run "$work/rest.replies"
  ip netns exec "$lb" "$PY" "$BENCH" rest "$work/rest.changes" "$NG_API" bench udp "$changes" "$gap_ms" \
    n1 "${NG_NODE_ADDRS[0]}" n2 "${NG_NODE_ADDRS[1]}"
  wait "$client_pid"
  echo "rest (PUT .../nodes -> first packet at the new node): $("$PY" "$BENCH" report "$work/rest.changes" "$work/rest.replies")"
  stop_nodegate
fi

if [[ "$only" != rest ]]; then
  "$PY" - "$work/state.json" "${NG_NODE_ADDRS[@]}" <<'PY'
import json, sys
label = "node.kubernetes.io/exclude-from-external-load-balancers"
nodes = [{"metadata": {"name": n, "labels": {label: v}},
          "status": {"addresses": [{"type": "InternalIP", "address": a}]}}
         for n, a, v in zip(["n1", "n2", "n3"], sys.argv[2:5], ["false", "true", "true"])]
svc = {"metadata": {"name": "udp", "namespace": "bench"},
       "spec": {"type": "LoadBalancer", "loadBalancerClass": "nodegate.io/lb",
                "ports": [{"name": "echo", "protocol": "UDP", "port": 53, "nodePort": 30053}]}}
json.dump({"nodes": nodes, "services": [svc]}, open(sys.argv[1], "w"))
PY
  e2e_fake_apiserver "$work/state.json" --port 0 || exit 1
  port="$fake_port"
  base_conf "$work/kube.conf"
  cat >>"$work/kube.conf" <<CONF
kubernetes = { enabled = true; server = "https://127.0.0.1:$port"; ca_file = "$work/ca.crt";
               token_file = "$work/kube-token"; };
CONF
  e2e_start "$work/kube.conf" || exit 1
  for ((i = 0; i < 100; i++)); do
    [[ "$(ng_api "$P" /v1/vips)" == *"$LB_VIP"* ]] && break
    sleep 0.1
  done
  client_run "$work/kube.replies"
  ip netns exec "$lb" "$PY" "$BENCH" kube "$work/kube.changes" "https://127.0.0.1:$port" "$work/ca.crt" \
    "$changes" "$gap_ms" n1 n2
  wait "$client_pid"
  ng_api "$P" /v1/status | "$PY" -c 'import json,sys; k=json.load(sys.stdin)["kubernetes"]; print("controller:", {x: k[x] for x in ("synced", "failing_since", "passes", "applies", "retrying", "last_write_error")}, "nodes watch:", {x: k["watch"]["nodes"][x] for x in ("watches", "failures", "last_error", "events")})'
  echo "kube (Node label watch event -> first packet at the new node): $("$PY" "$BENCH" report "$work/kube.changes" "$work/kube.replies")"
fi
exit 0
