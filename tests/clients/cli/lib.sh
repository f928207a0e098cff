# shellcheck shell=bash disable=SC2034 # PORT, RUN_ID, BACKENDS are used by the sourcing suite
# Sourced by the redis-cli and redis-benchmark suites: PASS/FAIL lines and counters.
# Needs SUITE set by the caller; reads LOCKSTEP_PORT and LOCKSTEP_BACKENDS (run by tests/clients/run).
PORT=${LOCKSTEP_PORT:-6380}
IFS=, read -r -a BACKENDS <<<"${LOCKSTEP_BACKENDS:-7001,7002,7003}"
RUN_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
CLI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-cli.XXXXXX")
trap 'rm -rf "$CLI_TMP"' EXIT
n_pass=0
n_fail=0
check_t0=0

start() { check_t0=$(date +%s%N); }
pass() {  # pass CHECK
  echo "PASS $SUITE: $1 ($(( ($(date +%s%N) - check_t0) / 1000000 )) ms)"
  n_pass=$((n_pass + 1))
}
fail() {  # fail CHECK COMMAND REPLY [EXPECTED]
  local reply
  reply=$(printf '%s' "$3" | head -c 600 | tr '\n' '|')
  echo "FAIL $SUITE: $1: $2 -> ${reply:-(empty)}${4:+, expected $4}"
  n_fail=$((n_fail + 1))
}
finish() {
  echo "$SUITE: $n_pass passed, $n_fail failed"
  [[ $n_fail -eq 0 ]]
}
# Which backend (port) holds KEY: asks each backend directly.
owner_of() {
  local p
  for p in "${BACKENDS[@]}"; do
    if [[ $(redis-cli -p "$p" exists "$1") == 1 ]]; then echo "$p"; return 0; fi
  done
  return 1
}
