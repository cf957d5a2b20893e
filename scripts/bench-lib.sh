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
# serve_run URI_VAR CMD...  (use nbdkit -U - ... --run instead where you can)

: "${BENCH_RUNTIME:=5}"
: "${BENCH_SIZE:=1G}"
: "${BENCH_DIR:=$(mktemp -d)}"

fio_nbd () {
  uri=$1 rw=$2 bs=$3 qd=${4:-16}
  fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
      --iodepth="$qd" --runtime="$BENCH_RUNTIME" --time_based=1 \
      --size="${FIO_SIZE:-256M}" --norandommap=1 --randrepeat=0 \
      --output-format=json 2>/dev/null |
    jq -r '.jobs[0] as $j
      | (if ($j.read.iops > $j.write.iops) then $j.read else $j.write end) as $d
      | "\($d.iops|floor) \($d.bw_bytes/1048576*10|floor/10) \($d.lat_ns.mean/1000|floor)"'
}

bench_title () {
  printf '\n== %s\n' "$1"
  printf '%-44s %10s %10s %8s  %s\n' "target" "IOPS" "MiB/s" "ratio" "note"
}

bench_row () {
  label=$1 iops=$2 mibps=$3 base=$4 note=${5:-}
  ratio=$(awk -v a="$iops" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '%-44s %10s %10s %8s  %s\n' "$label" "$iops" "$mibps" "${ratio}x" "$note"
}
