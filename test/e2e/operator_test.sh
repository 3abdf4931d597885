#!/usr/bin/env bash
# End-to-end: the operator surface (status API, /metrics, status page, ngctl, API
# security) of a running nodegate carrying real traffic, in network namespaces.
#
# Usage: test/e2e/operator_test.sh <nodegate-binary> <ngctl-binary> <repo-root>
#
# The demo topology and config, plus an API token file. Checks:
#   (a) after 60 HTTP requests, GET /v1/vips counts exactly what was sent: 60 new flows,
#       per node the number of answers that node gave, and the port's packets in/out
#       equal to the box's to_nodes/to_clients;
#   (b) a node whose link goes down shows "down" with its reason (timeout), in
#       /v1/vips and /v1/nodes;
#   (c) GET /metrics passes `promtool check metrics` and shows the node not serving;
#   (d) the status page renders in headless Chromium with the VIP and the down node;
#   (e) `ngctl list` shows the same table (every VIP:port and backend, the down node);
#   (f) POST /v1/reload: 401 without or with a wrong token, 200 with it (new
#       generation), 413 for an oversize body.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_operator "ngo$$-" ngctl "$@"

readonly REQUESTS=60
for tool in promtool chromium; do
  command -v "$tool" >/dev/null || { fail "$tool not installed (scripts/install-deps.sh)"; exit 1; }
done
e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
token="t0k-$RANDOM$RANDOM"
printf '%s\n' "$token" >"$work/token"
sed -i -E "s|^api = .*|api = { listen = \"127.0.0.1:9080\"; token_file = \"$work/token\"; };|" "$work/nodegate.conf"
e2e_start "$work/nodegate.conf" || exit 1

# --- (a) counters match the traffic -----------------------------------------------------
say "(a) $REQUESTS requests to http://$NG_VIP/whoami"
step ip netns exec "$client" bash -c '
  for ((i = 0; i < $2; i++)); do curl -s --max-time 3 --fail "http://$1/whoami" || echo "error:$?"; done' \
  _ "$NG_VIP" "$REQUESTS" >"$work/a.txt" 2>&1
checkpoint
sleep 0.3  # the worker's counters are read live; let the last FIN/ACKs pass
api /v1/vips >"$work/vips.json"
api /v1/stats >"$work/stats.json"
if verdict="$(python3 - "$work/vips.json" "$work/stats.json" "$work/a.txt" "$REQUESTS" <<'PY'
import collections, json, sys
vips, stats = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
answers = collections.Counter(line.strip() for line in open(sys.argv[3]))
want = int(sys.argv[4])
port = vips["vips"][0]["ports"][0]
per_node = {b["node"]: b["counters"]["new_flows"] for b in port["backends"]}
problems = []
if sum(answers[n] for n in ("n1", "n2", "n3")) != want:
    problems.append(f"client answers {dict(answers)}")
if port["counters"]["new_flows"] != want:
    problems.append(f"port new_flows {port['counters']['new_flows']} != {want}")
for node, flows in per_node.items():
    if flows != answers[node]:
        problems.append(f"{node}: API new_flows {flows} != answers {answers[node]}")
c = stats["counters"]
if port["counters"]["packets_in"] != c["to_nodes"] or port["counters"]["packets_out"] != c["to_clients"]:
    problems.append(f"port packets {port['counters']['packets_in']}/{port['counters']['packets_out']} != "
                    f"to_nodes/to_clients {c['to_nodes']}/{c['to_clients']}")
if port["counters"]["packets_in"] < 3 * want or port["counters"]["bytes_out"] <= 0:
    problems.append(f"too few packets: {port['counters']}")
print("; ".join(problems) if problems else
      f"new_flows per node {per_node} = answers; packets in/out {port['counters']['packets_in']}/"
      f"{port['counters']['packets_out']} = to_nodes/to_clients")
sys.exit(1 if problems else 0)
PY
)"; then
  pass "(a) /v1/vips counts the traffic sent: $verdict"
else
  fail "(a) /v1/vips vs traffic: $verdict"
fi

# --- (b) a killed node shows down with its reason -------------------------------------
say "(b) n2's link goes down"
ng_node_link "$P" n2 down
down_at=$EPOCHREALTIME
state=""
for ((t = 0; t < 100; t++)); do
  read -r state reason serving < <(api "/v1/vips/$NG_VIP" | python3 -c '
import json, sys
b = next(b for b in json.load(sys.stdin)["ports"][0]["backends"] if b["node"] == "n2")
print(b["health"]["state"], b["health"]["reason"] or "-", b["serving"])' 2>/dev/null)
  [[ "$state" == down && "$serving" == False ]] && break  # health is live; serving follows with the next generation
  sleep 0.1
done
node_view="$(api /v1/nodes | python3 -c '
import json, sys
n = next(n for n in json.load(sys.stdin)["nodes"] if n["name"] == "n2")
print(n["serving"], n["health"][0]["state"], n["health"][0]["detail"])' 2>/dev/null)"
if [[ "$state" == down && "$reason" == timeout && "$serving" == False && "$node_view" == "False down "* ]]; then
  pass "(b) n2 down $(awk -v a="$down_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s after its link went down, reason $reason; /v1/nodes: $node_view"
else
  fail "(b) n2: state '$state' reason '$reason' serving '$serving'; /v1/nodes: '$node_view'"
fi

# --- (c) Prometheus -------------------------------------------------------------------
api /metrics >"$work/metrics.txt"
if promtool check metrics <"$work/metrics.txt" >"$work/promtool.txt" 2>&1 &&
   grep -q '^nodegate_backend_serving{.*node="n2".*} 0$' "$work/metrics.txt" &&
   grep -q '^nodegate_backend_new_flows_total{.*node="n1".*}' "$work/metrics.txt"; then
  pass "(c) /metrics: promtool check metrics clean ($(grep -c '^# TYPE' "$work/metrics.txt") families, $(grep -vc '^#' "$work/metrics.txt") samples), n2 not serving"
else
  fail "(c) /metrics: $(head -c 600 "$work/promtool.txt"); n2 line: $(grep 'nodegate_backend_serving' "$work/metrics.txt" | head -3)"
fi

# --- (d) the status page in headless Chromium -------------------------------------------
step ip netns exec "$lb" "$repo/test/control/ui/status_page_test.sh" --url "$NG_API/" \
  --expect-vip "$NG_VIP:80" --expect-down n2 >"$work/page.txt" 2>&1
page_rc=$?
checkpoint
if ((page_rc == 0)); then
  pass "(d) status page rendered in Chromium: VIP $NG_VIP:80, n2 down ($(tail -n 1 "$work/page.txt"))"
else
  fail "(d) status page (exit $page_rc): $(tail -n 5 "$work/page.txt")"
fi

# --- (e) ngctl list --------------------------------------------------------------------
ip netns exec "$lb" "$ngctl" --api "$NG_API" list >"$work/list.txt" 2>&1
list_rc=$?
missing=""
grep -q "TCP  *$NG_VIP:80 " "$work/list.txt" || missing+=" vip"
for i in "${!NG_NODE_NAMES[@]}"; do
  grep -q -- "-> ${NG_NODE_ADDRS[$i]}:$NG_NODE_PORT " "$work/list.txt" || missing+=" ${NG_NODE_NAMES[$i]}"
done
grep -q -- "-> 10.200.0.12:$NG_NODE_PORT .*down (timeout)" "$work/list.txt" || missing+=" n2-down"
if ((list_rc == 0)) && [[ -z "$missing" ]]; then
  pass "(e) ngctl list shows the VIP, its 3 backends and n2 down (timeout)"
else
  fail "(e) ngctl list (exit $list_rc) missing:$missing; output: $(cat "$work/list.txt")"
fi

# --- (f) API security --------------------------------------------------------------------
post() {  # post AUTH BODY_BYTES -> HTTP code
  local auth=() body="$work/body"
  head -c "$2" /dev/zero | tr '\0' ' ' >"$body"
  [[ -n "$1" ]] && auth=(-H "Authorization: Bearer $1")
  ip netns exec "$lb" curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "@$body" "$NG_API/v1/reload"
}
gen() { api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null; }
before="$(gen)"
no_token="$(post "" 2)"
bad_token="$(post "wrong-$token" 2)"
after_denied="$(gen)"
good="$(post "$token" 2)"
after_good="$(gen)"
oversize="$(post "$token" $((100 * 1024)))"
if [[ "$no_token $bad_token $good $oversize" == "401 401 200 413" && "$after_denied" == "$before" &&
      "$after_good" -gt "$before" ]]; then
  pass "(f) POST /v1/reload: no token 401, wrong token 401 (generation stays $before), token 200 (generation $after_good), 100 KiB body 413"
else
  fail "(f) POST /v1/reload: no token $no_token, wrong $bad_token, token $good, oversize $oversize; generations $before/$after_denied/$after_good"
fi

if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "nodegate exited 0 on SIGTERM"; else fail "nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0
