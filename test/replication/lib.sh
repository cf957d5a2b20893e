# lib.sh: sourced by the replication integration tests (not run).
# Gives: $FILTER, $T (private temp dir, removed at exit), a trap that
# kills every server started here, and helpers to start/stop servers.
set -euo pipefail
: "${VAIO_BUILD:?VAIO_BUILD must point at the build tree}"
: "${VAIO_SRC:?VAIO_SRC must point at the source tree}"

FILTER=$VAIO_BUILD/nbdkit-filters/replication/nbdkit-vaio-replication-filter.so
STATS=$VAIO_BUILD/test/replication/repl-stats
REPLTEST=$VAIO_SRC/test/replication/repltest.py
# Debian's python3 has the libnbd bindings (python3-libnbd); a python3
# earlier in PATH (pyenv, venv) may not.
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vaio-repl-test.XXXXXX)
PIDS=()
EXTRA_CLEANUP=()
SOURCE_PREFIX=() # e.g. (ip netns exec NS): how to run the source server
SOURCE_FILTERS=() # nbdkit filters below vaio-replication (--filter=delay)

cleanup () {
  local p c
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

fail () {
  echo "FAIL: $*" >&2
  if [ -f "$T/source.log" ]; then
    echo "--- source log (tail)" >&2
    tail -30 "$T/source.log" >&2
  fi
  exit 1
}

wait_socket () {
  local i
  for i in $(seq 100); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  fail "socket $1 never appeared"
}

# start_replica IMG SOCK [ARGS...]: sets REPLICA_PID.  ARGS starting with
# "-" go before the plugin name (--filter=...), the others after it.
start_replica () {
  local img=$1 sock=$2 a
  local opts=() params=()
  shift 2
  for a in "$@"; do
    case "$a" in -*) opts+=("$a") ;; *) params+=("$a") ;; esac
  done
  rm -f "$sock"
  nbdkit -f -U "$sock" "${opts[@]}" file "$img" "${params[@]}" \
    2>>"$T/replica.log" &
  REPLICA_PID=$!
  PIDS+=("$REPLICA_PID")
  wait_socket "$sock"
}

# start_source IMG SOCK STATE-DIR TARGET-URI [params...]: sets SOURCE_PID
start_source () {
  local img=$1 sock=$2 st=$3 target=$4
  shift 4
  rm -f "$sock"
  # The new server publishes its stats once its state is recovered; a
  # stale file from the last run must not be read as the new state.
  rm -f "$st/stats"
  "${SOURCE_PREFIX[@]}" nbdkit -f -U "$sock" --filter="$FILTER" \
    "${SOURCE_FILTERS[@]}" file "$img" \
    repl-target="$target" repl-state-dir="$st" "$@" 2>>"$T/source.log" &
  SOURCE_PID=$!
  PIDS+=("$SOURCE_PID")
  wait_socket "$sock"
}

# ship_workload URI AT BYTE: random writes, a zero, a trim and a last 64K
# write of BYTE at offset AT through URI (a 16M disk); then the records
# must have been shipped from the journal ($T/state), not copied by a
# resync after an overflow.
ship_workload () {
  local uri=$1 at=$2 byte=$3
  fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-64k \
    --iodepth=16 --size=16M --io_size=32M --randrepeat=0 \
    --output=/dev/null || fail "fio failed"
  qemu-io -f raw -t writeback -c "write -z 1M 2M" -c "discard 5M 1M" \
    -c "write -P $byte $at 64k" -c flush "$uri" >/dev/null || fail "qemu-io failed"
  [ "$(stat_value "$T/state" shipped_records)" -gt 0 ] || fail "nothing shipped"
  [ "$(stat_value "$T/state" journal_overflows)" = 0 ] || fail "the journal overflowed"
}

# free_port: a TCP port free on 127.0.0.1 right now (the kernel's pick).
free_port () {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

unix_uri () {
  echo "nbd+unix:///?socket=$1"
}

# stop_pid PID: graceful stop (SIGTERM), wait up to 60 s for the exit.
stop_pid () {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 600); do
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p" 2>/dev/null || true
      return 0
    fi
    sleep 0.1
  done
  fail "process $p did not exit within 60 s of SIGTERM"
}

kill9 () {
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# stat_value STATE-DIR NAME
stat_value () {
  "$STATS" "$1/stats" | awk -v n="$2" '$1 == n { print $2 }'
}

# wait_stat STATE-DIR NAME VALUE SECONDS: until the counter equals VALUE.
wait_stat () {
  local i
  for i in $(seq $(( $4 * 10 ))); do
    [ "$(stat_value "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  "$STATS" "$1/stats" >&2 || true
  fail "stat $2 did not reach $3 within $4 s"
}

# wait_stat_min STATE-DIR NAME MIN SECONDS: until the counter is >= MIN.
# Gauges are published by the shipper every 100 ms, so a value read right
# after another one changed may still be from the previous publication.
wait_stat_min () {
  local i v
  for i in $(seq $(( $4 * 10 ))); do
    v=$(stat_value "$1" "$2")
    [ -n "$v" ] && [ "$v" -ge "$3" ] && return 0
    sleep 0.1
  done
  "$STATS" "$1/stats" >&2 || true
  fail "stat $2 did not reach $3 within $4 s"
}

# wait_in_sync STATE-DIR SECONDS: journaling, nothing dirty, nothing queued.
wait_in_sync () {
  wait_stat "$1" tracking 0 "$2"
  wait_stat "$1" dirty_bytes 0 "$2"
  wait_stat "$1" lag_us 0 "$2"
}

