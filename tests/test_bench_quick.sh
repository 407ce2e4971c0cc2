#!/usr/bin/env bash
# meson test 'bench_quick': scripts/bench.sh --quick end to end. It checks that the report is
# written, that every row has a figure for every queue count (the rule rows: the issue-4
# marker instead), and that the run left no namespace or pin behind. No timing is asserted:
# figures depend on the machine and on what else runs on it.
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

bash "$BENCH" --quick --out "$OUT" || fail "bench.sh --quick exited with $?"

for f in bench.json bench.md bench.png; do
  [ -s "$OUT/$f" ] || fail "$f was not written"
done
[ "$(head -c 8 "$OUT/bench.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "bench.png is not a PNG"
jq -e . "$OUT/bench.json" >/dev/null || fail "bench.json is not JSON"

# DPDK may only be missing when the build has no DPDK harness.
have_dpdk=false
[ -x "${XDPCTL_BUILD:-}/bench/xdpctl-dpdk-bench" ] && have_dpdk=true
queues='["1","2"]'
[ "$(nproc)" -ge 2 ] || queues='["1"]'

problems=$(jq -r --argjson queues "$queues" --argjson have_dpdk "$have_dpdk" '
  ["xdpctl_rules_1", "xdpctl_rules_1000", "xdpctl_rules_10000", "xdpctl_prefix_1m"] as $rule_rows
  | (if (.machine.kernel and .machine.cpu and .commit and .parameters) then empty
     else "bench.json lacks machine, commit or parameters" end),
    (.rows[] | . as $row | $queues[] as $q | ($row.results[$q]) as $r
     | if $r == null then "\($row.id), \($q) queue(s): no result"
       elif $r.status == "ok" then
         (if ($r.pps | type) == "number" and $r.pps > 0 and ($r.offered_pps | type) == "number"
            and ($r.ratio_to_xdp_drop | type) == "number" then empty
          else "\($row.id), \($q) queue(s): no figure, offered rate or ratio" end)
       elif $r.status == "not_available" and ($rule_rows | index($row.id)) != null
            and $r.note == "not yet available (issue 4)" then empty
       elif $row.id == "dpdk" and ($have_dpdk | not) then empty
       else "\($row.id), \($q) queue(s): \($r.status): \($r.note // "")" end)
' "$OUT/bench.json")
[ -z "$problems" ] || fail "rows without a figure:
$problems"

# Every row is in the Markdown table, under its label.
while IFS= read -r label; do
  grep -qF "| $label |" "$OUT/bench.md" || fail "bench.md has no line for '$label'"
done < <(jq -r '.rows[].label' "$OUT/bench.json")

# Nothing left behind: the run's namespaces, xdpctl's pins for them.
for ns in $(jq -r '.lab.generator_netns, .lab.dut_netns' "$OUT/bench.json"); do
  [ ! -e "/run/netns/$ns" ] || fail "namespace $ns is still there"
  [ ! -e "/sys/fs/bpf/xdpctl/netns/$ns" ] || fail "xdpctl pins for $ns are still there"
done
echo "bench_quick: ok ($(jq '[.rows[].results[] | select(.status == "ok")] | length' "$OUT/bench.json") figures)"
