#!/bin/sh
# tests/matrix.sh - runs a test runner once per entry of its matrix.
#
#   sh tests/matrix.sh [-n NAME] [-l LABEL] [-b BACKEND] [-r PREFIX] [-q]
#                      RUNNER [SUITE ...]
#
# The runner (check_asproc or check_hard, see tests/runner.c) prints its
# matrix with --matrix: "backend:source:group" for every pair of backend
# and child-exit source this build and kernel support. Each entry runs
# "RUNNER --group GROUP [SUITE ...]" with ASP_BACKEND and ASP_CHILD_SOURCE
# set, after a line "== LABELbackend=B source=S suites=G".
#
#   -n NAME     the make target, named in the closing line (default check)
#   -l LABEL    put in front of each entry's line ("hardening: ")
#   -b BACKEND  only the entries of this backend; none at all is an
#               error (exit status 2: that backend did not start)
#   -r PREFIX   a command in front of the runner, for the matrix too
#               (valgrind and its options; split on blanks)
#   -q          no closing line: the caller runs more and closes itself
#
# Every entry runs even after one failed. Exit status 0 when all passed,
# 1 otherwise (2: bad usage, or no entry for -b); the closing line says
# which ("NAME: all runs passed" or "NAME: FAILURES above").

name=check label= only= prefix= quiet=
while getopts n:l:b:r:q opt; do
    case $opt in
    n) name=$OPTARG ;;
    l) label=$OPTARG ;;
    b) only=$OPTARG ;;
    r) prefix=$OPTARG ;;
    q) quiet=1 ;;
    *) echo "usage: $0 [-n NAME] [-l LABEL] [-b BACKEND] [-r PREFIX] [-q] RUNNER [SUITE ...]" >&2
       exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
    echo "$0: no runner given" >&2
    exit 2
fi
runner=$1
shift

fail=0 runs=0
# $prefix is split on blanks on purpose: it is a command with options.
for cfg in $($prefix "$runner" --matrix 2>/dev/null); do
    be=${cfg%%:*} rest=${cfg#*:}
    src=${rest%%:*} grp=${rest#*:}
    if [ -n "$only" ] && [ "$be" != "$only" ]; then
        continue
    fi
    echo "== ${label}backend=$be source=$src suites=$grp"
    runs=$((runs + 1))
    ASP_BACKEND=$be ASP_CHILD_SOURCE=$src $prefix "$runner" --group "$grp" "$@" || fail=1
done
if [ -n "$only" ] && [ $runs = 0 ]; then
    echo "$name: the $only backend did not start"
    exit 2
fi
if [ -z "$quiet" ]; then
    if [ $fail = 0 ]; then echo "$name: all runs passed"; else echo "$name: FAILURES above"; fi
fi
exit $fail
