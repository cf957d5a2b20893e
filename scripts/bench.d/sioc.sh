#!/bin/bash
# vaio-sioc benchmarks (run by scripts/bench with VAIO_BUILD, VAIO_SRC,
# BENCH_DIR, BENCH_RUNTIME set; every baseline is measured in this run).
#
#  1. Overhead with nothing throttled: nbdkit file with vaio-sioc (no
#     limits; then also coordinating through a datastore segment) against
#     bare nbdkit file.  Target: >= 0.95x.
#  2. Limit accuracy, delivered / configured, side by side: vaio-sioc,
#     nbdkit's rate filter (bandwidth only, so the IOPS limit is expressed
#     as the equivalent bit rate) and a qemu-storage-daemon throttle group.
#  3. Share ratios on a congested datastore (one request at a time, 2 ms
#     each): two VMs with shares 1000:2000 under vaio-sioc, against the
#     same two VMs without control, with nbdkit's rate filter (static
#     per-VM rates in the shares' proportion, adding up to the measured
#     capacity) and with a QEMU throttle group holding both (limit = the
#     capacity).  The same with three VMs, shares 500:1000:2000 (static
#     rates C/7, 2C/7, 4C/7).  Then work conservation: one VM idle, what
#     the other gets under each.  Pair runs skip their first 2 s (fio ramp), while
#     the controller converges.
set -euo pipefail
: "${VAIO_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${VAIO_BUILD:=$VAIO_SRC/build}"
source "$VAIO_SRC/scripts/bench-lib.sh"

# bench-lib's fio_nbd pipes fio's stdout into jq, but fio's nbd engine
# prints "fio: connected to NBD server" on stdout before the JSON, so jq
# fails.  Same helper, JSON through a file (reported to the lead).
fio_nbd () {
  local uri=$1 rw=$2 bs=$3 qd=${4:-16} out
  out=$(mktemp "$BENCH_DIR/fio.XXXXXX")
  fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
      --iodepth="$qd" --runtime="$BENCH_RUNTIME" --time_based=1 \
      --ramp_time="${FIO_RAMP:-0}" \
      --size="${FIO_SIZE:-256M}" --norandommap=1 --randrepeat=0 \
      --output-format=json --output="$out" > /dev/null 2>&1
  jq -r '.jobs[0] as $j
    | (if ($j.read.iops > $j.write.iops) then $j.read else $j.write end) as $d
    | "\($d.iops|floor) \($d.bw_bytes/1048576*10|floor/10) \($d.lat_ns.mean/1000|floor)"' "$out"
  rm -f "$out"
}

SIOC=$VAIO_BUILD/nbdkit-filters/sioc/nbdkit-vaio-sioc-filter.so
W=$(mktemp -d "$BENCH_DIR/sioc.XXXXXX")
PIDS=()
cleanup () {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

IMG=$W/disk.img
truncate -s "${BENCH_SIZE}" "$IMG"
FIO_SIZE=256M
export FIO_SIZE

wait_sock () {
  local i
  for i in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
  echo "no server on $1" >&2; exit 1
}

# serve NAME CMD...: a server in the background listening on $W/NAME.sock
serve () {
  local name=$1; shift
  "$@" 2> "$W/$name.log" &
  PIDS+=($!)
  wait_sock "$W/$name.sock"
}
stop_all () {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  rm -f "$W"/*.sock
}
uri () { echo "nbd+unix:///${2:-}?socket=$W/$1.sock"; }

best () { # the run with more IOPS of two "IOPS MiBps LAT" lines
  awk '$1 > b { b = $1; l = $0 } END { print l }'
}

# round_ratios FILE: each round's IOPS over bare's in the same round (the
# runs next to each other in time), sorted, and their median: on a shared
# host a best-of-three on each side alone can pair a lucky baseline with
# an unlucky run.
round_ratios () {
  paste -d' ' "$W/b" "$1" | awk '{ printf "%.2f\n", ($4 > 0 ? $4 / $1 : 0) }' |
    sort -g | awk '{ r[NR] = $1 } END { for (i = 1; i <= NR; i++) printf "%s%s", r[i], (i < NR ? " " : ""); printf " (median %s)", r[int((NR + 1) / 2)] }'
}

# --- 1. overhead ---
bench_title "vaio-sioc overhead, nothing throttled (4k, QD16, best of 3 interleaved)"
serve bare nbdkit -f -U "$W/bare.sock" file "$IMG"
serve sioc nbdkit -f -U "$W/sioc.sock" --filter="$SIOC" file "$IMG"
mkdir -m 0700 "$W/st"
serve coord nbdkit -f -U "$W/coord.sock" --filter="$SIOC" file "$IMG" \
  sioc-datastore="$W/ds.seg" sioc-state-dir="$W/st"
# Interleaved rounds, best of each: the host is shared, and a neighbour's
# burst during one run must not decide the ratio.
for rw in randread randwrite; do
  : > "$W/b"; : > "$W/s"; : > "$W/c"
  for round in 1 2 3; do
    fio_nbd "$(uri bare)" $rw 4k >> "$W/b"
    fio_nbd "$(uri sioc)" $rw 4k >> "$W/s"
    fio_nbd "$(uri coord)" $rw 4k >> "$W/c"
  done
  set -- $(best < "$W/b"); base=$1
  bench_row "nbdkit file ($rw)" $1 $2 "$base" "baseline"
  set -- $(best < "$W/s")
  bench_row "+ vaio-sioc, no limits ($rw)" $1 $2 "$base" \
    "target >= 0.95x; per-round ratios $(round_ratios "$W/s")"
  set -- $(best < "$W/c")
  bench_row "+ vaio-sioc, segment + stats ($rw)" $1 $2 "$base" \
    "target >= 0.95x; per-round ratios $(round_ratios "$W/c")"
done
stop_all

# --- 2. limit accuracy ---
qsd () { # NAME THROTTLE-OPTS
  serve "$1" qemu-storage-daemon \
    --object "throttle-group,id=tg0,$2" \
    --blockdev "driver=file,node-name=f0,filename=$IMG" \
    --blockdev driver=raw,node-name=raw0,file=f0 \
    --blockdev driver=throttle,node-name=thr0,throttle-group=tg0,file=raw0 \
    --nbd-server "addr.type=unix,addr.path=$W/$1.sock" \
    --export type=nbd,id=e0,node-name=thr0,name=disk,writable=on
}
limit_rows () { # TITLE-SUFFIX BS TARGET UNIT FIELD(1=IOPS 2=MiB/s)
  local bs=$2 target=$3 unit=$4 field=$5 r got
  for who in sioc rate qsd; do
    r=$(fio_nbd "$(uri "$who" "$( [ $who = qsd ] && echo disk)")" randread "$bs")
    got=$(echo "$r" | awk -v f="$field" '{ print $f }')
    set -- $r
    # bench_row divides IOPS by its base: pick the base that makes the
    # ratio column delivered / limit in the limit's own unit.
    bench_row "$who: limit $target $unit ($bs)" "$1" "$2" \
      "$(awk -v i="$1" -v g="$got" -v t="$target" 'BEGIN { print (g > 0 ? i * t / g : 0) }')" \
      "delivered $got $unit"
  done
  stop_all
}
bench_title "limit accuracy: delivered / limit (ratio column), QD16"
serve sioc nbdkit -f -U "$W/sioc.sock" --filter="$SIOC" file "$IMG" sioc-limit-iops=1000
serve rate nbdkit -f -U "$W/rate.sock" --filter=rate file "$IMG" rate=32768000
qsd qsd x-iops-total=1000
limit_rows iops 4k 1000 IOPS 1
serve sioc nbdkit -f -U "$W/sioc.sock" --filter="$SIOC" file "$IMG" sioc-limit-mbps=16
serve rate nbdkit -f -U "$W/rate.sock" --filter=rate file "$IMG" rate=134217728
qsd qsd x-bps-total=16777216
limit_rows mbps 64k 16 MiB/s 2

# --- 3. shares ---
# Two VMs on one congested datastore (one request at a time, 2 ms each),
# each side by side with what nbdkit and QEMU offer for the same intent:
#  - no control: the datastore splits about evenly; its total is the
#    capacity C the static peers are given;
#  - vaio-sioc, shares 1000:2000;
#  - nbdkit's rate filter: static per-VM rates in the shares' proportion
#    (C/3 and 2C/3 as 4k bit rates), adding up to C;
#  - a qemu-storage-daemon throttle group holding both disks, its limit C:
#    a group divides evenly (it has no shares);
# then the same four with three VMs at shares 500:1000:2000 (C measured
# again, with three), and work conservation: vm1 alone (vm2 idle), what
# it gets under each.
bench_title "shares 1000:2000 on a congested datastore (ratio = vm2 / vm1 IOPS)"
# noextents: the memory disk is all holes, and qemu's NBD export answers
# reads of a hole from block status (unthrottled, never reaching the
# datastore: 8000 IOPS through a 400 IOPS group).  Data everywhere makes
# every read a read, for every peer alike.
serve ds nbdkit -f -U "$W/ds.sock" --filter=noextents --filter=noparallel \
  --filter=delay memory 1G serialize=all-requests delay-read=2ms delay-write=2ms
# start_vms KIND SHARES...: one VM per share value, vm1, vm2, ...
# (sockets vm1/vm2/..., or qsd exports on "qg"): for vaio-sioc those
# shares; for nbdkit's rate filter static rates C * share / total shares
# (as 4k bit rates), adding up to C; a QEMU throttle group holds them all.
start_vms () {
  local kind=$1 n=0 total=0 sh d; shift
  for sh in "$@"; do total=$(( total + sh )); done
  case $kind in
    none)
      for sh in "$@"; do
        n=$(( n + 1 ))
        serve vm$n nbdkit -f -U "$W/vm$n.sock" nbd socket="$W/ds.sock"
      done ;;
    sioc)
      rm -f "$W/shares.seg"
      for sh in "$@"; do
        n=$(( n + 1 ))
        serve vm$n nbdkit -f -U "$W/vm$n.sock" --filter="$SIOC" nbd socket="$W/ds.sock" \
          sioc-datastore="$W/shares.seg" sioc-shares="$sh"
      done ;;
    rate)
      for sh in "$@"; do
        n=$(( n + 1 ))
        serve vm$n nbdkit -f -U "$W/vm$n.sock" --filter=rate nbd socket="$W/ds.sock" \
          rate=$(( CAP * 4096 * 8 * sh / total ))
      done ;;
    qsd)
      n=$#
      # --nbd-server before the exports: they need it running.
      set -- --object "throttle-group,id=tg0,x-iops-total=$CAP" \
        --nbd-server "addr.type=unix,addr.path=$W/qg.sock"
      for d in $(seq "$n"); do
        set -- "$@" \
          --blockdev "driver=nbd,node-name=n$d,server.type=unix,server.path=$W/ds.sock" \
          --blockdev "driver=throttle,node-name=t$d,throttle-group=tg0,file=n$d" \
          --export "type=nbd,id=e$d,node-name=t$d,name=vm$d,writable=on"
      done
      serve qg qemu-storage-daemon "$@" ;;
  esac
}
start_pair () { start_vms "$1" 1000 2000; }
vm_uri () { # KIND N
  if [ "$1" = qsd ]; then uri qg "vm$2"; else uri "vm$2"; fi
}
# stop_pair: stop the VMs (or qsd), keep the datastore.
stop_pair () {
  local keep=("${PIDS[0]}") p
  for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=("${keep[@]}")
  rm -f "$W"/vm[0-9].sock "$W/qg.sock"
}
pair () { # KIND LABEL: both VMs busy; sets PAIR_TOTAL
  local a b
  start_pair "$1"
  FIO_RAMP=2 fio_nbd "$(vm_uri "$1" 1)" randread 4k > "$W/a" & fa=$!
  FIO_RAMP=2 fio_nbd "$(vm_uri "$1" 2)" randread 4k > "$W/b" & fb=$!
  wait $fa $fb
  stop_pair
  read -r a ma _ < "$W/a"; read -r b mb _ < "$W/b"
  PAIR_TOTAL=$(( a + b ))
  bench_row "$2: vm1 (1000)" "$a" "$ma" "$a" ""
  bench_row "$2: vm2 (2000)" "$b" "$mb" "$a" "ratio vm2/vm1 (want 2.00); total $PAIR_TOTAL IOPS"
}
triple () { # KIND LABEL: three VMs busy, shares 500:1000:2000; sets PAIR_TOTAL
  local a b c
  start_vms "$1" 500 1000 2000
  FIO_RAMP=2 fio_nbd "$(vm_uri "$1" 1)" randread 4k > "$W/a" & fa=$!
  FIO_RAMP=2 fio_nbd "$(vm_uri "$1" 2)" randread 4k > "$W/b" & fb=$!
  FIO_RAMP=2 fio_nbd "$(vm_uri "$1" 3)" randread 4k > "$W/c" & fc=$!
  wait $fa $fb $fc
  stop_pair
  read -r a ma _ < "$W/a"; read -r b mb _ < "$W/b"; read -r c mc _ < "$W/c"
  PAIR_TOTAL=$(( a + b + c ))
  bench_row "$2: vm1 (500)" "$a" "$ma" "$a" ""
  bench_row "$2: vm2 (1000)" "$b" "$mb" "$a" "ratio vm2/vm1 (want 2.00)"
  bench_row "$2: vm3 (2000)" "$c" "$mc" "$a" "ratio vm3/vm1 (want 4.00); total $PAIR_TOTAL IOPS"
}
alone () { # KIND LABEL: vm1 busy, vm2 idle
  local a
  start_pair "$1"
  FIO_RAMP=1 fio_nbd "$(vm_uri "$1" 1)" randread 4k > "$W/a"
  stop_pair
  set -- "$2" $(cat "$W/a")
  bench_row "$1" "$2" "$3" "$CAP" "of capacity $CAP IOPS (1.00 = work-conserving)"
}
pair none "no control"
CAP=$PAIR_TOTAL
pair sioc "vaio-sioc shares"
pair rate "nbdkit rate, static C/3 : 2C/3"
pair qsd "QEMU throttle group, limit C"
bench_title "shares 500:1000:2000, three VMs on that datastore (ratio = / vm1 IOPS)"
triple none "no control"
CAP3=$PAIR_TOTAL
triple sioc "vaio-sioc shares"
PAIR_CAP=$CAP; CAP=$CAP3
triple rate "nbdkit rate, static C/7:2C/7:4C/7"
triple qsd "QEMU throttle group, limit C"
CAP=$PAIR_CAP
bench_title "work conservation: vm1 alone on the datastore, vm2 idle (ratio = / capacity)"
alone sioc "vaio-sioc (shares 1000:2000)"
alone rate "nbdkit rate (static C/3)"
alone qsd "QEMU throttle group (limit C)"
stop_all
