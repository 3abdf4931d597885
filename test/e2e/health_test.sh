#!/usr/bin/env bash
# End-to-end: health checking acts on traffic (issue: health checking with Kubernetes
# semantics), in network namespaces with real TCP.
#
# Usage: test/e2e/health_test.sh <nodegate-binary> <repo-root>
#
# Two Services on the demo topology: web (10.100.0.100:80, externalTrafficPolicy Cluster,
# probed on kube-proxy's :10256/healthz) and local (10.100.0.101:80, Local, probed on its
# healthCheckNodePort :32000). Probes: interval 1 s, timeout 0.5 s, rise 2, fall 2, from
# the box's management address. Checks:
#   (a) a node vanishes (link down) while 12 long downloads run over all nodes: the
#       downloads on the other nodes finish whole (no reset); the box stops choosing the
#       node within fall x interval + timeout (+ jitter and the rebuild gap); new
#       requests avoid it; after the link returns it serves again after rise successes;
#   (b) Local: a node whose health port turns 503 drains: no new flows, while its
#       established downloads finish whole;
#   (c) Local weights 1:3 (X-Load-Balancing-Endpoint-Weight) give about 25%/75% of new flows;
#   (d) a node flapping 200/503 every second for 12 s costs a bounded number of
#       generations, and every request meanwhile succeeds;
#   (e) with health.drain_timeout_s (set by a live reload), a draining node's downloads
#       are cut once the timeout has passed, while those on the other nodes finish whole.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_health "ngh$$-" "$@"

readonly LOCAL_VIP=10.100.0.101
readonly INTERVAL_MS=1000 TIMEOUT_MS=500 RISE=2 FALL=2
readonly RATE=4M  # per download: 50 MiB take about 12.5 s

e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
python3 - "$work/nodegate.conf" <<PY
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"^health = .*$", 'health = { interval_ms = $INTERVAL_MS; timeout_ms = $TIMEOUT_MS; rise = $RISE; fall = $FALL; '
              'cluster_probe = "kube-proxy"; source_address = "$NG_LB_MGMT_ADDR"; };', text, flags=re.M)
text = text[:text.index("services = (")] + """services = (
  { namespace = "default"; name = "web"; vip = "$NG_VIP";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; } ); },
  { namespace = "default"; name = "local"; vip = "$LOCAL_VIP";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; } );
    external_traffic_policy = "Local"; health_check_node_port = $NG_HCNP; }
);
"""
open(path, "w").write(text)
PY
e2e_start "$work/nodegate.conf" || exit 1

# backend VIP NODE: "serving state weight" of NODE on VIP:80 from GET /v1/vips/VIP.
backend() {
  api "/v1/vips/$1" | python3 -c '
import json, sys
try:
    vip = json.load(sys.stdin)
    b = next(b for b in vip["ports"][0]["backends"] if b["node"] == sys.argv[1])
    print("yes" if b["serving"] else "no", b["health"]["state"], b["weight"], b["health"]["reason"] or "-")
except Exception as e:
    print("error", repr(e)[:80], 0, "-")' "$2"
}
# wait_backend VIP NODE SERVING(yes|no) SECONDS: polls every 0.1 s; prints the seconds it
# took (one decimal) and returns 0, or returns 1 after SECONDS.
wait_backend() {
  local start=$EPOCHREALTIME now
  while :; do
    read -r serving _ < <(backend "$1" "$2")
    now=$EPOCHREALTIME
    if [[ "$serving" == "$3" ]]; then
      awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f\n", b - a }'
      return 0
    fi
    awk -v a="$start" -v b="$now" -v l="$4" 'BEGIN { exit !(b - a >= l) }' && return 1
    sleep 0.1
  done
}
# requests VIP N FILE: N new connections to VIP/whoami, one answer (or error:RC) per line.
requests() {
  step ip netns exec "$client" bash -c '
    for ((i = 0; i < $2; i++)); do curl -s --max-time 3 --fail "http://$1/whoami" || echo "error:$?"; done' \
    _ "$1" "$2" >"$3" 2>&1
}
spread() { printf 'n1=%s n2=%s n3=%s errors=%s' "$(grep -cx n1 "$1")" "$(grep -cx n2 "$1")" \
  "$(grep -cx n3 "$1")" "$(grep -c error "$1")"; }
# downloads VIP COUNT TAG: COUNT rate-limited downloads of big.bin in the background
# (at $DOWNLOAD_RATE, default $RATE);
# each writes $work/TAG.K.{headers,out,rc}.
downloads() {
  local k
  for ((k = 0; k < $2; k++)); do
    ip netns exec "$client" bash -c 'curl -s --max-time 40 --limit-rate "$2" -D "$3.headers" -o "$3.out" \
      "http://$1/big.bin"; echo $? >"$3.rc"' _ "$1" "${DOWNLOAD_RATE:-$RATE}" "$work/$3.$k" &
  done
}
# node_of FILE.headers: the X-Node of a download (empty until its headers arrived).
node_of() { sed -n 's/^X-Node: *\([a-z0-9]*\).*/\1/p' "$1" 2>/dev/null | head -1; }
# first_node TAG COUNT: the node of the first download of TAG whose headers arrived (n1 if none).
first_node() {
  local k n
  for ((k = 0; k < $2; k++)); do
    n="$(node_of "$work/$1.$k.headers")"
    if [[ -n "$n" ]]; then echo "$n"; return; fi
  done
  echo n1
}
# wait_downloads TAG COUNT: until every download of TAG wrote its exit code (<= 45 s).
wait_downloads() {
  local k done_count
  for ((t = 0; t < 450; t++)); do
    done_count=0
    for ((k = 0; k < $2; k++)); do [[ -s "$work/$1.$k.rc" ]] && done_count=$((done_count + 1)); done
    ((done_count == $2)) && return 0
    sleep 0.1
    checkpoint
  done
  return 1
}
big_sha="$(ng_netns_big_sha256 "$P")"
# check_downloads TAG COUNT SKIP_NODE: "ok" lines for whole downloads; prints a summary and
# returns 1 when a download from a node other than SKIP_NODE is not whole.
check_downloads() {
  local k node rc sha bad=0 summary=""
  for ((k = 0; k < $2; k++)); do
    node="$(node_of "$work/$1.$k.headers")"
    rc="$(cat "$work/$1.$k.rc" 2>/dev/null)"
    sha="$(sha256sum "$work/$1.$k.out" 2>/dev/null | cut -d' ' -f1)"
    if [[ "$rc" == 0 && "$sha" == "$big_sha" ]]; then
      summary+=" ${node:-?}:whole"
    else
      summary+=" ${node:-?}:rc=$rc"
      [[ "$node" != "$3" ]] && bad=$((bad + 1))
    fi
    rm -f "$work/$1.$k.out"
  done
  echo "$summary"
  ((bad == 0))
}
detect_limit="$(awk -v f=$FALL -v i=$INTERVAL_MS -v t=$TIMEOUT_MS 'BEGIN { printf "%.1f", (f * i * 1.1 + t + 500 + 300) / 1000 }')"

# --- (a) a node vanishes mid-transfer -----------------------------------------------
say "(a) 12 downloads at $RATE/s through $NG_VIP, then a node's link goes down"
for n in "${NG_NODE_NAMES[@]}"; do
  read -r serving state _ < <(backend "$NG_VIP" "$n")
  [[ "$serving" == yes ]] || say "warning: $n is '$state' before the test"
done
downloads "$NG_VIP" 12 a
sleep 2
victim=""
declare -A flows=()
for ((k = 0; k < 12; k++)); do
  n="$(node_of "$work/a.$k.headers")"
  [[ -n "$n" ]] && flows[$n]=$((${flows[$n]:-0} + 1))
done
for n in n2 n1 n3; do
  if ((${flows[$n]:-0} > 0)); then victim="$n"; break; fi
done
victim="${victim:-n2}"
say "(a) flows per node: n1=${flows[n1]:-0} n2=${flows[n2]:-0} n3=${flows[n3]:-0}; $victim goes down"
ng_node_link "$P" "$victim" down
if took="$(wait_backend "$NG_VIP" "$victim" no 15)"; then
  read -r _ state _ reason < <(backend "$NG_VIP" "$victim")
  if awk -v a="$took" -v b="$detect_limit" 'BEGIN { exit !(a <= b) }'; then
    pass "(a) $victim out of new-flow choice ${took} s after its link went down (limit $detect_limit s: fall x interval x 1.1 + timeout + 0.8 s); state $state, reason $reason"
  else
    fail "(a) $victim left the choice only after ${took} s (limit $detect_limit s)"
  fi
else
  fail "(a) $victim still serving 15 s after its link went down: $(backend "$NG_VIP" "$victim")"
fi
requests "$NG_VIP" 30 "$work/a.after.txt"
checkpoint
if (($(grep -cx "$victim" "$work/a.after.txt") == 0)) && (($(grep -c error "$work/a.after.txt") == 0)); then
  pass "(a) 30 new requests while $victim is down all answered by the others ($(spread "$work/a.after.txt"))"
else
  fail "(a) new requests while $victim is down: $(spread "$work/a.after.txt")"
fi
if ! wait_downloads a 12; then fail "(a) downloads did not finish in 45 s"; fi
if summary="$(check_downloads a 12 "$victim")"; then
  pass "(a) every download on the surviving nodes finished whole (sha256), no reset:$summary"
else
  fail "(a) a download on a surviving node broke:$summary"
fi
ng_node_link "$P" "$victim" up
if took="$(wait_backend "$NG_VIP" "$victim" yes 15)"; then
  pass "(a) $victim serving again ${took} s after its link came back (rise $RISE x interval)"
else
  fail "(a) $victim not serving 15 s after its link came back: $(backend "$NG_VIP" "$victim")"
fi
requests "$NG_VIP" 30 "$work/a.back.txt"
checkpoint
if (($(grep -cx "$victim" "$work/a.back.txt") > 0)) && (($(grep -c error "$work/a.back.txt") == 0)); then
  pass "(a) new requests reach $victim again ($(spread "$work/a.back.txt"))"
else
  fail "(a) after recovery: $(spread "$work/a.back.txt")"
fi

# --- (b) Local: 503 drains without resetting ----------------------------------------
say "(b) 6 downloads through $LOCAL_VIP (Local), then a node's health port answers 503"
downloads "$LOCAL_VIP" 6 b
sleep 2
victim="$(first_node b 6)"
victim_flows=0
for ((k = 0; k < 6; k++)); do [[ "$(node_of "$work/b.$k.headers")" == "$victim" ]] && victim_flows=$((victim_flows + 1)); done
ng_node_health "$P" "$victim" hcnp 503
if took="$(wait_backend "$LOCAL_VIP" "$victim" no 15)"; then
  read -r _ state _ reason < <(backend "$LOCAL_VIP" "$victim")
  if [[ "$state" == draining ]]; then
    pass "(b) $victim draining ${took} s after its health port turned 503 (reason $reason)"
  else
    fail "(b) $victim left the choice but shows '$state' (want draining)"
  fi
else
  fail "(b) $victim still serving 15 s after 503: $(backend "$LOCAL_VIP" "$victim")"
fi
requests "$LOCAL_VIP" 30 "$work/b.after.txt"
checkpoint
if (($(grep -cx "$victim" "$work/b.after.txt") == 0)) && (($(grep -c error "$work/b.after.txt") == 0)); then
  pass "(b) 30 new requests avoid the draining $victim ($(spread "$work/b.after.txt"))"
else
  fail "(b) new requests during the drain: $(spread "$work/b.after.txt")"
fi
if ! wait_downloads b 6; then fail "(b) downloads did not finish in 45 s"; fi
if summary="$(check_downloads b 6 "")"; then
  pass "(b) all 6 downloads finished whole, $victim_flows of them on the draining $victim:$summary"
else
  fail "(b) a download broke during the drain:$summary"
fi

# --- (c) Local weights 1:3 ------------------------------------------------------------
say "(c) weights: n1 1, n2 503, n3 3"
ng_node_health "$P" n1 hcnp 200 1
ng_node_health "$P" n2 hcnp 503
ng_node_health "$P" n3 hcnp 200 3
ok_weights=0
for ((t = 0; t < 100; t++)); do
  read -r s1 _ w1 _ < <(backend "$LOCAL_VIP" n1)
  read -r s2 _ _ _ < <(backend "$LOCAL_VIP" n2)
  read -r s3 _ w3 _ < <(backend "$LOCAL_VIP" n3)
  if [[ "$s1 $w1 $s2 $s3 $w3" == "yes 1 no yes 3" ]]; then ok_weights=1; break; fi
  sleep 0.1
done
requests "$LOCAL_VIP" 200 "$work/c.txt"
checkpoint
c1="$(grep -cx n1 "$work/c.txt")"; c2="$(grep -cx n2 "$work/c.txt")"; c3="$(grep -cx n3 "$work/c.txt")"
if ((ok_weights)) && ((c2 == 0)) && ((c1 + c3 == 200)) && ((c3 >= 124 && c3 <= 176)); then
  pass "(c) weights 1:3 -> n1 $c1 (${c1}/200), n3 $c3 (${c3}/200), n2 0 (expected about 50/150; accepted n3 124..176)"
else
  fail "(c) weights applied=$ok_weights; n1=$c1 n2=$c2 n3=$c3 of 200 (want n2 0, n3 124..176)"
fi
for n in "${NG_NODE_NAMES[@]}"; do ng_node_health "$P" "$n" hcnp 200 1; done

# --- (d) flapping ---------------------------------------------------------------------
generations() { api /v1/status | python3 -c 'import json, sys; print(json.load(sys.stdin)["generations_published"])' 2>/dev/null; }
transitions() {
  api /v1/nodes | python3 -c '
import json, sys
node = next(n for n in json.load(sys.stdin)["nodes"] if n["name"] == sys.argv[1])
print(sum(h.get("transitions", 0) for h in node["health"] if ":10256/" in h["probe"]))' "$1" 2>/dev/null
}
# flap PERIOD_DS DURATION_S: n3's kube-proxy alternates 503/200 every PERIOD_DS tenths of a second while
# requests run; checks the generations published stay within the hysteresis bound.
flap() {
  local period="$(($1 / 10)).$(($1 % 10))" duration="$2" before flips_before after flips delta bound flapper
  say "(d) n3's kube-proxy flaps 503/200 every $period s for $duration s"
  sleep 3  # let earlier changes settle
  before="$(generations)"
  flips_before="$(transitions n3)"
  (
    for ((t = 0; t * $1 < duration * 10; t++)); do
      if ((t % 2)); then ng_node_health "$P" n3 kube-proxy 200; else ng_node_health "$P" n3 kube-proxy 503; fi
      sleep "$period"
    done
    ng_node_health "$P" n3 kube-proxy 200
  ) &
  flapper=$!
  requests "$NG_VIP" 60 "$work/d.txt"
  checkpoint
  wait "$flapper"
  after="$(generations)"
  flips=$(($(transitions n3) - flips_before))
  # A state change needs min(rise, fall) probes in a row (interval -10% jitter), and
  # each change costs at most one generation.
  bound=$((duration * 1000 / ((RISE < FALL ? RISE : FALL) * INTERVAL_MS * 9 / 10) + 1))
  delta=$((after - before))
  if ((delta <= bound)) && ((flips <= bound)) && (($(grep -c error "$work/d.txt") == 0)); then
    pass "(d) flapping every $period s for $duration s: $flips health transitions, $delta generations (bound $bound = $duration s / (min(rise, fall) x 0.9 interval) + 1); 60/60 requests answered ($(spread "$work/d.txt"))"
  else
    fail "(d) flapping every $period s: $flips transitions, $delta generations (bound $bound); requests $(spread "$work/d.txt")"
  fi
}
# Every second: results alternate faster than fall/rise can confirm, so the hysteresis
# absorbs it. Every 2.5 s: each phase lasts long enough to be believed, so the node
# really goes and comes back, once per phase at most.
flap 10 12
flap 25 12

# --- (e) drain timeout: a draining node's flows end after health.drain_timeout_s ----------
readonly DRAIN_TIMEOUT=3
say "(e) reload with health.drain_timeout_s = $DRAIN_TIMEOUT; 6 downloads through $LOCAL_VIP, then a node turns 503"
sed -i -E "s|^health = \{|health = { drain_timeout_s = $DRAIN_TIMEOUT;|" "$work/nodegate.conf"
reload="$(ip netns exec "$lb" curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' --max-time 10 "$NG_API/v1/reload")"
[[ "$reload" == *" 200" ]] || fail "(e) reload: $reload"
for n in "${NG_NODE_NAMES[@]}"; do wait_backend "$LOCAL_VIP" "$n" yes 10 >/dev/null; done
drops_before="$(api /v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"].get("drain_timeout", 0))')"
DOWNLOAD_RATE=2M downloads "$LOCAL_VIP" 6 e   # 25 s each: the cut (about 7 s in) comes well before the end
sleep 2
victim="$(first_node e 6)"
ng_node_health "$P" "$victim" hcnp 503
wait_backend "$LOCAL_VIP" "$victim" no 15 >/dev/null || fail "(e) $victim still serving 15 s after 503"
if ! wait_downloads e 6; then fail "(e) downloads did not finish in 45 s"; fi
cut=0 whole_elsewhere=1 summary=""
for ((k = 0; k < 6; k++)); do
  node="$(node_of "$work/e.$k.headers")"; rc="$(cat "$work/e.$k.rc")"
  sha="$(sha256sum "$work/e.$k.out" 2>/dev/null | cut -d' ' -f1)"
  summary+=" ${node:-?}:rc=$rc:$(($(stat -c %s "$work/e.$k.out" 2>/dev/null || echo 0) / 1048576))MiB"
  if [[ "$node" == "$victim" ]]; then
    [[ "$rc" != 0 ]] && cut=$((cut + 1))
  elif [[ "$rc" != 0 || "$sha" != "$big_sha" ]]; then
    whole_elsewhere=0
  fi
  rm -f "$work/e.$k.out"
done
on_victim="$(for ((k = 0; k < 6; k++)); do node_of "$work/e.$k.headers"; done | grep -cx "$victim")"
drops="$(api /v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"].get("drain_timeout", 0))')"
if ((on_victim > 0 && cut == on_victim && whole_elsewhere)) && ((drops > drops_before)); then
  pass "(e) drain timeout: the $cut download(s) on $victim were cut (drain_timeout drops $((drops - drops_before))), the others finished whole:$summary"
else
  fail "(e) drain timeout: $on_victim on $victim, $cut cut, others whole=$whole_elsewhere, drain_timeout drops $drops_before -> $drops:$summary"
fi
ng_node_health "$P" "$victim" hcnp 200 1

if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "nodegate exited 0 on SIGTERM"; else fail "nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0
