#!/usr/bin/env bash
# redis-benchmark (Debian redis-tools, unmodified) against a running Lockstep: it must run
# every test without printing a warning (it asks CONFIG GET save / appendonly at start) or an
# error. Run by tests/clients/run; one PASS/FAIL line per check.
set -euo pipefail
export SUITE=redis-benchmark
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TESTS=ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
# The result line names redis-benchmark prints for TESTS (ping is two tests).
NAMES=(PING_INLINE PING_MBULK SET GET INCR LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN LRANGE_100 MSET)

bench() {  # bench NAME ARGS...: one check
  local name=$1; shift
  start
  local out rc=0
  out=$(timeout 300 redis-benchmark -p "$PORT" "$@" 2>&1) || rc=$?
  local missing="" t
  # -q prints "NAME: N requests per second", --csv '"NAME","N",...'; progress lines end in \r.
  for t in "${NAMES[@]}"; do
    tr '\r' '\n' <<<"$out" | grep -qE "^ *\"?$t( \(|\"|:)" || missing+="$t "
  done
  if ((rc != 0)); then
    fail "$name" "redis-benchmark $* (exit $rc)" "$(tail -n 5 <<<"$out")" "exit 0"
  elif grep -qiE 'warn|error|ERR ' <<<"$out"; then
    fail "$name" "redis-benchmark $*" "$(grep -iE -m 3 'warn|error|ERR ' <<<"$out")" "no warning or error"
  elif [[ -n $missing ]]; then
    fail "$name" "redis-benchmark $*" "no result for $missing: $(tail -n 3 <<<"$out")" "a result for each of ${NAMES[*]}"
  else
    pass "$name: ${#NAMES[@]} tests, no warning ($(tr '\r' '\n' <<<"$out" | grep -m 1 -E '^"?SET' | tr -s ' '))"
  fi
}

# What redis-benchmark asks at start, answered sensibly: CONFIG GET save / appendonly.
start
save=$(redis-cli -p "$PORT" --no-raw config get save 2>&1)
aof=$(redis-cli -p "$PORT" --no-raw config get appendonly 2>&1)
if grep -q '"save"' <<<"$save" && grep -q '"appendonly"' <<<"$aof" && grep -qE '"(yes|no)"' <<<"$aof"; then
  pass "CONFIG GET save / appendonly (asked by redis-benchmark) answered"
else
  fail "CONFIG GET save / appendonly" "CONFIG GET save; CONFIG GET appendonly" "$save / $aof" '["save", ...] and ["appendonly", "yes"|"no"]'
fi

bench "redis-benchmark -q (50 clients, pipeline 1)" -q -n 2000 -c 50 -r 100000 -t "$TESTS"
bench "redis-benchmark -q (pipeline 16)" -q -n 5000 -c 20 -P 16 -r 100000 -t "$TESTS"
bench "redis-benchmark --threads 2 --csv" --csv --threads 2 -n 2000 -c 20 -r 100000 -t "$TESTS"

finish
