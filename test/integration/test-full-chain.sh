#!/bin/bash
# vaio-nbd's own four filters in vaioctl chains:
#  vm1 "front": encryption first (default) -> replication (async) ->
#      caching (write-back) -> sioc.  The replica receives ciphertext and
#      ends byte-identical to the LUKS image.
#  vm2 "back": allow-cleartext-filters -> replication (sync) -> caching
#      (write-through) -> sioc -> encryption last.  Replication sees
#      cleartext: the replica is the plaintext disk.
# Stats of every filter are readable by `vaioctl status` while I/O runs;
# after `vaioctl down` both replicas match, and the images open in QEMU.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
CRYPT=$B/encryption/vaio-crypt
# No trailing newline: QEMU's secret file takes the bytes as they are.
( umask 077; printf 'test passphrase %s' "$$" > "$T/pw" )
"$CRYPT" format "$T/vm1.img" --size 32M --passphrase-file "$T/pw" --iter-time 50 >/dev/null
"$CRYPT" format "$T/vm2.img" --size 32M --passphrase-file "$T/pw" --iter-time 50 >/dev/null
img_size=$(stat -c %s "$T/vm1.img")
payload=$((32 * 1024 * 1024))
truncate -s "$img_size" "$T/rep1.img"
truncate -s "$payload" "$T/rep2.img"
pids=()
for r in rep1 rep2; do
  nbdkit -f -U "$T/$r.sock" file "$T/$r.img" 2>>"$T/replicas.log" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do [ -S "$T/rep1.sock" ] && [ -S "$T/rep2.sock" ] && break; sleep 0.05; done

cat > "$T/c.yaml" <<YAML
cluster: full
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
    sioc: { sioc-datastore: state/ds.seg }
  - name: back
    allow-cleartext-filters: true
    encryption: { crypt-passphrase-file: pw }
    replication: { repl-target: "nbd+unix:///?socket=$T/rep2.sock", repl-mode: sync }
    caching: { cache-size: 8M, cache-mode: write-through }
    sioc: { sioc-datastore: state/ds.seg, sioc-shares: high }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: front } ]
  - name: vm2
    host: host1
    disks: [ { name: disk0, image: vm2.img, policy: back } ]
YAML
TEST_CONFIGS+=("$T/c.yaml")
"$VAIOCTL" up "$T/c.yaml" >/dev/null

"$VAIOCTL" status "$T/c.yaml" --json > "$T/s0.json"
[ "$(jq -r '.vms[0].disks[0].chain | map(.class) | join(",")' "$T/s0.json")" = \
  "encryption,replication,caching,sioc" ] || fail "vm1 chain order"
[ "$(jq -r '.vms[1].disks[0].chain | map(.class) | join(",")' "$T/s0.json")" = \
  "replication,caching,sioc,encryption" ] || fail "vm2 chain order (cleartext filters)"
pass "class order: encryption first by default, last with allow-cleartext-filters"

# Each filter publishes its stats file once it is ready (replication
# after its start-up recovery): wait for all of them.
for _ in $(seq 200); do
  "$VAIOCTL" status "$T/c.yaml" --json |
    jq -e '[.vms[].disks[].chain[] | .stats] | all(. != null)' >/dev/null && break
  sleep 0.05
done

# Random data through each chain while status is sampled.
head -c 8M /dev/urandom > "$T/data"
copies=()
for vm in vm1 vm2; do
  nbdcopy "$T/data" "$(sock_uri "$vm")" &
  copies+=($!)
done
sleep 0.3
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s1.json"
for p in "${copies[@]}"; do wait "$p" || fail "nbdcopy into a chain failed"; done
for vm in 0 1; do
  jq -e ".vms[$vm].disks[0].chain | all(.stats != null and .stats.error == null)" "$T/s1.json" >/dev/null ||
    fail "vm$((vm + 1)): a filter's stats unreadable while I/O ran: $(jq -c ".vms[$vm].disks[0].chain" "$T/s1.json")"
done
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s2.json"
for vm in 0 1; do
  jq -e ".vms[$vm].disks[0].chain | all(.stats.ops.write.ops + .stats.ops.read.ops > 0)" "$T/s2.json" >/dev/null ||
    fail "vm$((vm + 1)): a filter counted no I/O: $(jq -c ".vms[$vm].disks[0].chain" "$T/s2.json")"
done
pass "every filter's stats readable while I/O runs, and counting it"

for vm in vm1 vm2; do
  nbdcopy "$(sock_uri "$vm")" "$T/back-$vm"
  cmp <(head -c 8M "$T/back-$vm") "$T/data" || fail "$vm: data read back differs"
done
pass "8 MiB of random data reads back through both chains"

"$VAIOCTL" down "$T/c.yaml" >/dev/null
# The payload starts after the LUKS header; no 4 KiB block of what the
# guest wrote may appear in it.
off=$(( img_size - payload ))
for blk in 0 1 100 2047; do
  cmp -s <(tail -c +$((off + blk * 4096 + 1)) "$T/vm1.img" | head -c 4096) \
    <(tail -c +$((blk * 4096 + 1)) "$T/data" | head -c 4096) && fail "plaintext block $blk in vm1.img"
done
cmp "$T/vm1.img" "$T/rep1.img" || fail "vm1 replica (async, ciphertext) differs from the image"
pass "after down, vm1's image holds ciphertext and its replica is byte-identical to it"
cmp <(head -c 8M "$T/rep2.img") "$T/data" || fail "vm2 replica (sync, cleartext) lacks the data"
pass "vm2's replica (sync mode, replication above encryption) holds the cleartext disk"

qemu-img convert --object secret,id=s0,file="$T/pw" --image-opts \
  "driver=luks,key-secret=s0,file.filename=$T/vm2.img" -O raw "$T/vm2-qemu.raw"
cmp <(head -c 8M "$T/vm2-qemu.raw") "$T/data" || fail "QEMU does not read vm2's image as written"
pass "QEMU's LUKS driver reads vm2's image as the guest wrote it"
