#!/usr/bin/env bash
# End-to-end at scale: a cold start of the Kubernetes controller against a cluster of
# 2,000 LoadBalancer Services and 300 Nodes, listed in pages of 500 from the project's
# fake API server (test/fake_apiserver).
#
# Usage: test/e2e/kube_scale_test.sh <nodegate-binary> <repo-root>
#
# One namespace of its own (${P}lb, loopback only: nothing leaves it) runs the fake API
# server and nodegate on null devices (net_null: no traffic; this is about the control
# plane). Half of the Services (the even ones) already carry our finalizer and a status
# address, as after an earlier run; the other half are new. Checks:
#   (a) the LIST was paged (limit=500, continue tokens) and the controller's first pass
#       published one generation for all of it;
#   (b) the box's VIP table equals the expected one: every Service of ours, at the
#       address its status names; the pre-set Services kept theirs;
#   (c) no status or finalizer write for a Service whose status was already right; exactly
#       one status write and one finalizer write for each new one.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_kube_scale "ngs$$-" "$@"

readonly PY=/usr/bin/python3
readonly SERVICES=2000 NODES=300 CLASS=nodegate.io/lb
ip netns add "$lb" && ip -n "$lb" link set lo up || { fail "namespace $lb"; exit 1; }

# Pool 10.101.0.0/21 (2,048 addresses). Service i is shop/s<i>; the even ones already
# hold 10.101.<i/256>.<i%256> in their status; the odd ones are new.
"$PY" - "$work/state.json" "$work/expected" "$SERVICES" "$NODES" "$CLASS" <<'PY'
import json, sys
out, expected_out, n_svc, n_nodes, cls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
nodes = [{"metadata": {"name": "node-%03d" % i},
          "status": {"addresses": [{"type": "InternalIP", "address": "10.250.%d.%d" % (i // 250, i % 250 + 1)}]}}
         for i in range(n_nodes)]
services, expected = [], []
for i in range(n_svc):
    s = {"metadata": {"name": "s%04d" % i, "namespace": "shop"},
         "spec": {"type": "LoadBalancer", "loadBalancerClass": cls,
                  "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30000 + i}]}}
    if i % 2 == 0:
        ip = "10.101.%d.%d" % (i // 256, i % 256)
        s["metadata"]["finalizers"] = ["nodegate.io/cleanup"]
        s["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "Proxy"}]}}
        expected.append("shop/s%04d %s" % (i, ip))
    services.append(s)
json.dump({"nodes": nodes, "services": services}, open(out, "w"))
open(expected_out, "w").write("\n".join(expected) + "\n")
PY

e2e_fake_apiserver "$work/state.json" --port 0 --history-size 20000 || exit 1
fake() { ip netns exec "$lb" curl -sS --max-time 30 --cacert "$work/ca.crt" -X "$1" "https://127.0.0.1:$fake_port/_fake$2"; }

cat >"$work/nodegate.conf" <<CONF
dataplane = {
  eal = [ "--no-huge", "-m", "512", "--no-pci", "--no-shconf" ];
  workers = [ 1 ];
  ports = (
    { name = "ext"; device = "net_null0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "net_null1"; role = "internal"; address = "10.250.255.1/16"; }
  );
};
api = { listen = "127.0.0.1:9080"; };
health = { cluster_probe = "none"; };
state_dir = "$work/state";
pools = ( { name = "default"; cidrs = [ "10.101.0.0/21" ]; } );
kubernetes = { enabled = true; server = "https://127.0.0.1:$fake_port"; ca_file = "$work/ca.crt";
               token_file = "$work/kube-token"; class = "$CLASS"; };
CONF
started=$SECONDS
e2e_start "$work/nodegate.conf" || exit 1

status_json() { ip netns exec "$lb" curl -s --max-time 10 "$NG_API/v1/status"; }
synced() {
  status_json | "$PY" -c '
import json, sys
k = json.load(sys.stdin)["kubernetes"]
sys.exit(0 if k["synced"] and k["load_balancers"] == int(sys.argv[1]) and k["retrying"] == 0 else 1)' "$SERVICES"
}
writes_done() {  # every new Service has its status
  fake GET /objects/services | "$PY" -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(0 if all((s.get("status") or {}).get("loadBalancer", {}).get("ingress") for s in items) else 1)'
}
for ((i = 0; i < 900; i++)); do synced && writes_done && break; sleep 0.2; done
elapsed=$((SECONDS - started))
if synced && writes_done; then
  pass "cold start: $SERVICES load balancers programmed and every status written ${elapsed} s after start"
else
  fail "cold start not done after ${elapsed} s: $(status_json | head -c 800)"
fi

# (a) paging and one generation.
fake GET "/requests?since=0" >"$work/requests.json"
pages="$("$PY" -c '
import json, sys
reqs = json.load(open(sys.argv[1]))["requests"]
lists = [r for r in reqs if r["method"] == "GET" and r["path"] == "/api/v1/services" and "watch" not in r.get("query", "")]
print(len(lists), sum("continue=" in r.get("query", "") for r in lists), all("limit=500" in r.get("query", "") for r in lists))' "$work/requests.json")"
gens="$(status_json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["generations_published"])')"
read -r n_lists n_continued all_limited <<<"$pages"
if ((n_lists >= 4 && n_continued >= 3)) && [[ "$all_limited" == True ]] && ((gens == 2)); then
  pass "(a) services listed in $n_lists pages of 500 ($n_continued with a continue token); generations: 1 at start + 1 for the whole cluster"
else
  fail "(a) lists $n_lists, continued $n_continued, all limit=500 $all_limited; generations published $gens (want 2)"
fi

# (b) the VIP table equals the expected one.
ip netns exec "$lb" curl -s --max-time 60 "$NG_API/v1/vips" >"$work/vips.json"
fake GET /objects/services >"$work/services.json"
if "$PY" - "$work/vips.json" "$work/services.json" "$work/expected" >"$work/compare.out" 2>&1 <<'PY'
import json, sys
vips = json.load(open(sys.argv[1]))["vips"]
services = json.load(open(sys.argv[2]))["items"]
expected = dict(line.split() for line in open(sys.argv[3]) if line.strip())
box = {v["owner"]: (v["vip"], sorted((p["port"], p["protocol"]) for p in v["ports"])) for v in vips}
server = {}
for s in services:
    key = s["metadata"]["namespace"] + "/" + s["metadata"]["name"]
    ip = s["status"]["loadBalancer"]["ingress"][0]["ip"]
    server[key] = (ip, [(p["port"], p.get("protocol", "TCP")) for p in s["spec"]["ports"]])
assert len(box) == len(server) == 2000, (len(box), len(server))
assert box == server, [k for k in server if box.get(k) != server[k]][:5]
moved = [k for k, ip in expected.items() if box[k][0] != ip]
assert not moved, moved[:5]
assert len(set(ip for ip, _ in box.values())) == 2000
print("ok")
PY
then
  pass "(b) the box's VIP table equals the server's: 2000 VIPs, each at its status address; the 1000 pre-set ones kept theirs"
else
  fail "(b) VIP table: $(tail -n 3 "$work/compare.out")"
fi

# (c) writes only where something was wrong.
"$PY" - "$work/requests.json" >"$work/writes.out" <<'PY'
import collections, json, sys
status, finalizers = collections.Counter(), collections.Counter()
for r in json.load(open(sys.argv[1]))["requests"]:
    if r["method"] != "PATCH":
        continue
    parts = r["path"].split("/")
    name = parts[6]
    n = int(name[1:])
    (status if r["path"].endswith("/status") else finalizers)[n] += 1
even_writes = sum(c for n, c in (status + finalizers).items() if n % 2 == 0)
odd_ok = all(status[n] == 1 and finalizers[n] == 1 for n in range(1, 2000, 2))
print(even_writes, sum(status.values()), sum(finalizers.values()), odd_ok)
PY
read -r even_writes n_status n_final odd_ok <"$work/writes.out"
if [[ "$even_writes" == 0 && "$n_status" == 1000 && "$n_final" == 1000 && "$odd_ok" == True ]]; then
  pass "(c) 0 writes to the 1000 Services whose status was right; exactly 1 status + 1 finalizer write to each of the 1000 new ones"
else
  fail "(c) writes: to pre-set Services $even_writes; status $n_status, finalizer $n_final; one each for new: $odd_ok"
fi
[[ -n "${NG_E2E_KEEP:-}" ]] && cp -r "$work" "$NG_E2E_KEEP"  # for a closer look
exit 0
