#!/usr/bin/env bash
# Builds the C++ tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (-Db_sanitize=address,undefined) in their own build directory and runs the suites that
# need no long traffic runs (the choice and its reasons: docs/security.md, "Sanitizers").
# Any leak, memory error or undefined behaviour fails the test it happened in.
#
#   scripts/sanitize.sh            # the default suites
#   scripts/sanitize.sh maglev     # some of them (meson test names)
#
# Needs root, as the suites load BPF programs. scripts/test.sh runs it after the main suite.
# XDPCTL_SANITIZE_BUILD (default build-sanitize) picks the build directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${XDPCTL_SANITIZE_BUILD:-$REPO/build-sanitize}

# Unit suites and BPF_PROG_TEST_RUN suites, which drive the C++ that parses, compiles and
# writes policies, prefix tables and LB maps. Also clean, by hand (not in CI for their cost):
# parser (all BPF), explain and bad_input (they need the xdpctl binary, whose sources are
# half of this build's compile time).
DEFAULT_TESTS="rule_parse policy_binary pinned_layout maglev compiler_diff prefix_table parser_diff lb_bpf classify_bpf"
tests=${*:-$DEFAULT_TESTS}

# Only what the tests need: no benchmarks, no DPDK harness. clang, because it builds these
# sources with the sanitizers in about a third of gcc 12's CPU time; -O1 (the release
# build is -O3) is faster still and finds the same. b_lundef=false, as meson asks for
# clang's sanitizers: their runtime links into executables only, not into libraries.
# -g1 (line tables) and frame pointers: reports with file:line and whole malloc stacks,
# for less compile time than -g.
options=(-Dtests=true -Dbench=false -Ddpdk=disabled -Db_sanitize=address,undefined
         -Db_lundef=false -Doptimization=1 -Ddebug=false
         "-Dcpp_args=-g1 -fno-omit-frame-pointer")
if [ -f "$BUILD/build.ninja" ]; then
  meson setup --reconfigure "${options[@]}" "$BUILD" "$REPO" >/dev/null ||
    CC=clang CXX=clang++ meson setup --wipe "${options[@]}" "$BUILD" "$REPO" >/dev/null
else
  rm -rf "$BUILD"
  CC=clang CXX=clang++ meson setup "${options[@]}" "$BUILD" "$REPO" >/dev/null
fi

targets=()
for t in $tests; do
  targets+=("tests/test_$t")
  case $t in explain|bad_input) targets+=(ctl/xdpctl) ;; esac
done
ninja -C "$BUILD" "${targets[@]}"

# Leaks are checked at exit (LeakSanitizer, part of ASan); UB stops the test with a stack.
# No suppressions: the runs are clean.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1}
# The frames' parsing is BPF's; here the C++ that makes and checks them: fewer will do.
export XDPCTL_PARSER_DIFF_FRAMES=${XDPCTL_PARSER_DIFF_FRAMES:-30000}
# Likewise the differential tests' random policies (tests/policy_gen.h, diff_seeds): a share of
# them, as compiling each is C++ at ~5x its release cost here; the main suite runs them all.
export XDPCTL_DIFF_SEEDS_PERCENT=${XDPCTL_DIFF_SEEDS_PERCENT:-40}
# shellcheck disable=SC2086
meson test -C "$BUILD" --no-rebuild --print-errorlogs $tests
