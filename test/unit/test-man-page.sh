#!/bin/bash
# docs/vaioctl.1 renders with man(1) without a warning, and cannot drift
# from `vaioctl --help`: every SYNOPSIS line of the help is a SYNOPSIS
# line of the man page, every command of the help has its entry under
# COMMANDS, every option of the help's OPTIONS its entry under OPTIONS,
# and the man page has no command or option the help lacks.
set -euo pipefail
: "${VAIO_BUILD:?run through meson test}"
: "${VAIO_SRC:?run through meson test}"
T=$(mktemp -d /tmp/vaio-man.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

"$VAIO_BUILD/chain/vaioctl" --help > "$T/help"
# Wide, ASCII, no hyphenation at line ends: each entry on one line.
LC_ALL=C MANWIDTH=250 MAN_KEEP_FORMATTING= man --warnings -l "$VAIO_SRC/docs/vaioctl.1" \
  2> "$T/warn" | col -bx > "$T/man"
[ ! -s "$T/warn" ] || fail "man warns: $(cat "$T/warn")"
grep -q '^VAIOCTL(1)' "$T/man" || fail "man did not render the page: $(head -5 "$T/man")"
for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
  grep -qx "$s" "$T/man" || fail "man page lacks section $s"
done
grep -q 'nbdkit(1)' "$T/man" && grep -q 'nbdkit-filter(3)' "$T/man" || fail "SEE ALSO lacks nbdkit(1), nbdkit-filter(3)"

# section FILE NAME: the lines of one section, as rendered.
section () { awk -v s="$2" '/^[A-Z][A-Z ]*$/ { on = ($0 == s); next } on' "$1"; }
# heads FILE NAME INDENT: the entry headings of a section, i.e. its lines
# indented by exactly INDENT spaces: a command (with its second word for
# filter and host) or the options that start the line.
heads () {
  section "$1" "$2" | grep -E "^ {$3}[-a-z]" | sed 's/^ *//' | awk '
    /^-/ { for (i = 1; i <= NF && $i ~ /^-/; i++) { o = $i; sub(/,$/, "", o); print o }
           next }
    { print ($2 ~ /^(install|uninstall|list|maintenance)$/) ? $1 " " $2 : $1 }' | sort -u
}

# Every SYNOPSIS line of the help (spaces squeezed) is one of the man page.
section "$T/help" SYNOPSIS | tr -s ' ' | sed 's/^ //' | grep . > "$T/h-syn"
section "$T/man" SYNOPSIS | tr -s ' ' | sed 's/^ //' > "$T/m-syn"
[ "$(wc -l < "$T/h-syn")" -ge 11 ] || fail "help SYNOPSIS not found: $(cat "$T/h-syn")"
while read -r line; do
  grep -qxF -- "$line" "$T/m-syn" || fail "help SYNOPSIS line not in the man page: $line"
done < "$T/h-syn"

# The commands: those of the help's SYNOPSIS, each an entry of the help's
# COMMANDS (indent 4) and of the man page's (indent 7), and no other.
cmds=$(sed -n 's/^vaioctl \([a-z]*\)\( \(install\|uninstall\|list\|maintenance\)\)\?.*/\1\2/p' "$T/h-syn" | sort -u)
[ "$(wc -l <<<"$cmds")" = 11 ] || fail "commands in help: $cmds"
diff <(echo "$cmds") <(heads "$T/help" COMMANDS 4) >&2 || fail "help SYNOPSIS (<) vs help COMMANDS (>)"
diff <(echo "$cmds") <(heads "$T/man" COMMANDS 7) >&2 || fail "help's commands (<) vs man COMMANDS (>)"

# The options: the help's OPTIONS entries (indent 4) and the man page's
# (indent 7), the same set.
heads "$T/help" OPTIONS 4 > "$T/h-opt"
[ "$(wc -l < "$T/h-opt")" -ge 15 ] || fail "options in help: $(tr '\n' ' ' < "$T/h-opt")"
diff "$T/h-opt" <(heads "$T/man" OPTIONS 7) >&2 ||
  fail "OPTIONS differ between vaioctl --help (<) and the man page (>)"
echo "ok: the man page renders without warnings; its synopsis, commands ($(wc -l <<<"$cmds")) and options ($(wc -l < "$T/h-opt")) are those of vaioctl --help: $(tr '\n' ' ' < "$T/h-opt")"
