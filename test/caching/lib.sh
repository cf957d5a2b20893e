# Shared helpers for the caching integration tests.  Sourced.
# Sets FILTER, TMP (removed on exit), and kills servers started with
# start_server on exit.
set -euo pipefail

FILTER=$VAIO_BUILD/nbdkit-filters/caching/nbdkit-vaio-cache-filter.so
HERE=$VAIO_SRC/test/caching
PY=/usr/bin/python3 # Debian's python: python3-libnbd is installed for it
STATS_GET=$VAIO_BUILD/test/caching/cache-stats-get
TMP=$(mktemp -d /tmp/vaio-cache-test.XXXXXX)
SERVER_PIDS=()

cleanup () {
  for p in "${SERVER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

[ -f "$FILTER" ] || { echo "no filter at $FILTER" >&2; exit 1; }

# start_server SOCK ARGS...: nbdkit in the background on unix socket SOCK;
# sets SERVER_PID; waits (bounded) for the socket.
start_server () {
  local sock=$1; shift
  rm -f "$sock"
  nbdkit -f -U "$sock" --filter="$FILTER" "$@" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do
    [ -S "$sock" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "nbdkit exited" >&2; return 1; }
    sleep 0.05
  done
  echo "nbdkit did not create $sock" >&2
  return 1
}

# stop_server: SIGTERM (clean shutdown, runs .cleanup) and wait for exit.
stop_server () {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID"
}

uri_of () { echo "nbd+unix:///?socket=$1"; }
