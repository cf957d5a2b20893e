#!/bin/bash
# make install, staged with DESTDIR and PREFIX as the README says, on the
# existing build (nothing is rebuilt when it is up to date):
# - vaio-nbd's four filters land in nbdkit's own filterdir (what
#   `nbdkit --dump-config` says, under DESTDIR), vaioctl and vaio-crypt in
#   $PREFIX/bin, the manual page in $PREFIX/share/man/man1, and nothing
#   else but the manifests;
# - a manifest for every filter in $PREFIX/share/vaio-nbd/manifests:
#   vaio-nbd's four name the .so where it is installed (without DESTDIR)
#   and carry the sha256 of the file as installed; nbdkit's own three
#   come as built;
# - vaioctl accepts them: a config listing them (with the staged .so
#   paths) validates, sha256 checks included.
set -euo pipefail
: "${VAIO_BUILD:?run through meson test}"
: "${VAIO_SRC:?run through meson test}"
T=$(mktemp -d /tmp/vaio-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

PREFIX=/usr/local
D=$T/dest
filterdir=$(nbdkit --dump-config | sed -n 's/^filterdir=//p')
[ -n "$filterdir" ] || fail "nbdkit --dump-config names no filterdir"
mandir=$PREFIX/share/vaio-nbd/manifests

make -s -C "$VAIO_SRC" install BUILD="$VAIO_BUILD" DESTDIR="$D" PREFIX="$PREFIX" \
  > "$T/make.log" 2>&1 || fail "make install: $(tail -20 "$T/make.log")"

want=$(
  for f in crypt replication cache sioc; do echo "$filterdir/nbdkit-vaio-$f-filter.so"; done
  echo "$PREFIX/bin/vaio-crypt"
  echo "$PREFIX/bin/vaioctl"
  echo "$PREFIX/share/man/man1/vaioctl.1"
  for f in vaio-crypt vaio-replication vaio-cache vaio-sioc nbdkit-cache nbdkit-rate nbdkit-luks; do
    echo "$mandir/$f.yaml"
  done
)
got=$(cd "$D" && find . -type f -o -type l | sed 's/^\.//')
diff <(sort <<<"$want") <(sort <<<"$got") >&2 || fail "make install installed other files than these"
for f in "$PREFIX/bin/vaio-crypt" "$PREFIX/bin/vaioctl"; do
  [ -x "$D$f" ] || fail "$f is not executable"
done
grep -q "^    vaioctl validate FILE" <<<"$("$D$PREFIX/bin/vaioctl" --help)" || fail "installed vaioctl does not run"
for cf in encryption:crypt replication:replication caching:cache sioc:sioc; do
  so=nbdkit-vaio-${cf#*:}-filter.so
  cmp "$D$filterdir/$so" "$VAIO_BUILD/nbdkit-filters/${cf%%:*}/$so" ||
    fail "installed $so is not the one built"
done
cmp "$D$PREFIX/share/man/man1/vaioctl.1" "$VAIO_SRC/docs/vaioctl.1" || fail "installed vaioctl.1 differs"
echo "ok: make install DESTDIR PREFIX=$PREFIX: filters in \$DESTDIR$filterdir (nbdkit --dump-config), vaioctl and vaio-crypt in \$DESTDIR$PREFIX/bin, vaioctl.1 in \$DESTDIR$PREFIX/share/man/man1"

for f in vaio-crypt vaio-replication vaio-cache vaio-sioc nbdkit-cache nbdkit-rate nbdkit-luks; do
  m=$D$mandir/$f.yaml
  [ -f "$m" ] || fail "$mandir/$f.yaml not installed"
  [ "$(stat -c %a "$m")" = 644 ] || fail "$f.yaml mode $(stat -c %a "$m")"
  path=$(sed -n 's/^path: *//p' "$m")
  sum=$(sed -n 's/^sha256: *//p' "$m")
  case $f in
    vaio-*)
      [ "$path" = "$filterdir/nbdkit-$f-filter.so" ] || fail "$f.yaml path '$path'"
      so=$D$path ;;
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

# nbdkit's own filters carry the version of the nbdkit they come with
# (what `nbdkit --version` says), not one written into the template.
want=$(nbdkit --version | awk '{ print $2; exit }')
for f in cache rate luks; do
  v=$(sed -n 's/^version: *//p' "$VAIO_BUILD/configs/nbdkit-$f.yaml")
  [ "$v" = "$want" ] || fail "nbdkit-$f.yaml version '$v', nbdkit --version says '$want'"
done
mkdir "$T/bin"
printf '#!/bin/sh\necho "nbdkit 9.87.6"\n' > "$T/bin/nbdkit"
chmod +x "$T/bin/nbdkit"
PATH=$T/bin:$PATH "$VAIO_SRC/scripts/gen-manifest" \
  "$VAIO_SRC/configs/manifests/nbdkit-cache.manifest.in" "$T/a.img" "$T/gen.yaml"
grep -qx 'version: 9.87.6' "$T/gen.yaml" || fail "gen-manifest version: $(grep ^version "$T/gen.yaml")"
echo "ok: nbdkit filter manifests take nbdkit --version"

# vaioctl --help's install example names a manifest the build makes.
ex=$("$VAIO_BUILD/chain/vaioctl" --help | awk '$1 == "vaioctl" && $2 == "filter" && $3 == "install" && $4 ~ /\.yaml$/ { print $4 }')
[ -n "$ex" ] && [ -f "$VAIO_BUILD/${ex#build/}" ] || fail "vaioctl --help installs '$ex', which the build does not make"
echo "ok: the --help example's manifest exists ($ex)"
