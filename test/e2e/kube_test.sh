#!/usr/bin/env bash
# End-to-end: the Kubernetes controller against the project's fake API server
# (test/fake_apiserver, TLS + bearer token), with real traffic through the VIPs it
# programs.
#
# Usage: test/e2e/kube_test.sh <nodegate-binary> <repo-root>
#
# The demo topology; the fake API server runs in the box's namespace on 127.0.0.1 with
# Nodes n1..n3 (their InternalIPs are the topology's nodes) and four Services: shop/web
# (TCP 80 -> nodePort 30080) and shop/dns (UDP 53 -> 30053) of our class, shop/other of
# another class and shop/plain without a class. nodegate runs with kubernetes.enabled and
# a pool 10.100.0.100/30, no static Services or nodes. Checks:
#   (a) both Services of ours get a finalizer and a status address from the pool, with
#       ipMode Proxy; HTTP and UDP through those addresses reach the nodes; /v1/nodes
#       shows each node's Ready condition;
#   (b) the Services of another class or none receive zero mutating requests;
#   (c) while a request loop runs through shop/web's VIP: a watch cut mid-line, an
#       in-stream 410, an HTTP 410, a 429 storm and the API server down for a while.
#       Meanwhile Services are added and deleted on the server; afterwards the box's
#       VIP table equals the server's, a relist with no change published no generation,
#       /v1/status said since when the API server was failing, and not one request of
#       the loop failed (the data plane kept serving, fail static);
#   (d) deleting shop/web: its VIP leaves the data plane while the finalizer's removal
#       fails; nodegate is killed (SIGKILL) between the two; after a restart the cleanup
#       completes (the Service is gone from the server);
#   (e) after that restart shop/dns keeps its address (re-adopted from its status) and
#       serves again.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_kube "ngk$$-" "$@"

readonly PY=/usr/bin/python3   # Debian's, which the fake server is written for
readonly CLASS=nodegate.io/lb
e2e_up || exit 1

# --- the fake API server -------------------------------------------------------------
"$PY" - "$work/state.json" "$CLASS" "${NG_NODE_NAMES[@]}" "${NG_NODE_ADDRS[@]}" <<'PY'
import json, sys
out, cls, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
names, addrs = rest[:len(rest) // 2], rest[len(rest) // 2:]
nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": a}],
          "conditions": [{"type": "Ready", "status": "True"}]}} for n, a in zip(names, addrs)]
def svc(name, cls, ports):
    s = {"metadata": {"name": name, "namespace": "shop"}, "spec": {"type": "LoadBalancer", "ports": ports}}
    if cls:
        s["spec"]["loadBalancerClass"] = cls
    return s
tcp = [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]
udp = [{"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 30053}]
json.dump({"nodes": nodes, "services": [svc("web", cls, tcp), svc("dns", cls, udp),
           svc("other", "someone.else/lb", [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30081}]),
           svc("plain", None, [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30082}])]},
          open(out, "w"))
PY

e2e_fake_apiserver "$work/state.json" --port 0 --bookmark-interval 1 || exit 1

# fake METHOD PATH [BODY]: the fake's admin API (/_fake/...).
fake() {
  ip netns exec "$lb" curl -sS --max-time 5 --cacert "$work/ca.crt" -X "$1" \
    ${3:+-H 'Content-Type: application/json' -d "$3"} "https://127.0.0.1:$fake_port/_fake$2"
}
# svc_field NAME EXPR: a Python expression over the Service `s` (None when absent).
svc_field() {
  fake GET "/objects/services/shop/$1" 2>/dev/null | "$PY" -c '
import json, sys
try:
    s = json.load(sys.stdin)
except Exception:
    s = None
if s is not None and s.get("kind") == "Status":
    s = None
print(eval(sys.argv[1]))' "$2" 2>/dev/null
}
svc_ip() { svc_field "$1" 's and ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress", [{}])[0].get("ip", "")'; }
# wait_for SECONDS CMD...: poll every 0.2 s until CMD succeeds.
wait_for() {
  local until=$((SECONDS + $1)) ; shift
  while ((SECONDS < until)); do
    "$@" && return 0
    sleep 0.2
  done
  "$@"
}
# The box's VIP table as "ip:port/proto" lines, sorted.
box_vips() {
  api /v1/vips | "$PY" -c '
import json, sys
for v in json.load(sys.stdin).get("vips", []):
    for p in v.get("ports", []):
        print("%s:%s/%s" % (v["vip"], p["port"], p["protocol"]))' | sort
}

sed -n '/^dataplane = {/,/^};/p' "$repo/conf/demo.conf" >"$work/nodegate.conf"
cat >>"$work/nodegate.conf" <<CONF
api = { listen = "127.0.0.1:9080"; };
health = { interval_ms = 1000; timeout_ms = 500; rise = 2; fall = 2; source_address = "$NG_LB_MGMT_ADDR"; };
state_dir = "$work/state";
pools = ( { name = "default"; cidrs = [ "10.100.0.100/30" ]; } );
kubernetes = { enabled = true; server = "https://127.0.0.1:$fake_port"; ca_file = "$work/ca.crt";
               token_file = "$work/kube-token"; class = "$CLASS"; };
CONF
e2e_start "$work/nodegate.conf" || exit 1

# --- (a) programmed, status written, traffic flows -----------------------------------
has_status() { [[ -n "$(svc_ip web)" && -n "$(svc_ip dns)" ]]; }
if wait_for 20 has_status; then
  web_ip="$(svc_ip web)"; dns_ip="$(svc_ip dns)"
  pass "(a) status written: shop/web $web_ip, shop/dns $dns_ip"
else
  fail "(a) no status after 20 s: web '$(svc_ip web)' dns '$(svc_ip dns)'; $(api /v1/status | head -c 600)"
  exit 1
fi
mode="$(svc_field web 's["status"]["loadBalancer"]["ingress"][0].get("ipMode")')"
fin="$(svc_field web '",".join(s["metadata"].get("finalizers", []))')"
if [[ "$mode" == Proxy && "$fin" == *nodegate.io/cleanup* && "$web_ip" == 10.100.0.10[0-3] ]]; then
  pass "(a) ipMode Proxy, finalizer nodegate.io/cleanup, address from the pool"
else
  fail "(a) ipMode '$mode', finalizers '$fin', address '$web_ip'"
fi
served() {  # served IP N: answers of N HTTP requests, one per line
  ip netns exec "$client" bash -c '
    for ((i = 0; i < $2; i++)); do curl -s --max-time 2 --fail "http://$1/whoami" || echo "error:$?"; done' _ "$1" "$2"
}
wait_for 10 bash -c '[[ "$(ip netns exec '"$client"' curl -s --max-time 1 http://'"$web_ip"'/whoami)" == n[123] ]]'
answers="$(served "$web_ip" 30)"
udp="$(ip netns exec "$client" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], 53)); print(s.recvfrom(2048)[0].decode())' "$dns_ip" 2>&1)"
if (($(grep -cxE 'n[123]' <<<"$answers") == 30)) && [[ "$udp" =~ ^n[123]\ ping$ ]]; then
  pass "(a) 30/30 HTTP requests to $web_ip served ($(sort <<<"$answers" | uniq -c | awk '{printf "%s=%s ", $2, $1}')); UDP to $dns_ip:53 answered '$udp'"
else
  fail "(a) traffic: $(sort <<<"$answers" | uniq -c | tr '\n' ' '); udp '$udp'"
fi

ready="$(api /v1/nodes | "$PY" -c 'import json,sys; print(" ".join("%s=%s" % (n["name"], n.get("kubernetes_ready")) for n in json.load(sys.stdin)["nodes"]))')"
if [[ "$ready" == "n1=True n2=True n3=True" ]]; then
  pass "(a) /v1/nodes shows each node's Ready condition: $ready"
else
  fail "(a) /v1/nodes Ready conditions: '$ready'"
fi

# --- (b) other classes untouched -----------------------------------------------------
mutations() {  # mutating requests (or Events) that name shop/$1
  fake GET "/requests?since=0" | "$PY" -c '
import json, sys
name = sys.argv[1]
n = 0
for r in json.load(sys.stdin)["requests"]:
    if r["method"] in ("GET", "HEAD"):
        continue
    body = json.dumps(r.get("body"))
    if r["path"].rstrip("/").split("/")[-1] == name or "/services/%s/" % name in r["path"] or \
       ("events" in r["path"] and "\"name\": \"%s\"" % name in body):
        n += 1
print(n)' "$1"
}
m_other="$(mutations other)"; m_plain="$(mutations plain)"; m_web="$(mutations web)"
if [[ "$m_other" == 0 && "$m_plain" == 0 && "$m_web" -ge 2 ]]; then
  pass "(b) zero mutating requests to shop/other (another class) and shop/plain (no class); $m_web to shop/web"
else
  fail "(b) mutating requests: other $m_other, plain $m_plain, web $m_web"
fi

# --- (c) API server faults while traffic flows -------------------------------------------
# A request loop through shop/web's VIP for the whole phase; every failure is counted.
ip netns exec "$client" bash -c '
  end=$((SECONDS + 150)); ok=0; bad=0
  while ((SECONDS < end)) && [[ ! -e "$2" ]]; do
    if curl -s --max-time 2 --fail -o /dev/null "http://$1/whoami"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    sleep 0.1
  done
  echo "$ok $bad" >"$3"' _ "$web_ip" "$work/loop.stop" "$work/loop.result" &
loop_pid=$!
seen_pids+=("$loop_pid")

kstatus() { api /v1/status | "$PY" -c 'import json,sys; k=json.load(sys.stdin)["kubernetes"]; print(eval(sys.argv[1]))' "$1"; }
generations() { api /v1/status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["generations_published"])'; }
svc_json() {  # svc_json NAME PORT CLASS [PROTO]
  printf '{"metadata":{"name":"%s","namespace":"shop"},"spec":{"type":"LoadBalancer","loadBalancerClass":"%s","ports":[{"name":"p","protocol":"%s","port":%s,"nodePort":30080}]}}' \
    "$1" "$3" "${4:-TCP}" "$2"
}
expected_vips() {  # the server's view: Services of our class with a status address
  fake GET /objects/services | "$PY" -c '
import json, sys
for s in json.load(sys.stdin)["items"]:
    if s["spec"].get("type") != "LoadBalancer" or s["spec"].get("loadBalancerClass") != sys.argv[1]:
        continue
    if s["metadata"].get("deletionTimestamp"):
        continue
    ing = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for p in s["spec"]["ports"]:
        print("%s:%s/%s" % (ing[0]["ip"] if ing else "?", p["port"], p.get("protocol", "TCP")))' "$CLASS" | sort
}
converged() { [[ "$(box_vips)" == "$(expected_vips)" && "$(expected_vips)" != *'?'* ]]; }

# 1. A watch cut mid-line, then a new Service: the re-watch (from the last RV) sees it.
fake POST /faults '{"type":"cut_watch","after_events":0,"resource":"services","verb":"watch","count":1}' >/dev/null
fake POST /objects/services "$(svc_json web2 8080 "$CLASS")" >/dev/null
if wait_for 15 converged; then
  pass "(c1) watch cut mid-line: shop/web2 programmed at $(svc_ip web2) after the re-watch"
else
  fail "(c1) after a cut watch: box '$(box_vips | tr '\n' ' ')' server '$(expected_vips | tr '\n' ' ')'"
fi

# 2. In-stream 410 with nothing changed: a relist, and no generation published for it.
gen_before="$(generations)"; relists_before="$(kstatus 'k["watch"]["services"]["relists_after_expiry"]')"
fake POST /faults '{"type":"watch_expired","resource":"services","count":1}' >/dev/null
fake POST /close-watches '{}' >/dev/null
relisted() { (($(kstatus 'k["watch"]["services"]["relists_after_expiry"]') > relists_before)); }
if wait_for 15 relisted && sleep 1 && [[ "$(generations)" == "$gen_before" ]] && converged; then
  pass "(c2) in-stream 410: relisted, generations published still $gen_before (unchanged VIPs not republished)"
else
  fail "(c2) in-stream 410: relists $(kstatus 'k["watch"]["services"]["relists_after_expiry"]') (before $relists_before), generations $(generations) (before $gen_before)"
fi

# 3. HTTP 410 on the next watch, while a Service is deleted: the relist's diff finds it.
fake POST /faults '{"type":"http_error","code":410,"verb":"watch","resource":"services","count":1}' >/dev/null
fake POST /close-watches '{"abrupt":true}' >/dev/null
fake DELETE /objects/services/shop/web2 >/dev/null   # holds our finalizer: deletionTimestamp
web2_gone() { [[ "$(svc_field web2 's is None')" == True ]] && converged; }
if wait_for 20 web2_gone; then
  pass "(c3) HTTP 410 + delete: shop/web2 cleaned up (VIP gone, finalizer released, object gone)"
else
  fail "(c3) web2 exists: $(svc_field web2 's and s["metadata"].get("finalizers")'); box '$(box_vips | tr '\n' ' ')'"
fi

# 4. A 429 storm on every Service request, while a Service is added; then it clears.
fid="$(fake POST /faults '{"type":"http_error","code":429,"retry_after":1,"resource":"services"}' | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
fake POST /close-watches '{}' >/dev/null
fake POST /objects/services "$(svc_json web3 8081 "$CLASS")" >/dev/null
sleep 4
storm_429="$(fake GET /counters | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("status_429", 0))')"
fake DELETE "/faults/$fid" >/dev/null
if wait_for 40 converged && [[ -n "$(svc_ip web3)" ]]; then
  pass "(c4) 429 storm ($storm_429 answers 429, with back-off): shop/web3 programmed at $(svc_ip web3) once it ended"
else
  fail "(c4) after the 429 storm ($storm_429): box '$(box_vips | tr '\n' ' ')' server '$(expected_vips | tr '\n' ' ')'"
fi

# 5. The API server down for a while: fail static, and /v1/status says since when.
fid="$(fake POST /faults '{"type":"down"}' | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
fake POST /close-watches '{"abrupt":true}' >/dev/null
failing() { [[ "$(kstatus 'k["failing_since"]')" != None ]]; }
if wait_for 20 failing; then
  since="$(kstatus 'k["failing_since"]')"
  pass "(c5) API server down: /v1/status kubernetes.failing_since = $since; VIPs kept: $(box_vips | wc -l)"
else
  fail "(c5) API server down: failing_since not set; $(kstatus 'k')"
fi
fake DELETE /objects/services/shop/web3 >/dev/null   # changes while it is down (admin API still works)
sleep 3
fake DELETE "/faults/$fid" >/dev/null
healthy() { [[ "$(kstatus 'k["failing_since"]')" == None ]] && converged && [[ "$(svc_field web3 's is None')" == True ]]; }
if wait_for 60 healthy; then
  pass "(c5) API server back: failing_since cleared, shop/web3 (deleted meanwhile) cleaned up, tables equal"
else
  fail "(c5) after the outage: failing_since $(kstatus 'k["failing_since"]'); box '$(box_vips | tr '\n' ' ')' server '$(expected_vips | tr '\n' ' ')'"
fi

touch "$work/loop.stop"
wait "$loop_pid" 2>/dev/null
read -r loop_ok loop_bad <"$work/loop.result" 2>/dev/null || { loop_ok=0; loop_bad=unknown; }
if [[ "$loop_bad" == 0 && "$loop_ok" -gt 50 ]]; then
  pass "(c) the data plane kept serving through every fault: $loop_ok requests, 0 failed"
else
  fail "(c) request loop during the faults: $loop_ok ok, $loop_bad failed"
fi

# --- (d) deletion, with a crash between the VIP's removal and the finalizer's -----------
fake POST /faults '{"type":"http_error","code":500,"verb":"patch","resource":"services","name":"web"}' >/dev/null
fake DELETE /objects/services/shop/web >/dev/null
vip_gone() { ! box_vips | grep -q "^$web_ip:80/TCP$"; }
if wait_for 15 vip_gone && [[ "$(svc_field web '",".join(s["metadata"].get("finalizers", []))')" == *nodegate.io/cleanup* ]] &&
   [[ "$(ip netns exec "$client" curl -s --max-time 1 "http://$web_ip/whoami")" != n[123] ]]; then
  pass "(d) shop/web deleted: its VIP left the data plane (no answer at $web_ip) while the finalizer stays (PATCH failing)"
else
  fail "(d) VIP $web_ip still programmed or finalizer gone: box '$(box_vips | tr '\n' ' ')'"
fi
kill -KILL "$ng_pid" 2>/dev/null
waiting=1; wait "$ng_pid" 2>/dev/null; waiting=0; ng_pid=""
fake DELETE /faults >/dev/null
say "nodegate killed (SIGKILL) before removing the finalizer; restarting"
e2e_start "$work/nodegate.conf" || exit 1
if wait_for 20 bash -c "[[ \"\$(ip netns exec $lb curl -s --max-time 2 --cacert $work/ca.crt -o /dev/null -w '%{http_code}' https://127.0.0.1:$fake_port/_fake/objects/services/shop/web)\" == 404 ]]"; then
  pass "(d) after the restart the cleanup completed: shop/web is gone from the API server"
else
  fail "(d) after the restart shop/web still has finalizers: $(svc_field web 's and s["metadata"].get("finalizers")')"
fi

# --- (e) re-adoption after the restart ---------------------------------------------------
wait_for 15 converged
udp="$(ip netns exec "$client" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
for _ in range(10):
    try:
        s.sendto(b"again", (sys.argv[1], 53)); print(s.recvfrom(2048)[0].decode()); break
    except socket.timeout:
        pass' "$dns_ip" 2>&1)"
if [[ "$(svc_ip dns)" == "$dns_ip" ]] && box_vips | grep -q "^$dns_ip:53/UDP$" && [[ "$udp" =~ ^n[123]\ again$ ]]; then
  pass "(e) after the restart shop/dns kept $dns_ip and serves again ('$udp')"
else
  fail "(e) shop/dns: status '$(svc_ip dns)' (was $dns_ip); box '$(box_vips | tr '\n' ' ')'; udp '$udp'"
fi
exit 0
