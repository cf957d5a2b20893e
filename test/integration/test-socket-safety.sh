#!/bin/bash
# A disk's socket path is removed as a stale socket and bound by nbdkit:
# it must never name an image or any other file, nor sit among another
# VM's files; down leaves whatever is not a socket where it is; up makes
# a missing socket directory owner-only, and the socket itself is.
. "$(dirname "$0")/lib.sh"

# yaml FILE SOCKET_OF_VM1 SOCKET_OF_VM2 (empty: the default socket)
yaml () {
  truncate -s 16M "$T/vm1.img" "$T/vm2.img"
  cat > "$1" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
    filters: [$MAN/nbdkit-cache.yaml]
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
${2:+        socket: $2}
  - name: vm2
    host: host1
    disks:
      - name: disk0
        image: vm2.img
        policy: p
${3:+        socket: $3}
YAML
  TEST_CONFIGS+=("$1")
}

# vm2's socket is vm1's image.
yaml "$T/img.yaml" "" vm1.img
expect_fail "socket naming another disk's image" \
  "img.yaml:23:17: socket '$T/vm1.img' of disk 'disk0' of vm 'vm2' is the image of disk 'disk0' of vm 'vm1' (line 13)" \
  "$VAIOCTL" validate "$T/img.yaml"
expect_fail "socket naming an existing file" \
  "img.yaml:23:17: socket '$T/vm1.img' of disk 'disk0' of vm 'vm2' exists and is not a socket" \
  "$VAIOCTL" up "$T/img.yaml"

# down (which does not validate) leaves a file named as a socket intact,
# though no nbdkit ever ran for the disk.
echo precious > "$T/precious"
yaml "$T/file.yaml" "" precious
out=$("$VAIOCTL" down "$T/file.yaml" 2>&1) || true
[ "$(cat "$T/precious")" = precious ] || fail "down removed the file the socket names"
grep -qF "vm2/disk0: $T/precious is not a socket: left in place" <<<"$out" ||
  fail "down did not say why it left the file: $out"
pass "down leaves a regular file named as a socket in place"
# vm2's socket is vm1's image: down leaves the image too.
before=$(sha256sum < "$T/vm1.img")
"$VAIOCTL" down "$T/img.yaml" >/dev/null 2>&1 || true
[ -f "$T/vm1.img" ] && [ "$(sha256sum < "$T/vm1.img")" = "$before" ] ||
  fail "down removed vm1's image"
pass "down leaves an image named as a socket in place"

# Another VM's directory, a disk's state dir, or one directory for two
# VMs' sockets: refused.
yaml "$T/other.yaml" "" state/host1/vms/vm1/x.sock
expect_fail "socket in another VM's directory" \
  "socket '$T/state/host1/vms/vm1/x.sock' of disk 'disk0' of vm 'vm2' is inside the directory of vm 'vm1'" \
  "$VAIOCTL" validate "$T/other.yaml"
yaml "$T/statedir.yaml" "" state/host1/vms/vm2/disk0/x.sock
expect_fail "socket in a disk's state directory" \
  "is inside the state directory '$T/state/host1/vms/vm2/disk0' of disk 'disk0' of vm 'vm2'" \
  "$VAIOCTL" validate "$T/statedir.yaml"
yaml "$T/shared.yaml" socks/a.sock socks/b.sock
expect_fail "two VMs' sockets in one directory" \
  "socket '$T/socks/b.sock' of disk 'disk0' of vm 'vm2' is in directory '$T/socks' with the socket of disk 'disk0' of vm 'vm1' (line 13)" \
  "$VAIOCTL" validate "$T/shared.yaml"

# A socket outside the state dir, in a directory that does not exist:
# up makes it 0700, and nbdkit (umask 077) makes the socket owner-only.
yaml "$T/own.yaml" socks/vm1/disk0.sock socks/vm2/disk0.sock
"$VAIOCTL" up "$T/own.yaml" >/dev/null
for vm in vm1 vm2; do
  [ "$(stat -c %a "$T/socks/$vm")" = 700 ] || fail "$vm socket dir mode $(stat -c %a "$T/socks/$vm")"
  [ -S "$T/socks/$vm/disk0.sock" ] || fail "$vm: no socket"
  [ $(( 0$(stat -c %a "$T/socks/$vm/disk0.sock") & 077 )) -eq 0 ] ||
    fail "$vm socket mode $(stat -c %a "$T/socks/$vm/disk0.sock")"
  nbdsh -u "nbd+unix:///?socket=$T/socks/$vm/disk0.sock" -c 'assert h.get_size() == 16 << 20'
done
"$VAIOCTL" plan "$T/own.yaml" | grep -qF "$T/socks/vm1 " || fail "plan does not mkdir the socket's directory"
"$VAIOCTL" down "$T/own.yaml" >/dev/null
[ ! -e "$T/socks/vm1/disk0.sock" ] || fail "down left the socket"
pass "explicit socket directories made 0700, sockets owner-only, served, removed by down"

# apply stops a VM removed from the config over the socket it was
# started on (its running record), not the default one: flushed, and the
# explicit socket removed.
"$VAIOCTL" up "$T/own.yaml" >/dev/null
pid2=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")
awk '/^  - name: vm2/ { skip = 1 } !skip' "$T/own.yaml" > "$T/own1.yaml"
TEST_CONFIGS+=("$T/own1.yaml")
out=$("$VAIOCTL" apply "$T/own1.yaml")
grep -qF "vm2/disk0: stopped (no longer in the config; pid $pid2), flushed" <<<"$out" ||
  fail "vm2 not stopped through its own socket: $out"
[ ! -e "$T/socks/vm2/disk0.sock" ] || fail "apply left vm2's explicit socket"
[ -S "$T/socks/vm1/disk0.sock" ] || fail "apply touched vm1's socket"
"$VAIOCTL" down "$T/own1.yaml" >/dev/null
pass "apply stops a removed disk through its explicit socket, flushed"
