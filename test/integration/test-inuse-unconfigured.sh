#!/bin/bash
# A VM removed from the YAML whose nbdkit still runs keeps using its
# filters: uninstall, upgrade and maintenance mode must see it, though
# the config no longer names it.
. "$(dirname "$0")/lib.sh"
truncate -s 16M "$T/vm1.img" "$T/vm2.img"
# config FILE WITH_VM2
config () {
  cat > "$1" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
policies:
  - name: cached
    caching: {}
  - name: limited
    sioc: { rate: 10G }
vms:
  - name: vm1
    host: host1
    disks:
      - { name: disk0, image: vm1.img, policy: cached }
YAML
  if [ "$2" = yes ]; then
    cat >> "$1" <<YAML
  - name: vm2
    host: host1
    disks:
      - { name: disk0, image: vm2.img, policy: limited }
YAML
  fi
}
config "$T/full.yaml" yes
config "$T/c.yaml" no
TEST_CONFIGS+=("$T/full.yaml")

"$VAIOCTL" filter install "$MAN/nbdkit-cache.yaml" --host host1 -c "$T/full.yaml" >/dev/null
"$VAIOCTL" filter install "$MAN/nbdkit-rate.yaml" --host host1 -c "$T/full.yaml" >/dev/null
"$VAIOCTL" up "$T/full.yaml" >/dev/null
"$VAIOCTL" down "$T/full.yaml" --vm vm1 >/dev/null
pid=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")
alive "$pid" || fail "vm2 does not run"

# c.yaml no longer names vm2, whose nbdkit runs with nbdkit-rate.
expect_fail "maintenance with an unconfigured disk running" \
  "host 'host1': refusing maintenance mode: disk vm2/disk0 (no longer in the config) is running" \
  "$VAIOCTL" host maintenance host1 on -c "$T/c.yaml"
expect_fail "maintenance --stop-disks with an unconfigured disk running" \
  "disk vm2/disk0 (no longer in the config) is still running" \
  "$VAIOCTL" host maintenance host1 on --stop-disks -c "$T/c.yaml"
[ ! -e "$T/state/host1/maintenance" ] || fail "host put in maintenance"
expect_fail "uninstall of the removed VM's filter" \
  "host 'host1': cannot uninstall filter 'nbdkit-rate': in use by running disk vm2/disk0 (no longer in the config)" \
  "$VAIOCTL" filter uninstall nbdkit-rate --host host1 -c "$T/c.yaml"
expect_fail "upgrade of the removed VM's filter" \
  "cannot upgrade filter 'nbdkit-rate': in use by running disk vm2/disk0 (no longer in the config)" \
  "$VAIOCTL" filter install "$MAN/nbdkit-rate.yaml" --host host1 -c "$T/c.yaml"
[ -e "$T/state/host1/installed/nbdkit-rate.yaml" ] || fail "nbdkit-rate was uninstalled"
alive "$pid" || fail "vm2 was stopped"
# Once apply has stopped vm2 (and started vm1, which uses the cache
# filter only), nothing uses nbdkit-rate.
out=$("$VAIOCTL" apply "$T/c.yaml" 2>&1) || fail "apply: $out"
grep -q "vm2/disk0: stopped" <<<"$out" || fail "apply did not stop vm2: $out"
out=$("$VAIOCTL" filter uninstall nbdkit-rate --host host1 -c "$T/c.yaml" 2>&1) ||
  fail "uninstall after vm2 stopped: $out"
grep -q uninstalled <<<"$out" || fail "uninstall after vm2 stopped: $out"
pass "nbdkit-rate uninstalled once the removed VM stopped"
