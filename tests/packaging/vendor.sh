#!/bin/sh
# vendor.sh CC MAKE - vendors this tree into a temporary project as
# third_party/asproc and builds tests/packaging/hello.c against it, three
# ways: the project's own Makefile calling `make -C third_party/asproc`;
# the same with the library's objects in the project's build folder
# (BUILD=...); and a copy of only Makefile, include/ and src/ compiled by
# hand, as another build system would. Each program is run.
# Run from the top of the tree. Prints "vendor: N passed, N failed".
set -u
CC=${1:-cc} MAKE=${2:-make}
pass=0 fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # description, command...
    d=$1; shift
    if "$@" > "$tmp/out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/     /' "$tmp/out"; fi
}

# The whole tree, minus build output and version control.
app=$tmp/app
mkdir -p "$app/third_party/asproc" "$app/src"
tar cf - --exclude=./build --exclude=./.git . | (cd "$app/third_party/asproc" && tar xf -)
cp tests/packaging/hello.c "$app/src/hello.c"
cat > "$app/Makefile" <<'MK'
# A project that vendors asproc as third_party/asproc.
ASPROC = third_party/asproc
ASPROC_BUILD ?= $(ASPROC)/build
ASPROC_LIB = $(ASPROC_BUILD)/libasproc.a

build/hello: src/hello.c $(ASPROC_LIB)
	@mkdir -p build
	$(CC) -std=c11 -Wall -Wextra -Werror -I$(ASPROC)/include src/hello.c $(ASPROC_LIB) -lpthread -o $@

# Always ask asproc's own Makefile: it knows when to rebuild.
$(ASPROC_LIB): FORCE
	$(MAKE) -C $(ASPROC) BUILD=$(abspath $(ASPROC_BUILD)) lib

FORCE:
.PHONY: FORCE
MK

check "vendored: make -C third_party/asproc from the project's Makefile" \
    $MAKE -C "$app" CC="$CC"
check "vendored: run hello" "$app/build/hello"
touch "$tmp/mark"
sleep 1
check "vendored: a second make rebuilds nothing" sh -c "
    $MAKE -C '$app' CC='$CC' > /dev/null &&
    test -z \"\$(find '$app' -newer '$tmp/mark' ! -type d)\""

rm -rf "$app/build" "$app/third_party/asproc/build"
check "vendored: library objects in the project's build folder" \
    $MAKE -C "$app" CC="$CC" ASPROC_BUILD=build/asproc
check "vendored: run hello (out-of-tree build)" "$app/build/hello"
check "vendored: nothing written inside third_party/asproc by that build" \
    test ! -e "$app/third_party/asproc/build"

# Only what the library needs, built without its Makefile.
min=$tmp/min/third_party/asproc
mkdir -p "$min"
cp -R Makefile include src "$min/"
check "minimal copy (Makefile include src): make -C" \
    $MAKE -C "$min" CC="$CC" lib
mkdir -p "$tmp/min/obj"
# As README says: every src/*/*.c with -I for include/ only (each source
# finds its own headers relative to itself).
check "minimal copy: sources compiled by hand (no Makefile)" sh -c "
    cd '$tmp/min' &&
    for f in third_party/asproc/src/*/*.c; do
        o=obj/\$(echo \$f | tr / _).o
        $CC -std=c11 -O2 -fvisibility=hidden -Ithird_party/asproc/include \
            -c \$f -o \$o || exit 1
    done &&
    ar rcs libasproc.a obj/*.o &&
    $CC -std=c11 -Ithird_party/asproc/include '$app/src/hello.c' libasproc.a \
        -lpthread -o hello"
check "minimal copy: run hello" "$tmp/min/hello"

echo "vendor: $pass passed, $fail failed"
[ "$fail" = 0 ]
