#!/bin/bash
# vaioctl apply --convert-encryption: adding vaio-crypt to a plain disk
# that holds data, and removing it again, converts the image while the
# disk is held.  The guest sees the same bytes through the new chain; the
# image opens in qemu-img as LUKS with the passphrase (real encryption)
# and no longer holds the plaintext; removing gives back a plain image.
# The write-back cache is destaged and emptied, and the replication state
# is moved aside so the replica is fully resynchronised (it ends equal to
# the new image).  Without the flag both are refused before anything
# stops; so are a conversion without room for the new image, one whose
# key cannot be read, and adding vaio-crypt to an empty image without a
# LUKS header.  The new image's space is reserved before the pause.  A
# conversion that fails half-way (its copy killed) leaves the original image byte-identical and the old chain serving; a new
# chain that fails to start after the conversion (its replica is too small
# for the LUKS image) gets the original image back, the old chain serving
# it, and the replica fully resynchronised.  A chain started by the swap
# stops on SIGTERM.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
MiB=$((1024 * 1024))
printf 'pw' > "$T/pw"; chmod 600 "$T/pw"

# A disk with known data: random bytes in two places, holes elsewhere.
head -c $((MiB + 4096)) /dev/urandom > "$T/pattern"
truncate -s 16M "$T/vm1.img"
dd if="$T/pattern" of="$T/vm1.img" bs=4096 seek=768 conv=notrunc status=none
dd if="$T/pattern" of="$T/vm1.img" bs=512 seek=18433 count=300 conv=notrunc status=none
# vm1's replica has room for the LUKS header; vm2's is exactly its disk.
truncate -s 32M "$T/rep.img"
truncate -s 8M "$T/rep2.img"
nbdkit -f -U "$T/rep.sock" file "$T/rep.img" 2>/dev/null &
rep=$!
nbdkit -f -U "$T/rep2.sock" file "$T/rep2.img" 2>/dev/null &
rep2=$!
mnt=$T/small
unmount () {
  for c in "${TEST_CONFIGS[@]}"; do "$VAIOCTL" down "$c" --timeout 5 >/dev/null 2>&1 || true; done
  umount "$mnt" 2>/dev/null || true
}
trap 'kill $rep $rep2 2>/dev/null || true; unmount; cleanup' EXIT
for _ in $(seq 100); do [ -S "$T/rep.sock" ] && [ -S "$T/rep2.sock" ] && break; sleep 0.05; done

config () { # FILE IMAGE POLICY-LINES
  cat > "$1" <<YAML
cluster: convert
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/encryption/vaio-crypt.yaml, $B/caching/vaio-cache.yaml,
               $B/replication/vaio-replication.yaml ]
policies:
  - name: p
    caching: { cache-size: 4M, cache-mode: write-back }
$3
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: $2, policy: p } ]
YAML
}
repl="    replication: { repl-target: \"nbd+unix:///?socket=$T/rep.sock\", repl-journal-size: 8M }"
config "$T/plain.yaml" vm1.img "$repl"
config "$T/enc.yaml" vm1.img "$repl
    encryption: { crypt-passphrase-file: pw }"
TEST_CONFIGS+=("$T/plain.yaml")
disk=$T/state/host1/vms/vm1/disk0
pidf=$disk/nbdkit.pid

# no_plaintext FILE: FILE holds no 4 KiB run of the random pattern.
no_plaintext () {
  /usr/bin/python3 - "$1" "$T/pattern" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
pat = open(sys.argv[2], 'rb').read()
sys.exit(1 if any(pat[i:i + 4096] in data for i in (0, 65536, 1048576)) else 0)
PY
}
# guest_bytes OUT: every byte the guest reads through the disk's chain.
guest_bytes () { rm -f "$1"; nbdcopy "$(sock_uri vm1)" "$1"; }
# replica_matches FILE [REPLICA]: the replica holds FILE's bytes (within
# 30 s).  Replication sits behind encryption and in front of the cache: it
# ships the image's bytes as they are once the cache has destaged.
replica_matches () {
  local n
  n=$(stat -c %s "$1")
  for _ in $(seq 300); do
    cmp -s -n "$n" "$1" "${2:-$T/rep.img}" && return 0
    sleep 0.1
  done
  return 1
}

"$VAIOCTL" up "$T/plain.yaml" >/dev/null
# A write the write-back cache holds: the conversion must see it.
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x6b 12M 256k" >/dev/null
cp --sparse=always "$T/vm1.img" "$T/ref.img"
qemu-io -f raw "$T/ref.img" -c "write -P 0x6b 12M 256k" >/dev/null
guest_bytes "$T/g0.img"
cmp "$T/g0.img" "$T/ref.img" || fail "the reference is not what the guest reads"
no_plaintext "$T/ref.img" && fail "no_plaintext cannot tell: the plain image passes it"
replica_matches "$T/ref.img" || fail "the replica never matched the disk"
pid=$(cat "$pidf")

# Refused before anything stops, without the flag (with the scratch-disk
# override too: vaio-crypt would refuse an image without a LUKS header).
expect_fail "adding encryption without --convert-encryption" \
  "vm1/disk0: refusing to add encryption on a disk that holds data ($T/vm1.img): the image has no LUKS header, and vaio-crypt serves LUKS images only; its data would be read as ciphertext: use --convert-encryption" \
  "$VAIOCTL" apply "$T/enc.yaml"
expect_fail "adding encryption with only --allow-encryption-change" \
  "the image has no LUKS header, and vaio-crypt serves LUKS images only" \
  "$VAIOCTL" apply "$T/enc.yaml" --allow-encryption-change
[ "$(cat "$pidf")" = "$pid" ] || fail "a refused apply restarted the disk"
[ ! -e "$T/vm1.img.converting" ] || fail "a refused apply left a .converting file"

out=$("$VAIOCTL" apply "$T/enc.yaml" --convert-encryption --dry-run 2>&1) || fail "dry-run: $out"
grep -qF "vm1/disk0: convert $T/vm1.img from plain to LUKS1 (vaio-crypt): copy 16777216 bytes (the guest-visible size) through vaio-crypt with crypt-passphrase-file=$T/pw into $T/vm1.img.converting (18874368 bytes)" <<<"$out" ||
  fail "dry-run does not show the conversion and its size: $out"
grep -qF "vm1/disk0: replication ships the image's bytes, which change format: its state ($disk/replication) would be moved aside" <<<"$out" ||
  fail "dry-run does not say the replica is resynchronised: $out"
[ "$(cat "$pidf")" = "$pid" ] && [ ! -e "$T/vm1.img.converting" ] || fail "dry-run changed something"
pass "dry-run: $(grep 'convert ' <<<"$out")"

out=$("$VAIOCTL" apply "$T/enc.yaml" --convert-encryption 2>&1) || fail "conversion failed: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\); I/O held [0-9]+ ms" <<<"$out" || fail "not swapped: $out"
grep -qF "vm1/disk0: converting $T/vm1.img: 100% (16777216 of 16777216 bytes)" <<<"$out" || fail "no progress: $out"
grep -Eq "vm1/disk0: converted $T/vm1.img from plain to LUKS1 \(vaio-crypt\): 16777216 bytes in [0-9]+ ms" <<<"$out" ||
  fail "conversion not reported: $out"
grep -qF "vm1/disk0: encryption's place in the chain changed: the cache ($disk/caching/cache.img) was destaged and starts empty" <<<"$out" ||
  fail "the cache holding plaintext was kept: $out"
grep -qF "vm1/disk0: replication ships the image's bytes, which change format: its state moved aside to $disk/replication.stale-" <<<"$out" ||
  fail "replication state kept: $out"
# The journal moved aside held the guest's plaintext: gone once the
# encrypted chain serves.
grep -Eq "vm1/disk0: removed $disk/replication.stale-[^ ]*: it held the disk's plaintext" <<<"$out" ||
  fail "the plaintext journal was not removed: $out"
ls -d "$disk"/replication.stale-* 2>/dev/null && fail "a replication.stale-* dir with plaintext remains"
pass "$(grep 'swapped chain' <<<"$out")"

guest_bytes "$T/g1.img"
cmp "$T/g1.img" "$T/ref.img" || fail "the guest reads other bytes after adding encryption"
[ "$(stat -c %s "$T/vm1.img")" = $((18 * MiB)) ] || fail "the LUKS image is not payload + header"
rm -f "$T/dec.img"
qemu-img convert -U --object "secret,id=s0,file=$T/pw" \
  --image-opts "driver=luks,key-secret=s0,file.filename=$T/vm1.img" -O raw "$T/dec.img" ||
  fail "qemu-img does not open the converted image as LUKS with the passphrase"
cmp "$T/dec.img" "$T/ref.img" || fail "qemu-img decrypts other bytes"
no_plaintext "$T/vm1.img" || fail "the image still holds the plaintext pattern"
[ ! -e "$T/vm1.img.converting" ] && [ ! -e "$T/vm1.img.pre-convert" ] || fail "conversion files left behind"
pass "the guest reads the same 16 MiB; qemu-img decrypts them from the LUKS image; no plaintext in it"
replica_matches "$T/vm1.img" || fail "the replica was not resynchronised to the encrypted image"
pass "the replica was fully resynchronised: it equals the LUKS image"

# Removing: refused without the flag, and when the key no longer reads.
pid=$(cat "$pidf")
expect_fail "removing encryption without --convert-encryption" \
  "vm1/disk0: refusing to remove encryption on a disk that holds data" \
  "$VAIOCTL" apply "$T/plain.yaml"
mv "$T/pw" "$T/pw.away"
expect_fail "removing encryption with the key file gone" \
  "vm1/disk0: refusing to convert $T/vm1.img (--convert-encryption): crypt-passphrase-file" \
  "$VAIOCTL" apply "$T/plain.yaml" --convert-encryption
mv "$T/pw.away" "$T/pw"
[ "$(cat "$pidf")" = "$pid" ] || fail "a refused removal restarted the disk"

out=$("$VAIOCTL" apply "$T/plain.yaml" --convert-encryption 2>&1) || fail "removal failed: $out"
grep -Eq "vm1/disk0: converted $T/vm1.img from LUKS1 \(vaio-crypt\) to plain: 16777216 bytes in [0-9]+ ms" <<<"$out" ||
  fail "removal not reported: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\); I/O held" <<<"$out" || fail "not swapped: $out"
guest_bytes "$T/g2.img"
cmp "$T/g2.img" "$T/ref.img" || fail "the guest reads other bytes after removing encryption"
cmp "$T/vm1.img" "$T/ref.img" || fail "the image is not the plain disk"
[ "$(head -c 4 "$T/vm1.img" | od -An -c | tr -d ' ')" != LUKS ] || fail "still LUKS"
replica_matches "$T/vm1.img" || fail "the replica was not resynchronised to the plain image"
pass "removed: the image is plain again, byte for byte, and so is the replica"
# A chain started during a swap stops on SIGTERM like any other.
out=$("$VAIOCTL" down "$T/plain.yaml" --timeout 10 2>&1)
grep -q "did not exit" <<<"$out" && fail "the swapped chain ignored SIGTERM: $out"
pass "down stops the swapped chain with SIGTERM: $out"

# --- Failures, on a small filesystem: vm2 -------------------------------
mkdir "$mnt"
mount -t tmpfs -o size=24M tmpfs "$mnt"
truncate -s 8M "$mnt/vm2.img"
dd if="$T/pattern" of="$mnt/vm2.img" bs=4096 seek=100 conv=notrunc status=none
cp "$mnt/vm2.img" "$T/vm2.orig"
mkdir -m 700 "$T/ks"
vm2 () { # FILE ENCRYPTION-LINE
  cat > "$1" <<YAML
cluster: convert2
hosts:
  - name: host2
    state-dir: state/host2
    filters: [ $B/encryption/vaio-crypt.yaml, $B/caching/vaio-cache.yaml,
               $B/replication/vaio-replication.yaml ]
policies:
  - name: p
    caching: { cache-size: 4M, cache-mode: write-back }
    replication: { repl-target: "nbd+unix:///?socket=$T/rep2.sock", repl-journal-size: 8M }
$2
vms:
  - name: vm2
    host: host2
    disks: [ { name: disk0, image: $mnt/vm2.img, policy: p } ]
YAML
}
vm2 "$T/v2plain.yaml" ""
vm2 "$T/v2enc.yaml" "    encryption: { crypt-passphrase-file: pw }"
vm2 "$T/v2ks.yaml" "    encryption: { crypt-keystore: ks, crypt-key-id: nosuch }"
TEST_CONFIGS+=("$T/v2plain.yaml")
pidf2=$T/state/host2/vms/vm2/disk0/nbdkit.pid
"$VAIOCTL" up "$T/v2plain.yaml" >/dev/null
pid=$(cat "$pidf2")

expect_fail "a conversion whose key cannot be read" \
  "vm2/disk0: refusing to convert $mnt/vm2.img (--convert-encryption):" \
  "$VAIOCTL" apply "$T/v2ks.yaml" --convert-encryption
out=$("$VAIOCTL" apply "$T/v2ks.yaml" --convert-encryption 2>&1) || true
grep -qF "key store: $T/ks/nosuch.kek: no key with this id" <<<"$out" ||
  fail "the refusal does not name the key that cannot be read"
fallocate -l 14M "$mnt/filler"
need=$(( (10 * MiB) + (10 * MiB) / 256 ))
expect_fail "a conversion without room for the new image" \
  "vm2/disk0: refusing to convert $mnt/vm2.img (--convert-encryption): its filesystem ($mnt) has" \
  "$VAIOCTL" apply "$T/v2enc.yaml" --convert-encryption
out=$("$VAIOCTL" apply "$T/v2enc.yaml" --convert-encryption 2>&1) && fail "refused once, applied next: $out"
grep -qF "the new image $mnt/vm2.img.converting needs $need (10485760 bytes" <<<"$out" ||
  fail "the refusal does not name the bytes needed: $out"
rm "$mnt/filler"
[ "$(cat "$pidf2")" = "$pid" ] || fail "a refused conversion restarted vm2"
cmp "$mnt/vm2.img" "$T/vm2.orig" && [ ! -e "$mnt/vm2.img.converting" ] || fail "a refused conversion changed files"
pass "refusals before anything stopped left vm2 running (pid $pid), its image unchanged"

# The copy fails while the disk is held (nbdcopy killed): the image is
# untouched and the old chain serves again.  The space the copy needs
# was reserved before the pause, so a full filesystem cannot be what
# fails it.
"$VAIOCTL" apply "$T/v2enc.yaml" --convert-encryption > "$T/fill.out" 2>&1 &
ap=$!
for _ in $(seq 1000); do alive "$pid" || break; sleep 0.01; done
alive "$pid" && fail "apply never stopped the old chain"
[ "$(stat -c %b "$mnt/vm2.img.converting")" -ge $(( $(stat -c %s "$mnt/vm2.img.converting") / 512 )) ] ||
  fail "the new image's blocks were not reserved before the pause"
for _ in $(seq 500); do pkill -9 -P "$ap" -x nbdcopy && break; sleep 0.01; done
rc=0; wait "$ap" || rc=$?
out=$(cat "$T/fill.out")
[ "$rc" -ne 0 ] || fail "apply succeeded though its copy was killed: $out"
grep -qF "vm2/disk0: converting $mnt/vm2.img failed: the copy failed" <<<"$out" || fail "failure not reported: $out"
grep -qF "$mnt/vm2.img.converting removed, the image is untouched" <<<"$out" || fail "no cleanup reported: $out"
grep -qF "vm2/disk0: rolled back to the previous chain" <<<"$out" || fail "not rolled back: $out"
[ ! -e "$mnt/vm2.img.converting" ] || fail ".converting left behind"
cmp "$mnt/vm2.img" "$T/vm2.orig" || fail "the original image changed"
rm -f "$T/g3.img"
nbdcopy "nbd+unix:///?socket=$T/state/host2/vms/vm2/disk0.sock" "$T/g3.img"
cmp "$T/g3.img" "$T/vm2.orig" || fail "the old chain does not serve the original bytes"
[ "$("$VAIOCTL" status "$T/v2plain.yaml" --json | jq -r '.vms[0].disks[0].compliance')" = compliant ] ||
  fail "the old chain is not what runs"
pass "a conversion whose copy failed left the image byte-identical and the old chain serving"
sed 's/^/    /' "$T/fill.out"

# The new chain fails to start after the conversion: its replica (8M) is
# smaller than the LUKS image (10M).  The original image is put back and
# the old chain serves it; replication starts over with a full sync.
replica_matches "$T/vm2.orig" "$T/rep2.img" || fail "vm2's replica never matched its disk"
# Zeroed behind the filter's back: only a full sync puts the data back.
qemu-io -f raw "$T/rep2.img" -c "write -z 0 8M" >/dev/null
out=$("$VAIOCTL" apply "$T/v2enc.yaml" --convert-encryption 2>&1) && fail "the new chain started with a small replica: $out"
grep -Eq "vm2/disk0: converted $mnt/vm2.img from plain to LUKS1 \(vaio-crypt\)" <<<"$out" || fail "not converted: $out"
grep -qF "vm2/disk0: the new chain did not start: $mnt/vm2.img is the original image again; replication starts without state (a full sync of the replica), the failed chain's is in $T/state/host2/vms/vm2/disk0/replication.failed-" <<<"$out" ||
  fail "the original image was not put back: $out"
grep -qF "vm2/disk0: rolled back to the previous chain" <<<"$out" || fail "not rolled back: $out"
cmp "$mnt/vm2.img" "$T/vm2.orig" || fail "the original image changed"
[ ! -e "$mnt/vm2.img.converting" ] && [ ! -e "$mnt/vm2.img.pre-convert" ] || fail "conversion files left behind"
rm -f "$T/g4.img"
nbdcopy "nbd+unix:///?socket=$T/state/host2/vms/vm2/disk0.sock" "$T/g4.img"
cmp "$T/g4.img" "$T/vm2.orig" || fail "the old chain does not serve the original bytes"
replica_matches "$T/vm2.orig" "$T/rep2.img" || fail "the replica was not fully resynchronised"
pass "a new chain that failed after the conversion: original image back, old chain serving, replica resynchronised"

# An empty plain disk: vaio-crypt would refuse it too (no LUKS header), so
# adding it is refused up front, with or without --allow-encryption-change.
"$VAIOCTL" down "$T/v2plain.yaml" >/dev/null
rm "$mnt/vm2.img" && truncate -s 8M "$mnt/vm2.img"
"$VAIOCTL" up "$T/v2plain.yaml" >/dev/null
pid=$(cat "$pidf2")
expect_fail "adding vaio-crypt to an empty plain disk" \
  "vm2/disk0: refusing to add encryption to a plain disk ($mnt/vm2.img): the image has no LUKS header, and vaio-crypt serves LUKS images only; format it with vaio-crypt format, or use --convert-encryption" \
  "$VAIOCTL" apply "$T/v2enc.yaml" --allow-encryption-change
[ "$(cat "$pidf2")" = "$pid" ] || fail "the refused apply restarted vm2"
pass "adding vaio-crypt to an empty image without a LUKS header is refused; vm2 still runs (pid $pid)"
