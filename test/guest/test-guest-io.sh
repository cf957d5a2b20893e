#!/bin/bash
# A real guest (Debian kernel, busybox /init) writes and read-back-verifies
# 4 KiB blocks for 10 s on two LUKS disks served by `vaioctl up` through
# vaio-nbd's four filters.  Path: virtio-blk -> QEMU's NBD client
# (reconnect-delay) -> nbdkit chain -> file.
#   vda (policy front): vaio-crypt -> vaio-replication (async) ->
#       vaio-cache (write-back) -> vaio-sioc; the replica gets ciphertext.
#   vdb (policy back, allow-cleartext-filters): vaio-replication (sync) ->
#       vaio-cache (write-through) -> vaio-sioc -> vaio-crypt; the replica
#       gets the plaintext.
# The guest must report zero I/O errors and zero mismatches.  Then both
# nbdkits are killed with SIGKILL while vda's cache still holds dirty
# blocks, `vaioctl up` recovers them (cache, journal replay), and:
#   - verify-image reads each disk through its recovered chain;
#   - after `vaioctl down`, verify-image reads each image's plaintext
#     through nbdkit + vaio-crypt, vda's replica the same way (and it is
#     byte-identical to the image), vdb's replica directly;
#   - no guest block header appears in either image (ciphertext only).
# Every block must hold what the guest last wrote (unwritten blocks still
# zero): no acknowledged write lost.
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequence)"
guest_build
B=$VAIO_BUILD/nbdkit-filters

# No trailing newline: the same bytes as QEMU's secret file would take.
( umask 077; printf 'guest passphrase %s' "$$" > "$T/pw" )
# A new LUKS payload decrypts to noise; zero the guest's first MiB of
# plaintext so verify-image can also check that unwritten blocks are zeros.
for img in vm1 vm1-disk1; do
  "$B/encryption/vaio-crypt" format "$T/$img.img" --size 32M \
    --passphrase-file "$T/pw" --iter-time 50 >/dev/null
  # shellcheck disable=SC2016  # $uri is set by nbdkit --run
  nbdkit -U - --filter="$B/encryption/nbdkit-vaio-crypt-filter.so" file "$T/$img.img" \
    crypt-passphrase-file="$T/pw" --run 'qemu-io -f raw "$uri" -c "write -P 0 0 1M"' \
    >/dev/null || fail "zeroing $img.img's plaintext through vaio-crypt"
done
truncate -s "$(stat -c %s "$T/vm1.img")" "$T/rep1.img"   # a copy of the LUKS image
truncate -s 32M "$T/rep2.img"                            # the plaintext disk
for r in rep1 rep2; do
  nbdkit -U "$T/$r.sock" -P "$T/$r.pid" file "$T/$r.img"
  wait_sock "$T/$r.sock" 10
  NBDKIT_PIDS+=("$(cat "$T/$r.pid")")
done

cat > "$T/c.yaml" <<YAML
cluster: guest-io
hosts:
  - name: host1
    state-dir: state/host1
    filters:
      - $B/encryption/vaio-crypt.yaml
      - $B/replication/vaio-replication.yaml
      - $B/caching/vaio-cache.yaml
      - $B/sioc/vaio-sioc.yaml
policies:
  - name: front
    encryption: { crypt-passphrase-file: pw }
    replication: { repl-target: "nbd+unix:///?socket=$T/rep1.sock", repl-mode: async }
    caching: { cache-size: 8M, cache-mode: write-back }
    sioc: { sioc-datastore: state/ds.seg, sioc-limit-iops: 5000 }
  - name: back
    allow-cleartext-filters: true
    encryption: { crypt-passphrase-file: pw }
    replication: { repl-target: "nbd+unix:///?socket=$T/rep2.sock", repl-mode: sync }
    caching: { cache-size: 8M, cache-mode: write-through }
    sioc: { sioc-datastore: state/ds.seg, sioc-shares: high }
vms:
  - name: vm1
    host: host1
    disks:
      - { name: disk0, image: vm1.img, policy: front }
      - { name: disk1, image: vm1-disk1.img, policy: back }
YAML
GUEST_CONFIGS+=("$T/c.yaml")
"$VAIOCTL" up "$T/c.yaml" > "$T/up.out" || fail "vaioctl up: $(cat "$T/up.out")"
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s.json"
for d in 0 1; do
  chain=$(jq -r ".vms[0].disks[$d].chain | map(.filter) | join(\" -> \")" "$T/s.json")
  want=vaio-crypt' -> 'vaio-replication' -> 'vaio-cache' -> 'vaio-sioc
  [ "$d" = 1 ] && want=vaio-replication' -> 'vaio-cache' -> 'vaio-sioc' -> 'vaio-crypt
  [ "$chain" = "$want" ] || fail "disk$d chain is '$chain', want '$want'"
  pass "vm1/disk$d: $chain"
done

guest_start g1 10 64 "$seed" "$(vaio_sock vm1 disk0)" "$(vaio_sock vm1 disk1)"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
pass "guest booted and started writing"
guest_wait g1 120
guest_check g1
[ "$GUEST_WRITES" -ge 10 ] || fail "only $GUEST_WRITES writes in 10 s"

# The crash must hit write-back data only the cache holds.
dirty=$(vaio_gauge "$T/c.yaml" vm1 caching dirty_bytes)
[ "$dirty" != none ] && [ "$dirty" -gt 0 ] ||
  fail "vda's write-back cache holds no dirty data (dirty_bytes=$dirty): the kill would prove nothing"
kill9_wait "$(vaio_pid vm1 disk0)"
kill9_wait "$(vaio_pid vm1 disk1)"
pass "SIGKILLed both chains with $dirty dirty bytes in vda's cache"
"$VAIOCTL" up "$T/c.yaml" > "$T/up2.out" || fail "vaioctl up after the kill: $(cat "$T/up2.out")"
guest_verify "$(vaio_uri vm1 disk0)" g1 vda
guest_verify "$(vaio_uri vm1 disk1)" g1 vdb
"$VAIOCTL" down "$T/c.yaml" > "$T/down.out" || fail "vaioctl down: $(cat "$T/down.out")"

guest_verify_crypt "$T/vm1.img" "$T/pw" g1 vda
guest_verify_crypt "$T/rep1.img" "$T/pw" g1 vda
cmp -s "$T/vm1.img" "$T/rep1.img" || fail "vda's replica differs from its image"
pass "vda's replica is byte-identical to its image"
guest_verify_crypt "$T/vm1-disk1.img" "$T/pw" g1 vdb
guest_verify "$T/rep2.img" g1 vdb
for img in vm1 vm1-disk1; do
  ! grep -aq VAIOBLK "$T/$img.img" || fail "$img.img holds a guest block in cleartext"
done
grep -aq VAIOBLK "$T/rep2.img" || fail "vdb's replica holds no cleartext guest block"
pass "both images hold ciphertext only; vdb's replica (above vaio-crypt) the plaintext"
