#!/usr/bin/env bash
# The installed shape of ngctl: the real binary's --help lists the exit codes, an
# unreachable box gives exit 2 and the operator's message, a usage error exit 3, and
# NGCTL_API is honoured. The commands themselves are covered in-process by ngctl_cli_test.
set -uo pipefail
ngctl=$1
fail=0
check() {  # check NAME EXPECTED_RC ACTUAL_RC EXPECTED_SUBSTRING OUTPUT
  if [[ $3 -ne $2 ]]; then echo "FAIL $1: exit $3, expected $2: $5"; fail=1; return; fi
  if [[ "$5" != *"$4"* ]]; then echo "FAIL $1: output lacks '$4': $5"; fail=1; return; fi
  echo "PASS $1"
}

out=$("$ngctl" --help 2>&1); rc=$?
check help 0 $rc "2  NodeGate unreachable" "$out"

# A port nothing listens on: ask the kernel for a free one, then release it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
out=$("$ngctl" --api "http://127.0.0.1:$port" list 2>&1); rc=$?
check unreachable 2 $rc "ngctl: cannot reach NodeGate at http://127.0.0.1:$port: connection refused" "$out"

out=$(NGCTL_API="http://127.0.0.1:$port" "$ngctl" stats 2>&1); rc=$?
check env-api 2 $rc "cannot reach NodeGate at http://127.0.0.1:$port" "$out"

out=$("$ngctl" no-such-command 2>&1); rc=$?
check usage 3 $rc "no-such-command" "$out"

exit $fail
