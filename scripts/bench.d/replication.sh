#!/bin/bash
# bench.d/replication.sh: vaio-replication against bare nbdkit, same run.
#   async: 4k random write IOPS at QD16 (target >= 0.85x bare), then a
#          sustained rate the link carries (half the async IOPS) with the
#          RPO lag p50/p99 measured by the filter (target p99 <= 1 s);
#   sync:  QD1 4k write latency (target <= 2x bare), local replica.
# Each prints beside it what this host gives with the replica on the same
# cores and none of the filter's work: half of what two servers write
# together (async), and a plain forwarding proxy (sync).
# Run by scripts/bench with VAIO_BUILD, VAIO_SRC, BENCH_DIR, BENCH_RUNTIME.
set -euo pipefail
. "$VAIO_SRC/scripts/bench-lib.sh"

FILTER=$VAIO_BUILD/nbdkit-filters/replication/nbdkit-vaio-replication-filter.so
STATS=$VAIO_BUILD/test/replication/repl-stats
dir=$BENCH_DIR/replication
rm -rf "$dir"
mkdir -p "$dir"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$dir"' EXIT

# serve NAME NBDKIT-ARGS...: a background server on $dir/NAME.sock; sets
# uri and server_pid.
serve () {
  local name=$1 i
  shift
  rm -f "$dir/$name.sock"
  nbdkit -f -U "$dir/$name.sock" "$@" 2>>"$dir/$name.log" &
  server_pid=$!
  pids+=("$server_pid")
  uri="nbd+unix:///?socket=$dir/$name.sock"
  for i in $(seq 100); do [ -S "$dir/$name.sock" ] && return 0; sleep 0.1; done
  echo "replication bench: $name server did not start" >&2
  return 1
}

unserve () {
  local i
  kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  wait "$1" 2>/dev/null || true
}

stat_of () {
  "$STATS" "$dir/state-$1/stats" | awk -v n="$2" '$1 == n { print $2 }'
}

# waited_share: "N% waited for a barrier": the share of the records the
# async server shipped that had to wait for the replica to acknowledge
# the one they followed (write order), a whole replica round trip each.
waited_share () {
  awk -v w="$(stat_of async barrier_waits)" -v r="$(stat_of async shipped_records)" \
    'BEGIN { if (r > 0) printf "%d%% waited for a barrier", 100 * w / r; else print "nothing shipped" }'
}

# serve_repl MODE [JOURNAL-SIZE]: the filter in front of src.img, replica
# rep.img; returns once the initial sync is over.
serve_repl () {
  local i
  serve "repl-$1" --filter="$FILTER" file "$dir/src.img" \
    repl-target="nbd+unix:///?socket=$dir/rep.sock" \
    repl-state-dir="$dir/state-$1" repl-mode="$1" \
    repl-journal-size="${2:-512M}"
  # The stats file appears once the state is recovered; wait for the
  # initial sync to finish before measuring.
  for i in $(seq 1200); do
    [ "$(stat_of "$1" tracking 2>/dev/null)" = 0 ] &&
      [ "$(stat_of "$1" dirty_bytes 2>/dev/null)" = 0 ] && return 0
    sleep 0.1
  done
}

truncate -s "$BENCH_SIZE" "$dir/src.img" "$dir/rep.img"
serve rep file "$dir/rep.img"
rep_pid=$server_pid

bench_title "replication: 4k random write, QD16 (async)"
serve bare file "$dir/src.img"
read -r b_iops b_mib b_lat <<<"$(fio_nbd "$uri" randwrite 4k 16)"
unserve "$server_pid"
bench_row "bare nbdkit file" "$b_iops" "$b_mib" "$b_iops" "baseline"

# What this host allows a replica on the same cores: while fio writes to
# the source, a second fio writes as fast to the replica's server, with
# none of the filter's work.  A replica takes one write per write of the
# VM, so the VM can have about half of what the two servers did
# together: that half is the row (an estimate, not a bound: each server
# here has a fio of its own to feed it).
serve bare file "$dir/src.img"
fio_nbd "nbd+unix:///?socket=$dir/rep.sock" randwrite 4k 16 >"$dir/pair.out" &
pair_pid=$!
read -r c_iops _ <<<"$(fio_nbd "$uri" randwrite 4k 16)"
wait "$pair_pid" || true
unserve "$server_pid"
c2_iops=
read -r c2_iops _ <"$dir/pair.out" || true
if [ -n "$c_iops" ] && [ -n "$c2_iops" ]; then
  half=$(( (c_iops + c2_iops) / 2 ))
  bench_row "two servers, half of what they wrote" "$half" \
    "$(awk -v i="$half" 'BEGIN { printf "%.1f", i * 4 / 1024 }')" "$b_iops" \
    "same-host replica estimate ($c_iops source + $c2_iops replica server)"
else
  # One of the two fio runs printed nothing (it failed): say so, and go
  # on with the rows that do not need it.
  printf '%-44s %10s %10s %8s  %s\n' "two servers, half of what they wrote" \
    - - - "no estimate: a fio run printed nothing"
fi

serve_repl async
read -r a_iops a_mib a_lat <<<"$(fio_nbd "$uri" randwrite 4k 16)"
# What the link (shipper + replica) carried meanwhile, records per second.
shipped=$(( $(stat_of async shipped_records) / BENCH_RUNTIME ))
bench_row "vaio-replication async" "$a_iops" "$a_mib" "$b_iops" \
  "target >= 0.85x; link shipped $shipped/s meanwhile, $(waited_share)"

unserve "$server_pid"

# Where the async cost goes: the same workload with the replica paused
# (SIGSTOP), so the filter journals every write and ships none (a 2G
# journal absorbs the whole run).
rm -rf "$dir/state-async"
serve_repl async 2G
kill -STOP "$rep_pid"
read -r j_iops j_mib _ <<<"$(fio_nbd "$uri" randwrite 4k 16)"
kill -CONT "$rep_pid"
note="journal only: the replica paused, nothing shipped"
[ "$(stat_of async journal_overflows)" = 0 ] || note="$note (the journal overflowed)"
bench_row "vaio-replication async, replica paused" "$j_iops" "$j_mib" "$b_iops" "$note"
# Its journal is not needed: no drain, and its writeback done before the
# next run.
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
rm -rf "$dir/state-async"
sync

# A sustained rate the link carries: half of what it shipped at full
# speed, on a fresh server (its lag histogram holds only this run).
rate=$(( shipped / 2 > 100 ? shipped / 2 : 100 ))
rm -rf "$dir/state-async"
serve_repl async
r_iops=$(fio --name=r --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
  --iodepth=16 --rate_iops="$rate" --runtime=$(( BENCH_RUNTIME * 2 )) \
  --time_based=1 --size="${FIO_SIZE:-256M}" --norandommap=1 --randrepeat=0 \
  --output-format=json 2>/dev/null | sed -n '/^{/,$p' |
  jq -r '.jobs[0].write.iops | floor')
bench_row "async, sustained $rate IOPS" "$r_iops" "-" "$b_iops" \
  "RPO lag p50 $(stat_of async lag_p50_us) us, p99 $(stat_of async lag_p99_us) us (target p99 <= 1 s); $(waited_share)"
unserve "$server_pid"

printf '\n== replication: 4k random write latency, QD1 (sync)\n'
printf '%-44s %10s %10s %8s\n' "target" "IOPS" "lat us" "ratio"
serve bare file "$dir/src.img"
read -r b1_iops b1_mib b1_lat <<<"$(fio_nbd "$uri" randwrite 4k 1)"
unserve "$server_pid"
printf '%-44s %10s %10s %8s\n' "bare nbdkit file" "$b1_iops" "$b1_lat" "1.00x"
# For reference, a write acknowledged only after a same-host replica's:
# nbdkit's nbd plugin forwarding each write to the replica's server, a
# round trip and nothing else (no local write, no journal).
serve proxy nbd socket="$dir/rep.sock"
read -r p_iops p_mib p_lat <<<"$(fio_nbd "$uri" randwrite 4k 1)"
unserve "$server_pid"
printf '%-44s %10s %10s %8s  %s\n' "nbdkit nbd plugin, forwarding to the replica" \
  "$p_iops" "$p_lat" \
  "$(awk -v a="$p_lat" -v b="$b1_lat" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')" \
  "reference: a same-host round trip per write"
serve_repl sync
read -r s_iops s_mib s_lat <<<"$(fio_nbd "$uri" randwrite 4k 1)"
unserve "$server_pid"
printf '%-44s %10s %10s %8s  %s\n' "vaio-replication sync" "$s_iops" "$s_lat" \
  "$(awk -v a="$s_lat" -v b="$b1_lat" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')" \
  "latency, target <= 2x"
unserve "$rep_pid"
