#!/bin/bash
# `vaioctl plan` prints a command line that, pasted into a shell, serves
# the same chain as `vaioctl up`.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"
"$VAIOCTL" plan "$T/c.yaml" --vm vm1 > "$T/plan.txt"
line=$(grep -v '^#' "$T/plan.txt")
grep -q -- "--filter=.*nbdkit-cache-filter.so --filter=.*nbdkit-rate-filter.so file file=$T/vm1.img" \
  <<<"$line" || fail "plan line: $line"

# From a fresh state: the plan itself creates what nbdkit needs.
[ ! -e "$T/state" ] || fail "state dir exists before the hand run"
(cd / && eval "$line" 2>"$T/byhand.log") &
for _ in $(seq 100); do
  [ -S "$T/state/host1/vms/vm1/disk0.sock" ] && break
  sleep 0.05
done
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x41 0 64k" -c "read -P 0x41 0 64k" >/dev/null ||
  fail "hand-run plan does not serve"
pid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
for d in vms/vm1 vms/vm1/disk0 vms/vm1/disk0/caching vms/vm1/disk0/sioc; do
  [ "$(stat -c %a "$T/state/host1/$d")" = 700 ] || fail "$d mode $(stat -c %a "$T/state/host1/$d")"
done
tr '\0' '\n' < "/proc/$pid/cmdline" > "$T/byhand.argv"
kill "$pid"; wait || true
cmp <(head -c 65536 "$T/vm1.img") <(head -c 65536 /dev/zero | tr '\0' 'A') || fail "image bytes"
pass "the planned command line, run by hand, serves the chain"

# The hand-run process had exactly the argv `up` runs for the same disk:
# word for word what up records (argv lines of its running record), and
# what /proc shows of up's own process.
rm -f "$T/state/host1/vms/vm1/disk0/nbdkit.pid"
"$VAIOCTL" up "$T/c.yaml" --vm vm1 >/dev/null
uppid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
sed -n 's/^argv //p' "$T/state/host1/vms/vm1/disk0/running" > "$T/up.argv"
[ "$(grep -c -- '^--filter=' "$T/up.argv")" = 3 ] || fail "up's argv: $(cat "$T/up.argv")"
diff "$T/byhand.argv" "$T/up.argv" >&2 || fail "hand-run argv differs from the argv up records"
diff "$T/byhand.argv" <(tr '\0' '\n' < "/proc/$uppid/cmdline") >&2 ||
  fail "hand-run argv differs from up's process"
pass "hand-run argv = up's recorded argv = up's process argv ($(wc -l < "$T/up.argv") words)"
