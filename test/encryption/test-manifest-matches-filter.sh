#!/bin/bash
# The generated manifest names this build's filter (path and sha256) and
# declares exactly the crypt- keys the filter documents in --help, with
# crypt-state-dir as its state-param.
source "$(dirname "$0")/lib.sh"

manifest=$VAIO_BUILD/nbdkit-filters/encryption/vaio-crypt.yaml
[ -f "$manifest" ] || fail "no generated manifest at $manifest"
grep -qx "path: $FILTER" "$manifest" || fail "manifest path is not $FILTER"
sum=$(sha256sum < "$FILTER" | cut -d' ' -f1)
grep -qx "sha256: $sum" "$manifest" || fail "manifest sha256 is not the filter's"
grep -qx "class: encryption" "$manifest" || fail "class"
grep -qx "state-param: crypt-state-dir" "$manifest" || fail "state-param"

nbdkit --filter="$FILTER" file --help 2>&1 | grep -o '^crypt-[a-z-]*' | sort -u > "$T/help"
{ sed -n 's/^  - name: //p' "$manifest"; echo crypt-state-dir; } | sort -u > "$T/manifest"
[ -s "$T/help" ] || fail "filter --help lists no crypt- keys"
diff -u "$T/help" "$T/manifest" || fail "filter --help and the manifest disagree"
echo "ok: manifest matches the filter ($(wc -l < "$T/help") keys)"
