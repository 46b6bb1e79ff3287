#!/bin/sh
# cmake.sh CC MAKE - asproc from CMake projects, both ways:
#   find_package(asproc) after `make install`: into a DESTDIR stage
#   (CMAKE_PREFIX_PATH, then asproc_DIR), with the shared and the static
#   library, the version rule, two other layouts (lib64 with the header
#   in a folder of its own; Debian multiarch), an install used in place
#   (through a symbolic link), and `make uninstall`;
#   add_subdirectory(): a vendored copy of the tree, and a copy of only
#   CMakeLists.txt, include/ and src/ (plus a new src/ folder, which the
#   build must pick up).
# The project is tests/packaging/cmake/CMakeLists.txt with
# tests/packaging/hello.c; every program built is run.
# Run from the top of the tree. Prints "cmake: N passed, N failed".
set -u
CC=${1:-cc} MAKE=${2:-make}
CMAKE=${CMAKE:-cmake}
if ! command -v "$CMAKE" >/dev/null 2>&1; then
    echo "cmake: $CMAKE not found: the CMake packaging checks need it" \
         "(apt-get install cmake; brew install cmake; pkg install cmake)"
    exit 1
fi
pass=0 fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # description, command...
    d=$1; shift
    if "$@" > "$tmp/out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/     /' "$tmp/out"; fi
}
check_fails() { # description, command... (which must fail)
    d=$1; shift
    if "$@" > "$tmp/out" 2>&1; then bad "$d"; sed 's/^/     /' "$tmp/out"; else ok "$d"; fi
}

# The consumer project, as a project of its own.
proj=$tmp/proj
mkdir -p "$proj"
cp tests/packaging/cmake/CMakeLists.txt tests/packaging/hello.c "$proj/"

n=0
configure() { # build folder, cmake arguments...
    b=$1; shift
    rm -rf "$b"
    CC=$CC "$CMAKE" -S "$proj" -B "$b" "$@"
}
build() { # cmake arguments...; builds into $tmp/b<n>, sets $bdir
    n=$((n + 1)); bdir=$tmp/b$n
    configure "$bdir" "$@" && "$CMAKE" --build "$bdir" -j "$jobs"
}
needs_soname() { objdump -p "$1" | grep -q 'NEEDED *libasproc\.so\.'; }
no_shared() { ! objdump -p "$1" | grep -q 'NEEDED *libasproc'; }

version=$(sed -n 's/^#define ASP_VERSION_STRING "\(.*\)"/\1/p' include/asproc.h)
major=${version%%.*} rest=${version#*.}
minor=${rest%%.*} patch=${rest#*.}

# ------------------------------------------------ find_package, staged
dest=$tmp/stage
prefix=/usr/local
check "make install DESTDIR=... PREFIX=$prefix" \
    $MAKE -s install CC="$CC" DESTDIR="$dest" PREFIX=$prefix
cfgdir=$dest$prefix/lib/cmake/asproc
for f in asprocConfig.cmake asprocConfigVersion.cmake; do
    check "installed $prefix/lib/cmake/asproc/$f" test -f "$cfgdir/$f"
done

check "find_package(asproc $major.$minor), CMAKE_PREFIX_PATH=<stage>$prefix" \
    build -DCMAKE_PREFIX_PATH="$dest$prefix" -DASPROC_FIND_VERSION="$major.$minor"
check "  asproc::asproc is the shared library" needs_soname "$bdir/hello"
check "  the header from the stage, not from $prefix" \
    grep -q -- "$dest$prefix/include" "$bdir/CMakeFiles/hello.dir/flags.make"
check "  run hello" "$bdir/hello"

check "find_package(asproc), asproc_DIR=<stage>, asproc_USE_STATIC_LIBS=ON" \
    build -Dasproc_DIR="$cfgdir" -Dasproc_USE_STATIC_LIBS=ON
check "  asproc::asproc is the static library" no_shared "$bdir/hello"
check "  run hello" "$bdir/hello"

# The version rule: same minor while 0.x (same major from 1.0), and not
# older than asked for.
n=$((n + 1)); vb=$tmp/b$n
vcheck() { # expected (ok|fails), version request
    if [ "$1" = ok ]; then
        check "find_package(asproc $2) with $version installed: accepted" \
            configure "$vb" -Dasproc_DIR="$cfgdir" -DASPROC_FIND_VERSION="$2"
    else
        check_fails "find_package(asproc $2) with $version installed: refused" \
            configure "$vb" -Dasproc_DIR="$cfgdir" -DASPROC_FIND_VERSION="$2"
    fi
}
vcheck ok "$version;EXACT"
vcheck ok "$major.$minor...<$((major + 1)).0"
vcheck fails "$major.$minor.$((patch + 1))"
vcheck fails "$major.$((minor + 1))"
vcheck fails "$((major + 1)).0"
if [ "$minor" -gt 0 ]; then
    if [ "$major" = 0 ]; then
        vcheck fails "0.$((minor - 1))"
    else
        vcheck ok "$major.$((minor - 1))"
    fi
fi

check "make uninstall" $MAKE -s uninstall DESTDIR="$dest" PREFIX=$prefix
check "uninstall removes the CMake files and their folder" test ! -e "$cfgdir"

# Another layout: lib64, and the header in a folder of its own.
dest2=$tmp/stage2
check "make install PREFIX=/opt/asproc LIBDIR=.../lib64 INCLUDEDIR=.../include/asproc0" \
    $MAKE -s install CC="$CC" DESTDIR="$dest2" PREFIX=/opt/asproc \
    LIBDIR=/opt/asproc/lib64 INCLUDEDIR=/opt/asproc/include/asproc0
# (CMake on Debian does not search lib64 folders: asproc_DIR says where.)
check "find_package(asproc) in that layout (asproc_DIR)" \
    build -Dasproc_DIR="$dest2/opt/asproc/lib64/cmake/asproc"
check "  run hello" "$bdir/hello"

# Debian's multiarch layout, which CMake searches under the prefix.
arch=$($CC -print-multiarch 2>/dev/null)
if [ -n "$arch" ]; then
    dest3=$tmp/stage3
    check "make install PREFIX=/usr LIBDIR=/usr/lib/$arch" \
        $MAKE -s install CC="$CC" DESTDIR="$dest3" PREFIX=/usr LIBDIR="/usr/lib/$arch"
    check "find_package(asproc) in that layout (CMAKE_PREFIX_PATH=<stage>/usr)" \
        build -DCMAKE_PREFIX_PATH="$dest3/usr"
    check "  run hello" "$bdir/hello"
fi

# Installed for real (no DESTDIR), found through a symbolic link to the
# prefix: the config file uses the paths of the install.
inst=$tmp/prefix
check "make install PREFIX=<tmp>/prefix (no DESTDIR)" \
    $MAKE -s install CC="$CC" PREFIX="$inst"
ln -s "$inst" "$tmp/prefix-link"
check "find_package(asproc) through a link to that prefix, static" \
    build -DCMAKE_PREFIX_PATH="$tmp/prefix-link" -Dasproc_USE_STATIC_LIBS=ON
check "  run hello" "$bdir/hello"
check "make uninstall PREFIX=<tmp>/prefix" $MAKE -s uninstall PREFIX="$inst"
check "  no file left" test -z "$(find "$inst" ! -type d)"

# ------------------------------------------- add_subdirectory, vendored
app=$tmp/app
mkdir -p "$app/third_party/asproc"
tar cf - --exclude=./build --exclude=./.git . | (cd "$app/third_party/asproc" && tar xf -)
cp tests/packaging/cmake/CMakeLists.txt tests/packaging/hello.c "$app/"
proj=$app
check "add_subdirectory(third_party/asproc): the whole tree" \
    build -DASPROC_VENDORED=third_party/asproc
check "  run hello" "$bdir/hello"
targets=$("$CMAKE" --build "$bdir" --target help 2>/dev/null |
          sed -n 's/^\.\.\. \([^ .]*\)$/\1/p' |
          grep -v -x -e all -e clean -e depend -e edit_cache -e rebuild_cache \
                     -e install -e list_install_components -e install/local \
                     -e install/strip | sort | tr '\n' ' ')
check "  builds no target but asproc and hello (got: $targets)" \
    test "$targets" = "asproc hello "
lib=$bdir/asproc/libasproc.a
check "  every global symbol of libasproc.a starts with asp_" \
    sh -c "nm -g --defined-only '$lib' > '$tmp/nm' &&
           test -s '$tmp/nm' &&
           test -z \"\$(awk 'NF == 3 { print \$3 }' '$tmp/nm' | grep -v '^asp_')\""
# -fvisibility=hidden: only the asp_ API keeps default visibility.
check "  internal functions (asp__*) are hidden, API ones (asp_*) are not" \
    sh -c "readelf -sW '$lib' > '$tmp/syms' &&
           awk '\$5 == \"GLOBAL\" && \$7 != \"UND\" && \$6 == \"DEFAULT\" { print \$8 }' '$tmp/syms' > '$tmp/default' &&
           grep -q '^asp_' '$tmp/default' && ! grep -q '^asp__' '$tmp/default' &&
           awk '\$5 == \"GLOBAL\" && \$7 != \"UND\" && \$6 == \"HIDDEN\" { print \$8 }' '$tmp/syms' | grep -q '^asp__'"

# Only CMakeLists.txt, include/ and src/, plus a source folder that the
# tree does not have: it must be compiled, and see the src/ folders'
# headers as the Makefile's -Isrc/... give them.
min=$tmp/min
mkdir -p "$min/third_party/asproc"
cp -R CMakeLists.txt include src "$min/third_party/asproc/"
mkdir -p "$min/third_party/asproc/src/zprobe"
cat > "$min/third_party/asproc/src/zprobe/zprobe.h" <<'EOF'
int asp__zprobe(void);
EOF
cat > "$min/third_party/asproc/src/zprobe/zprobe.c" <<'EOF'
#include "../loop/internal.h"
#include "zprobe.h"
int asp__zprobe(void) { return 0; }
EOF
cp tests/packaging/cmake/CMakeLists.txt tests/packaging/hello.c "$min/"
proj=$min
check "add_subdirectory: only CMakeLists.txt include/ src/, a new src/zprobe/" \
    build -DASPROC_VENDORED=third_party/asproc
check "  run hello" "$bdir/hello"
check "  src/zprobe/zprobe.c is in libasproc.a" \
    sh -c "nm -g --defined-only '$bdir/asproc/libasproc.a' | grep -q ' T asp__zprobe\$'"

echo "cmake: $pass passed, $fail failed"
[ "$fail" = 0 ]
