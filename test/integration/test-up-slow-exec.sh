#!/bin/bash
# `up` waits for nbdkit however long it takes to become nbdkit (it used
# to give up after ~100 ms if the child was not nbdkit yet, and leave it
# to become a stray nbdkit serving with no record), and when it does give
# up, kills the process it started, whatever stage it is at.  A wrapper
# named nbdkit first in PATH sleeps before it execs the real one (the
# same process all along, as a slow exec on a loaded host would be).
. "$(dirname "$0")/lib.sh"
truncate -s 16M "$T/vm1.img"
cat > "$T/c.yaml" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
    filters:
      - $MAN/nbdkit-cache.yaml
policies:
  - name: p
    caching: {}
vms:
  - name: vm1
    host: host1
    disks:
      - name: disk0
        image: vm1.img
        policy: p
YAML
TEST_CONFIGS+=("$T/c.yaml")
d=$T/state/host1/vms/vm1/disk0
nbdkit_path=$(command -v nbdkit)

mkdir -p "$T/bin"
# slow_up SECONDS ARGS...: vaioctl up with nbdkit's exec held SECONDS.
slow_up () {
  local delay=$1
  shift
  # The second exec makes the process a plain "sh" until nbdkit's exec,
  # as vaioctl's child is until its exec.
  printf '#!/bin/sh\nexec /bin/sh -c '"'"'sleep %s; exec %s "$@"'"'"' sh "$@"\n' \
    "$delay" "$nbdkit_path" > "$T/bin/nbdkit"
  chmod +x "$T/bin/nbdkit"
  UP_RC=0
  PATH=$T/bin:$PATH "$VAIOCTL" up "$T/c.yaml" "$@" > "$T/up.out" 2>&1 || UP_RC=$?
}

# nbdkit's exec held 0.4 s: up waits for it and serves.
slow_up 0.4
[ "$UP_RC" = 0 ] || fail "up failed when nbdkit's exec took 0.4 s: $(cat "$T/up.out")"
grep -Eq "^vm1/disk0: serving .*\(pid [0-9]+\)$" "$T/up.out" || fail "up: $(cat "$T/up.out")"
pid=$(sed -nE 's/.*\(pid ([0-9]+)\)$/\1/p' "$T/up.out")
[ "$(cat "$d/nbdkit.pid")" = "$pid" ] || fail "pidfile does not name the pid up reported"
grep -q "^argv nbdkit$" "$d/running" || fail "no running record"
nbdsh -u "nbd+unix:///?socket=$T/state/host1/vms/vm1/disk0.sock" -c 'assert h.get_size() == 16 << 20' ||
  fail "the disk does not serve"
pass "a slow exec (0.4 s) is waited for: $(cat "$T/up.out")"
"$VAIOCTL" down "$T/c.yaml" >/dev/null

# Held 2.5 s with --timeout 1: up gives up, and the child it started
# (still before its exec) is killed: no nbdkit appears later.
slow_up 2.5 --timeout 1
[ "$UP_RC" = 1 ] || fail "up exited '$UP_RC' with nbdkit not exec'd by the deadline: $(cat "$T/up.out")"
grep -Eq "^vm1/disk0: failed: nbdkit \(pid [0-9]+\) does not serve: " "$T/up.out" ||
  fail "up: $(cat "$T/up.out")"
pid=$(sed -nE 's/.*nbdkit \(pid ([0-9]+)\) does not serve.*/\1/p' "$T/up.out")
sleep 3 # past the delayed exec: a survivor would be serving by now
alive "$pid" && fail "the process up gave up on (pid $pid) still runs"
for f in /proc/[0-9]*/cmdline; do
  tr '\0' ' ' < "$f" 2>/dev/null | grep -q "^nbdkit .*--unix=$T/" && fail "stray nbdkit: $f"
done
[ ! -e "$T/state/host1/vms/vm1/disk0.sock" ] && [ ! -e "$d/nbdkit.pid" ] ||
  fail "a socket or pidfile of a stray nbdkit exists"
pass "up gave up and killed pid $pid before it became nbdkit; no stray nbdkit"
