#!/bin/bash
# A size `vaioctl validate` accepts for a filter parameter is one nbdkit's
# own parser (nbdkit_parse_size, used by nbdkit's filters: cache-max-size,
# rate...) accepts too, and the other way round: each spelling goes
# through both, validate (nbdkit-cache's cache-max-size, type size) and
# `nbdkit memory size=S` (which parses with nbdkit_parse_size).
. "$(dirname "$0")/lib.sh"
truncate -s 1M "$T/vm1.img"
validate_size () {
  cat > "$T/c.yaml" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $MAN/nbdkit-cache.yaml ]
policies:
  - name: p
    caching: { cache-max-size: "$1" }
vms:
  - name: vm1
    host: host1
    disks:
      - name: disk0
        image: vm1.img
        policy: p
YAML
  "$VAIOCTL" validate "$T/c.yaml" >/dev/null 2>&1
}
nbdkit_size () {
  nbdkit -U - memory size="$1" --run 'nbdinfo --size "$uri"' >/dev/null 2>&1
}

n=0
for s in 0 10 64K 64k 1M 1m 2G 2g 1T 1t 1P 1p 1E 7e 1b 4096B 512s 1S \
         8388607T 9223372036854775807 \
         "" 1.5G -1 10x 64KB 64kB 64Ki K 64K\  0x10 1e3 G1 64KiB 64MiB 64mib \
         2GiB 1Z 1bb 512sec 8E 8388608T 9223372036854775808; do
  v=no; k=no
  validate_size "$s" && v=yes
  nbdkit_size "$s" && k=yes
  [ "$v" = "$k" ] || fail "size '$s': vaioctl validate says $v, nbdkit says $k"
  n=$((n + 1))
done
pass "$n spellings: validate and nbdkit agree on each"

# Stricter on purpose: nbdkit's strtoimax also takes a leading blank or
# '+'; a config never needs them, and validate refuses them.
for s in " 64K" "+64K"; do
  nbdkit_size "$s" || fail "nbdkit now refuses '$s': drop it from this list"
  validate_size "$s" && fail "validate accepts '$s'"
done
pass "leading blank and '+' refused by validate (nbdkit's strtoimax takes them)"
