#!/usr/bin/env bash
# meson test 'bench_quick': scripts/bench.sh --quick end to end. It checks that the report is
# written, that every row has a figure for every queue count (the rate-limit row: also the
# rate its limit let through), that the forwarding target of issue 6 has its ratio, that the
# micro benchmark ran, and that the run left no namespace or pin behind. No timing is
# asserted: figures depend on the machine and on what else runs on it.
#
#   test_bench_quick.sh PATH/TO/bench.sh      (XDPCTL_BUILD: the build directory)
set -euo pipefail

BENCH=${1:?usage: $0 PATH/TO/bench.sh}
if [ "$(id -u)" -ne 0 ]; then
  echo "bench_quick: needs root (namespaces, XDP); skipped"
  exit 77
fi

OUT=$(mktemp -d /tmp/xdpctl-bench-test.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
fail() { echo "bench_quick: FAIL: $*" >&2; exit 1; }

# A benchmark's policies are never recorded as the host's state (what restore brings back):
# given a state directory, bench.sh leaves it alone.
XDPCTL_STATE_DIR="$OUT/state" bash "$BENCH" --quick --out "$OUT" || fail "bench.sh --quick exited with $?"
[ ! -e "$OUT/state" ] || fail "bench.sh recorded its policies in the state directory ($OUT/state)"

for f in bench.json bench.md; do
  [ -s "$OUT/$f" ] || fail "$f was not written"
done
jq -e . "$OUT/bench.json" >/dev/null || fail "bench.json is not JSON"
# The chart, of the rows that have a figure (none: no chart).
if [ "$(jq -r '.live_frames // "ok"' "$OUT/bench.json")" = ok ]; then
  [ -s "$OUT/bench.png" ] || fail "bench.png was not written"
  [ "$(head -c 8 "$OUT/bench.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "bench.png is not a PNG"
fi

# A kernel that refuses the generator's live frames (EPERM where the host forbids injecting
# frames) leaves every row unmeasured: then the report must say so once, with the kernel's
# reason, and mark every row "not measured" instead of failing them one by one; everything
# else below is checked all the same. The refusal must be the kernel's: the probe's error
# names BPF_PROG_TEST_RUN's live-frames mode.
live=$(jq -r '.live_frames // "ok"' "$OUT/bench.json")
if [ "$live" != ok ]; then
  echo "bench_quick: this kernel refuses live frames ($live): checking the report of a run without rows"
  grep -q "live-frames mode failed" <<<"$live" || fail "no row measured, and not for the kernel's refusal: $live"
  grep -qF "**No row was measured**" "$OUT/bench.md" || fail "bench.md does not say that no row was measured"
  unmeasured=$(jq -r '[.rows[].results[]? | select(.status != "not_available")] | length' "$OUT/bench.json")
  [ "$unmeasured" -eq 0 ] || fail "$unmeasured row result(s) other than not_available without live frames"
fi

# DPDK may only be missing when the build has no DPDK harness.
have_dpdk=false
[ -x "${XDPCTL_BUILD:-}/bench/xdpctl-dpdk-bench" ] && have_dpdk=true
queues='["1","2"]'
[ "$(nproc)" -ge 2 ] || queues='["1"]'

problems=$(jq -r --argjson queues "$queues" --argjson have_dpdk "$have_dpdk" --arg live "$live" '
  (if (.machine.kernel and .machine.cpu and .commit and .parameters) then empty
     else "bench.json lacks machine, commit or parameters" end),
    (if .micro["xdpctl-microbench"].status == "ok" and (.micro["xdpctl-microbench"].benchmarks | length) > 0
       and all(.micro["xdpctl-microbench"].benchmarks[]; (.ns_per_packet | type) == "number")
     then empty else "micro benchmarks: \(.micro["xdpctl-microbench"] // "missing")" end),
    (.rows[] | . as $row | $queues[] as $q | ($row.results[$q]) as $r
     | if $r == null then "\($row.id), \($q) queue(s): no result"
       elif $r.status == "ok" then
         (if ($r.pps | type) == "number" and $r.pps > 0 and ($r.offered_pps | type) == "number"
            and ($r.ratio_to_xdp_drop | type) == "number" then empty
          else "\($row.id), \($q) queue(s): no figure, offered rate or ratio" end),
         (if $row.kind == "rate_limit" and (($r.passed_pps | type) != "number" or ($r.rate_limit.rate_pps | type) != "number")
          then "\($row.id), \($q) queue(s): no pass rate of the limit" else empty end)
       elif $row.id == "dpdk" and ($have_dpdk | not) then empty
       elif $live != "ok" and $r.status == "not_available" then empty
       else "\($row.id), \($q) queue(s): \($r.status): \($r.note // "")" end)
' "$OUT/bench.json")
[ -z "$problems" ] || fail "rows without a figure:
$problems"

# The forwarding target of issue 6 has its ratio for every queue count (whether it is met
# depends on the machine: not asserted); the micro bars of issue 12 have their medians.
missing=$(jq -r '.targets[] | select(.row == "microbench" and (.value | type) != "number") | .target' "$OUT/bench.json")
[ -z "$missing" ] || fail "micro targets without a figure: $missing"
[ "$live" != ok ] ||
  missing=$(jq -r --argjson queues "$queues" '$queues[] as $q
  | select([.targets[] | select(.row == "xdpctl_lb_dsr" and .queues == $q and (.target | test("forwarding")) and (.value | type) == "number")] | length != 1)
  | "xdpctl LB target, \($q) queue(s)"' "$OUT/bench.json")
[ -z "$missing" ] || fail "targets without a ratio: $missing"

# Every row is in the Markdown table, under its label (the rate-limit row in its own table,
# under its short name).
while IFS= read -r label; do
  grep -qF "| $label |" "$OUT/bench.md" || fail "bench.md has no line for '$label'"
done < <(jq -r '.rows[] | if .kind == "rate_limit" then .short else .label end' "$OUT/bench.json")

# Nothing left behind: the run's namespaces, xdpctl's pins for them.
for ns in $(jq -r '.lab.generator_netns, .lab.dut_netns' "$OUT/bench.json"); do
  [ ! -e "/run/netns/$ns" ] || fail "namespace $ns is still there"
  [ ! -e "/sys/fs/bpf/xdpctl/netns/$ns" ] || fail "xdpctl pins for $ns are still there"
done
echo "bench_quick: ok ($(jq '[.rows[].results[] | select(.status == "ok")] | length' "$OUT/bench.json") figures)"
