# Sourced by the handshake tests after lib.sh: a one-VM cluster whose disk
# is a LUKSv1 image (made by qemu-img) served through vaio-crypt, which
# refuses every client in .open when its passphrase opens no keyslot while
# nbdkit listens on (nbdkit's own luks filter crashes on a wrong one).
#   crypt_config FILE PASSFILE  write the config (brought down at exit)
#   $T/right, $T/wrong         the image's passphrase, and another one
printf right > "$T/right"
printf wrong > "$T/wrong"
chmod 600 "$T/right" "$T/wrong"
for _ in 1 2 3; do
  qemu-img create -q -f luks --object "secret,id=s0,file=$T/right" \
    -o key-secret=s0,iter-time=10 "$T/vm1.img" 16M && break
  sleep 1 # "Unable to get accurate CPU usage": retry
done
[ -s "$T/vm1.img" ] || fail "qemu-img create -f luks failed"

crypt_config () {
  cat > "$1" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
    filters:
      - $VAIO_BUILD/nbdkit-filters/encryption/vaio-crypt.yaml
      - $MAN/nbdkit-cache.yaml
policies:
  - name: sealed
    encryption:
      crypt-passphrase-file: $2
    caching: {}
vms:
  - name: vm1
    host: host1
    disks:
      - name: disk0
        image: vm1.img
        policy: sealed
YAML
  TEST_CONFIGS+=("$1")
}
