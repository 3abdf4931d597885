#!/usr/bin/env bash
# Proves the fake API server faithful with REAL clients over TLS + bearer token:
#   python  - Debian's python3-kubernetes (python_client_check.py); always runs.
#   kubectl - /usr/bin/kubectl (get -A -o json, tables, patch merge/json/strategic on the status
#             subresource and finalizers, delete with and without finalizers, get -w, 401,
#             client-go's own 429 retry). Exits 77 (ctest: skipped) when kubectl is missing.
# Usage: clients_test.sh [python|kubectl|all]   (default all: python, then kubectl)
set -euo pipefail

MODE="${1:-all}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3   # Debian's python: the one with python3-kubernetes
TOKEN="fake-token-$$-$RANDOM"
WORK="$(mktemp -d /tmp/fake-apiserver-clients.XXXXXX)"
SERVER_PID=""
BG_PIDS=()

cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && $rc -ne 77 && -f "$WORK/server.err" ]]; then
    echo "--- fake apiserver stderr ---"; tail -n 40 "$WORK/server.err"
  fi
  if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL (kubectl): $*" >&2; exit 1; }
ok() { echo "ok   kubectl: $*"; }

case "$MODE" in python|kubectl|all) ;; *) echo "usage: $0 [python|kubectl|all]" >&2; exit 2 ;; esac
[[ -x "$PY" ]] || { echo "FAIL: $PY not found" >&2; exit 1; }
if [[ "$MODE" != kubectl ]] && ! "$PY" -c 'import kubernetes' 2>/dev/null; then
  echo "FAIL: $PY cannot import kubernetes (install python3-kubernetes)" >&2; exit 1
fi

# --- throwaway CA and a server certificate for 127.0.0.1 ---
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
  -days 1 -subj "/CN=nodegate-fake-ca" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 \
  -extfile ext.cnf 2>/dev/null

"$PY" "$HERE/fake_apiserver.py" --cert server.crt --key server.key --token "$TOKEN" \
  --port 0 --port-file port --log requests.log --bookmark-interval 1 2>server.err &
SERVER_PID=$!
for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
[[ -s port ]] || fail "the fake did not write its port file"
PORT="$(cat port)"
URL="https://127.0.0.1:$PORT"

admin() {  # admin METHOD PATH [JSON]
  curl -sS --fail-with-body --cacert ca.crt -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$URL/_fake/$2"
}

# ------------------------------------------------------------------ python half
if [[ "$MODE" != kubectl ]]; then
  echo "== python3-kubernetes against $URL"
  "$PY" "$HERE/python_client_check.py" "$URL" "$WORK/ca.crt" "$TOKEN"
fi
[[ "$MODE" == python ]] && exit 0

# ------------------------------------------------------------------ kubectl half
if ! command -v kubectl >/dev/null 2>&1; then
  echo "######################################################################"
  echo "## SKIPPED: kubectl is not installed: the kubectl half of the fake  ##"
  echo "## API server's fidelity test did NOT run (exit 77 = ctest skip).   ##"
  echo "######################################################################"
  exit 77
fi
echo "== $(kubectl version --client 2>/dev/null | head -n1) against $URL"
export KUBECONFIG="$WORK/no-kubeconfig"   # nothing from the user's ~/.kube leaks in
export HOME="$WORK"
K=(kubectl --server "$URL" --certificate-authority "$WORK/ca.crt" --token "$TOKEN" --cache-dir "$WORK/cache")

admin POST state '{
 "services":[
  {"metadata":{"name":"web","namespace":"shop"},"spec":{"type":"LoadBalancer","selector":{"app":"web"},
   "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":31080},
            {"name":"dns","protocol":"UDP","port":53,"targetPort":5353,"nodePort":31053}]}},
  {"metadata":{"name":"api","namespace":"shop"},"spec":{"type":"ClusterIP","ports":[{"port":443}]}},
  {"metadata":{"name":"dns","namespace":"kube-system"},"spec":{"type":"ClusterIP","ports":[{"port":53,"protocol":"UDP"}]}}],
 "nodes":[
  {"metadata":{"name":"worker-1","labels":{"node-role.kubernetes.io/worker":""}},
   "status":{"addresses":[{"type":"InternalIP","address":"192.0.2.11"}],"conditions":[{"type":"Ready","status":"True"}],
             "nodeInfo":{"kubeletVersion":"v1.32.0"}}},
  {"metadata":{"name":"worker-2"},"spec":{"unschedulable":true},
   "status":{"addresses":[{"type":"InternalIP","address":"192.0.2.12"}],"conditions":[{"type":"Ready","status":"False"}],
             "nodeInfo":{"kubeletVersion":"v1.32.0"}}}]}' >/dev/null

# get services -A -o json
out="$("${K[@]}" get services -A -o json)"
got="$(jq -r '[.items[] | "\(.kind) \(.metadata.namespace)/\(.metadata.name)"] | join(",")' <<<"$out")"
[[ "$got" == "Service kube-system/dns,Service shop/api,Service shop/web" ]] || fail "get services -A -o json: $got"
got="$(jq -r '.items[2].spec.ports | map("\(.port):\(.nodePort)/\(.protocol)") | join(",")' <<<"$out")"
[[ "$got" == "80:31080/TCP,53:31053/UDP" ]] || fail "web's ports: $got"
ok "get services -A -o json lists kube-system/dns, shop/api, shop/web with their ports"

# get nodes (server-side table)
out="$("${K[@]}" get nodes)"
got="$(awk '{print $1, $2, $3, $5}' <<<"$out" | paste -sd';')"
[[ "$got" == "NAME STATUS ROLES VERSION;worker-1 Ready worker v1.32.0;worker-2 NotReady,SchedulingDisabled <none> v1.32.0" ]] \
  || fail "get nodes table: $got"
ok "get nodes prints the server-side table (Ready / NotReady,SchedulingDisabled, roles, version)"

out="$("${K[@]}" get svc -n shop web --no-headers)"
[[ "$(awk '{print $2, $4, $5}' <<<"$out")" == "LoadBalancer <pending> 80:31080/TCP,53:31053/UDP" ]] || fail "svc table: $out"
ok "get svc shows EXTERNAL-IP <pending> before status is written"

# patch --subresource=status --type=merge
out="$("${K[@]}" -n shop patch svc web --subresource=status --type=merge \
  -p '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10","ipMode":"Proxy"}]}}}')"
[[ "$out" == "service/web patched" ]] || fail "patch status said: $out"
got="$("${K[@]}" -n shop get svc web -o jsonpath='{.status.loadBalancer.ingress[0].ip} {.status.loadBalancer.ingress[0].ipMode} {.metadata.generation}')"
[[ "$got" == "203.0.113.10 Proxy 1" ]] || fail "status after patch: $got"
[[ "$("${K[@]}" -n shop get svc web --no-headers | awk '{print $4}')" == "203.0.113.10" ]] || fail "EXTERNAL-IP column"
out="$("${K[@]}" -n shop patch svc web --subresource=status --type=merge \
  -p '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10","ipMode":"Proxy"}]}}}')"
[[ "$out" == "service/web patched (no change)" ]] || fail "same status patch again said: $out"
ok "patch --subresource=status --type=merge writes ingress 203.0.113.10/Proxy; repeating it is a no-op"
if "${K[@]}" -n shop patch svc web --subresource=status --type=merge \
     -p '{"status":{"loadBalancer":{"ingress":[{"ip":"bogus"}]}}}' >/dev/null 2>err.txt; then
  fail "an invalid ingress IP was accepted"
fi
grep -q 'is invalid: status.loadBalancer.ingress\[0\].ip: Invalid value: "bogus"' err.txt || fail "422 text: $(cat err.txt)"
ok "an invalid ingress IP is rejected with the 422 message"

# finalizers: merge, strategic (merges lists), json (removes one)
"${K[@]}" -n shop patch svc web --type=merge -p '{"metadata":{"finalizers":["nodegate.io/cleanup"]}}' >/dev/null
"${K[@]}" -n shop patch svc web --type=strategic -p '{"metadata":{"finalizers":["example.com/other"]}}' >/dev/null
got="$("${K[@]}" -n shop get svc web -o jsonpath='{.metadata.finalizers}')"
[[ "$got" == '["nodegate.io/cleanup","example.com/other"]' ]] || fail "finalizers after merge+strategic: $got"
"${K[@]}" -n shop patch svc web --type=json -p '[{"op":"remove","path":"/metadata/finalizers/1"}]' >/dev/null
got="$("${K[@]}" -n shop get svc web -o jsonpath='{.metadata.finalizers}')"
[[ "$got" == '["nodegate.io/cleanup"]' ]] || fail "finalizers after json remove: $got"
ok "finalizer patches: merge sets, strategic merges the list, json removes one"

# delete with a finalizer: deletionTimestamp, object stays
out="$("${K[@]}" -n shop delete svc web --wait=false)"
[[ "$out" == 'service "web" deleted' ]] || fail "delete said: $out"
got="$("${K[@]}" -n shop get svc web -o jsonpath='{.metadata.deletionTimestamp}')"
[[ "$got" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "deletionTimestamp after delete: '$got'"
ok "delete of a Service with a finalizer sets deletionTimestamp and keeps it"

# watch (-o json with --output-watch-events) while the finalizer goes
"${K[@]}" -n shop get svc -w --output-watch-events -o json --request-timeout=6s > watch.json 2>watch.err &
BG_PIDS+=($!); WPID=$!
for _ in $(seq 100); do
  [[ "$(admin GET watches | jq '[.watches[] | select(.user_agent | startswith("kubectl"))] | length')" == 1 ]] && break
  sleep 0.1
done
"${K[@]}" -n shop patch svc web --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
if "${K[@]}" -n shop get svc web >/dev/null 2>err.txt; then fail "web still exists without finalizers"; fi
grep -q 'services "web" not found' err.txt || fail "get after finalizer removal: $(cat err.txt)"
wait "$WPID" || true
got="$(jq -rs 'map("\(.type) \(.object.metadata.name)") | join(",")' watch.json)"
[[ "$got" == "ADDED api,ADDED web,DELETED web" ]] || fail "kubectl watch events: $got ($(cat watch.err))"
ok "removing the last finalizer deletes it; kubectl get -w saw ADDED api, ADDED web, DELETED web"

# delete without finalizers, kubectl waits (a watch with fieldSelector=metadata.name=api)
out="$(timeout 30 "${K[@]}" -n shop delete svc api)"
[[ "$out" == 'service "api" deleted' ]] || fail "delete api said: $out"
[[ "$("${K[@]}" get svc -A -o name | paste -sd,)" == "service/dns" ]] || fail "left after deletes"
ok "delete without finalizers is immediate (kubectl's wait saw it)"

# a short table watch with --request-timeout: a Service created meanwhile shows up
"${K[@]}" get svc -A -w --request-timeout=4s > watch.txt 2>&1 &
BG_PIDS+=($!); WPID=$!
for _ in $(seq 100); do
  [[ "$(admin GET watches | jq '[.watches[] | select(.user_agent | startswith("kubectl"))] | length')" == 1 ]] && break
  sleep 0.1
done
admin POST objects/services '{"metadata":{"name":"late","namespace":"shop"},"spec":{"type":"LoadBalancer","ports":[{"port":8443,"nodePort":31443}]}}' >/dev/null
wait "$WPID" || true
got="$(awk '{print $1, $2, $3, $6}' watch.txt | paste -sd';')"
[[ "$got" == "NAMESPACE NAME TYPE PORT(S);kube-system dns ClusterIP 53/UDP;shop late LoadBalancer 8443:31443/TCP" ]] \
  || fail "get svc -A -w: $got"
ok "get svc -A -w --request-timeout=4s printed the list, then the Service created during the watch"

# client-go retries a 429 with Retry-After by itself
admin POST faults '{"type":"http_error","code":429,"retry_after":1,"verb":"list","resource":"nodes","count":2}' >/dev/null
[[ "$("${K[@]}" get nodes -o name | paste -sd,)" == "node/worker-1,node/worker-2" ]] || fail "get nodes after 429s"
n429="$(jq -s '[.[] | select(.path=="/api/v1/nodes" and .status==429)] | length' requests.log)"
[[ "$n429" == 2 ]] || fail "expected 2 logged 429s, got $n429"
ok "client-go retried two 429s (Retry-After: 1) and kubectl succeeded"

# wrong token
if kubectl --server "$URL" --certificate-authority "$WORK/ca.crt" --token wrong --cache-dir "$WORK/cache" \
     get nodes >/dev/null 2>err.txt; then fail "a wrong token was accepted"; fi
grep -q "Unauthorized" err.txt || fail "wrong token: $(cat err.txt)"
ok "a wrong token is refused (Unauthorized)"

# what kubectl sent, from the request log
got="$(jq -rs '[.[] | select(.method=="PATCH" and (.path|endswith("/status")) and .status==200 and (.user_agent|test("kubectl")))][0] | "\(.content_type) \(.body|tojson)"' requests.log)"
[[ "$got" == 'application/merge-patch+json {"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10","ipMode":"Proxy"}]}}}' ]] \
  || fail "logged status patch: $got"
ok "the request log holds kubectl's status PATCH with its content type and body"
echo "PASS kubectl"
