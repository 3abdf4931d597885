#!/usr/bin/env bash
# `nodegate --check-config FILE`: exit 0 and "OK" on the shipped configs; on every file in
# test/conf/bad/ a non-zero exit and exactly the message its first line announces
# ("# Expected: NAME:LINE: SETTING: what"), printed with the path as given. The messages
# must all differ (five broken configs, five precise errors).
set -euo pipefail
nodegate=$1
root=$2
fail=0

for good in "$root/conf/demo.conf" "$root/conf/nodegate.conf"; do
  if out=$("$nodegate" --check-config "$good" 2>&1); then
    echo "PASS good config accepted: $out"
  else
    echo "FAIL good config rejected: $good: $out"; fail=1
  fi
done

declare -A seen=()
count=0
for bad in "$root"/test/conf/bad/*.conf; do
  expected=$(head -1 "$bad" | sed -e 's/^# Expected: //' -e 's/   (.*$//')
  expected="$(dirname "$bad")/$expected"
  set +e
  out=$("$nodegate" --check-config "$bad" 2>&1)
  rc=$?
  set -e
  if [[ $rc -eq 0 ]]; then
    echo "FAIL $bad accepted"; fail=1; continue
  fi
  if [[ "$out" != "$expected"* ]]; then
    echo "FAIL $bad"; echo "  got:      $out"; echo "  expected: $expected"; fail=1; continue
  fi
  if [[ -n "${seen[$out]:-}" ]]; then
    echo "FAIL $bad repeats the message of ${seen[$out]}"; fail=1; continue
  fi
  seen[$out]=$bad
  count=$((count + 1))
  echo "PASS rc=$rc $out"
done
if [[ $count -lt 5 ]]; then
  echo "FAIL only $count broken configs checked (want at least 5)"; fail=1
fi
exit $fail
