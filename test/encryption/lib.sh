# Sourced by the vaio-crypt integration tests.
#   FILTER, CLI        the filter .so and the vaio-crypt CLI under test
#   T                  a private temp dir, removed on exit
#   fail MSG           fail the test
#   serve IMG ARGS.. -- CMD   nbdkit on a private socket running CMD "$uri"
#                      (bounded by a timeout; server output in $T/nbdkit.log)
#   qemu_luks_to_raw IMG PWFILE OUT    decrypt with QEMU
#   qemu_luks_create IMG PWFILE SIZE [OPTS]  (retries QEMU's CPU-usage flake)
set -euo pipefail
: "${VAIO_BUILD:?VAIO_BUILD not set (run through meson test)}"
# nbdsh and our python snippets need the distribution's python3 (with
# python3-libnbd), not one a version manager put first in PATH.
export PATH=/usr/bin:/bin:$PATH
FILTER=$VAIO_BUILD/nbdkit-filters/encryption/nbdkit-vaio-crypt-filter.so
CLI=$VAIO_BUILD/nbdkit-filters/encryption/vaio-crypt
T=$(mktemp -d /tmp/vaio-crypt-test.XXXXXX)
cleanup () {
  # Servers started by serve() die with their --run command; this catches
  # anything left if the script is interrupted.
  if [ -f "$T/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$T/pids"
  fi
  rm -rf "$T"
}
trap cleanup EXIT

fail () { echo "FAIL: $*" >&2; exit 1; }

serve () {
  local img=$1; shift
  local args=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  timeout 60 nbdkit -U - --filter="$FILTER" file "$img" "${args[@]}" \
    --run "$*" 2>"$T/nbdkit.log" &
  local pid=$!
  echo "$pid" >> "$T/pids"
  local rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "serve: exit $rc; nbdkit and client stderr:" >&2
    cat "$T/nbdkit.log" >&2
  fi
  return "$rc"
}

qemu_luks_to_raw () {
  qemu-img convert --object "secret,id=s0,file=$2" \
    --image-opts "driver=luks,key-secret=s0,file.filename=$1" -O raw "$3"
}

qemu_luks_create () {
  local img=$1 pw=$2 size=$3 opts=${4:-}
  for _ in 1 2 3; do
    if qemu-img create -q -f luks --object "secret,id=s0,file=$pw" \
         -o "key-secret=s0,iter-time=10${opts:+,$opts}" "$img" "$size"; then
      return 0
    fi
    sleep 1   # "Unable to get accurate CPU usage": retry
  done
  fail "qemu-img create -f luks failed"
}
