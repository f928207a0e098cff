#!/usr/bin/env bash
# redis-cli (Debian redis-tools, unmodified) against a running Lockstep: interactive help from
# COMMAND DOCS, --scan, --pipe, -3 (RESP3 output compared with a backend's), --bigkeys,
# --memkeys, --eval, -x, -r. Run by tests/clients/run; one PASS/FAIL line per check.
set -euo pipefail
export SUITE=redis-cli
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli() { redis-cli -p "$PORT" "$@"; }
P="ct:$RUN_ID:cli"

# --- help: redis-cli 7 builds its help from COMMAND DOCS (the server's) -----------------------
start
redis-cli -p "$PORT" monitor >"$CLI_TMP/monitor" 2>&1 &
mon=$!
for _ in $(seq 100); do grep -q '^OK' "$CLI_TMP/monitor" && break; sleep 0.05; done  # MONITOR is on
help_out=$(printf 'help get\nhelp lmpop\nhelp @hash\n' | cli 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true)
for _ in $(seq 60); do grep -q '"COMMAND" "DOCS"' "$CLI_TMP/monitor" && break; sleep 0.05; done
kill "$mon" 2>/dev/null || true
wait "$mon" 2>/dev/null || true
if ! grep -q '"COMMAND" "DOCS"' "$CLI_TMP/monitor"; then
  fail "help (interactive) from COMMAND DOCS" "COMMAND DOCS (seen by MONITOR)" "$(grep -v '^OK$' "$CLI_TMP/monitor" | head -n 5)" \
    "redis-cli to send COMMAND DOCS"
elif ! grep -q 'summary: Get the value of a key' <<<"$help_out" ||
  ! grep -q 'summary: Pop elements from a list' <<<"$help_out" ||
  ! grep -q 'HSET' <<<"$help_out"; then
  fail "help (interactive) from COMMAND DOCS" "help get / help lmpop / help @hash" "$help_out" "the GET, LMPOP and hash group summaries"
else
  pass "help (interactive) from COMMAND DOCS: help get, help lmpop, help @hash"
fi

# --- --pipe: mass insertion in RESP ----------------------------------------------------------
start
# shellcheck disable=SC2016 # RESP literals: the $ is a length prefix
{
  for i in $(seq 1 1000); do
    k="$P:pipe:$i"
    printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#k}" "$k" "${#i}" "$i"
  done
  k="$P:pipe:list"
  for i in $(seq 1 10); do printf '*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$1\r\nx\r\n' "${#k}" "$k"; done
} >"$CLI_TMP/pipe.resp"
pipe_out=$(cli --pipe <"$CLI_TMP/pipe.resp" 2>&1) || true
count=$(cli --scan --pattern "$P:pipe:[0-9]*" | wc -l)
if ! grep -q 'errors: 0, replies: 1010' <<<"$pipe_out"; then
  fail "--pipe (1010 commands in RESP)" "redis-cli --pipe" "$pipe_out" "errors: 0, replies: 1010"
elif [[ $count != 1000 || $(cli llen "$P:pipe:list") != 10 || $(cli get "$P:pipe:777") != 777 ]]; then
  fail "--pipe (1010 commands in RESP)" "SCAN/LLEN/GET after --pipe" "keys=$count llen=$(cli llen "$P:pipe:list")" "1000 keys, a 10-element list"
else
  pass "--pipe: 1010 commands in RESP, errors: 0, replies: 1010, all keys readable"
fi

start
printf 'SET %s:pipe2 1\r\nINCR %s:pipe2\r\nHSET %s:pipe2 f v\r\nGET %s:pipe2\r\n' "$P" "$P" "$P" "$P" >"$CLI_TMP/pipe2.txt"
pipe_out=$(cli --pipe <"$CLI_TMP/pipe2.txt" 2>&1) || true
if grep -q 'errors: 1, replies: 4' <<<"$pipe_out" && grep -q 'WRONGTYPE' <<<"$pipe_out"; then
  pass "--pipe: inline commands, a WRONGTYPE error counted (errors: 1, replies: 4)"
else
  fail "--pipe with an error" "redis-cli --pipe (SET; INCR; HSET on a string; GET)" "$pipe_out" "WRONGTYPE ... errors: 1, replies: 4"
fi

# --- --scan ------------------------------------------------------------------------------------
start
scan_all=$(cli --scan --pattern "$P:pipe:*" | sort)
dupes=$(uniq -d <<<"$scan_all")
n=$(grep -c . <<<"$scan_all" || true)
owners=""
for k in "$P:pipe:1" "$P:pipe:2" "$P:pipe:3" "$P:pipe:4" "$P:pipe:5" "$P:pipe:6"; do owners+="$(owner_of "$k") "; done
n_owners=$(tr ' ' '\n' <<<"$owners" | grep . | sort -u | wc -l)
if [[ $n != 1001 || -n $dupes ]]; then
  fail "--scan --pattern" "redis-cli --scan --pattern '$P:pipe:*'" "$n keys, duplicates: ${dupes:-none}" "1001 distinct keys"
elif ((n_owners < 2)); then
  fail "--scan --pattern" "placement of the scanned keys" "$owners" "keys on more than one backend"
else
  pass "--scan --pattern: 1001 keys from $n_owners backends, no duplicates"
fi

# --- -3: RESP3 output, compared with the backend that holds the key ------------------------------
start
cli hset "$P:h3" f1 v1 f2 v2 >/dev/null
cli zadd "$P:z3" 1.5 a 2 b >/dev/null
cli sadd "$P:s3" m >/dev/null
cli set "$P:n3" 10 >/dev/null
bad=""
for spec in "hgetall $P:h3" "zrange $P:z3 0 -1 withscores" "zscore $P:z3 a" "smembers $P:s3" \
  "incrbyfloat $P:n3 0.5" "get $P:missing" "hstrlen $P:h3 f1" "type $P:z3"; do
  read -r -a argv <<<"$spec"
  key=${argv[1]}
  [[ $key == "$P:missing" ]] && key="$P:h3"  # any backend answers a nil the same way
  owner=$(owner_of "$key") || { bad+="no backend holds $key; "; continue; }
  via=$(cli -3 --no-raw "${argv[@]}" 2>&1)
  # incrbyfloat changed the value: compare the backend's view with a read-only command
  if [[ ${argv[0]} == incrbyfloat ]]; then
    direct=$(redis-cli -3 --no-raw -p "$owner" incrbyfloat "$P:n3" 0 2>&1)
    via=$(cli -3 --no-raw incrbyfloat "$P:n3" 0 2>&1)
  else
    direct=$(redis-cli -3 --no-raw -p "$owner" "${argv[@]}" 2>&1)
  fi
  if [[ "$via" != "$direct" ]]; then bad+="redis-cli -3 $spec -> '$via' but the backend gives '$direct'; "; fi
done
hello=$(cli -3 --no-raw hello 3 2>&1)
if [[ -n $bad ]]; then
  fail "-3 (RESP3 replies as Redis gives them)" "redis-cli -3" "$bad"
elif ! grep -q '"proto" => (integer) 3' <<<"$hello" || ! grep -q '1# "f1" => "v1"' <<<"$(cli -3 --no-raw hgetall "$P:h3")"; then
  fail "-3 (RESP3 replies as Redis gives them)" "redis-cli -3 hello 3 / hgetall" "$hello" '"proto" => (integer) 3 and a map reply'
else
  pass "-3: HELLO 3, maps, doubles, sets, nulls byte-identical to a backend's"
fi

# --- --bigkeys / --memkeys: SCAN + TYPE + sizes over every backend --------------------------------
start
big=$(cli --bigkeys 2>&1) && rc=0 || rc=$?
if ((rc != 0)) || ! grep -q 'Biggest string found' <<<"$big" || ! grep -q 'Biggest   list found' <<<"$big"; then
  fail "--bigkeys" "redis-cli --bigkeys (exit $rc)" "$(tail -n 15 <<<"$big")" "a summary with the biggest string and list"
else
  pass "--bigkeys: scans every backend, summary printed"
fi
start
mem=$(cli --memkeys 2>&1) && rc=0 || rc=$?
if ((rc != 0)) || ! grep -q 'Biggest string found' <<<"$mem"; then
  fail "--memkeys" "redis-cli --memkeys (exit $rc)" "$(tail -n 15 <<<"$mem")" "a summary with the biggest string (MEMORY USAGE)"
else
  pass "--memkeys: MEMORY USAGE of scanned keys"
fi

# --- --eval, -x, -r, --raw ---------------------------------------------------------------------
start
printf "return redis.call('INCRBY', KEYS[1], ARGV[1])\n" >"$CLI_TMP/incr.lua"
ev=$(cli --eval "$CLI_TMP/incr.lua" "$P:ev" , 5 2>&1)
ev2=$(cli --eval "$CLI_TMP/incr.lua" "$P:ev" , 5 2>&1)
if [[ $ev == 5 && $ev2 == 10 ]]; then
  pass "--eval script.lua key , arg"
else
  fail "--eval" "redis-cli --eval incr.lua $P:ev , 5 (twice)" "$ev / $ev2" "5 / 10"
fi
start
x=$(printf 'from stdin' | cli -x set "$P:x" 2>&1)
got=$(cli --raw get "$P:x")
r=$(cli -r 3 incr "$P:r" | tr '\n' ' ')
if [[ $x == OK && $got == "from stdin" && $r == "1 2 3 " ]]; then
  pass "-x (value from stdin), --raw, -r 3"
else
  fail "-x / --raw / -r" "redis-cli -x set; --raw get; -r 3 incr" "$x / $got / $r" "OK / from stdin / 1 2 3"
fi

finish
