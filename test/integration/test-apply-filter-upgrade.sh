#!/bin/bash
# A new build of a filter installed at the same path (its manifest with
# another version and sha256): the nbdkit argv is unchanged, but the
# running chain is not what the config names.  apply swaps it (the pid
# changes, the data stays) and status calls the disk compliant again.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img"
mkdir "$T/lib"
so=$T/lib/nbdkit-vaio-cache-filter.so
cp "$B/caching/nbdkit-vaio-cache-filter.so" "$so"
manifest () { # VERSION
  sed -e "s|^path: .*|path: $so|" -e "s|^sha256: .*|sha256: $(sha256sum "$so" | cut -d' ' -f1)|" \
      -e "s|^version: .*|version: $1|" "$B/caching/vaio-cache.yaml" > "$T/vaio-cache.yaml"
}
manifest 0.1.0
cat > "$T/c.yaml" <<YAML
cluster: upgrade
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $T/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: 8M, cache-mode: write-back }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
TEST_CONFIGS+=("$T/c.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid
"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid=$(cat "$pidf")
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x5a 0 1M" >/dev/null
out=$("$VAIOCTL" apply "$T/c.yaml" 2>&1)
grep -q "vm1/disk0: unchanged (pid $pid)" <<<"$out" || fail "apply with nothing changed: $out"

# Another build at the same path: a byte appended (still a valid ELF),
# put in place by rename as an installer does (the running nbdkit keeps
# the old inode).
cp "$so" "$T/lib/new.so"
printf '\0' >> "$T/lib/new.so"
mv "$T/lib/new.so" "$so"
manifest 0.1.1
st=$({ "$VAIOCTL" status "$T/c.yaml" --json || true; } | jq -r ".vms[0].disks[0].compliance")
[ "$st" = noncompliant ] || fail "status before apply: $st"
out=$("$VAIOCTL" apply "$T/c.yaml" --dry-run 2>&1)
grep -q "vm1/disk0: swap chain: keep caching; upgrade caching vaio-cache 0.1.0 -> 0.1.1 (another build: sha256 differs);" <<<"$out" ||
  fail "dry-run does not name the upgrade: $out"
[ "$(cat "$pidf")" = "$pid" ] || fail "dry-run changed the disk"
out=$("$VAIOCTL" apply "$T/c.yaml" 2>&1) || fail "apply: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\)" <<<"$out" || fail "the new build was not applied: $out"
[ "$(cat "$pidf")" != "$pid" ] || fail "same pid after the swap"
st=$("$VAIOCTL" status "$T/c.yaml" --json | jq -r '.vms[0].disks[0] | "\(.state) \(.compliance)"')
[ "$st" = "running compliant" ] || fail "status after apply: $st"
grep -q "^filter caching vaio-cache 0.1.1 $(sha256sum "$so" | cut -d' ' -f1)$" "$T/state/host1/vms/vm1/disk0/running" ||
  fail "the running record does not name the new build"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x5a 0 1M" >/dev/null || fail "data lost across the upgrade"
out=$("$VAIOCTL" apply "$T/c.yaml" 2>&1)
grep -q "unchanged" <<<"$out" || fail "a second apply changes something: $out"
pass "the new build swapped in ($st), the data kept, a second apply changes nothing"
