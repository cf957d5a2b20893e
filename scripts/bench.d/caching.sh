#!/bin/bash
# Caching class bench (run by scripts/bench, or alone:
#   VAIO_BUILD=build VAIO_SRC=. bash scripts/bench.d/caching.sh).
#
# 1. Cache-hit 4k random reads, QD16, working set warm in the cache:
#    vaio-cache (O_DIRECT and buffered cache) against bare nbdkit serving
#    vaio-cache's own cache file, and nbdkit's cache filter, same run.
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

if ! type serve_start >/dev/null 2>&1; then
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
fi
trap 'serve_stop 2>/dev/null || true' EXIT

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
bench_title "caching: cache-hit 4k randread QD16 (working set $WS, warm)"
serve_start --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-direct" cache-direct=true
warm "$uri"
mark "$D/st-direct"
read -r d_iops d_mib d_lat <<<"$(fio_nbd "$uri" randread 4k)"
d_hr=$(hit_ratio "$D/st-direct")
serve_stop

serve_start --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-buf" cache-direct=false
warm "$uri"
mark "$D/st-buf"
read -r b_iops b_mib b_lat <<<"$(fio_nbd "$uri" randread 4k)"
b_hr=$(hit_ratio "$D/st-buf")
serve_stop

# Bare nbdkit serving vaio-cache's own cache file (the ceiling for a hit).
serve_start file "$D/st-buf/cache.img"
cat "$D/st-buf/cache.img" > /dev/null
read -r f_iops f_mib f_lat <<<"$(fio_nbd "$uri" randread 4k)"
serve_stop

# The cache device's own ceiling for O_DIRECT 4k random reads (no NBD).
read -r x_iops x_mib <<<"$(fio --name=dev --ioengine=io_uring --direct=1 \
  --filename="$D/st-direct/cache.img" --rw=randread --bs=4k --iodepth=16 \
  --size="$WS" --runtime="$BENCH_RUNTIME" --time_based=1 --output-format=json 2>/dev/null |
  sed -n '/^{/,$p' | jq -r '.jobs[0].read | "\(.iops|floor) \(.bw_bytes/1048576*10|floor/10)"')"

serve_start --filter=cache file "$img" cache=writethrough
warm "$uri"
read -r n_iops n_mib n_lat <<<"$(fio_nbd "$uri" randread 4k)"
serve_stop

bench_row "bare nbdkit file on the cache file" "$f_iops" "$f_mib" "$f_iops" "baseline, lat ${f_lat}us"
bench_row "nbdkit cache filter (warm)" "$n_iops" "$n_mib" "$f_iops" "lat ${n_lat}us"
bench_row "cache device O_DIRECT ceiling (fio io_uring)" "$x_iops" "$x_mib" "$f_iops" "no NBD, the limit for O_DIRECT hits"
bench_row "vaio-cache, O_DIRECT cache" "$d_iops" "$d_mib" "$f_iops" "hits $d_hr, $(awk -v a="$d_iops" -v b="$x_iops" 'BEGIN{printf "%.2fx", a/b}') of device, vs nbdkit cache $(awk -v a="$d_iops" -v b="$n_iops" 'BEGIN{printf "%.2fx", a/b}')"
bench_row "vaio-cache, buffered cache" "$b_iops" "$b_mib" "$f_iops" "hits $b_hr, lat ${b_lat}us, vs nbdkit cache $(awk -v a="$b_iops" -v b="$n_iops" 'BEGIN{printf "%.2fx", a/b}')"

# --- 2. slow backing ---
export FIO_SIZE=64M
bench_title "caching: slow backing (delay filter rdelay=2ms), 4k randread QD16 over 64M"
serve_start --filter=delay file "$img" rdelay=2ms
read -r s_iops s_mib s_lat <<<"$(fio_nbd "$uri" randread 4k)"
serve_stop
serve_start --filter="$FILTER" --filter=delay file "$img" rdelay=2ms \
  cache-size=256M cache-state-dir="$D/st-slow" cache-direct=false
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
export FIO_SIZE=$WS
bench_title "caching: 4k randwrite QD16 over $WS"
serve_start file "$img"
read -r p_iops p_mib p_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
serve_stop
# Write-back: a cold run (every first write to a 64K block fills it from
# the backing image) and a second, warm run.
serve_start --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wb" \
  cache-mode=write-back cache-destage-on-close=false
read -r q_iops q_mib q_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
read -r q2_iops q2_mib q2_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
serve_stop
serve_start --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wbb" \
  cache-mode=write-back cache-destage-on-close=false cache-direct=false
read -r r_iops r_mib r_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
read -r r2_iops r2_mib r2_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
serve_stop
serve_start --filter="$FILTER" "${vc_args[@]}" cache-state-dir="$D/st-wt" \
  cache-mode=write-through
read -r t_iops t_mib t_lat <<<"$(fio_nbd "$uri" randwrite 4k)"
serve_stop
bench_row "bare nbdkit file" "$p_iops" "$p_mib" "$p_iops" "baseline, lat ${p_lat}us"
bench_row "vaio-cache write-back, O_DIRECT, cold" "$q_iops" "$q_mib" "$p_iops" "lat ${q_lat}us"
bench_row "vaio-cache write-back, O_DIRECT, warm" "$q2_iops" "$q2_mib" "$p_iops" "lat ${q2_lat}us"
bench_row "vaio-cache write-back, buffered, cold" "$r_iops" "$r_mib" "$p_iops" "lat ${r_lat}us"
bench_row "vaio-cache write-back, buffered, warm" "$r2_iops" "$r2_mib" "$p_iops" "lat ${r2_lat}us"
bench_row "vaio-cache write-through" "$t_iops" "$t_mib" "$p_iops" "lat ${t_lat}us"
