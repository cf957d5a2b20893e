#!/bin/bash
# Bad configurations stop the server at startup with an error naming the
# bad parameter, and leave the source image untouched: a replica smaller
# than the source, the source's own socket as the replica (Unix or loopback
# TCP), missing or malformed parameters, a journal the state file system
# has no room for, a PSK file others can read (its key never shown).
. "$(dirname "$0")/lib.sh"

truncate -s 4M "$T/src.img"
truncate -s 1M "$T/small.img"
qemu-io -f raw -c "write -P 0x7e 0 1M" "$T/src.img" >/dev/null
before=$(sha256sum < "$T/src.img")
start_replica "$T/small.img" "$T/small.sock"

# expect_refusal MESSAGE PARAMS...: nbdkit must exit non-zero, saying MESSAGE.
# LISTEN: where the source serves (a Unix socket unless a test changes it).
LISTEN=(-U "$T/src.sock")
expect_refusal () {
  local msg=$1 out rc=0
  shift
  rm -f "$T/src.sock"
  out=$(timeout 60 nbdkit -f "${LISTEN[@]}" --filter="$FILTER" \
          file "$T/src.img" "$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "started with: $*"
  [ "$rc" -ne 124 ] || fail "hung instead of refusing: $*"
  grep -qF -- "$msg" <<<"$out" || fail "no clear error ('$msg') for: $* -> $out"
  echo "refused ($msg)"
}

st=repl-state-dir=$T/state
expect_refusal "is smaller" "$st" "repl-target=$(unix_uri "$T/small.sock")"
expect_refusal "this server's own socket" "$st" \
  "repl-target=$(unix_uri "$T/src.sock")"
# The same over loopback TCP: the source serving on a port (on 127.0.0.1
# only, or on every address) with that port on a loopback name as target.
port=$(free_port)
LISTEN=(-i 127.0.0.1 -p "$port")
expect_refusal "repl-target nbd://127.0.0.1:$port/ is this server's own socket" \
  "$st" "repl-target=nbd://127.0.0.1:$port/"
LISTEN=(-p "$port")
expect_refusal "repl-target nbd://localhost:$port is this server's own socket" \
  "$st" "repl-target=nbd://localhost:$port"
# No port in the target: NBD's registered port, 10809.
if "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 10809))' 2>/dev/null; then
  LISTEN=(-i 127.0.0.1 -p 10809)
  expect_refusal "repl-target nbd://127.0.0.1/ is this server's own socket" \
    "$st" "repl-target=nbd://127.0.0.1/"
else
  fail "port 10809 (NBD's) is in use on this machine: cannot test a target without a port"
fi
LISTEN=(-U "$T/src.sock")
expect_refusal "repl-target= is required" "$st"
expect_refusal "repl-state-dir= is required" "repl-target=nbd://localhost:1/"
expect_refusal "repl-target=http://x: not an NBD URI" "$st" \
  "repl-target=http://x"
expect_refusal "repl-mode=fast" "$st" "repl-target=nbd://localhost:1/" \
  repl-mode=fast
expect_refusal "repl-rpo=15" "$st" "repl-target=nbd://localhost:1/" repl-rpo=15
expect_refusal "repl-journal-size=1K" "$st" "repl-target=nbd://localhost:1/" \
  repl-journal-size=1K
# A journal the state file system has no room for (a 4M tmpfs in a
# mount namespace of its own): refused at once by the preallocation,
# naming the file, and nothing left behind.
mkdir "$T/tiny"
out=$(timeout 60 unshare -m sh -c '
  mount -t tmpfs -o size=4M,mode=0700 tmpfs "$1" || exit 99
  rm -f "$2"
  nbdkit -f -U "$2" --filter="$3" file "$4" repl-state-dir="$1/state" \
    repl-target=nbd://localhost:1/ repl-journal-size=8M
  echo "exit $?"
  ls -A "$1/state"' sh "$T/tiny" "$T/src.sock" "$FILTER" "$T/src.img" 2>&1) || true
grep -qF "$T/tiny/state/journal.new: preallocating 8388608 bytes: No space left on device" \
  <<<"$out" || fail "no clear error for a journal that does not fit: $out"
grep -qx "exit 1" <<<"$out" || fail "nbdkit did not exit 1 for a journal that does not fit: $out"
grep -q "^journal" <<<"$out" && fail "a refused journal was left behind: $out"
echo "refused (no room for the journal)"

key=$(openssl rand -hex 32)
echo "vaio:$key" > "$T/psk"
chmod 644 "$T/psk"
out=$(timeout 60 nbdkit -f -U "$T/src.sock" --filter="$FILTER" file "$T/src.img" \
        "$st" repl-target=nbds://vaio@localhost:1/ repl-tls-psk-file="$T/psk" \
        2>&1) && fail "started with a world-readable PSK file"
grep -qF "repl-tls-psk-file=$T/psk" <<<"$out" || fail "unclear PSK error: $out"
grep -qF "$key" <<<"$out" && fail "the key appeared in an error message"
echo "refused (world-readable PSK file)"

[ "$(sha256sum < "$T/src.img")" = "$before" ] || fail "the source was modified"
echo "ok: bad configurations refused, source untouched"
