# shellcheck shell=bash
# lib.sh: helpers for the QEMU guest tests.  Sourced by bash tests run
# through meson (VAIO_BUILD, VAIO_SRC set).
#
#   $T                 private scratch directory, removed at exit
#   $GUEST_DIR         the built guest (vmlinuz, initramfs.cpio.gz)
#   $VERIFY_IMAGE      test/guest/verify-image
#   GUEST_RECONNECT_DELAY  QEMU's NBD reconnect-delay in seconds (30)
#
#   guest_build                      build (or reuse) the guest image
#   two_vm_config FILE               vaioctl config: host1 with nbdkit cache
#                                    and rate; vm1 (gold: cache writethrough,
#                                    rate), vm2 (silver: cache, default
#                                    writeback); 32 MiB images in $T.  Only
#                                    VAIO_GUEST_FAULT=unsafe-cache uses it
#   vaio_two_vm_config FILE [GOLD [SILVER [sioc]]]
#                                    the same on vaio-cache (cache modes
#                                    GOLD, SILVER: write-through) + vaio-sioc
#                                    (datastore ds1; silver too with "sioc")
#   vaio_segment                     ds1's SIOC segment file
#   $SIOC_INSPECT                    test/sioc/sioc-inspect (segment slots)
#   vaio_sock VM / vaio_pid VM       disk0's socket / nbdkit pid under vaioctl
#   vaio_uri VM [DISK]               NBD URI of that socket (verify-image
#                                    reads through the running chain)
#   vaio_gauge CONFIG VM CLASS NAME  a filter's stats gauge (vaioctl status)
#   guest_start NAME SECONDS BLOCKS SEED SOCK [SOCK...]
#                                    boot a guest in the background, one
#                                    virtio-blk disk per socket (vda, vdb...),
#                                    console to $T/NAME.log
#   guest_wait_for NAME REGEX SECS   wait until the console matches REGEX
#   guest_wait NAME SECS             wait for the guest to power off
#   guest_check NAME                 assert DONE with errors=0, no ERROR line
#   guest_verify IMG NAME [DISK]     verify-image IMG (file or NBD URI)
#                                    against NAME's console
#   guest_verify_crypt IMG PW NAME [DISK]
#                                    the same for a LUKS image, read as
#                                    plaintext through nbdkit + vaio-crypt
# The EXIT trap kills every QEMU and nbdkit started here (and brings down
# vaioctl configs listed in GUEST_CONFIGS), then removes $T.
set -euo pipefail
: "${VAIO_BUILD:?run through meson test}"
: "${VAIO_SRC:?run through meson test}"
GUEST_DIR=$VAIO_BUILD/guest
VERIFY_IMAGE=$VAIO_BUILD/test/guest/verify-image
VAIOCTL=$VAIO_BUILD/chain/vaioctl
SIOC_INSPECT=$VAIO_BUILD/test/sioc/sioc-inspect
MAN=$VAIO_BUILD/configs
GUEST_RECONNECT_DELAY=${GUEST_RECONNECT_DELAY:-30}
T=$(mktemp -d /tmp/vaio-guest.XXXXXX)
declare -A GUEST_PID=()
NBDKIT_PIDS=()
GUEST_CONFIGS=()
T0=$SECONDS

guest_cleanup () {
  local rc=$? name pid c
  for name in "${!GUEST_PID[@]}"; do
    pid=${GUEST_PID[$name]}
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${NBDKIT_PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for c in "${GUEST_CONFIGS[@]}"; do
    "$VAIOCTL" down "$c" --timeout 5 >/dev/null 2>&1 || true
  done
  if [ "$rc" -ne 0 ]; then
    for c in "$T"/*.log; do
      [ -f "$c" ] || continue
      echo "--- last lines of $(basename "$c") ---" >&2
      grep -v 'VAIO-GUEST FINAL' "$c" | tail -n 15 >&2 || true
    done
  fi
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap guest_cleanup EXIT
trap 'exit 143' TERM    # meson's timeout: still kill QEMU and nbdkit
trap 'exit 130' INT

fail () { echo "FAIL: $*" >&2; exit 1; }
pass () { echo "ok: $*  [$((SECONDS - T0)) s]"; }

guest_build () {
  "$VAIO_SRC/scripts/build-guest" "$GUEST_DIR" ||
    fail "scripts/build-guest failed (run scripts/install-deps)"
  [ -x "$VERIFY_IMAGE" ] || fail "$VERIFY_IMAGE not built"
}

. "$VAIO_SRC/test/integration/two-vm-config.sh"

# two_vm_config FILE: two_vm_yaml, brought down at exit.
two_vm_config () {
  two_vm_yaml "$1"
  GUEST_CONFIGS+=("$1")
}

# vaio_two_vm_config FILE [GOLD [SILVER [SIOC]]]: as two_vm_config, on
# vaio-nbd's own filters: gold = vaio-cache (mode GOLD) + vaio-sioc on
# datastore ds1, silver = vaio-cache (mode SILVER), and with SIOC=sioc
# also vaio-sioc on ds1 (both disks then share one SIOC segment,
# $(vaio_segment)); both modes default to write-through.
vaio_two_vm_config () {
  local f=$1 gold=${2:-write-through} silver=${3:-write-through}
  local b=$VAIO_BUILD/nbdkit-filters silver_sioc=""
  [ "${4:-}" != sioc ] || silver_sioc='\n    sioc: { sioc-datastore: ds1 }'
  two_vm_config "$f"
  sed -i -e "s|      - $MAN/nbdkit-cache.yaml|      - $b/caching/vaio-cache.yaml|" \
         -e "s|      - $MAN/nbdkit-rate.yaml|      - $b/sioc/vaio-sioc.yaml|" \
         -e "s|      cache: writethrough|      cache-size: 8M\n      cache-mode: $gold|" \
         -e "s|      rate: 10G|      sioc-datastore: ds1|" \
         -e "s|    caching: {}|    caching: { cache-size: 8M, cache-mode: $silver }$silver_sioc|" "$f"
}
# vaio_segment: the SIOC segment of host1's datastore ds1.
vaio_segment () { echo "$T/state/host1/datastores/ds1.seg"; }

# vaio_sock VM [DISK] / vaio_pid VM [DISK]: under vaioctl (host1's state dir).
vaio_sock () { echo "$T/state/host1/vms/$1/${2:-disk0}.sock"; }
vaio_pid () { cat "$T/state/host1/vms/$1/${2:-disk0}/nbdkit.pid"; }
vaio_uri () { echo "nbd+unix:///?socket=$(vaio_sock "$@")"; }

# vaio_gauge CONFIG VM CLASS NAME: the gauge NAME of VM disk0's CLASS filter.
vaio_gauge () {
  "$VAIOCTL" status "$1" --json |
    jq -r --arg vm "$2" --arg c "$3" --arg n "$4" \
      '.vms[] | select(.name == $vm) | .disks[0].chain[] |
       select(.class == $c) | .stats.counters[$n] // "none"'
}

# kill9_wait PID: SIGKILL and wait until it is gone (not a zombie).
kill9_wait () {
  local st
  kill -9 "$1" 2>/dev/null || true
  for _ in $(seq 100); do
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$st" = Z ] || [ "$st" = X ] && return 0
    sleep 0.05
  done
  fail "pid $1 survived SIGKILL"
}

# wait_sock PATH SECS: until PATH is a socket.
wait_sock () {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  fail "no socket $1 after $2 s"
}

guest_start () {
  local name=$1 secs=$2 blocks=$3 seed=$4 disks="" i=0
  local -a letters=(a b c d e f g h)
  shift 4
  local -a drives=()
  for sock in "$@"; do
    disks+=${disks:+,}vd${letters[i]}
    drives+=(-blockdev "{\"driver\":\"raw\",\"node-name\":\"d$i\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\"$sock\"},\"reconnect-delay\":$GUEST_RECONNECT_DELAY},\"cache\":{\"direct\":true}}"
             -device "virtio-blk-pci,drive=d$i,write-cache=on")
    i=$((i + 1))
  done
  : > "$T/$name.log"
  qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m 256 \
    -no-user-config -nodefaults -display none -monitor none -no-reboot \
    -serial "file:$T/$name.log" \
    -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet vaio.seconds=$secs vaio.blocks=$blocks vaio.seed=$seed vaio.disks=$disks" \
    "${drives[@]}" </dev/null >"$T/$name.qemu.out" 2>&1 &
  GUEST_PID[$name]=$!
}

guest_running () { kill -0 "${GUEST_PID[$1]}" 2>/dev/null; }

guest_wait_for () {
  local name=$1 re=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -Eq "$re" "$T/$name.log" && return 0
    guest_running "$name" || fail "guest $name exited before /$re/"
    sleep 0.1
  done
  fail "guest $name: no /$re/ on the console after $secs s"
}

guest_wait () {
  local name=$1 secs=$2 i rc=0
  for ((i = 0; i < secs * 10; i++)); do
    guest_running "$name" || break
    sleep 0.1
  done
  if guest_running "$name"; then
    kill -9 "${GUEST_PID[$name]}" 2>/dev/null || true
    fail "guest $name still running after $secs s (killed)"
  fi
  wait "${GUEST_PID[$name]}" || rc=$?
  unset "GUEST_PID[$name]"
  [ "$rc" -eq 0 ] || fail "QEMU for $name exited $rc: $(tail -n 5 "$T/$name.qemu.out")"
}

# guest_check NAME: the run completed and reported no error of any kind.
guest_check () {
  local name=$1 log=$T/$1.log summary errs
  summary=$(grep -a 'VAIO-GUEST DONE ' "$log" | tr -d '\r' | tail -n 1 || true)
  [ -n "$summary" ] || fail "guest $name: no DONE line (guest did not finish)"
  errs=$(grep -a 'VAIO-GUEST ERROR' "$log" | tr -d '\r' || true)
  [ -z "$errs" ] || fail "guest $name reported errors:"$'\n'"$(head -n 20 <<<"$errs")"
  grep -aq 'I/O error' "$log" && fail "guest $name: kernel I/O errors on the console"
  # The guest's fsync must reach the server as an NBD flush.
  grep -a 'VAIO-GUEST START' "$log" | grep -vq 'write_cache=write-back' &&
    fail "guest $name: a disk without a volatile write cache (fsync sends no flush)"
  [[ $summary =~ writes=([0-9]+)\ verifies=([0-9]+)\ errors=([0-9]+) ]] ||
    fail "guest $name: bad DONE line: $summary"
  [ "${BASH_REMATCH[3]}" -eq 0 ] || fail "guest $name: $summary"
  [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "guest $name wrote nothing: $summary"
  [ "${BASH_REMATCH[2]}" -ge "${BASH_REMATCH[1]}" ] ||
    fail "guest $name verified less than it wrote: $summary"
  GUEST_WRITES=${BASH_REMATCH[1]}   # for the caller
  export GUEST_WRITES
  pass "guest $name: ${summary#*VAIO-GUEST }"
}

# guest_max_iter NAME DISK: the longest write+verify iteration, in ms.
guest_max_iter () {
  grep -a "VAIO-GUEST DISK $2 " "$T/$1.log" | tr -d '\r' | sed -n 's/.*max_iter_ms=\([0-9]*\).*/\1/p' | tail -n 1
}

guest_verify () {
  local img=$1 name=$2 disk=${3:-vda} out
  out=$("$VERIFY_IMAGE" -d "$disk" "$img" "$T/$name.log" 2>&1) ||
    fail "verify-image $disk of $name on $(basename "$img"):"$'\n'"$out"
  pass "$out"
}

# guest_verify_crypt IMG PW NAME [DISK]: IMG is a LUKS image; verify-image
# reads its plaintext, block by block, through a read-only nbdkit with
# vaio-crypt unlocked by the passphrase file PW.
guest_verify_crypt () {
  local img=$1 pw=$2 name=$3 disk=${4:-vda} out run
  run="$(printf '%q ' "$VERIFY_IMAGE" -d "$disk")\"\$uri\" $(printf '%q' "$T/$name.log")"
  out=$(nbdkit -r -U - --filter="$VAIO_BUILD/nbdkit-filters/encryption/nbdkit-vaio-crypt-filter.so" \
          file "$img" crypt-passphrase-file="$pw" --run "$run" 2>&1) ||
    fail "verify-image $disk of $name through vaio-crypt on $(basename "$img"):"$'\n'"$out"
  pass "$(basename "$img") through vaio-crypt: $out"
}
