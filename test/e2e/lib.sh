# Shared harness of the end-to-end tests (sourced, not run): a topology of network
# namespaces under a prefix unique to the run (scripts/netns.sh), nodegate started in the
# box's namespace, PASS/FAIL lines, a watchdog bounding the whole run, and a teardown
# that always runs and checks that no namespace or process of the run is left.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_main NAME PREFIX [ngctl] "$@"
#                                arguments (<nodegate> [<ngctl>] <repo>), root check (skip:
#                                exit 77), scripts/netns.sh, then e2e_begin
#   e2e_begin NAME PREFIX        traps, watchdog, $work; sets P, client, lb
#   e2e_up || exit 1             the topology
#   e2e_start CONFIG || exit 1   nodegate --config CONFIG, waits for /readyz
#   e2e_fake_apiserver STATE     the fake Kubernetes API server in the box (sets fake_port)
#   e2e_big_download LABEL       50 MiB through $NG_VIP, checked against its sha256
#   e2e_requests N FILE          N HTTP requests to $NG_VIP, one answer line each
#   step CMD...                  a long command, interruptible by the watchdog
#   pass/fail MESSAGE; api PATH; api_code PATH; stop_nodegate (exit status in ng_rc)
#   exit 0                       the EXIT trap tears down and prints "NAME: N passed, M failed"
# e2e_main sets $nodegate, $ngctl (when asked for) and $repo, and sources scripts/netns.sh.
# shellcheck disable=SC2317,SC2034  # trap-invoked functions; variables used by the tests

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
    echo "$E2E_NAME: ${passes} passed, 0 failed"
    exit 0
  fi
  say "finished in ${SECONDS} s"
  echo "$E2E_NAME: ${passes} passed, ${failures} failed"
  exit 1
}

e2e_begin() {
  E2E_NAME="$1"
  P="$2"
  TOTAL_TIMEOUT="${NG_E2E_TIMEOUT:-480}"
  work="$(mktemp -d "/tmp/${P}XXXXXX")"
  client="${P}client"
  lb="${P}lb"
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
}

e2e_up() {
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
}

# e2e_demo_conf FILE: conf/demo.conf with a state directory of this run's own.
e2e_demo_conf() {
  sed -E "s|^state_dir *=.*|state_dir = \"$work/state\";|" "$repo/conf/demo.conf" >"$1"
}

# e2e_requests N FILE [HOST]: N new HTTP connections to HOST/whoami (default $NG_VIP; an
# IPv6 VIP as "[fd00::1]") from the client, one line each in FILE: the answer, "error:RC",
# or "notrun" once 150 s passed or 15 failed in a row.
e2e_requests() {
  step ip netns exec "$client" bash -c '
    n=$1 vip=$2 end=$((SECONDS + 150)) streak=0
    for ((i = 0; i < n; i++)); do
      if ((SECONDS >= end || streak >= 15)); then echo "notrun"; continue; fi
      if body=$(curl -s -g --max-time 5 --fail "http://$vip/whoami"); then
        echo "$body"; streak=0
      else
        echo "error:$?"; streak=$((streak + 1))
      fi
    done' _ "$1" "${3:-$NG_VIP}" >"$2" 2>&1
}

# e2e_check_requests LABEL FILE N [MIN]: PASS/FAIL for the N answers e2e_requests wrote to
# FILE: all N came from a node, and every node served at least MIN (default a fifth) of them.
e2e_check_requests() {
  local label="$1" file="$2" n="$3" line bad=0 low="" spread why node
  local -A hits=()
  local min_share=${4:-$((n / 5))}
  while read -r line; do
    case "$line" in
      n1 | n2 | n3) hits[$line]=$((${hits[$line]:-0} + 1)) ;;
      *) bad=$((bad + 1)) ;;
    esac
  done <"$file"
  spread="n1=${hits[n1]:-0} n2=${hits[n2]:-0} n3=${hits[n3]:-0}"
  if ((bad == 0)) && (($(wc -l <"$file") == n)); then
    pass "$label $n/$n requests succeeded ($spread)"
  else
    # e.g. "15 x error:7, 285 x notrun" (error:N = curl's exit code; notrun = cut short).
    why="$(grep -vx 'n[123]' "$file" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep=", "}')"
    fail "$label $bad of $n requests failed or were not run ($spread; $why)"
  fi
  for node in "${NG_NODE_NAMES[@]}"; do
    ((${hits[$node]:-0} >= min_share)) || low+=" $node=${hits[$node]:-0}"
  done
  if [[ -z "$low" ]]; then
    pass "$label every node served >= $min_share ($spread)"
  else
    fail "$label nodes below $min_share:$low ($spread)"
  fi
}

# e2e_big_download LABEL: big.bin (50 MiB) from $NG_VIP through the box; PASS when curl
# succeeds and the sha256 matches the nodes' copy, else FAIL with what arrived.
e2e_big_download() {
  local label="$1" curl_rc got_sha got_size
  say "$label download http://$NG_VIP/big.bin"
  step ip netns exec "$client" curl -s --fail --max-time 120 -o "$work/big.bin" \
    -w '%{time_total}' "http://$NG_VIP/big.bin" >"$work/big.time"
  curl_rc=$?
  checkpoint
  got_sha="$(sha256sum "$work/big.bin" 2>/dev/null | cut -d' ' -f1)"
  got_size="$(stat -c %s "$work/big.bin" 2>/dev/null || echo 0)"
  if ((curl_rc == 0)) && [[ "$got_sha" == "$big_sha" ]]; then
    pass "$label big.bin: $got_size bytes in $(cat "$work/big.time") s, sha256 ${got_sha:0:16}... matches"
  else
    fail "$label big.bin: curl exit $curl_rc, $got_size of $NG_BIG_BYTES bytes, sha256 '${got_sha:0:16}' != '${big_sha:0:16}'"
  fi
  rm -f "$work/big.bin"
}

# e2e_fake_apiserver STATE [ARGS...]: the project's fake Kubernetes API server
# (test/fake_apiserver) in the box's namespace on 127.0.0.1, TLS with a throwaway CA
# ($work/ca.crt), bearer token $work/kube-token, initial objects from STATE, request log
# $work/requests.log. Sets fake_port. ARGS go to the server (--bookmark-interval 1, ...).
e2e_fake_apiserver() {
  local state="$1" i
  shift
  if [[ ! -s "$work/ca.crt" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/ca.key" \
      -out "$work/ca.crt" -days 1 -subj /CN=e2e-ca >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/srv.key" \
      -out "$work/srv.csr" -subj /CN=127.0.0.1 >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\n' >"$work/ext.cnf"
    openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
      -out "$work/srv.crt" -days 1 -extfile "$work/ext.cnf" >/dev/null 2>&1
    printf 'tok-%s\n' "$RANDOM$RANDOM" >"$work/kube-token"
  fi
  rm -f "$work/fake.port"
  # Debian's python3: the fake is written for it (the one on PATH may be another).
  ip netns exec "$lb" /usr/bin/python3 "$repo/test/fake_apiserver/fake_apiserver.py" --cert "$work/srv.crt" \
    --key "$work/srv.key" --token "$(cat "$work/kube-token")" --state "$state" --log "$work/requests.log" \
    --port-file "$work/fake.port" "$@" </dev/null >>"$work/fake.log" 2>&1 &
  seen_pids+=("$!")
  for ((i = 0; i < 100; i++)); do
    [[ -s "$work/fake.port" ]] && break
    sleep 0.1
  done
  fake_port="$(cat "$work/fake.port" 2>/dev/null)"
  if [[ -z "$fake_port" ]]; then
    fail "fake API server did not start: $(tail -n 5 "$work/fake.log")"
    return 1
  fi
  say "fake API server on 127.0.0.1:$fake_port"
}

# e2e_start CONFIG: nodegate in the box's namespace, up to 30 s to be ready.
e2e_start() {
  local config="$1" started ready_rc=0 rc
  say "starting $nodegate in $lb"
  # `ip netns exec` execs the binary, so $! is nodegate's own pid.
  ip netns exec "$lb" "$nodegate" --config "$config" </dev/null >"$work/nodegate.log" 2>&1 &
  ng_pid=$!
  seen_pids+=("$ng_pid")
  started=$SECONDS
  ng_wait_ready "$P" "$ng_pid" 30 || ready_rc=$?
  if ((ready_rc == 1)); then
    fail "nodegate ready: /readyz not 200 within 30 s"
    return 1
  elif ((ready_rc == 2)); then
    waiting=1; wait "$ng_pid"; rc=$?; waiting=0; ng_pid=""
    fail "nodegate ready: exited with status $rc before /readyz answered 200"
    return 1
  fi
  pass "nodegate ready: /readyz 200 after $((SECONDS - started)) s"
}

# e2e_main NAME PREFIX [ngctl] ARGS...: the common start of every e2e test script.
e2e_main() {
  local name="$1" prefix="$2" want_ngctl=0
  shift 2
  if [[ "${1:-}" == ngctl ]]; then
    want_ngctl=1
    shift
  fi
  if (($# != 2 + want_ngctl)); then
    echo "usage: $0 <nodegate-binary>$( ((want_ngctl)) && echo ' <ngctl-binary>') <repo-root>" >&2
    exit 2
  fi
  nodegate="$(realpath -- "$1")"
  ((want_ngctl)) && ngctl="$(realpath -- "$2")"
  repo="$(realpath -- "${@: -1}")"
  if ((EUID != 0)); then
    echo "SKIP: $name needs root (network namespaces)"
    exit 77
  fi
  # shellcheck source=scripts/netns.sh
  source "$repo/scripts/netns.sh"
  e2e_begin "$name" "$prefix"
  [[ -x "$nodegate" ]] || { fail "nodegate binary $nodegate is not executable"; exit 1; }
  if ((want_ngctl)); then
    [[ -x "$ngctl" ]] || { fail "ngctl binary $ngctl is not executable"; exit 1; }
  fi
}
