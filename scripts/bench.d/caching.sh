#!/bin/bash
# Caching class bench (run by scripts/bench, or alone:
#   VAIO_BUILD=build VAIO_SRC=. bash scripts/bench.d/caching.sh).
#
# 1. Cache-hit 4k random reads, QD16, working set warm in the cache:
#    vaio-cache (default: page cache on a cache file; and cache-direct=true)
#    against bare nbdkit serving
#    vaio-cache's own cache file, nbdkit's cache filter, and
#    qemu-storage-daemon reading the cache file O_DIRECT, same run.
# 2. Slow backing (nbdkit delay filter, 2 ms per read): hit ratio and
#    speedup of vaio-cache over the uncached slow backing.
# 3. 4k random writes, write-back, against bare nbdkit file.
set -euo pipefail
: "${VAIO_SRC:?}" "${VAIO_BUILD:?}"
. "$VAIO_SRC/scripts/bench-lib.sh"

FILTER=$VAIO_BUILD/nbdkit-filters/caching/nbdkit-vaio-cache-filter.so
STATS_GET=$VAIO_BUILD/test/caching/cache-stats-get
D=$BENCH_DIR/caching
mkdir -p "$D"
WS=${CACHE_BENCH_WS:-256M} # working set, fits the cache
export FIO_SIZE=$WS


img=$D/disk.img
head -c 512M /dev/urandom > "$img"

# warm URI: read the working set once (4k random reads, then a full pass).
warm () {
  FIO_SIZE=$WS BENCH_RUNTIME=2 fio_nbd "$1" randread 64k >/dev/null
  nbdcopy --connections=1 --request-size=65536 "$1" null: 2>/dev/null || true
}

# mark DIR: remember the hit/miss counters; hit_ratio DIR: the ratio since.
mark () {
  mark_h=$("$STATS_GET" "$1/stats" hits); mark_m=$("$STATS_GET" "$1/stats" misses)
}
hit_ratio () {
  local h m
  h=$(($("$STATS_GET" "$1/stats" hits) - mark_h))
  m=$(($("$STATS_GET" "$1/stats" misses) - mark_m))
  awk -v h="$h" -v m="$m" 'BEGIN { printf "%.1f%%", (h + m) ? 100 * h / (h + m) : 0 }'
}

vc_args=(file "$img" cache-size=768M cache-seq-cutoff=0)

# --- 1. cache-hit random reads ---
# All targets run side by side and are measured alternately, best of two
# rounds: the machine is shared, and a run-to-run swing would otherwise
# decide the ratios.
declare -A srv_pid srv_uri best_iops best_mib best_lat
# srv_wait NAME SOCK: until the server started as NAME answers on SOCK.
srv_wait () {
  local name=$1 sock=$2
  for _ in $(seq 200); do
    [ -S "$sock" ] && nbdinfo --size "${srv_uri[$name]}" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench: $name did not start" >&2
  return 1
}
srv_start () {
  local name=$1; shift
  local sock=$BENCH_DIR/cache-$name.sock
  rm -f "$sock"
  nbdkit -f -U "$sock" "$@" &
  srv_pid[$name]=$!
  srv_uri[$name]="nbd+unix:///?socket=$sock"
  srv_wait "$name" "$sock"
}
# qsd_start NAME FILE: qemu-storage-daemon exporting FILE read-only with
# O_DIRECT and io_uring, an O_DIRECT NBD server with no cache logic.
qsd_start () {
  local name=$1 file=$2
  local sock=$BENCH_DIR/cache-$name.sock
  rm -f "$sock"
  qemu-storage-daemon \
    --blockdev "{\"driver\":\"file\",\"node-name\":\"f0\",\"filename\":\"$file\",\"read-only\":true,\"aio\":\"io_uring\",\"cache\":{\"direct\":true}}" \
    --nbd-server "addr.type=unix,addr.path=$sock" \
    --export type=nbd,id=e0,node-name=f0,name=disk &
  srv_pid[$name]=$!
  srv_uri[$name]="nbd+unix:///disk?socket=$sock"
  srv_wait "$name" "$sock"
}
srv_stop_all () {
  for p in "${srv_pid[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${srv_pid[@]}"; do wait "$p" 2>/dev/null || true; done
  srv_pid=()
}
trap 'srv_stop_all; serve_stop 2>/dev/null || true' EXIT

bench_title "caching: cache-hit 4k randread QD16 (working set $WS, warm, best of 2)"
srv_start direct --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-direct" cache-direct=true
srv_start buffered --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-buf" # cache-direct=auto
srv_start nbdcache --filter=cache file "$img" cache=writethrough
for t in direct buffered nbdcache; do warm "${srv_uri[$t]}"; done
# Bare nbdkit serving vaio-cache's own (now warm) cache file: the ceiling.
srv_start bare file "$D/st-buf/cache.img"
# The same reads O_DIRECT through an NBD server with no cache logic: what
# any O_DIRECT cache can reach here (each hit is a device round trip).
qsd_start qsd_direct "$D/st-direct/cache.img"
mark "$D/st-direct"; mark_direct=("$mark_h" "$mark_m")
mark "$D/st-buf"; mark_buf=("$mark_h" "$mark_m")
for round in 1 2; do
  for t in bare buffered direct nbdcache qsd_direct; do
    read -r i m l <<<"$(fio_nbd "${srv_uri[$t]}" randread 4k)"
    if [ "${i:-0}" -gt "${best_iops[$t]:-0}" ]; then
      best_iops[$t]=$i best_mib[$t]=$m best_lat[$t]=$l
    fi
  done
done
mark_h=${mark_direct[0]} mark_m=${mark_direct[1]}; d_hr=$(hit_ratio "$D/st-direct")
mark_h=${mark_buf[0]} mark_m=${mark_buf[1]}; b_hr=$(hit_ratio "$D/st-buf")
srv_stop_all

# The cache device's own ceiling for O_DIRECT 4k random reads (no NBD).
read -r x_iops x_mib <<<"$(fio --name=dev --ioengine=io_uring --direct=1 \
  --filename="$D/st-direct/cache.img" --rw=randread --bs=4k --iodepth=16 \
  --size="$WS" --runtime="$BENCH_RUNTIME" --time_based=1 --output-format=json 2>/dev/null |
  sed -n '/^{/,$p' | jq -r '.jobs[0].read | "\(.iops|floor) \(.bw_bytes/1048576*10|floor/10)"')"

f_iops=${best_iops[bare]}
vs () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
bench_row "bare nbdkit file on the cache file" "$f_iops" "${best_mib[bare]}" "$f_iops" "baseline, lat ${best_lat[bare]}us"
bench_row "nbdkit cache filter (warm)" "${best_iops[nbdcache]}" "${best_mib[nbdcache]}" "$f_iops" "lat ${best_lat[nbdcache]}us"
bench_row "vaio-cache, cache file (default)" "${best_iops[buffered]}" "${best_mib[buffered]}" "$f_iops" \
  "hits $b_hr, lat ${best_lat[buffered]}us, vs nbdkit cache $(vs "${best_iops[buffered]}" "${best_iops[nbdcache]}")"
bench_row "vaio-cache, cache-direct=true (O_DIRECT)" "${best_iops[direct]}" "${best_mib[direct]}" "$f_iops" \
  "hits $d_hr, lat ${best_lat[direct]}us, vs nbdkit cache $(vs "${best_iops[direct]}" "${best_iops[nbdcache]}")"
bench_row "qemu-storage-daemon, O_DIRECT cache file" "${best_iops[qsd_direct]}" "${best_mib[qsd_direct]}" "$f_iops" \
  "O_DIRECT NBD server, no cache logic, lat ${best_lat[qsd_direct]}us"
bench_row "cache device O_DIRECT, fio io_uring, no NBD" "$x_iops" "$x_mib" "$f_iops" "the device's own limit"

# --- 2. slow backing ---
export FIO_SIZE=64M
bench_title "caching: slow backing (delay filter rdelay=2ms), 4k randread QD16 over 64M"
serve_start --filter=delay file "$img" rdelay=2ms
read -r s_iops s_mib s_lat <<<"$(fio_nbd "$uri" randread 4k)"
serve_stop
serve_start --filter="$FILTER" --filter=delay file "$img" rdelay=2ms \
  cache-size=256M cache-state-dir="$D/st-slow"
mark "$D/st-slow"
read -r c_iops c_mib c_lat <<<"$(fio_nbd "$uri" randread 4k)"
c_hr=$(hit_ratio "$D/st-slow")
mark "$D/st-slow"
read -r w_iops w_mib w_lat <<<"$(fio_nbd "$uri" randread 4k)"
w_hr=$(hit_ratio "$D/st-slow")
serve_stop
bench_row "slow backing, no cache" "$s_iops" "$s_mib" "$s_iops" "baseline, lat ${s_lat}us"
bench_row "vaio-cache, first run (filling)" "$c_iops" "$c_mib" "$s_iops" "hit ratio $c_hr"
bench_row "vaio-cache, second run (warm)" "$w_iops" "$w_mib" "$s_iops" "hit ratio $w_hr"

# --- 3. random writes ---
# Side by side, alternating, best of two rounds after one cold run each
# (in write-back a first write to a 64K block fills it from the backing).
export FIO_SIZE=$WS
bench_title "caching: 4k randwrite QD16 over $WS (best of 2, after a cold run)"
best_iops=() best_mib=() best_lat=()
srv_start bare file "$img"
srv_start wb_direct --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wb" \
  cache-mode=write-back cache-destage-on-close=false cache-direct=true
srv_start wb_buffered --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wbb" \
  cache-mode=write-back cache-destage-on-close=false # cache-direct=auto
srv_start wt --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wt" \
  cache-mode=write-through
declare -A cold_iops
for t in wb_direct wb_buffered; do
  read -r i m l <<<"$(fio_nbd "${srv_uri[$t]}" randwrite 4k)"
  cold_iops[$t]=$i
done
for round in 1 2; do
  for t in bare wb_buffered wb_direct wt; do
    read -r i m l <<<"$(fio_nbd "${srv_uri[$t]}" randwrite 4k)"
    if [ "${i:-0}" -gt "${best_iops[$t]:-0}" ]; then
      best_iops[$t]=$i best_mib[$t]=$m best_lat[$t]=$l
    fi
  done
done
srv_stop_all
p_iops=${best_iops[bare]}
bench_row "bare nbdkit file" "$p_iops" "${best_mib[bare]}" "$p_iops" "baseline, lat ${best_lat[bare]}us"
bench_row "vaio-cache write-back, cache file (default)" "${best_iops[wb_buffered]}" "${best_mib[wb_buffered]}" "$p_iops" \
  "lat ${best_lat[wb_buffered]}us, cold run ${cold_iops[wb_buffered]} IOPS"
bench_row "vaio-cache write-back, O_DIRECT cache" "${best_iops[wb_direct]}" "${best_mib[wb_direct]}" "$p_iops" \
  "lat ${best_lat[wb_direct]}us, cold run ${cold_iops[wb_direct]} IOPS"
bench_row "vaio-cache write-through" "${best_iops[wt]}" "${best_mib[wt]}" "$p_iops" "lat ${best_lat[wt]}us"
