#!/bin/bash
# vaioctl apply on a host in maintenance mode starts no chain, as `up`
# does not: neither a disk that is not running nor a swap's new chain.
# The refusal comes before anything changes (the running disk keeps its
# pid).  Out of maintenance, the same apply goes through.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img"
config () { # FILE CACHE-SIZE
  cat > "$1" <<YAML
cluster: maint
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: $2, cache-mode: write-through }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/c1.yaml" 8M
config "$T/c2.yaml" 16M
TEST_CONFIGS+=("$T/c1.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid

# A disk not running: apply would start it.
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
"$VAIOCTL" host maintenance host1 on --stop-disks -c "$T/c1.yaml" >/dev/null
[ -e "$pidf" ] && fail "maintenance --stop-disks left the disk running"
expect_fail "apply starting a disk in maintenance" \
  "vaioctl: vm1/disk0: host 'host1' is in maintenance mode; not starting" \
  "$VAIOCTL" apply "$T/c1.yaml"
[ -e "$pidf" ] && fail "the refused apply started the disk"
out=$("$VAIOCTL" apply "$T/c1.yaml" 2>&1 || true)
grep -q "apply refused: nothing was changed" <<<"$out" || fail "no refusal summary: $out"

# A running disk whose chain changes, on a host put in maintenance
# (the marker file: entering through the CLI stops the disks first).
"$VAIOCTL" host maintenance host1 off -c "$T/c1.yaml" >/dev/null
out=$("$VAIOCTL" apply "$T/c1.yaml" 2>&1) || fail "apply out of maintenance: $out"
grep -q "vm1/disk0: started" <<<"$out" || fail "apply did not start the disk: $out"
pid=$(cat "$pidf")
touch "$T/state/host1/maintenance"
expect_fail "apply swapping a disk in maintenance" \
  "vaioctl: vm1/disk0: host 'host1' is in maintenance mode; not starting its new chain (swap)" \
  "$VAIOCTL" apply "$T/c2.yaml"
[ "$(cat "$pidf")" = "$pid" ] || fail "the refused swap replaced the chain"
rm "$T/state/host1/maintenance"
out=$("$VAIOCTL" apply "$T/c2.yaml" 2>&1) || fail "apply swap out of maintenance: $out"
grep -q "vm1/disk0: swapped chain (pid $pid -> " <<<"$out" || fail "no swap: $out"
pass "out of maintenance the same applies go through"
