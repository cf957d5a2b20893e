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

# start_replica SIZE: $T/vm1.img and $T/rep.img of SIZE, rep.img served
# by nbdkit on $T/rep.sock (pid in $rep; continued if a test stopped it,
# then killed, at exit).  REPL_POLICY is the policy line replicating to it.
start_replica () {
  truncate -s "$1" "$T/vm1.img" "$T/rep.img"
  nbdkit -f -U "$T/rep.sock" file "$T/rep.img" 2>/dev/null &
  rep=$!
  trap 'kill -CONT $rep 2>/dev/null || true; kill $rep 2>/dev/null || true; cleanup' EXIT
  for _ in $(seq 100); do [ -S "$T/rep.sock" ] && break; sleep 0.05; done
  REPL_POLICY="    replication: { repl-target: \"nbd+unix:///?socket=$T/rep.sock\" }"
}

# repl_config FILE CLUSTER POLICY-LINES: host1 with vaio-replication,
# vaio-cache and vaio-sioc installed; policy p: an 8M write-through cache
# plus POLICY-LINES; vm1 with disk0 on vm1.img under p.
repl_config () {
  local B=$VAIO_BUILD/nbdkit-filters
  cat > "$1" <<YAML
cluster: $2
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/replication/vaio-replication.yaml, $B/caching/vaio-cache.yaml, $B/sioc/vaio-sioc.yaml ]
policies:
  - name: p
    caching: { cache-size: 8M, cache-mode: write-through }
$3
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}

# repl_backlog FILE: "CONNECTED UNSHIPPED" from vm1's replication filter
# (first in the chain), UNSHIPPED the journal plus the dirty regions.
repl_backlog () {
  "$VAIOCTL" status "$1" --json |
    jq -r '.vms[0].disks[0].chain[0].stats.counters // empty |
           "\(.replica_connected) \(.journal_used_bytes + .dirty_bytes)"'
}

# wait_repl_in_sync FILE: the replica connected with nothing unshipped.
wait_repl_in_sync () {
  for _ in $(seq 200); do [ "$(repl_backlog "$1")" = "1 0" ] && return; sleep 0.05; done
  fail "replica not connected and in sync: $(repl_backlog "$1")"
}
