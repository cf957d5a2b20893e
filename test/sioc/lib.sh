# Shared helpers for the vaio-sioc integration tests.  Sourced.
#
# A "datastore" here is one nbdkit memory disk behind the noparallel
# filter (serialize=all-requests) and the delay filter: one request at a
# time across every VM, so it has a fixed capacity (about 1/delay IOPS)
# and its latency grows with the queue, like a real shared array.  Each VM
# disk is its own nbdkit process, vaio-sioc over the nbd plugin to it.

set -euo pipefail

: "${VAIO_BUILD:?VAIO_BUILD not set (run through meson test)}"
SIOC_FILTER=$VAIO_BUILD/nbdkit-filters/sioc/nbdkit-vaio-sioc-filter.so
SIOC_INSPECT=$VAIO_BUILD/test/sioc/sioc-inspect
[ -f "$SIOC_FILTER" ] || { echo "missing $SIOC_FILTER" >&2; exit 1; }

T=$(mktemp -d /tmp/vaio-sioc-test.XXXXXX)
SERVER_PIDS=()

cleanup () {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

fail () { echo "FAIL: $*" >&2; exit 1; }

# wait_socket PATH: up to 10 s for a server to listen.
wait_socket () {
  local i
  for i in $(seq 100); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  fail "no server on $1 after 10s"
}

# start_datastore DELAY
start_datastore () {
  nbdkit -f -U "$T/ds.sock" --filter=noparallel --filter=delay \
    memory 1G serialize=all-requests delay-read="$1" delay-write="$1" \
    2> "$T/ds.log" &
  SERVER_PIDS+=($!)
  wait_socket "$T/ds.sock"
}

# start_vm NAME [sioc params...]: VM disk NAME on the datastore, pid in
# VM_PID[NAME], log in $T/NAME.log, stats in $T/NAME/stats.
declare -A VM_PID
start_vm () {
  local name=$1; shift
  nbdkit -f -U "$T/$name.sock" --filter="$SIOC_FILTER" \
    nbd socket="$T/ds.sock" sioc-datastore="$T/datastore.seg" \
    sioc-state-dir="$T/$name" "$@" 2> "$T/$name.log" &
  VM_PID[$name]=$!
  SERVER_PIDS+=($!)
  wait_socket "$T/$name.sock"
}

vm_uri () { echo "nbd+unix:///?socket=$T/$1.sock"; }

# fio_start NAME OUT RW BS QD RAMP RUNTIME: fio in the background, JSON
# to OUT; pid in FIO_PID.
fio_start () {
  local name=$1 out=$2 rw=$3 bs=$4 qd=$5 ramp=$6 run=$7
  fio --name="$name" --ioengine=nbd --uri="$(vm_uri "$name")" \
    --rw="$rw" --bs="$bs" --iodepth="$qd" --ramp_time="$ramp" \
    --runtime="$run" --time_based=1 --size=256M --norandommap=1 \
    --randrepeat=0 --output-format=json --output="$out" > /dev/null 2>&1 &
  FIO_PID=$!
}

# fio_iops JSON: delivered IOPS (reads + writes) of a finished run.
fio_iops () {
  jq -r '.jobs[0] | (.read.iops + .write.iops)' "$1"
}

# counter NAME VM: one of the VM's published sioc counters.
counter () { "$SIOC_INSPECT" counter "$T/$2/stats" "$1"; }

# rate NAME VM SECS: per-second rate of a counter over the next SECS.
rate () { "$SIOC_INSPECT" rate "$T/$2/stats" "$1" "$3"; }

# within VALUE TARGET PCT: |VALUE - TARGET| <= PCT% of TARGET.
within () {
  awk -v v="$1" -v t="$2" -v p="$3" \
    'BEGIN { d = v - t; if (d < 0) d = -d; exit !(d <= t * p / 100) }'
}

# ratio A B: A / B with two decimals.
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
