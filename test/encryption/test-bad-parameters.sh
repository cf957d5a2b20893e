#!/bin/bash
# Bad filter parameters: nbdkit stops at startup with an error naming the
# parameter, and the image is untouched.  Unknown keys pass down the stack.
source "$(dirname "$0")/lib.sh"

printf 'pw' > "$T/pw"
"$CLI" format "$T/v.img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null
sum=$(sha256sum < "$T/v.img")

expect_error () {   # WANT PARAMS...
  local want=$1; shift
  if timeout 30 nbdkit -U - --filter="$FILTER" file "$T/v.img" "$@" \
       --run 'nbdinfo "$uri"' > /dev/null 2> "$T/err"; then
    fail "accepted: $*"
  fi
  grep -q -- "$want" "$T/err" || fail "'$*': expected '$want' in: $(cat "$T/err")"
  [ "$(sha256sum < "$T/v.img")" = "$sum" ] || fail "image modified by: $*"
}

expect_error "no key given: use one of crypt-passphrase-file"
expect_error "crypt-passphrase-file and crypt-key-file: give only one key source" \
  crypt-passphrase-file="$T/pw" crypt-key-file="$T/pw"
expect_error "crypt-passphrase-file: $T/missing: No such file" \
  crypt-passphrase-file="$T/missing"
expect_error "crypt-keyslot: must be 0..7" crypt-passphrase-file="$T/pw" crypt-keyslot=9
expect_error "crypt-key-id needs crypt-keystore" crypt-key-id=k1
expect_error "crypt-keystore needs crypt-key-id" crypt-keystore="$T"
# A value that is no number may be the secret itself: it is not echoed.
expect_error "crypt-passphrase-fd: not a file descriptor number (the value is not shown)" \
  crypt-passphrase-fd=S3cretNotAnFd
! grep -q S3cretNotAnFd "$T/err" || fail "the bad fd value was echoed: $(cat "$T/err")"
expect_error "key id '../k' is invalid" crypt-keystore="$T" crypt-key-id=../k
expect_error "LUKS keyslot 3 is not active" crypt-passphrase-file="$T/pw" crypt-keyslot=3
# An unknown key is passed to the plugin, which rejects it by name.
expect_error "crypt-bogus" crypt-passphrase-file="$T/pw" crypt-bogus=1

# crypt-keyslot=0 is accepted.
serve "$T/v.img" crypt-passphrase-file="$T/pw" crypt-keyslot=0 -- 'nbdinfo --size "$uri" >/dev/null'
echo "ok: bad parameters refused by name"
