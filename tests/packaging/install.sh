#!/bin/sh
# install.sh CC MAKE - installs into a temporary DESTDIR, builds
# tests/packaging/hello.c against it with pkg-config (shared and static),
# runs both, then uninstalls and checks that nothing is left. A second
# install with another PREFIX and LIBDIR checks that the .pc file follows.
# Run from the top of the tree. Prints "install: N passed, N failed".
set -u
CC=${1:-cc} MAKE=${2:-make}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
pass=0 fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # description, command...
    d=$1; shift
    if "$@" > "$tmp/out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/     /' "$tmp/out"; fi
}

version=$(sed -n 's/^#define ASP_VERSION_STRING "\(.*\)"/\1/p' include/asproc.h)
dest=$tmp/stage
prefix=/usr/local
libdir=$dest$prefix/lib

check "make install DESTDIR=... PREFIX=$prefix" \
    $MAKE -s install CC="$CC" DESTDIR="$dest" PREFIX=$prefix
for f in include/asproc.h lib/libasproc.a lib/libasproc.so.$version \
         lib/libasproc.so lib/pkgconfig/asproc.pc \
         lib/cmake/asproc/asprocConfig.cmake \
         lib/cmake/asproc/asprocConfigVersion.cmake; do
    check "installed $prefix/$f" test -e "$dest$prefix/$f"
done

# pkg-config against the staged tree: PKG_CONFIG_SYSROOT_DIR prefixes the
# -I and -L paths with DESTDIR, as for a cross or staged install.
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
unset PKG_CONFIG_LIBDIR
check "pkg-config --modversion asproc = $version" \
    test "$($PKG_CONFIG --modversion asproc)" = "$version"
cflags=$($PKG_CONFIG --cflags asproc) libs=$($PKG_CONFIG --libs asproc)
got=$(echo $cflags $libs)
check "pkg-config --cflags --libs: $got" \
    test "$got" = "-I$dest$prefix/include -L$libdir -lasproc"

# Shared: the program needs libasproc.so.SOVERSION at run time.
check "build hello against the shared library" \
    $CC -std=c11 -Wall -Wextra -Werror tests/packaging/hello.c $cflags $libs \
    -o "$tmp/hello-shared"
check "hello-shared needs the soname" \
    sh -c "objdump -p '$tmp/hello-shared' | grep -q 'NEEDED *libasproc.so.'"
check "run hello-shared" env LD_LIBRARY_PATH="$libdir" "$tmp/hello-shared"

# Static: the archive plus Libs.private.
static_l=$($PKG_CONFIG --static --libs-only-l asproc | sed 's/-lasproc//')
check "build hello against the static library" \
    $CC -std=c11 -Wall -Wextra -Werror tests/packaging/hello.c $cflags \
    $($PKG_CONFIG --libs-only-L asproc) -Wl,-Bstatic -lasproc -Wl,-Bdynamic \
    $static_l -o "$tmp/hello-static"
check "hello-static does not need libasproc.so" \
    sh -c "! objdump -p '$tmp/hello-static' | grep -q 'NEEDED *libasproc'"
check "run hello-static" "$tmp/hello-static"

check "make uninstall" $MAKE -s uninstall DESTDIR="$dest" PREFIX=$prefix
left=$(find "$dest" ! -type d | tr '\n' ' ')
check "uninstall leaves no file behind" test -z "$left"
[ -z "$left" ] || echo "     left: $left"

# Another layout: the .pc file must carry it.
dest2=$tmp/stage2
check "make install PREFIX=/opt/asproc LIBDIR=/opt/asproc/lib64" \
    $MAKE -s install CC="$CC" DESTDIR="$dest2" PREFIX=/opt/asproc \
    LIBDIR=/opt/asproc/lib64
check "libdir and includedir in asproc.pc follow PREFIX/LIBDIR" \
    sh -c "grep -qx 'libdir=/opt/asproc/lib64' '$dest2/opt/asproc/lib64/pkgconfig/asproc.pc' &&
           grep -qx 'includedir=/opt/asproc/include' '$dest2/opt/asproc/lib64/pkgconfig/asproc.pc'"
check "make uninstall (second layout)" $MAKE -s uninstall DESTDIR="$dest2" \
    PREFIX=/opt/asproc LIBDIR=/opt/asproc/lib64
check "second uninstall leaves no file behind" \
    test -z "$(find "$dest2" ! -type d)"

echo "install: $pass passed, $fail failed"
[ "$fail" = 0 ]
