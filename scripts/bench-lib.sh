# bench-lib.sh: shared helpers for scripts/bench and scripts/bench.d/*.sh.
# Sourced, not run.  Environment (set by scripts/bench):
#   VAIO_BUILD     build directory (filters under nbdkit-filters/*/)
#   VAIO_SRC       source tree
#   BENCH_DIR      scratch directory for images and sockets
#   BENCH_RUNTIME  seconds per fio run (default 5)
#   BENCH_SIZE     image size (default 1G)
#
# fio_nbd URI RW BS [IODEPTH]
#   One fio run with the nbd engine; prints "IOPS MiBps LAT_AVG_US".
# bench_row LABEL IOPS MIBPS BASE_IOPS [NOTE]
#   One table row: label, IOPS, MiB/s, ratio to the baseline IOPS of the
#   same workload measured in this run, and a note.
# bench_title TEXT
#   A section heading and the column header.
# serve_start NBDKIT-ARGS...
#   Start nbdkit on a fresh socket under BENCH_DIR, wait until it serves;
#   sets $uri and $serve_pid.  serve_stop stops it (SIGTERM, then wait).

: "${BENCH_RUNTIME:=5}"
: "${BENCH_SIZE:=1G}"
: "${BENCH_DIR:=$(mktemp -d)}"

fio_nbd () {
  local uri=$1 rw=$2 bs=$3 qd=${4:-16}
  fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
      --iodepth="$qd" --runtime="$BENCH_RUNTIME" --time_based=1 \
      --size="${FIO_SIZE:-256M}" --norandommap=1 --randrepeat=0 \
      --output-format=json 2>/dev/null | sed -n '/^{/,$p' |
    jq -r '.jobs[0] as $j
      | (if ($j.read.iops > $j.write.iops) then $j.read else $j.write end) as $d
      | "\($d.iops|floor) \($d.bw_bytes/1048576*10|floor/10) \($d.lat_ns.mean/1000|floor)"'
}

bench_title () {
  printf '\n== %s\n' "$1"
  printf '%-44s %10s %10s %8s  %s\n' "target" "IOPS" "MiB/s" "ratio" "note"
}

bench_row () {
  local label=$1 iops=$2 mibps=$3 base=$4 note=${5:-} ratio
  ratio=$(awk -v a="$iops" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '%-44s %10s %10s %8s  %s\n' "$label" "$iops" "$mibps" "${ratio}x" "$note"
}

serve_start () {
  serve_sock=$(mktemp -u "$BENCH_DIR/sock.XXXXXX")
  nbdkit -f -U "$serve_sock" "$@" &
  serve_pid=$!
  uri="nbd+unix:///?socket=$serve_sock"
  for _ in $(seq 200); do
    [ -S "$serve_sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: nbdkit $* did not start" >&2
  return 1
}

serve_stop () {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  rm -f "$serve_sock"
}
