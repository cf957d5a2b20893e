#!/bin/bash
# Re-installing a filter under the same name is an upgrade, refused while
# a running disk uses it, even when the new package declares another
# class: the in-use check goes by the filter's name and its installed
# class, not only by the class the new manifest names.
. "$(dirname "$0")/lib.sh"
truncate -s 16M "$T/vm1.img"
cat > "$T/c.yaml" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
policies:
  - name: cached
    caching: {}
vms:
  - name: vm1
    host: host1
    disks:
      - name: disk0
        image: vm1.img
        policy: cached
YAML
TEST_CONFIGS+=("$T/c.yaml")
"$VAIOCTL" filter install "$MAN/nbdkit-cache.yaml" --host host1 -c "$T/c.yaml" >/dev/null
"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
installed=$T/state/host1/installed/nbdkit-cache.yaml
cp "$installed" "$T/before.yaml"

# The same name, now a sioc-class package (nbdkit's rate filter).
sed 's/^name: .*/name: nbdkit-cache/' "$MAN/nbdkit-rate.yaml" > "$T/renamed.yaml"
grep -q "^class: sioc" "$T/renamed.yaml" || fail "renamed manifest"
expect_fail "re-install under another class while in use" \
  "host 'host1': cannot upgrade filter 'nbdkit-cache': in use by running disk vm1/disk0" \
  "$VAIOCTL" filter install "$T/renamed.yaml" --host host1 -c "$T/c.yaml"
cmp -s "$installed" "$T/before.yaml" || fail "the installed copy was replaced"
grep -q "^class: caching" "$installed" || fail "installed class changed"
alive "$pid" || fail "the running disk died"

# Uninstall goes by name too; in maintenance mode both are allowed.
expect_fail "uninstall while in use" "in use by running disk vm1/disk0" \
  "$VAIOCTL" filter uninstall nbdkit-cache --host host1 -c "$T/c.yaml"
"$VAIOCTL" host maintenance host1 on --stop-disks -c "$T/c.yaml" >/dev/null
"$VAIOCTL" filter install "$T/renamed.yaml" --host host1 -c "$T/c.yaml" | grep -q "^host host1: installed $T/renamed.yaml$" ||
  fail "install in maintenance mode"
grep -q "^class: sioc" "$installed" || fail "the re-install did not take in maintenance mode"
pass "in maintenance mode the re-install under another class goes through"
