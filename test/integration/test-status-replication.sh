#!/bin/bash
# vaioctl status's text VM view gives a replicated disk one line from its
# replication filter's stats: replica connected or not, lag now / p50 /
# p99, the RPO and OVER RPO past it, change tracking while the replica is
# away and resync progress when it is back.  Figures are checked against
# the gauges read through --json where those hold still (replica away).
. "$(dirname "$0")/lib.sh"
start_replica 16M
# A 100 ms RPO, so that a write the replica cannot take is soon over it;
# a 1M journal, so that 4M of writes overflow it into change tracking.
repl_config "$T/c.yaml" status-repl "    replication: { repl-target: \"nbd+unix:///?socket=$T/rep.sock\", repl-rpo: 100ms, repl-journal-size: 1M }"
TEST_CONFIGS+=("$T/c.yaml")
"$VAIOCTL" up "$T/c.yaml" >/dev/null

# repl_line: the replication line of vm1/disk0 in the text view.
repl_line () {
  "$VAIOCTL" status "$T/c.yaml" --view vm | grep "^ *replication: " || true
}
# wait_line WHAT ERE: poll the line until it matches ERE (10 s); on
# failure, every line seen meanwhile.
wait_line () {
  local l
  : > "$T/seen"
  for _ in $(seq 100); do
    l=$(repl_line)
    echo "$l" >> "$T/seen"
    grep -qE -- "$2" <<<"$l" && { echo "$l"; return; }
    sleep 0.1
  done
  fail "$1: no replication line matches '$2'; seen: $(uniq "$T/seen")"
}
counters () {
  "$VAIOCTL" status "$T/c.yaml" --json | jq -c '.vms[0].disks[0].chain[] | select(.class == "replication") | .stats.counters'
}
# in_sync: connected, nothing unshipped, journaling (not tracking).
in_sync () {
  for _ in $(seq 200); do
    counters | jq -e '.replica_connected == 1 and .journal_used_bytes == 0 and .dirty_bytes == 0
      and .tracking == 0' >/dev/null && return
    sleep 0.05
  done
  fail "not in sync: $(counters)"
}
T_=' [0-9.]+ (us|ms|s|min|h)'
# human_us US: microseconds as the text view writes them (one decimal
# below 10 of a unit, whole above).
human_us () {
  awk -v us="$1" 'function f(v, u) { return (v < 10 && v != int(v)) ? sprintf("%.1f %s", v, u) : sprintf("%.0f %s", v, u) }
    BEGIN { if (us < 1000) print us " us"; else if (us < 1e6) print f(us / 1e3, "ms");
            else if (us < 6e7) print f(us / 1e6, "s"); else if (us < 3.6e9) print f(us / 6e7, "min");
            else print f(us / 3.6e9, "h") }'
}

# After the initial sync, a write through the journal.
in_sync
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xaa 0 256K" >/dev/null
in_sync
l=$(wait_line "in sync" "^ +replication: replica connected, lag 0 us \(p50$T_, p99$T_\), RPO 100 ms$")
# The record just shipped took some time: its lag is in the window.
grep -q "p99 0 us" <<<"$l" && fail "p99 lag 0 after shipping a record: $l ($(counters))"
pass "in sync: $l"

# The replica goes away; a write stays in the journal and its lag grows
# past the RPO.
kill -9 "$rep"
wait "$rep" 2>/dev/null || true
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xbb 2M 64K" >/dev/null
l=$(wait_line "replica down" "^ +replication: replica not connected, lag$T_ \(p50$T_, p99$T_\), RPO 100 ms OVER RPO$")
grep -q "lag 0 us" <<<"$l" && fail "lag 0 with an unshipped write: $l"
c=$(counters)
jq -e '.replica_connected == 0 and .over_rpo == 1 and .lag_us > 100000 and .journal_used_bytes > 0 and .tracking == 0' \
  <<<"$c" >/dev/null || fail "json gauges with the replica down: $c"
pass "replica down, a write unshipped: $l"

# 4M more overflow the 1M journal: change tracking, its dirty bytes as
# the gauge says (the journal's 64K and the 4M, in 64K regions).
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xcc 4M 4M" >/dev/null
l=$(wait_line "tracking" "^ +replication: replica not connected, lag$T_ \(p50$T_, p99$T_\), RPO 100 ms OVER RPO, tracking changes \(4\.1 MiB dirty\)$")
c=$(counters)
jq -e '.tracking == 1 and .dirty_bytes == 4259840' <<<"$c" >/dev/null || fail "json gauges while tracking: $c"
# Nothing ships while the replica is away: the lag window holds still.
want="(p50 $(human_us "$(jq .lag_p50_us <<<"$c")"), p99 $(human_us "$(jq .lag_p99_us <<<"$c")"))"
grep -qF "$want" <<<"$l" || fail "text p50/p99 are not the gauges' $want: $l ($c)"
pass "journal overflowed: $l"

# The replica comes back, slowed to 1 MB/s: the 4.1M resynchronise over
# about 4 s, with their progress shown, then journaling again in sync.
rm -f "$T/rep.sock"  # left by the kill -9
nbdkit -f -U "$T/rep.sock" --filter=rate file "$T/rep.img" rate=8M 2>/dev/null &
rep=$!
l=$(wait_line "resync" "^ +replication: replica connected, lag$T_ \(p50$T_, p99$T_\), RPO 100 ms( OVER RPO)?, resync [0-9]+% \([0-9.]+ (B|KiB|MiB) of 4\.1 MiB\)$")
pct=$(sed -E 's/.*resync ([0-9]+)%.*/\1/' <<<"$l")
[ "$pct" -lt 100 ] || fail "resync shown as done while resyncing: $l"
pass "resync: $l"
in_sync
l=$(wait_line "resynced" "^ +replication: replica connected, lag 0 us \(p50$T_, p99$T_\), RPO 100 ms$")
pass "resynced: $l"
"$VAIOCTL" down "$T/c.yaml" >/dev/null
cmp "$T/vm1.img" "$T/rep.img" || fail "the replica differs from the source"
pass "the replica equals the source"

# A stopped disk has no live figures: no replication line.
out=$("$VAIOCTL" status "$T/c.yaml" --view vm || true)
grep -q "replication:" <<<"$out" && fail "a stopped disk shows a replication line: $out"
pass "no replication line for a stopped disk"
