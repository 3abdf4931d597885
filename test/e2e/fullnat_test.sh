#!/usr/bin/env bash
# End-to-end: real HTTP over TCP through NodeGate in fullnat mode, in network namespaces.
#
# Usage: test/e2e/fullnat_test.sh <nodegate-binary> <repo-root>
#
# Builds the scripts/netns.sh topology under a prefix unique to this run, starts the
# binary in the box's namespace with conf/demo.conf, and checks:
#   (a) 300 HTTP requests to the VIP all succeed, each node serves >= 20% of them;
#   (b) a 50 MiB download through the VIP arrives with the right sha256;
#   (c) /v1/stats counts new_flows >= 301 and to_nodes, to_clients > 0;
#   (d) nodegate is still alive (process and /healthz);
#   (f) SIGHUP with n3 removed from the file: generation 2, new connections avoid n3;
#   (g) SIGHUP with a broken file: rejected with its error, generation 2 keeps serving;
#   (e) it stops on SIGTERM with exit 0;
# and always tears down, then checks that no namespace and no process of the run is left.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

if (($# != 2)); then
  echo "usage: $0 <nodegate-binary> <repo-root>" >&2
  exit 2
fi
nodegate="$(realpath -- "$1")"
repo="$(realpath -- "$2")"

if ((EUID != 0)); then
  echo "SKIP: e2e_fullnat needs root (network namespaces)"
  exit 77
fi

# shellcheck source=scripts/netns.sh
source "$repo/scripts/netns.sh"

readonly P="nge2e$$-"
readonly TOTAL_TIMEOUT="${NG_E2E_TIMEOUT:-480}"
readonly REQUESTS=300
readonly MIN_SHARE=$((REQUESTS / 5))
work="$(mktemp -d /tmp/nge2e.XXXXXX)"
client="${P}client"
lb="${P}lb"
ng_pid=""
watchdog_pid=""
failures=0
passes=0
declare -a seen_pids=()

# running PID...: true if any of them exists and is not a zombie.
running() {
  local pid state
  for pid in "$@"; do
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || continue
    [[ -n "$state" && "$state" != Z ]] && return 0
  done
  return 1
}

# Signals. Bash runs a trap only between commands, or at once inside `wait`; and a trap
# that itself `wait`s while the shell is in `wait` can hang. So: long steps run in the
# background under `step` (a signal interrupts its `wait`), the trap only flags and kills
# the step there, and the script exits from the top level, where the EXIT trap cleans up.
interrupted=0
waiting=0
step_pid=""
on_signal() {
  interrupted=1
  failures=$((failures + 1))
  say "interrupted" >&3
  if ((waiting)); then
    [[ -n "$step_pid" ]] && kill_tree "$step_pid"
    return 0
  fi
  exit 1
}
# step CMD...: run CMD in the background and wait for it; returns its status.
step() {
  local rc
  "$@" &
  step_pid=$!
  waiting=1
  wait "$step_pid"
  rc=$?
  # An interrupted `wait` returns early: let the (killed) step finish.
  ((interrupted)) && wait "$step_pid" 2>/dev/null
  waiting=0
  step_pid=""
  return "$rc"
}
# kill_tree PID: SIGTERM to PID and all its descendants (a step may be a subshell
# whose own subshell does the work); then wait up to 5 s for them to go.
kill_tree() {
  local pids=("$1") i=0 child
  while ((i < ${#pids[@]})); do
    while read -r child; do pids+=("$child"); done < <(pgrep -P "${pids[$i]}")
    i=$((i + 1))
  done
  kill -TERM "${pids[@]}" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    running "${pids[@]}" || break
    sleep 0.1
  done
}
# After a step, outside its redirections: leave now if a signal came.
checkpoint() { ((interrupted == 0)) || exit 1; }
say() { printf '[e2e] %s\n' "$*"; }
pass() { passes=$((passes + 1)); printf 'PASS: %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf 'FAIL: %s\n' "$*"; }
api() { ng_api "$P" "$1"; }
api_code() { ng_api_code "$P" "$1"; }

# Stops nodegate with SIGTERM (bounded), then SIGKILL; its exit status goes to ng_rc.
# Runs in the main shell (not $(...)): only the parent can `wait` for it.
ng_rc=""
stop_nodegate() {
  local i
  [[ -n "$ng_pid" ]] || return 0
  kill -TERM "$ng_pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$ng_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$ng_pid" 2>/dev/null; then
    say "nodegate did not exit 10 s after SIGTERM; SIGKILL"
    kill -KILL "$ng_pid" 2>/dev/null
  fi
  waiting=1
  wait "$ng_pid" 2>/dev/null
  ng_rc=$?
  ((interrupted)) && wait "$ng_pid" 2>/dev/null
  waiting=0
  ng_pid=""
}

show_logs() {
  say "---- nodegate log (last 80 lines) ----"
  tail -n 80 "$work/nodegate.log" 2>/dev/null
  say "---- end of nodegate log ----"
}

cleanup() {
  local rc=$? ns pid i left=""
  trap - EXIT
  trap '' INT TERM   # teardown must finish; it is bounded
  interrupted=0      # (so stop_nodegate waits normally)
  exec 1>&3 2>&4     # our own output, whatever redirection was active at exit
  [[ -n "$watchdog_pid" ]] && kill -TERM "$watchdog_pid" 2>/dev/null
  [[ -n "$step_pid" ]] && kill_tree "$step_pid"
  [[ -n "$ng_pid" ]] && stop_nodegate
  ((failures > 0 || rc != 0)) && show_logs
  # Remember every process of the run before they are killed, to check after.
  mapfile -t -O "${#seen_pids[@]}" seen_pids < <(ng_netns_pids "$P")
  ng_netns_down "$P" >/dev/null 2>&1
  while read -r ns; do
    ip netns list | awk '{print $1}' | grep -qxF -- "$ns" && left+=" $ns"
  done < <(ng_netns_names "$P")
  # Killed processes may linger a moment as zombies until their parent reaps them.
  for ((i = 0; i < 30; i++)); do
    running "${seen_pids[@]}" || break
    sleep 0.1
  done
  for pid in "${seen_pids[@]}"; do
    running "$pid" && left+=" pid:$pid($(ps -o comm= -p "$pid" 2>/dev/null))"
  done
  pgrep -P $$ >"$work/children" 2>/dev/null   # a file, not $(...): no extra subshell
  while read -r pid; do
    running "$pid" && left+=" child:$pid($(ps -o comm= -p "$pid" 2>/dev/null))"
  done <"$work/children"
  if [[ -z "$left" ]]; then
    pass "teardown: no namespace or process of the run left"
  else
    fail "teardown: left behind:$left"
  fi
  rm -rf "$work"
  if ((failures == 0 && rc == 0)); then
    say "finished in ${SECONDS} s"
    echo "e2e_fullnat: ${passes} passed, 0 failed"
    exit 0
  fi
  say "finished in ${SECONDS} s"
  echo "e2e_fullnat: ${passes} passed, ${failures} failed"
  exit 1
}
exec 3>&1 4>&2
trap cleanup EXIT
trap on_signal INT TERM

# The whole run is bounded: the watchdog interrupts the script, whose trap tears down.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$TOTAL_TIMEOUT" & s=$!
  wait "$s"
  echo "[e2e] timeout: ${TOTAL_TIMEOUT}s elapsed" >&2
  kill -TERM $$
) &
watchdog_pid=$!

[[ -x "$nodegate" ]] || { fail "nodegate binary $nodegate is not executable"; exit 1; }

say "topology ${P}*"
step ng_netns_up "$P" >"$work/netns.log" 2>&1
up_rc=$?
checkpoint
if ((up_rc != 0)); then
  cat "$work/netns.log"
  fail "topology up"
  exit 1
fi
big_sha="$(ng_netns_big_sha256 "$P")"

# Same config as the demo, with a state directory of this run's own.
sed -E "s|^state_dir *=.*|state_dir = \"$work/state\";|" "$repo/conf/demo.conf" >"$work/nodegate.conf"

say "starting $nodegate in $lb"
# `ip netns exec` execs the binary, so $! is nodegate's own pid.
ip netns exec "$lb" "$nodegate" --config "$work/nodegate.conf" </dev/null >"$work/nodegate.log" 2>&1 &
ng_pid=$!
seen_pids+=("$ng_pid")

started=$SECONDS
ready_rc=0
ng_wait_ready "$P" "$ng_pid" 30 || ready_rc=$?
if ((ready_rc == 1)); then
  fail "nodegate ready: /readyz not 200 within 30 s"
  exit 1
elif ((ready_rc == 2)); then
  waiting=1; wait "$ng_pid"; rc=$?; waiting=0; ng_pid=""
  fail "nodegate ready: exited with status $rc before /readyz answered 200"
  exit 1
fi
pass "nodegate ready: /readyz 200 after $((SECONDS - started)) s"

# (a) 300 requests, one TCP connection each, all inside the client namespace. Bounded:
# stops after 150 s or 15 failures in a row (a dead data plane would take 25 min).
say "(a) $REQUESTS requests to http://$NG_VIP/whoami"
step ip netns exec "$client" bash -c '
  n=$1 vip=$2 end=$((SECONDS + 150)) streak=0
  for ((i = 0; i < n; i++)); do
    if ((SECONDS >= end || streak >= 15)); then echo "notrun"; continue; fi
    if body=$(curl -s --max-time 5 --fail "http://$vip/whoami"); then
      echo "$body"; streak=0
    else
      echo "error:$?"; streak=$((streak + 1))
    fi
  done' _ "$REQUESTS" "$NG_VIP" >"$work/requests.txt" 2>&1
checkpoint
declare -A hits=()
bad=0
while read -r line; do
  case "$line" in
    n1 | n2 | n3) hits[$line]=$((${hits[$line]:-0} + 1)) ;;
    *) bad=$((bad + 1)) ;;
  esac
done <"$work/requests.txt"
spread="n1=${hits[n1]:-0} n2=${hits[n2]:-0} n3=${hits[n3]:-0}"
if ((bad == 0)) && (($(wc -l <"$work/requests.txt") == REQUESTS)); then
  pass "(a) $REQUESTS/$REQUESTS requests succeeded ($spread)"
else
  # e.g. "15 x error:7, 285 x notrun" (error:N = curl's exit code; notrun = cut short).
  why="$(grep -vx 'n[123]' "$work/requests.txt" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep=", "}')"
  fail "(a) $bad of $REQUESTS requests failed or were not run ($spread; $why)"
fi
low=""
for n in "${NG_NODE_NAMES[@]}"; do
  ((${hits[$n]:-0} >= MIN_SHARE)) || low+=" $n=${hits[$n]:-0}"
done
if [[ -z "$low" ]]; then
  pass "(a) every node served >= $MIN_SHARE (20%) ($spread)"
else
  fail "(a) nodes below $MIN_SHARE (20%):$low ($spread)"
fi

# (b) 50 MiB through the VIP.
say "(b) download http://$NG_VIP/big.bin"
step ip netns exec "$client" curl -s --fail --max-time 120 -o "$work/big.bin" \
  -w '%{time_total}' "http://$NG_VIP/big.bin" >"$work/big.time"
curl_rc=$?
checkpoint
got_sha="$(sha256sum "$work/big.bin" 2>/dev/null | cut -d' ' -f1)"
got_size="$(stat -c %s "$work/big.bin" 2>/dev/null || echo 0)"
if ((curl_rc == 0)) && [[ "$got_sha" == "$big_sha" ]]; then
  pass "(b) big.bin: $got_size bytes in $(cat "$work/big.time") s, sha256 ${got_sha:0:16}... matches"
else
  fail "(b) big.bin: curl exit $curl_rc, $got_size of $NG_BIG_BYTES bytes, sha256 '${got_sha:0:16}' != '${big_sha:0:16}'"
fi
rm -f "$work/big.bin"

# (c) counters.
stats="$(api /v1/stats)"
printf '%s\n' "$stats" >"$work/stats.json"
if verdict="$(python3 - "$work/stats.json" "$((REQUESTS + 1))" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    c = s["counters"]
    nf, tn, tc = int(c["new_flows"]), int(c["to_nodes"]), int(c["to_clients"])
except Exception as e:  # noqa: BLE001 - any malformed answer is a failure
    print(f"bad /v1/stats answer: {e!r}")
    sys.exit(1)
msg = f"new_flows={nf} to_nodes={tn} to_clients={tc} nonzero drops={json.dumps({k: v for k, v in s.get('drops', {}).items() if v})}"
print(msg)
sys.exit(0 if nf >= int(sys.argv[2]) and tn > 0 and tc > 0 else 1)
PY
)"; then
  pass "(c) /v1/stats: $verdict"
else
  fail "(c) /v1/stats (want new_flows >= $((REQUESTS + 1)), to_nodes > 0, to_clients > 0): $verdict; raw: ${stats:0:300}"
fi

# (d) still alive.
if kill -0 "$ng_pid" 2>/dev/null && [[ "$(api_code /healthz)" == 200 ]]; then
  pass "(d) nodegate alive, /healthz 200"
else
  fail "(d) nodegate alive (process or /healthz gone)"
fi

# (f) live reload: n3 leaves the config, SIGHUP, and new connections stop going to it
# while the box keeps serving (generation 2; DESIGN.md sec. 5).
say "(f) reload without n3 (SIGHUP)"
sed -E -e 's/(name = "n2"; address = "10\.200\.0\.12"; \}),/\1/' -e '/name = "n3"/d' \
  "$work/nodegate.conf" >"$work/nodegate.conf.new" && mv "$work/nodegate.conf.new" "$work/nodegate.conf"
kill -HUP "$ng_pid" 2>/dev/null
generation=""
for ((i = 0; i < 50; i++)); do
  generation="$(api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)"
  [[ "$generation" == 2 ]] && break
  sleep 0.1
done
step ip netns exec "$client" bash -c '
  for ((i = 0; i < 60; i++)); do curl -s --max-time 5 --fail "http://$1/whoami" || echo "error:$?"; done' \
  _ "$NG_VIP" >"$work/reload.txt" 2>&1
checkpoint
after="n1=$(grep -cx n1 "$work/reload.txt") n2=$(grep -cx n2 "$work/reload.txt") n3=$(grep -cx n3 "$work/reload.txt")"
if [[ "$generation" == 2 ]] && (($(grep -cxE 'n1|n2' "$work/reload.txt") == 60)); then
  pass "(f) generation 2 after SIGHUP; 60/60 new connections on n1/n2 ($after)"
else
  fail "(f) after SIGHUP: generation '$generation' (want 2); $after; $(grep -c error "$work/reload.txt") errors"
fi

# (g) a broken file on SIGHUP is rejected and the running generation keeps serving.
say "(g) reload with a broken config (SIGHUP)"
sed -E 's/node_port = 30080;/node_port = 70000;/' "$work/nodegate.conf" >"$work/nodegate.conf.new" &&
  mv "$work/nodegate.conf.new" "$work/nodegate.conf"
kill -HUP "$ng_pid" 2>/dev/null
sleep 1
generation="$(api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)"
body="$(ip netns exec "$client" curl -s --max-time 5 --fail "http://$NG_VIP/whoami")"
if [[ "$generation" == 2 ]] && [[ "$body" == n1 || "$body" == n2 ]] &&
   grep -q "reload (SIGHUP) rejected.*node_port: 70000 is outside 1..65535" "$work/nodegate.log"; then
  pass "(g) broken reload rejected with its error, generation 2 still serving ($body)"
else
  fail "(g) broken reload: generation '$generation', answer '$body', log: $(grep -m1 'reload' "$work/nodegate.log")"
fi

# (e) clean stop.
if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "(e) nodegate exited 0 on SIGTERM"; else fail "(e) nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0   # the EXIT trap tears down and reports
