#!/bin/bash
# The RPO target defaults to 15 s (Veeam's default): with no repl-rpo the
# stats say rpo_us 15000000; a repl-rpo given is what the stats show.
. "$(dirname "$0")/lib.sh"

truncate -s 4M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")"
wait_in_sync "$T/state" 30
[ "$(stat_value "$T/state" rpo_us)" = 15000000 ] ||
  fail "default rpo_us is '$(stat_value "$T/state" rpo_us)', not 15000000"
[ "$(stat_value "$T/state" over_rpo)" = 0 ] || fail "over RPO while in sync"
stop_pid "$SOURCE_PID"

start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-rpo=2500ms
wait_in_sync "$T/state" 30
[ "$(stat_value "$T/state" rpo_us)" = 2500000 ] ||
  fail "rpo_us is '$(stat_value "$T/state" rpo_us)' with repl-rpo=2500ms"
stop_pid "$SOURCE_PID"
echo "ok: rpo_us 15000000 by default"
