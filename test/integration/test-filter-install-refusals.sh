#!/bin/bash
# Filter packages: integrity, one filter per class per host, in-use
# upgrade/uninstall, maintenance mode.
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

# Before any install, the policy's class is not available on the host.
expect_fail "policy using an uninstalled class" "caching" "$VAIOCTL" validate "$T/c.yaml"

# A manifest whose sha256 does not match its .so is not installed.
sed 's/^sha256: .*/sha256: 0000000000000000000000000000000000000000000000000000000000000000/' \
  "$MAN/nbdkit-cache.yaml" > "$T/tampered.yaml"
expect_fail "tampered package" "integrity check failed" \
  "$VAIOCTL" filter install "$T/tampered.yaml" --host host1 -c "$T/c.yaml"
[ ! -e "$T/state/host1/installed/nbdkit-cache.yaml" ] || fail "tampered manifest installed"

"$VAIOCTL" filter install "$MAN/nbdkit-cache.yaml" --host host1 -c "$T/c.yaml"
[ "$(stat -c %a "$T/state/host1/installed/nbdkit-cache.yaml")" = 600 ] || fail "installed copy mode"
"$VAIOCTL" validate "$T/c.yaml" >/dev/null
pass "nbdkit-cache installed; the config now validates"

# A second caching filter (any .so, declared caching) is refused, naming
# the installed one.
sed -e 's/^name: .*/name: other-cache/' -e 's/^vendor: .*/vendor: acme/' \
  "$MAN/nbdkit-cache.yaml" > "$T/other-cache.yaml"
expect_fail "second caching filter" "filter 'nbdkit-cache' $(nbdkit --version | awk '{ print $2; exit }') by nbdkit is already installed" \
  "$VAIOCTL" filter install "$T/other-cache.yaml" --host host1 -c "$T/c.yaml"

"$VAIOCTL" up "$T/c.yaml" >/dev/null
expect_fail "uninstall while in use" "in use by running disk vm1/disk0" \
  "$VAIOCTL" filter uninstall nbdkit-cache --host host1 -c "$T/c.yaml"
expect_fail "upgrade while in use" "in use by running disk vm1/disk0" \
  "$VAIOCTL" filter install "$MAN/nbdkit-cache.yaml" --host host1 -c "$T/c.yaml"
expect_fail "maintenance with running disks" "refusing maintenance mode: disk vm1/disk0 is running" \
  "$VAIOCTL" host maintenance host1 on -c "$T/c.yaml"

"$VAIOCTL" host maintenance host1 on --stop-disks -c "$T/c.yaml" | grep -q "maintenance mode on" ||
  fail "maintenance --stop-disks"
[ -z "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid" 2>/dev/null)" ] || fail "disk still running"
expect_fail "up on a host in maintenance" "is in maintenance mode" "$VAIOCTL" up "$T/c.yaml"
"$VAIOCTL" filter uninstall nbdkit-cache --host host1 -c "$T/c.yaml" | grep -q uninstalled ||
  fail "uninstall in maintenance"
[ ! -e "$T/state/host1/installed/nbdkit-cache.yaml" ] || fail "manifest still installed"
"$VAIOCTL" host maintenance host1 off -c "$T/c.yaml" >/dev/null
"$VAIOCTL" filter list -c "$T/c.yaml" --json | jq -e '.hosts[0].filters == []' >/dev/null ||
  fail "filter list after uninstall"
pass "uninstall allowed in maintenance mode; list is empty afterwards"

# The installed copy carries the .so's absolute path: a relative path in a
# directory whose name needs quoting in YAML survives the copy.
so=$(awk '$1 == "path:" { print $2 }' "$MAN/nbdkit-cache.yaml")
pkg="$T/pkg \"quoted\" \\dir"
mkdir -p "$pkg"
cp "$so" "$pkg/"
sed "s|^path: .*|path: $(basename "$so")|" "$MAN/nbdkit-cache.yaml" > "$pkg/m.yaml"
"$VAIOCTL" filter install "$pkg/m.yaml" --host host1 -c "$T/c.yaml" >/dev/null
"$VAIOCTL" filter list -c "$T/c.yaml" --json |
  jq -e --arg p "$pkg/$(basename "$so")" '.hosts[0].filters[0].path == $p' >/dev/null ||
  fail "installed path: $("$VAIOCTL" filter list -c "$T/c.yaml" --json | jq -c '.hosts[0].filters')"
"$VAIOCTL" filter uninstall nbdkit-cache --host host1 -c "$T/c.yaml" >/dev/null
pass "a relative path under a directory that needs YAML quoting is installed absolute"

# A manifest whose path the copy cannot rewrite (the whole document
# indented: valid YAML, but 'path:' is not at the start of a line) is
# refused instead of installing a copy whose relative path points nowhere.
sed 's/^/  /' "$pkg/m.yaml" > "$pkg/indented.yaml"
expect_fail "unrewritable path" "could not be made absolute in the installed copy" \
  "$VAIOCTL" filter install "$pkg/indented.yaml" --host host1 -c "$T/c.yaml"
[ ! -e "$T/state/host1/installed/nbdkit-cache.yaml" ] || fail "a broken copy was installed"
ls "$T/state/host1/installed/" | grep -q tmp && fail "temporary copy left behind"
pass "a manifest whose path cannot be made absolute is refused, nothing installed"

# A filter the config's filters: list declares is not installed again as
# another package (same name, another .so): the host would hold both and
# fail every validate from then on.  Refused at the config's entry.
cat > "$T/declared.yaml" <<YAML
cluster: test
hosts:
  - name: host2
    state-dir: state/host2
    filters:
      - $MAN/nbdkit-cache.yaml
policies:
  - name: cached
    caching: {}
vms: []
YAML
cp "$so" "$T/other-cache.so"
printf 'x' >> "$T/other-cache.so"
sed -e "s|^path: .*|path: $T/other-cache.so|" \
  -e "s|^sha256: .*|sha256: $(sha256sum "$T/other-cache.so" | cut -d' ' -f1)|" \
  "$MAN/nbdkit-cache.yaml" > "$T/rebuilt-cache.yaml"
expect_fail "install over a config-declared filter" \
  "$T/declared.yaml:6:9: host 'host2': refusing to install 'nbdkit-cache' from $T/rebuilt-cache.yaml: the config declares filter 'nbdkit-cache' here as $MAN/nbdkit-cache.yaml, with another sha256" \
  "$VAIOCTL" filter install "$T/rebuilt-cache.yaml" --host host2 -c "$T/declared.yaml"
[ ! -e "$T/state/host2/installed/nbdkit-cache.yaml" ] || fail "installed over the declared filter"
"$VAIOCTL" validate "$T/declared.yaml" >/dev/null || fail "the host no longer validates"
pass "the host still validates"
