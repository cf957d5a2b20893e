#!/bin/bash
# make install (meson install, staged with DESTDIR) installs a manifest
# for every filter in <prefix>/<datadir>/vaio-nbd/manifests: vaio-nbd's
# four name the .so where it is installed (without DESTDIR) and carry the
# sha256 of the file as installed; nbdkit's own three come as built.
# vaioctl accepts them: a config listing them (with the staged .so paths)
# validates, sha256 checks included.
set -euo pipefail
: "${VAIO_BUILD:?run through meson test}"
T=$(mktemp -d /tmp/vaio-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

opt () { meson introspect "$VAIO_BUILD" --buildoptions | jq -r ".[] | select(.name == \"$1\") | .value"; }
mandir=$(opt prefix)/$(opt datadir)/vaio-nbd/manifests
filterdir=$(meson introspect "$VAIO_BUILD" --installed |
  jq -r '.[] | select(endswith("/nbdkit-vaio-cache-filter.so"))' | xargs dirname)
[ -n "$filterdir" ] || fail "the build installs no vaio-cache filter"

DESTDIR= meson install -C "$VAIO_BUILD" --no-rebuild --quiet --destdir "$T/dest" >/dev/null

for f in vaio-crypt vaio-replication vaio-cache vaio-sioc nbdkit-cache nbdkit-rate nbdkit-luks; do
  m=$T/dest$mandir/$f.yaml
  [ -f "$m" ] || fail "$mandir/$f.yaml not installed"
  [ "$(stat -c %a "$m")" = 644 ] || fail "$f.yaml mode $(stat -c %a "$m")"
  path=$(sed -n 's/^path: *//p' "$m")
  sum=$(sed -n 's/^sha256: *//p' "$m")
  case $f in
    vaio-*)
      [ "$path" = "$filterdir/nbdkit-$f-filter.so" ] || fail "$f.yaml path '$path'"
      so=$T/dest$path ;;
    *) so=$path ;;
  esac
  [ "$(sha256sum "$so" | cut -d' ' -f1)" = "$sum" ] || fail "$f.yaml sha256 is not that of $so"
  sed "s|^path: .*|path: $so|" "$m" > "$T/$f.yaml"
done
echo "ok: 7 manifests in \$DESTDIR$mandir, paths as installed, sha256 of the installed files"

truncate -s 1M "$T/a.img"
cat > "$T/c.yaml" <<YAML
cluster: installed
hosts:
  - name: host1
    state-dir: state
    filters: [ vaio-crypt.yaml, vaio-replication.yaml, vaio-cache.yaml, vaio-sioc.yaml ]
  - name: host2
    state-dir: state2
    filters: [ nbdkit-cache.yaml, nbdkit-rate.yaml, nbdkit-luks.yaml ]
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: a.img, policy: none } ]
policies:
  - name: none
YAML
"$VAIO_BUILD/chain/vaioctl" validate "$T/c.yaml" >/dev/null || fail "vaioctl refuses the installed manifests"
echo "ok: vaioctl validates a config listing every installed manifest"
