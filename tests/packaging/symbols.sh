#!/bin/sh
# symbols.sh LIB.a LIB.so HEADER - checks what the two libraries export.
#
#  static: every global symbol it defines starts with asp_ (public) or
#          asp__ (internal, shared between the library's files);
#  shared: it exports exactly the functions the header declares with
#          ASP_API (all asp_, none asp__), and carries a soname.
# Prints one line per check and "symbols: N passed, N failed".
set -u
lib=$1 so=$2 hdr=$3
NM=${NM:-nm}
pass=0 fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# Static archive: global defined symbols (text, data, bss, rodata, ...).
$NM -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/static"
grep -v '^asp_' "$tmp/static" > "$tmp/static.bad"
if [ -s "$tmp/static" ] && [ ! -s "$tmp/static.bad" ]; then
    ok "static: $(wc -l < "$tmp/static") global symbols, all asp_/asp__"
else
    bad "static: global symbols outside asp_: $(tr '\n' ' ' < "$tmp/static.bad")"
fi

# Shared library: the dynamic symbol table.
$NM -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/dyn"
grep -v '^asp_' "$tmp/dyn" > "$tmp/dyn.bad"
grep '^asp__' "$tmp/dyn" >> "$tmp/dyn.bad"
if [ -s "$tmp/dyn" ] && [ ! -s "$tmp/dyn.bad" ]; then
    ok "shared: $(wc -l < "$tmp/dyn") exported symbols, all asp_, no asp__"
else
    bad "shared: exports outside the public API: $(tr '\n' ' ' < "$tmp/dyn.bad")"
fi

# The header's ASP_API functions, one declaration may span lines.
tr '\n' ' ' < "$hdr" | grep -o 'ASP_API[^;(]*(' |
    sed 's/.*[ *]\(asp_[a-z0-9_]*\)[ ]*(/\1/' | grep '^asp_' | sort -u > "$tmp/api"
missing=$(comm -23 "$tmp/api" "$tmp/dyn" | tr '\n' ' ')
extra=$(comm -13 "$tmp/api" "$tmp/dyn" | tr '\n' ' ')
if [ -z "$missing" ]; then
    ok "shared: all $(wc -l < "$tmp/api") ASP_API functions of the header exported"
else
    bad "shared: declared ASP_API but not exported: $missing"
fi
if [ -z "$extra" ]; then
    ok "shared: nothing exported that the header does not declare"
else
    bad "shared: exported but not declared ASP_API: $extra"
fi
# Every public function of the static library is in the header too.
grep -v '^asp__' "$tmp/static" > "$tmp/static.pub"
extra=$(comm -13 "$tmp/api" "$tmp/static.pub" | tr '\n' ' ')
if [ -z "$extra" ]; then
    ok "static: every asp_ symbol is declared ASP_API in the header"
else
    bad "static: asp_ symbols missing from the header: $extra"
fi

soname=$(objdump -p "$so" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
case $soname in
libasproc.so.*) ok "shared: soname $soname" ;;
*) bad "shared: no soname (got '$soname')" ;;
esac

echo "symbols: $pass passed, $fail failed"
[ "$fail" = 0 ]
