#!/bin/bash
# Data goes through vaio-sioc unchanged (reads, writes, zeroes, flush),
# throttled or not.
source "$(dirname "$0")/lib.sh"

head -c 8M /dev/urandom > "$T/src.img"
truncate -s 4M "$T/src.img"; truncate -s 16M "$T/src.img"  # a zero tail
truncate -s 16M "$T/disk.img"
nbdkit -U - --filter="$SIOC_FILTER" file "$T/disk.img" sioc-limit-iops=2000 \
  sioc-limit-mbps=200 sioc-state-dir="$T/st" \
  --run "nbdcopy --flush $T/src.img \"\$uri\" && nbdcopy \"\$uri\" $T/out.img"
cmp "$T/src.img" "$T/disk.img" || fail "backing differs from what was written"
cmp "$T/src.img" "$T/out.img" || fail "read back differs from what was written"
[ "$("$SIOC_INSPECT" counter "$T/st/stats" write-ops)" -gt 0 ] || fail "writes not counted"
echo "data intact through vaio-sioc"
