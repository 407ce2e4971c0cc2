#!/bin/sh
# Runs every libFuzzer target (tests/fuzz/, fuzz_*) for SECONDS each, one per CPU at a time,
# from its seed corpus in tests/fuzz/TARGET/. New inputs go to a scratch corpus
# ($XDPCTL_FUZZ_WORK, default /tmp/xdpctl-fuzz), never into the tree; a crash leaves its
# input there as crash-* and the script exits 1 naming the target.
#   scripts/fuzz.sh SECONDS [TARGET...]
# Builds (once) with clang in build-fuzz/: CC=clang CXX=clang++ meson setup -Dfuzz=true ...
set -eu
usage() { echo "usage: $0 SECONDS [TARGET...]  (targets: rule_parse apply_file policy_binary pcap packet_spec)" >&2; exit 2; }
[ $# -ge 1 ] || usage
secs=$1; shift
case $secs in ''|*[!0-9]*) usage ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
build=${XDPCTL_FUZZ_BUILD:-$src/build-fuzz}
work=${XDPCTL_FUZZ_WORK:-/tmp/xdpctl-fuzz}
targets=${*:-rule_parse apply_file policy_binary pcap packet_spec}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup -Dfuzz=true -Dtests=false -Dbench=false "$build" "$src" >/dev/null
fi
mkdir -p "$work"
if ! ninja -C "$build" $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done) >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    echo "fuzz.sh: the build of the fuzz targets in $build failed" >&2
    exit 1
fi

# One target per CPU at a time: each libFuzzer run is single-threaded, so on N CPUs the
# targets take about ceil(targets / N) x SECONDS instead of targets x SECONDS.
jobs=${XDPCTL_FUZZ_JOBS:-$(nproc)}
run_one() {
    t=$1
    mkdir -p "$work/$t"
    # -max_len: a rule line or packet is short; pcap files and images need room.
    case $t in pcap|policy_binary|apply_file) max_len=16384 ;; *) max_len=512 ;; esac
    if (cd "$work" && "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$max_len" \
            -print_final_stats=1 -artifact_prefix="$work/$t/" "$work/$t" "$src/tests/fuzz/$t" \
            2>"$work/$t.log"); then
        rm -f "$work/$t.failed"
    else
        : >"$work/$t.failed"
    fi
}
echo "fuzzing $targets: ${secs} s each, $jobs at a time"
running=0
for t in $targets; do
    rm -f "$work/$t.failed"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait
failed=""
for t in $targets; do
    echo "fuzz_$t:"
    if [ -e "$work/$t.failed" ]; then
        failed="$failed $t"
        tail -30 "$work/$t.log" >&2
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" || true
done
if [ -n "$failed" ]; then
    echo "fuzzing found crashes in:$failed (inputs under $work/TARGET/crash-*)" >&2
    exit 1
fi
echo "no crash in $targets"
