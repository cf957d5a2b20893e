# lib.sh: shared setup for vaioctl integration tests.  Sourced.
#   $T        a private scratch directory, removed at exit
#   $VAIOCTL  the vaioctl under test
#   $MAN      directory of the build's generated manifests
# The trap brings down whatever the test's config started.
set -euo pipefail
: "${VAIO_BUILD:?run through meson test}"
: "${VAIO_SRC:?run through meson test}"
VAIOCTL=$VAIO_BUILD/chain/vaioctl
MAN=$VAIO_BUILD/configs
T=$(mktemp -d /tmp/vaio-test.XXXXXX)
TEST_CONFIGS=()

cleanup () {
  for c in "${TEST_CONFIGS[@]}"; do
    "$VAIOCTL" down "$c" --timeout 5 >/dev/null 2>&1 || true
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail () { echo "FAIL: $*" >&2; exit 1; }
pass () { echo "ok: $*"; }

# expect_fail "what" "expected message substring" cmd...
expect_fail () {
  local what=$1 want=$2 out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "$what: command succeeded: $out"
  grep -qF -- "$want" <<<"$out" || fail "$what: expected '$want' in: $out"
  pass "$what refused: $(grep -F -- "$want" <<<"$out" | head -1)"
}

. "$VAIO_SRC/test/integration/two-vm-config.sh"

# two_vm_config FILE: two_vm_yaml, brought down at exit.
two_vm_config () {
  two_vm_yaml "$1"
  TEST_CONFIGS+=("$1")
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive () {
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

sock_uri () { echo "nbd+unix:///?socket=$T/state/host1/vms/$1/disk0.sock"; }
