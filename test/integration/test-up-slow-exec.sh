#!/bin/bash
# `up` waits for nbdkit's exec however long it takes (it used to give up
# after ~100 ms if the child was not nbdkit yet, and leave it to become a
# stray nbdkit serving with no record), and when it does give up, kills
# the process it started, whatever stage it is at.  strace delays the
# exec of nbdkit (each process's execve: vaioctl's own and nbdkit's).
. "$(dirname "$0")/lib.sh"
if ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: strace cannot trace here"
  exit 77
fi
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

# strace_up DELAY_US ARGS...: vaioctl up under strace with every execve
# delayed; strace is killed once vaioctl exited (strace -f would wait for
# the detached nbdkit): its tracees are then let go by the kernel.
strace_up () {
  local delay=$1 st vpid=
  shift
  rm -f "$T/strace.log"
  strace -f -o "$T/strace.log" -e trace=execve \
    -e inject=execve:delay_enter="$delay" \
    "$VAIOCTL" up "$T/c.yaml" "$@" > "$T/up.out" 2>&1 &
  st=$!
  for _ in $(seq 300); do
    vpid=$(cut -d' ' -f1 "$T/strace.log" 2>/dev/null | head -1) || true
    [ -n "$vpid" ] && grep -q "^$vpid +++ exited with" "$T/strace.log" && break
    sleep 0.1
  done
  kill -9 "$st" 2>/dev/null || true
  wait "$st" 2>/dev/null || true
  grep -q "execve(\"$nbdkit_path\", \[\"nbdkit\"" "$T/strace.log" ||
    fail "nbdkit was never exec'd: $(cat "$T/strace.log")"
  UP_RC=$(sed -nE "s/^$vpid \+\+\+ exited with ([0-9]+) \+\+\+/\1/p" "$T/strace.log")
}

# nbdkit's exec held 0.4 s: up waits for it and serves.
strace_up 400000
[ "$UP_RC" = 0 ] || fail "up failed when nbdkit's exec took 0.4 s: $(cat "$T/up.out")"
grep -q "execve(\"$nbdkit_path\", \[\"nbdkit\".* = 0 (DELAYED)" "$T/strace.log" ||
  fail "nbdkit's exec was not delayed: $(grep nbdkit "$T/strace.log" | head -3)"
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
strace_up 2500000 --timeout 1
[ "$UP_RC" = 1 ] || fail "up exited '$UP_RC' with nbdkit not exec'd by the deadline: $(cat "$T/up.out")"
grep -Eq "^vm1/disk0: failed: nbdkit \(pid [0-9]+\) does not serve: nbdkit was not even exec'd within 1000 ms" "$T/up.out" ||
  fail "up: $(cat "$T/up.out")"
pid=$(sed -nE 's/.*nbdkit \(pid ([0-9]+)\) does not serve.*/\1/p' "$T/up.out")
sleep 3 # past the delayed exec: a survivor would be serving by now
alive "$pid" && fail "the process up gave up on (pid $pid) still runs"
for f in /proc/[0-9]*/cmdline; do
  tr '\0' ' ' < "$f" 2>/dev/null | grep -q "^nbdkit .*--unix=$T/" && fail "stray nbdkit: $f"
done
[ ! -e "$T/state/host1/vms/vm1/disk0.sock" ] && [ ! -e "$d/nbdkit.pid" ] ||
  fail "a socket or pidfile of a stray nbdkit exists"
pass "up gave up and killed pid $pid before its exec; no stray nbdkit"
