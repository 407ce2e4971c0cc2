#!/usr/bin/env bash
# The datapath matrix of issue 5: xdpctl beside bare XDP, xdp-filter, nftables, iptables, the
# kernel stack and DPDK, on the same traffic, in one run, on this machine.
#
#   scripts/bench.sh [--quick] [--out DIR] [--build DIR]
#
#   --quick      short windows (under 2 minutes in all); every row is still measured
#   --out DIR    where the report goes (default bench-out/): bench.json, bench.md, bench.png
#   --build DIR  the Meson build directory (default $XDPCTL_BUILD, else build/)
#   --rows IDS   only these rows, comma-separated (ids in bench.json; for debugging a row)
#   --render DIR write DIR/bench.md and bench.png again from DIR/bench.json, measure nothing
#
# Lab: ${NS}-gen [xb-gen] ---veth, 1 or 2 queues--- [xb-dut] ${NS}-dut. xdpctl-pktgen sends
# 64-byte UDP frames 198.18.0.1:1024 -> 198.18.0.2:9 from xb-gen with BPF_PROG_TEST_RUN live
# frames, one thread per queue; each queue of xb-dut is processed on the CPU of the thread
# that feeds it. The rate of a row is what the device under test processed per second over
# steady windows, read from its own counters, next to what the generator offered.
#
# xdpctl and xdp-filter run in a bpffs of their own (a private mount namespace): their pinned
# state (xdpctl's policy is global to a bpffs) neither comes from nor goes to the machine's.
# Everything it creates (namespaces and the rules inside the DUT namespace, that bpffs,
# DPDK's runtime directory) is removed on exit, Ctrl-C included.
set -euo pipefail
# Benchmark policies are not the host's: nothing goes to the state directory that `xdpctl
# restore` and xdpd bring back after a reboot (set but empty records nothing), whatever
# the caller's XDPCTL_STATE_DIR.
export XDPCTL_STATE_DIR=

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${XDPCTL_BUILD:-$REPO/build}
OUT=bench-out
QUICK=0
ONLY_ROWS=
RENDER=

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --out) [ $# -ge 2 ] || { usage >&2; exit 2; }; OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --build) [ $# -ge 2 ] || { usage >&2; exit 2; }; BUILD=$2; shift ;;
    --build=*) BUILD=${1#--build=} ;;
    --render) [ $# -ge 2 ] || { usage >&2; exit 2; }; RENDER=$2; shift ;;
    --rows) [ $# -ge 2 ] || { usage >&2; exit 2; }; ONLY_ROWS=$2; shift ;;
    --rows=*) ONLY_ROWS=${1#--rows=} ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'bench: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# bench.md and bench.png from DIR/bench.json (also alone: --render DIR).
render_report() {
  local dir=$1 dat
  dat=$(mktemp /tmp/xdpctl-bench-chart.XXXXXX)
  # Markdown: one line per row, both queue counts side by side.
  jq -r '
    def fixed($d): (. * pow(10; $d) | round) as $i
      | "\($i / pow(10; $d) | floor).\("000\($i % pow(10; $d))" | .[length - $d:])";
    def mpps: if . == null then "" else (. / 1e6 | fixed(3)) end;
    def ratio: if . == null then "" else fixed(2) end;
    def cell($q): .results[$q] as $r
      | if $r == null then "| | | "
        elif $r.status == "ok" then "| \($r.pps | mpps) | \($r.ratio_to_xdp_drop | ratio) | \($r.offered_pps | mpps) "
        elif $r.status == "not_available" then "| \($r.note) | | "
        else "| failed: \($r.note | gsub("\n"; " ") | gsub("\\|"; "/")) | | " end;
    "Machine: \(.machine.cpu), \(.machine.cpus) CPUs, \(.machine.memory), kernel \(.machine.kernel); commit \(.commit[0:12])\(if .dirty then " (with local changes)" else "" end); \(.started)\(if .parameters.quick then "; quick run" else "" end).",
    (.machine.cost_model // {} | if .helper_call_ns then
      "Cost model: **\(.kind)**: a helper call costs \(.helper_call_ns | fixed(2)) ns, an empty XDP program \(.empty_xdp_ns) ns (xdpctl-costmodel: \(.helper_calls) calls against the empty program). spec_rstack_overflow: \(.vulnerabilities.spec_rstack_overflow); spectre_v2: \(.vulnerabilities.spectre_v2); retbleed: \(.vulnerabilities.retbleed).\(if .rcu then " Grace periods \(if .rcu.expedited == "1" then "**expedited**" else "not expedited" end) (rcu_expedited \(.rcu.expedited)): the one a commit waits for (a map-in-map update) took \(.rcu.grace_period_ms | fixed(3)) ms." else "" end)"
     else "Cost model: not measured\(if .note then " (\(.note | gsub("\n"; " ")))" else "" end)." end),
    (if (.live_frames // "ok") != "ok" then "**No row was measured**: \(.live_frames).", "" else empty end),
    "64-byte UDP, one flow unless the row says otherwise; Mpps processed by the device under test (median of \(.parameters.windows) window(s) of \(.parameters.window_s) s), ratio to bare XDP_DROP of the same run and queue count, rate offered by the generator.",
    "",
    "| Row | 1q Mpps | 1q ratio | 1q offered | 2q Mpps | 2q ratio | 2q offered | reference ratio 1q / 2q |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    (.rows[] | select(.kind != "rate_limit")
      | "| \(.label) \(cell("1"))\(cell("2"))| \(if .reference_ratio then "\(.reference_ratio["1"]) / \(.reference_ratio["2"])" else "" end) |"),
    "",
    (if any(.rows[]; .kind == "rate_limit") then
      "Rate limit: rule 1 `rate-limit R --burst R/10` on the traffic, rule 2 drops what it lets through (the counter of rule 2 is the pass rate of the limit); R is a tenth of the rate of the 1-rule row at the same queue count, the generator sends as fast as it goes.",
      "",
      "| Row | queues | R, pps | processed Mpps (offered / R) | passed by the limit, pps | passed / R | dropped by the limit, Mpps |",
      "|---|---:|---:|---:|---:|---:|---:|",
      (.rows[] | select(.kind == "rate_limit") | . as $row | (.results // {}) | to_entries[] | .value as $v
        | if $v.status == "ok" then
            "| \($row.short) | \(.key) | \($v.rate_limit.rate_pps) | \($v.pps | mpps) (\($v.pps / $v.rate_limit.rate_pps | fixed(1))x) | \($v.passed_pps | round) | \($v.passed_over_rate | fixed(3)) | \($v.limited_pps | mpps) |"
          else "| \($row.short) | \(.key) | \($v.status): \($v.note // "" | gsub("\n"; " ") | gsub("\\|"; "/")) | | | | |" end),
      ""
    else empty end),
    (if (.targets // []) != [] then
      "Targets of issue 12 (figures from this run; micro ratios are medians of \(.micro["xdpctl-microbench-ratios"].benchmarks[0].repetitions // "?") interleaved repetitions):",
      "",
      "| Target | row | queues | value | bar | met |",
      "|---|---|---:|---:|---|---|",
      (.targets[] | "| \(.target) | \(.row) | \(.queues)\(if .target | test("2 queues") then " / 1" else "" end) | \(.value | ratio) | \(.bar // (if .min then ">= \(.min)" else "" end)) | \(if .met == null then "no figure" elif .met then "yes" else "**no**" end) |"),
      ""
    else empty end),
    (if (.micro // {}) != {} then
      "Micro benchmarks (BPF_PROG_TEST_RUN; the kernel-measured mean per run): `xdpctl-microbench` (ns per packet, 64-byte TCP unless named) and `xdpctl-prefixbench` (ns per lookup; `net` = minus the `base` case; build_load in ms).",
      "",
      "| Benchmark | ns | more |",
      "|---|---:|---|",
      (.micro | to_entries[] | .key as $bin | .value as $m
        | if $m.status != "ok" then "| \($bin) | | \($m.status): \($m.note // "" | gsub("\n"; " ") | gsub("\\|"; "/")) |"
          else ($m.benchmarks[]
            | "| \($bin) \(.name) | \(if .error_occurred then "error: \(.error_message)" else ((.ns_per_packet // .ns_per_lookup // .dir_table_ns) | if . then fixed(1) else "" end) end) | \(
                [ (if .ns_per_packet == null and .ns_per_lookup == null and .dir_table_ns == null then "\(.real_time | fixed(1)) \(.time_unit)" else empty end),
                  (to_entries[] | select(.key | IN("net_ns", "trie_over_dir", "trie_over_dir_net", "base_ns", "lpm_trie_ns", "prefixes_per_s", "map_bytes", "min_ns", "max_ns", "repetitions"))
                    | "\(.key) \(if .key == "map_bytes" then (if .value < 1048576 then "\(.value / 1024 | fixed(1)) KiB" else "\(.value / 1048576 | fixed(1)) MiB" end) elif .key == "prefixes_per_s" then "\(.value / 1e6 | fixed(2)) M" else (.value | fixed(2)) end)")
                ] | join(", ")) |"),
            ($m.log[]? | "| \($bin) | | \(.) |")
          end),
      ""
    else empty end),
    (if (.control.control_plane // null) != null then
      "Control plane (bench/control_plane.sh: wall clock of whole xdpctl commands, medians) and one rule beside xdp-filter (bench/prog_run_compare.sh: bpftool prog run, same 64-byte UDP frame, both programs attached; the programs'"'"' sizes as the kernel holds them, verified instructions, translated and JIT bytes, with xdpctl'"'"'s over xdp-filter'"'"'s as *_ratio):",
      "",
      "| Figure | value |",
      "|---|---:|",
      ((.control.control_plane, .control.one_rule_vs_xdp_filter, (.control.src_rules_10000_vs_xdp_filter // {})) | to_entries[] | "| \(.key) | \(.value) |"),
      ""
    else empty end),
    "Load average before / after the run: \(.machine.loadavg_start) / \(.machine.loadavg_end).",
    (.rows[] | . as $row | (.results // {}) | to_entries[] | select(.value.status == "ok" and .value.note)
      | "- \($row.short), \(.key) queue(s): \(.value.note)"),
    (.rows[] | . as $row | (.results // {}) | to_entries[]
      | select(.value.status == "ok" and (.value.cpu_wait_share // 0) > 0.05 and (.value.cpu_shared_with_generator | not))
      | "- \($row.short), \(.key) queue(s): other work on the machine kept the measured threads waiting for a CPU \(.value.cpu_wait_share * 100 | round)% of the time (after \(.value.attempts) attempt(s)): the figure is low by about that much.")
  ' "$dir/bench.json" >"$dir/bench.md"

  # Chart: absolute Mpps per row, 1 and 2 queues (rows without a figure are left out).
  jq -r '.rows[] | select(.kind != "rate_limit") | select([.results[]? | select(.status == "ok")] | length > 0)
    | [.short, (.results["1"].pps // 0) / 1e6, (.results["2"].pps // 0) / 1e6]
    | "\"\(.[0])\" \(.[1]) \(.[2])"' "$dir/bench.json" >"$dat"
  if [ ! -s "$dat" ]; then
    rm -f "$dat" "$dir/bench.png"
    say "no row has a figure: no chart"
    return 0
  fi
  gnuplot <<EOF
set terminal pngcairo noenhanced size 1100,560 font "sans,10"
set output "$dir/bench.png"
set title "$(jq -r '"64-byte UDP, Mpps processed by the device under test; \(.machine.cpu), \(.machine.cpus) CPUs, kernel \(.machine.kernel), \(.started[0:10]), commit \(.commit[0:12])"' "$dir/bench.json")"
set ylabel "Mpps"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right
set xtics rotate by -30 scale 0
set yrange [0:*]
# Two bars a cluster, a third of a unit each: their centres sit 1/6 either side of the tick.
plot "$dat" using 2:xtic(1) title "1 queue, 1 thread", "" using 3 title "2 queues, 2 threads", \
  "" using (\$0 - 1.0/6):2:(sprintf("%.2f", \$2)) with labels offset 0,0.7 font ",8" notitle, \
  "" using (\$0 + 1.0/6):3:(sprintf("%.2f", \$3)) with labels offset 0,0.7 font ",8" notitle
EOF

  rm -f "$dat"
}

if [ -n "$RENDER" ]; then
  [ -s "$RENDER/bench.json" ] || die "--render: no $RENDER/bench.json"
  { command -v gnuplot && command -v jq; } >/dev/null || die "--render needs jq and gnuplot"
  render_report "$RENDER"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, XDP, nftables)"
for tool in ip ethtool jq nft iptables gnuplot nsenter unshare flock xdp-filter; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/setup.sh"
done
# A fresh clone after scripts/setup.sh: build the default directory (DPDK's row when its
# libraries are there). A given --build directory is used as it is.
if [ ! -e "$BUILD" ] && [ "$BUILD" = "$REPO/build" ]; then
  say "no $BUILD yet: meson setup build && ninja -C build"
  { meson setup "$BUILD" >/dev/null && ninja -C "$BUILD" >/dev/null; } || die "the build failed (meson setup build && ninja -C build)"
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory (give --build DIR, or: meson setup build && ninja -C build)"
XDPCTL=$BUILD/ctl/xdpctl
PKTGEN=$BUILD/bench/xdpctl-pktgen
DPDK_BENCH=$BUILD/bench/xdpctl-dpdk-bench
BENCHGEN=$BUILD/bench/xdpctl-benchgen
MICROBENCH=$BUILD/bench/xdpctl-microbench
PREFIXBENCH=$BUILD/bench/xdpctl-prefixbench
COSTMODEL=$BUILD/bench/xdpctl-costmodel
EMPTY_OBJ=$BUILD/xdpctl_bench_empty.bpf.o
for f in "$XDPCTL" "$PKTGEN" "$BENCHGEN" "$EMPTY_OBJ"; do
  [ -e "$f" ] || die "$f is missing: build first (ninja -C $BUILD)"
done

# ---- parameters ------------------------------------------------------------------------
FRAME_SIZE=64
PORT=9
if [ "$QUICK" -eq 1 ]; then
  # Half-second windows: a quick run shows that every row measures (tests/test_bench_quick.sh,
  # part of the suite), not what it measures; thirty rows of whole seconds were a minute.
  WARMUP=0.5 WINDOW=0.5 WINDOWS=1 MAX_ATTEMPTS=1
else
  WARMUP=2 WINDOW=3 WINDOWS=3 MAX_ATTEMPTS=4
fi
# A window where the measured threads waited for a CPU more than this share of the time was
# disturbed by other work on the machine.
WAIT_LIMIT=0.05
QUEUE_SETS=(1 2)
NCPU=$(nproc)
# The rule rows: issue 4's mix (xdpctl-benchgen) and one rule that drops the traffic, at a
# priority in the middle of the mix's 0-999, so the walk meets about half the rules first.
# Mix rules whose source prefix holds the generator's address drop too: whichever rule the
# traffic meets first, it is a drop.
RULES_DROP_PRIORITY=500
# The prefix row: a BGP-like set of this many prefixes, 16 of them the /8s of PREFIX_SRC,
# where the generator draws random source addresses: every frame is a member, and its
# lookup goes as deep as the table's prefixes under its address make it.
PREFIX_SET_SIZE=1000000
PREFIX_SRC=16.0.0.0/4
# The rate-limit row: a limit of a tenth of what xdpctl with one rule processed in this run
# at the same queue count (RATE_PPS if that row has no figure), burst 100 ms of it, offered
# as fast as the generator goes: about 10x the limit. Not a paced generator: its calls
# cost milliseconds each, so paced traffic comes in bursts with gaps long enough for a
# token bucket to fill up and overflow, which would measure the pacing, not the limit.
RATE_PPS=200000
# The forwarding rows (issue 6): xdpctl's load balancer, a UDP VIP on the traffic's
# destination in dsr mode with FWD_BACKENDS backends (198.18.0.11.., MACs 02:00:00:00:b1:01..),
# against bench_xdp_fwd, which only rewrites the MACs (to the first backend's) and sends
# the frame back with XDP_TX. Both get many flows, FWD_SRC x FWD_SPORT, walked in turn, so
# the LB's connection table holds them all and Maglev placed each.
FWD_BACKENDS=4
FWD_SRC=198.18.0.16/28
FWD_SPORT=1024-1279
[ "$NCPU" -ge 2 ] || QUEUE_SETS=(1)

# Unique per run, so a test run and a manual one never share names; "xdpctl-" like every
# namespace this project makes.
NS=xdpctl-bench$$
GEN_NS=$NS-gen
DUT_NS=$NS-dut
GEN_IF=xb-gen
DUT_IF=xb-dut
GEN_V4=198.18.0.1
DUT_V4=198.18.0.2
DPDK_PREFIX=$NS

TMP=$(mktemp -d /tmp/xdpctl-bench.XXXXXX)
BG_PIDS=()
BPFFS_HOLDER=
XDPCTL_LOADED=0
XDP_FILTER_LOADED=0

# ---- restoring the machine ---------------------------------------------------------------
cleanup() {
  local rc=$? pid alive
  set +e
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  # Up to 3 s for them to stop on their own (they print their last figures), then KILL.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for pid in "${BG_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.3
  done
  for pid in "${BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  if [ -n "$BPFFS_HOLDER" ]; then
    [ "$XDP_FILTER_LOADED" -eq 0 ] || in_filter_ns xdp-filter unload "$DUT_IF" >/dev/null 2>&1
    [ "$XDPCTL_LOADED" -eq 0 ] || xdpctl unload "$DUT_IF" >/dev/null 2>&1
    # Its mount namespace holds the netns files too: it goes before them.
    kill -TERM "$BPFFS_HOLDER" 2>/dev/null
    wait "$BPFFS_HOLDER" 2>/dev/null
  fi
  # The rules (nftables, iptables) and XDP programs are inside the namespaces: they go too.
  ip netns del "$DUT_NS" 2>/dev/null
  ip netns del "$GEN_NS" 2>/dev/null
  rm -rf "/var/run/dpdk/$DPDK_PREFIX"
  rm -rf "$TMP"
  [ "$rc" -eq 0 ] || say "stopped (exit $rc); the machine is restored"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two runs at once would share two CPUs and measure each other: take turns, also between
# copies of the checkout (a lock in /run/lock, which is what it is for; the empty file stays).
mkdir -p /run/lock
exec 9>>/run/lock/xdpctl-bench.lock
if ! flock -n 9; then
  say "another bench.sh is running; waiting for it (up to 10 minutes)"
  flock -w 600 9 || die "still busy after 10 minutes"
fi

# ---- the lab -------------------------------------------------------------------------------
lab_up() {
  ip netns add "$GEN_NS"
  ip netns add "$DUT_NS"
  ip link add "$GEN_IF" netns "$GEN_NS" numtxqueues 2 numrxqueues 2 type veth \
    peer name "$DUT_IF" netns "$DUT_NS" numtxqueues 2 numrxqueues 2
  ip -n "$GEN_NS" link set lo up
  ip -n "$DUT_NS" link set lo up
  ip -n "$GEN_NS" addr add "$GEN_V4/24" dev "$GEN_IF"
  ip -n "$DUT_NS" addr add "$DUT_V4/24" dev "$DUT_IF"
  ip -n "$GEN_NS" link set "$GEN_IF" up
  ip -n "$DUT_NS" link set "$DUT_IF" up
  # A veth takes XDP frames (the generator's XDP_TX) only in NAPI mode: an XDP program or GRO
  # on the receiving end. GRO on the DUT end serves the rows without an XDP program; on the
  # generator end it lets ICMP errors and ARP come back.
  ip netns exec "$DUT_NS" ethtool -K "$DUT_IF" gro on >/dev/null
  ip netns exec "$GEN_NS" ethtool -K "$GEN_IF" gro on >/dev/null
  # (ip says "Peer netns reference is invalid" for a veth whose peer is in a namespace it
  # has no id for: true and harmless here.)
  DUT_MAC=$(ip -n "$DUT_NS" -j link show dev "$DUT_IF" 2>/dev/null | jq -r '.[0].address')
  # After the namespaces: the private mount namespace copies their /run/netns files.
  start_private_bpffs $(( ${#ROWS[@]} * ${#QUEUE_SETS[@]} * MAX_ATTEMPTS * (RUN_SECONDS + 15) + 120 ))
}

CUR_QUEUES=1
set_queues() {
  local q=$1
  CUR_QUEUES=$q
  ip netns exec "$GEN_NS" ethtool -L "$GEN_IF" rx "$q" tx "$q"
  ip netns exec "$DUT_NS" ethtool -L "$DUT_IF" rx "$q" tx "$q"
}

dut_has_xdp() {
  ip -n "$DUT_NS" -d link show dev "$DUT_IF" 2>/dev/null | grep -q 'prog/xdp'
}

# xdpctl pins its links and its policy (global to a bpffs), xdp-filter its maps (shared by
# every interface it runs on). Both get a bpffs of their own, mounted in a private mount
# namespace that a sleeping process holds: the machine's xdpctl policy or xdp-filter cannot
# change what a row measures, the rows cannot change the machine's, and nothing of them can
# stay in the host's bpffs. The sleep bounds the holder's life if this script is killed -9.
start_private_bpffs() {
  unshare --mount --propagation private \
    sh -c "mount -t bpf xdpctl-bench /sys/fs/bpf && exec sleep $1" </dev/null >/dev/null 2>&1 &
  BPFFS_HOLDER=$!
  for _ in $(seq 50); do
    if [ "$(nsenter --mount="/proc/$BPFFS_HOLDER/ns/mnt" stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ]; then
      return 0
    fi
    sleep 0.1
  done
  die "cannot mount a private bpffs (unshare --mount)"
}

in_private() { nsenter --mount="/proc/$BPFFS_HOLDER/ns/mnt" "$@"; }
in_filter_ns() { in_private nsenter --net="/run/netns/$DUT_NS" "$@"; }
xdpctl() { in_private "$XDPCTL" -n "$DUT_NS" "$@"; }

# ---- rows ----------------------------------------------------------------------------------
# Each row: an id, its label, and functions row_setup_ID / row_counter_ID / row_teardown_ID
# (and optionally row_check_ID, run after the traffic). A counter prints "PACKETS" (the
# caller times the read) or "PACKETS SECONDS" (the counter carries its own clock). A setup
# that cannot run prints why and returns non-zero (3: not available yet); it may set
# ROW_NOTE (shown beside the figure), ROW_SRC / ROW_SPORT / ROW_FLOWS / ROW_RATE (the
# traffic), ROW_EXTRA (a second counter function, sampled in the same windows) and
# ROW_PARAMS (a JSON object added to the result). A check may write a note to $TMP/row.note.
ROWS=(kernel_no_listener xdp_drop xdpctl_count_xdp xdpctl_rules_1 xdpctl_rules_1000
      xdpctl_rules_10000 xdpctl_prefix_1m xdpctl_count_tc xdp_filter nft_netdev iptables_raw dpdk
      bare_fwd xdpctl_lb_dsr xdpctl_rate_limit)
# Rows that are not a datapath's rate: reported in a table of their own, not in the chart.
declare -A KIND=([xdpctl_rate_limit]=rate_limit)
declare -A LABEL=(
  [kernel_no_listener]="Kernel stack, no listener (UDP to a closed port)"
  [xdp_drop]="Bare XDP_DROP (the ceiling)"
  [xdpctl_count_xdp]="xdpctl counting only, XDP (frames go on to the stack)"
  [xdpctl_rules_1]="xdpctl drop, 1 rule (UDP dst port $PORT)"
  [xdpctl_rules_1000]="xdpctl drop, 1,000 rules (issue-4 mix)"
  [xdpctl_rules_10000]="xdpctl drop, 10,000 rules (issue-4 mix)"
  [xdpctl_prefix_1m]="xdpctl drop, 1,000,000-prefix set (random sources)"
  [xdpctl_count_tc]="xdpctl counting only, TC (tcx) ingress (frames go on to the stack)"
  [xdp_filter]="xdp-filter, drop UDP/TCP dst port $PORT"
  [nft_netdev]="nftables netdev ingress drop"
  [iptables_raw]="iptables raw PREROUTING drop"
  [dpdk]="DPDK af_xdp PMD + rte_hash, drop"
  [bare_fwd]="Bare MAC rewrite + XDP_TX (the forwarding ceiling; 4,096 flows)"
  [xdpctl_lb_dsr]="xdpctl LB, UDP VIP in dsr mode, $FWD_BACKENDS backends (XDP_TX; 4,096 flows)"
  [xdpctl_rate_limit]="xdpctl rate-limit R (a tenth of the 1-rule rate), offered as fast as the generator goes"
)
declare -A SHORT=(
  [kernel_no_listener]="stack" [xdp_drop]="XDP_DROP" [xdpctl_count_xdp]="xdpctl XDP count"
  [xdpctl_rules_1]="xdpctl 1 rule" [xdpctl_rules_1000]="xdpctl 1k rules"
  [xdpctl_rules_10000]="xdpctl 10k rules" [xdpctl_prefix_1m]="xdpctl 1M prefixes"
  [xdpctl_count_tc]="xdpctl TC count" [xdp_filter]="xdp-filter" [nft_netdev]="nft netdev"
  [iptables_raw]="iptables raw" [dpdk]="DPDK af_xdp"
  [bare_fwd]="bare MAC fwd" [xdpctl_lb_dsr]="xdpctl LB dsr" [xdpctl_rate_limit]="xdpctl rate-limit"
)
# The issue's reference ratios to bare XDP_DROP: "1 queue" "2 queues".
declare -A REF=(
  [kernel_no_listener]="0.09-0.15|0.09" [xdp_drop]="1|1" [xdp_filter]="0.69-0.72|0.62-0.68"
  [nft_netdev]="0.24-0.41|0.24-0.30" [iptables_raw]="0.21-0.40|0.20-0.28"
)
declare -A COUNTER_DESC=(
  [kernel_no_listener]="/proc/net/snmp Udp NoPorts"
  [xdp_drop]="ethtool -S rx_queue_*_xdp_drops"
  [xdpctl_count_xdp]="xdpctl stats: xdp verdict pass+drop"
  [xdpctl_count_tc]="xdpctl stats: tc_ingress verdict pass+drop"
  [xdpctl_rules_1]="xdpctl stats: xdp verdict pass+drop"
  [xdpctl_rules_1000]="xdpctl stats: xdp verdict pass+drop"
  [xdpctl_rules_10000]="xdpctl stats: xdp verdict pass+drop"
  [xdpctl_prefix_1m]="xdpctl stats: xdp verdict pass+drop"
  [xdpctl_rate_limit]="xdpctl stats: xdp verdict pass+drop; passed by the limit: rule 2's packets (xdpctl rule list --json)"
  [xdp_filter]="xdp-filter status: XDP_DROP"
  [nft_netdev]="nft rule counter"
  [iptables_raw]="iptables -t raw -nvxL rule packets"
  [dpdk]="xdpctl-dpdk-bench rx (its per-second report)"
  [bare_fwd]="ethtool -S rx_queue_*_xdp_tx"
  [xdpctl_lb_dsr]="xdpctl lb list --json: counters.forwarded"
)
if [ -n "$ONLY_ROWS" ]; then
  for id in ${ONLY_ROWS//,/ }; do
    [ -n "${LABEL[$id]:-}" ] || die "--rows: no row '$id' (rows: ${ROWS[*]})"
  done
  IFS=' ' read -r -a ROWS <<<"${ONLY_ROWS//,/ }"
fi

dut() { ip netns exec "$DUT_NS" "$@"; }

# kernel stack: nothing attached; the UDP layer counts datagrams to closed ports.
row_setup_kernel_no_listener() { :; }
row_counter_kernel_no_listener() {
  # shellcheck disable=SC2016 # awk's $, not the shell's
  dut awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["NoPorts"] }' /proc/net/snmp
}
row_teardown_kernel_no_listener() { :; }

row_setup_xdp_drop() {
  ip -n "$DUT_NS" link set dev "$DUT_IF" xdpdrv obj "$EMPTY_OBJ" program bench_xdp_drop
}
row_counter_xdp_drop() {
  dut ethtool -S "$DUT_IF" | awk '/rx_queue_[0-9]+_xdp_drops:/ { n += $2 } END { print n + 0 }'
}
row_teardown_xdp_drop() { ip -n "$DUT_NS" link set dev "$DUT_IF" xdpdrv off; }

xdpctl_verdicts() {
  xdpctl stats "$DUT_IF" --json |
    jq --arg h "$1" '.interfaces[0].hooks[$h].verdict | .pass.packets + .drop.packets'
}
# Counting only means every frame passes: a drop would mean a policy got in (the private
# bpffs starts with none), and the row would measure something else.
xdpctl_check_no_drops() {
  local drops
  drops=$(xdpctl stats "$DUT_IF" --json | jq --arg h "$1" '.interfaces[0].hooks[$h].verdict.drop.packets')
  [ "$drops" = 0 ] || { echo "xdpctl dropped $drops frames while only counting (a policy is loaded?)"; return 1; }
}
xdpctl_unload() { xdpctl unload "$DUT_IF" >/dev/null && XDPCTL_LOADED=0; }

row_setup_xdpctl_count_xdp() {
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook xdp --mode native >/dev/null
}
row_counter_xdpctl_count_xdp() { xdpctl_verdicts xdp; }
row_check_xdpctl_count_xdp() { xdpctl_check_no_drops xdp; }
row_teardown_xdpctl_count_xdp() { xdpctl_unload; }

row_setup_xdpctl_count_tc() {
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook tc --tc-mode tcx >/dev/null
}
row_counter_xdpctl_count_tc() { xdpctl_verdicts tc_ingress; }
row_check_xdpctl_count_tc() { xdpctl_check_no_drops tc_ingress; }
row_teardown_xdpctl_count_tc() { xdpctl_unload; }

# The policy rows: xdpctl on XDP with a policy applied in the private bpffs (the policy is
# global to it). Their teardown applies the empty policy before the unload, so the last
# unload takes the policy maps away and the counting rows run without a policy, as in a
# fresh bpffs.
xdpctl_policy_clear() {
  printf 'default pass\n' >"$TMP/empty.policy"
  xdpctl apply "$TMP/empty.policy" >/dev/null
}
xdpctl_policy_teardown() { xdpctl_policy_clear; xdpctl_unload; }

# Every frame of the traffic must be dropped by a rule (some ARP or neighbour discovery
# passes): a row that dropped less would measure something else. Also says, in the row's
# note, which rule decided.
xdpctl_check_dropped() {
  local st
  st=$(xdpctl stats "$DUT_IF" --json | jq '.interfaces[0].hooks.xdp.verdict')
  jq -e '.drop.packets >= 0.99 * (.pass.packets + .drop.packets)' <<<"$st" >/dev/null || {
    echo "xdpctl dropped $(jq '.drop.packets' <<<"$st") of $(jq '.pass.packets + .drop.packets' <<<"$st") frames: the policy does not drop the traffic"
    return 1
  }
  xdpctl rule list --json | jq -r '.rules | length as $n | to_entries | max_by(.value.packets)
    | "deciding rule: id \(.value.id), \(.value.action), priority \(.value.priority), \(.key + 1) of \($n) in evaluation order"' \
    >"$TMP/row.note"
}

# A policy file: N rules of the mix ending with the drop rule for the traffic (id N).
rules_policy() {
  local n=$1 f=$TMP/rules_$1.policy
  if [ ! -s "$f" ]; then
    {
      echo "default pass"
      [ "$n" -le 1 ] || "$BENCHGEN" rules $((n - 1)) --seed "$n" --drop-src "$GEN_V4"
      echo "rule --id $n --priority $RULES_DROP_PRIORITY --proto udp --dport $PORT --action drop"
    } >"$f.tmp" && mv "$f.tmp" "$f"
  fi
  echo "$f"
}
xdpctl_rules_setup() {
  local f
  f=$(rules_policy "$1") || return 1
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook xdp --mode native >/dev/null &&
    xdpctl apply "$f" >/dev/null
}
for n in 1 1000 10000; do
  eval "row_setup_xdpctl_rules_$n() { xdpctl_rules_setup $n; }
    row_counter_xdpctl_rules_$n() { xdpctl_verdicts xdp; }
    row_check_xdpctl_rules_$n() { xdpctl_check_dropped; }
    row_teardown_xdpctl_rules_$n() { xdpctl_policy_teardown; }"
done

row_setup_xdpctl_prefix_1m() {
  local f=$TMP/bgp.set a
  if [ ! -s "$f" ]; then
    a=${PREFIX_SRC%%.*}
    {
      "$BENCHGEN" prefixes $((PREFIX_SET_SIZE - 16)) --seed 1
      for i in $(seq "$a" $((a + 15))); do echo "$i.0.0.0/8"; done
    } >"$f.tmp" && mv "$f.tmp" "$f"
  fi
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook xdp --mode native >/dev/null &&
    xdpctl set load bgp "$f" >/dev/null &&
    xdpctl rule add --src @bgp --action drop >/dev/null || return 1
  ROW_SRC=$PREFIX_SRC ROW_FLOWS=random
  ROW_NOTE="a set of $(xdpctl set list --json | jq '.sets[] | select(.name == "bgp") | .ipv4') IPv4 prefixes (BGP-like: /8 to /32, mostly /24), source addresses random in $PREFIX_SRC"
}
row_counter_xdpctl_prefix_1m() { xdpctl_verdicts xdp; }
row_check_xdpctl_prefix_1m() { xdpctl_check_dropped; }
row_teardown_xdpctl_prefix_1m() { xdpctl_policy_teardown; }

# Rate limit: rule 1 limits the traffic; what it lets through goes on to rule 2, which
# drops it (so nothing reaches the stack) and whose counter is the limit's pass rate.
row_setup_xdpctl_rate_limit() {
  local q=$1 r b
  # A tenth of the 1-rule row's figure, rounded to 1,000 pps.
  r=$(jq -rs --argjson q "$q" --argjson dflt "$RATE_PPS" '
    [.[] | select(.id == "xdpctl_rules_1" and .queues == $q and .status == "ok") | .pps][0]
    | if . then (. / 10 / 1000 | round) * 1000 else $dflt end' "$RESULTS")
  b=$((r / 10))
  printf '%s\n' "default pass" \
    "rule --id 1 --priority 10 --proto udp --dport $PORT --action rate-limit $r --burst $b" \
    "rule --id 2 --priority 20 --proto udp --dport $PORT --action drop" >"$TMP/rate.policy"
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook xdp --mode native >/dev/null &&
    xdpctl apply "$TMP/rate.policy" >/dev/null || return 1
  ROW_EXTRA=xdpctl_rate_passed
  ROW_PARAMS=$(jq -nc --argjson r "$r" --argjson b "$b" '{rate_limit: {rate_pps: $r, burst: $b}}')
}
row_counter_xdpctl_rate_limit() { xdpctl_verdicts xdp; }
xdpctl_rate_passed() { xdpctl rule list --json | jq '.rules[] | select(.id == 2) | .packets'; }
row_check_xdpctl_rate_limit() { xdpctl_check_dropped; }
row_teardown_xdpctl_rate_limit() { xdpctl_policy_teardown; }

row_setup_xdp_filter() {
  XDP_FILTER_LOADED=1
  in_filter_ns xdp-filter load "$DUT_IF" --mode native &&
    in_filter_ns xdp-filter port "$PORT" --mode dst
}
row_counter_xdp_filter() {
  in_filter_ns xdp-filter status | awk '$1 == "XDP_DROP" { print $2; exit }'
}
row_teardown_xdp_filter() { in_filter_ns xdp-filter unload "$DUT_IF"; XDP_FILTER_LOADED=0; }

row_setup_nft_netdev() {
  dut nft -f - <<EOF
table netdev xdpctl_bench {
  chain ingress {
    type filter hook ingress device "$DUT_IF" priority 0;
    udp dport $PORT counter drop
  }
}
EOF
}
row_counter_nft_netdev() {
  dut nft -j list table netdev xdpctl_bench |
    jq '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add'
}
row_teardown_nft_netdev() { dut nft delete table netdev xdpctl_bench; }

row_setup_iptables_raw() {
  dut iptables -t raw -A PREROUTING -i "$DUT_IF" -p udp --dport "$PORT" -j DROP
}
row_counter_iptables_raw() {
  dut iptables -t raw -nvxL PREROUTING | awk '$3 == "DROP" { print $1; exit }'
}
row_teardown_iptables_raw() { dut iptables -t raw -D PREROUTING -i "$DUT_IF" -p udp --dport "$PORT" -j DROP; }

# DPDK: the af_xdp PMD puts its own XDP program (redirect to AF_XDP sockets) on the DUT end;
# the application polls one queue per lcore, on the last CPU. It needs a polling CPU of its
# own: on 1 queue it gets one the generator leaves free; with 2 queues on 2 CPUs it shares
# one with a generator thread.
#
# DPDK 22.11's af_xdp PMD takes a device without combined channels, as veth is, for a
# single queue (xdp_get_channels_info), and an AF_XDP socket in copy mode only receives from
# its own queue. So on "2 queues" the DUT end gets 1 queue fed by the 2 generator threads,
# and one lcore polls it; the row says so.
DPDK_PID=
row_setup_dpdk() {
  [ -x "$DPDK_BENCH" ] || { echo "built without DPDK (meson -Ddpdk=enabled)"; return 1; }
  local q=$1 lcores mem
  lcores=$((NCPU - 1))
  if [ "$q" -gt 1 ]; then
    # veth wants an XDP end's rx queues >= its peer's tx queues: both ends go to 1.
    set_queues 1
    CUR_QUEUES=$q
    ROW_NOTE="the af_xdp PMD sees one queue on a veth: $q generator threads feed 1 veth queue, polled by 1 lcore on CPU $lcores"
    if [ "$lcores" -lt "$q" ]; then
      ROW_NOTE+=", which it shares with a generator thread"
      ROW_SHARES_CPU=1
    fi
  fi
  # Hugepages when mounted and free, malloc'd memory otherwise.
  if grep -q hugetlbfs /proc/mounts && [ "$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)" -gt 128 ]; then
    mem=(-m 256)
  else
    mem=(--no-huge -m 512)
  fi
  : >"$TMP/dpdk.out"
  ip netns exec "$DUT_NS" timeout --signal=TERM $((RUN_SECONDS + 30)) \
    "$DPDK_BENCH" "${mem[@]}" -l "$lcores" --no-pci --no-shconf --file-prefix "$DPDK_PREFIX" \
    --log-level=notice --vdev "net_af_xdp0,iface=$DUT_IF,start_queue=0,queue_count=1" \
    -- --dport "$PORT" --duration $((RUN_SECONDS + 4)) </dev/null >"$TMP/dpdk.out" 2>"$TMP/dpdk.err" &
  DPDK_PID=$!
  BG_PIDS+=("$DPDK_PID")

  for _ in $(seq 300); do
    grep -q '"t"' "$TMP/dpdk.out" && return 0
    kill -0 "$DPDK_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -v "^libbpf: elf: skipping" "$TMP/dpdk.err" | tail -12
  return 1
}
row_counter_dpdk() {
  grep '"t"' "$TMP/dpdk.out" | grep -v '"final"' | tail -1 | jq -r '"\(.rx) \(.t)"'
}
row_teardown_dpdk() {
  if [ -n "$DPDK_PID" ]; then
    kill -TERM "$DPDK_PID" 2>/dev/null
    wait "$DPDK_PID" 2>/dev/null || true
    DPDK_PID=
  fi
  # A killed application leaves its XDP program behind.
  ip -n "$DUT_NS" link set dev "$DUT_IF" xdp off 2>/dev/null || true
  rm -rf "/var/run/dpdk/$DPDK_PREFIX"
  set_queues "$CUR_QUEUES" 2>/dev/null || true
}

# Forwarding: the DUT sends every frame back out of its end with XDP_TX. A veth takes XDP
# frames only with an XDP program (or GRO) on the receiving end; the generator's end gets
# bench_xdp_drop, which drops what comes back at once (with GRO the frames would go on to
# the generator namespace's stack). The generator's own live-frames transmit goes out of
# the same end (ndo_xdp_xmit into the DUT's ring) and does not pass its XDP program.
# Each check also counts what arrived back at the generator's end: a forwarded frame the
# veth could not deliver would not be forwarding.
gen_xdp_stat() {
  ip netns exec "$GEN_NS" ethtool -S "$GEN_IF" |
    awk -v s="$1" '$1 ~ ("^rx_queue_[0-9]+_" s ":$") { n += $2 } END { print n + 0 }'
}
dut_xdp_stat() {
  dut ethtool -S "$DUT_IF" | awk -v s="$1" '$1 ~ ("^rx_queue_[0-9]+_" s ":$") { n += $2 } END { print n + 0 }'
}
fwd_setup() {
  ip -n "$GEN_NS" link set dev "$GEN_IF" xdpdrv obj "$EMPTY_OBJ" program bench_xdp_drop || return 1
  ROW_SRC=$FWD_SRC ROW_SPORT=$FWD_SPORT ROW_FLOWS=seq
  FWD_BACK0=$(gen_xdp_stat xdp_drops) FWD_TX0=$(dut_xdp_stat xdp_tx)
}
fwd_teardown() { ip -n "$GEN_NS" link set dev "$GEN_IF" xdpdrv off; }
# What the DUT forwarded since fwd_setup arrived back (dropped by the generator's end).
fwd_check_back() {
  local tx back
  tx=$(( $(dut_xdp_stat xdp_tx) - FWD_TX0 ))
  back=$(( $(gen_xdp_stat xdp_drops) - FWD_BACK0 ))
  if [ "$tx" -eq 0 ] || [ "$back" -lt $(( tx * 99 / 100 )) ]; then
    echo "the DUT sent $tx frames with XDP_TX, $back of them arrived back at the generator's end"
    return 1
  fi
  FWD_NOTE="$back of $tx frames sent back arrived at the generator's end"
}
fwd_mac() { printf '02:00:00:00:b1:%02x' "$1"; }

row_setup_bare_fwd() {
  fwd_setup || return 1
  ip -n "$DUT_NS" link set dev "$DUT_IF" xdpdrv obj "$EMPTY_OBJ" program bench_xdp_fwd
}
row_counter_bare_fwd() { dut_xdp_stat xdp_tx; }
row_check_bare_fwd() { fwd_check_back && echo "$FWD_NOTE" >"$TMP/row.note"; }
row_teardown_bare_fwd() {
  ip -n "$DUT_NS" link set dev "$DUT_IF" xdpdrv off
  fwd_teardown
}

FWD_VIP=$DUT_V4:$PORT/udp
row_setup_xdpctl_lb_dsr() {
  local i
  fwd_setup || return 1
  XDPCTL_LOADED=1
  xdpctl load "$DUT_IF" --hook xdp --mode native >/dev/null &&
    xdpctl lb vip add "$FWD_VIP" --mode dsr >/dev/null || return 1
  for i in $(seq "$FWD_BACKENDS"); do
    xdpctl lb backend add "$FWD_VIP" "198.18.0.$((10 + i))" --mac "$(fwd_mac "$i")" >/dev/null || return 1
  done
}
row_counter_xdpctl_lb_dsr() { xdpctl lb list --json | jq '.counters.forwarded'; }
# Every frame of the traffic forwarded (a few ARP or neighbour frames pass), every backend
# used, and what was forwarded arrived back.
row_check_xdpctl_lb_dsr() {
  local st lb
  st=$(xdpctl stats "$DUT_IF" --json | jq '.interfaces[0].hooks.xdp.verdict')
  lb=$(xdpctl lb list --json)
  jq -e --argjson st "$st" '.counters.forwarded >= 0.99 * ($st.pass.packets + $st.drop.packets)' <<<"$lb" >/dev/null || {
    echo "xdpctl forwarded $(jq '.counters.forwarded' <<<"$lb") of $(jq '.pass.packets + .drop.packets' <<<"$st") frames: the VIP does not take the traffic ($(jq -c .counters <<<"$lb"))"
    return 1
  }
  jq -e '[.vips[0].backends[].counters.packets] | all(. > 0)' <<<"$lb" >/dev/null || {
    echo "a backend got no traffic: $(jq -c '[.vips[0].backends[] | {address, packets: .counters.packets}]' <<<"$lb")"
    return 1
  }
  fwd_check_back || return 1
  jq -r --arg back "$FWD_NOTE" '.counters as $c | "connection table: \($c.conntrack_hits) hits, \($c.conntrack_misses) misses; backends \([.vips[0].backends[].counters.packets] | add as $t | map(. * 100 / $t | round | tostring + "%") | join(" / ")); \($back)"' \
    <<<"$lb" >"$TMP/row.note"
}
row_teardown_xdpctl_lb_dsr() {
  xdpctl lb vip del "$FWD_VIP" >/dev/null
  xdpctl_unload
  fwd_teardown
}

# ---- measuring -----------------------------------------------------------------------------
# Whole seconds (the generator's --duration), rounded up: the quick run's windows are halves.
RUN_SECONDS=$(awk -v w="$WARMUP" -v t="$WINDOW" -v n="$WINDOWS" 'BEGIN { s = w + t * n + 1; printf "%d", (s == int(s)) ? s : int(s) + 1 }')
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

now() { date +%s.%N; }

# Prints "PACKETS SECONDS": the counter (a function) and when it was read (its own clock,
# or the middle of the read).
sample() {
  local fn=$1 t0 t1 out
  t0=$(now)
  out=$("$fn")
  t1=$(now)
  # shellcheck disable=SC2086 # the counter's words, split on purpose
  set -- $out
  [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]] || return 1
  if [ $# -ge 2 ]; then echo "$1 $2"; else echo "$1 $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (a + b) / 2 }')"; fi
}

record() {  # id queues status [jq args defining the rest]
  local id=$1 q=$2 status=$3
  shift 3
  jq -nc --arg id "$id" --argjson q "$q" --arg status "$status" "$@" \
    '{id: $id, queues: $q, status: $status} + ($extra | fromjson)' >>"$RESULTS"
}

# Nanoseconds the threads of these processes spent runnable but waiting for a CPU
# (/proc/PID/task/TID/schedstat, field 2): how much other work took from the measured path.
# The DUT's processing runs inline in the generator threads (softirq at the end of each
# batch), so their waiting is the row's.
runq_wait_ns() {
  local pid t total=0 wait
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*/schedstat; do
      # A thread can end between the glob and the read.
      read -r _ wait _ 2>/dev/null <"$t" || continue
      total=$((total + wait))
    done
  done
  echo "$total"
}

# One attempt at a row: setup, generator, warm-up, windows, teardown. Sets ATTEMPT_STATUS
# (ok, not_available, failed), ATTEMPT_NOTE, and for ok ATTEMPT_JSON.
attempt() {
  local id=$1 q=$2 rc=0 why
  ATTEMPT_STATUS=failed ATTEMPT_NOTE='' ATTEMPT_JSON=''
  ROW_NOTE='' ROW_EXTRA='' ROW_PARAMS='{}'
  rm -f "$TMP/row.note"
  # The traffic; a row's setup may spread it (a prefix-set row wants random sources) or
  # cap it (0: as fast as the generator goes).
  ROW_SRC=$GEN_V4 ROW_SPORT=1024 ROW_FLOWS=seq ROW_RATE=0
  # Set by a setup whose row shares a CPU with the generator by design: its CPU wait is
  # reported but is not other work, so it is not measured again for it.
  ROW_SHARES_CPU=0
  # Not $(...): a setup that starts a background process would hold the pipe open.
  "row_setup_$id" "$q" >"$TMP/setup.out" 2>&1 || rc=$?
  why=$(tail -c 600 "$TMP/setup.out")
  if [ "$rc" -eq 3 ]; then
    ATTEMPT_STATUS=not_available ATTEMPT_NOTE=$why
    return
  elif [ "$rc" -ne 0 ]; then
    ATTEMPT_NOTE="setup failed: $why"
    "row_teardown_$id" >/dev/null 2>&1 || true
    return
  fi

  local cpus pg_pid watch
  cpus=$(seq -s, 0 $((q - 1)))
  timeout --signal=TERM $((RUN_SECONDS + 20)) \
    "$PKTGEN" --netns "$GEN_NS" "$GEN_IF" --threads "$q" --cpus "$cpus" --size "$FRAME_SIZE" \
    --src "$ROW_SRC" --dst "$DUT_V4" --sport "$ROW_SPORT" --dport "$PORT" --flows "$ROW_FLOWS" \
    --rate "$ROW_RATE" --dst-mac "$DUT_MAC" --duration "$RUN_SECONDS" -q >"$TMP/pktgen.json" 2>"$TMP/pktgen.err" &
  pg_pid=$!
  BG_PIDS+=("$pg_pid")

  sleep "$WARMUP"
  # timeout's child is the generator. The DPDK poller counts on 1 queue, where it has a CPU
  # of its own; on 2 it shares one with the generator by design.
  watch="$(pgrep -P "$pg_pid" | tr '\n' ' ' || true)"  # none: the generator is gone (its error below)
  [ -z "$DPDK_PID" ] || [ "$q" -ne 1 ] || watch+=" $(pgrep -P "$DPDK_PID" | tr '\n' ' ')"
  local s0 s1 w0 w1 x0='' x1 samples=() waits=() extra=() err=''
  rate() { echo "$1 $2" | awk '{ printf "%.0f", ($3 - $1) / ($4 - $2) }'; }
  # shellcheck disable=SC2086 # a list of PIDs
  w0=$(runq_wait_ns $watch)
  s0=$(sample "row_counter_$id") || err="cannot read the counter (${COUNTER_DESC[$id]})"
  if [ -z "$err" ] && [ -n "$ROW_EXTRA" ]; then
    x0=$(sample "$ROW_EXTRA") || err="cannot read the counter $ROW_EXTRA"
  fi
  for _ in $(seq "$WINDOWS"); do
    [ -z "$err" ] || break
    sleep "$WINDOW"
    s1=$(sample "row_counter_$id") || { err="cannot read the counter (${COUNTER_DESC[$id]})"; break; }
    # shellcheck disable=SC2086
    w1=$(runq_wait_ns $watch)
    if [ -n "$ROW_EXTRA" ]; then
      x1=$(sample "$ROW_EXTRA") || { err="cannot read the counter $ROW_EXTRA"; break; }
      extra+=("$(rate "$x0" "$x1")")
      x0=$x1
    fi
    samples+=("$(rate "$s0" "$s1")")
    waits+=("$(awk -v a="$w0" -v b="$w1" -v t="$WINDOW" -v n="$q" 'BEGIN { printf "%.3f", (b - a) / 1e9 / t / n }')")
    s0=$s1 w0=$w1
  done
  # The windows are read: stop the generator now rather than at the end of its duration
  # (RUN_SECONDS keeps a second of margin for slow counter reads). It stops at once on
  # TERM, with its final JSON, and exits 130 (interrupted). The signal goes to the
  # generator itself (timeout's child, found above), not to timeout, which would signal it
  # twice (itself and its process group): the second TERM would kill it once it unblocks
  # signals.
  local stopped=0 grc=0
  # shellcheck disable=SC2086 # a list of PIDs
  [ -z "$watch" ] || ! kill -TERM $(pgrep -P "$pg_pid") 2>/dev/null || stopped=1
  wait "$pg_pid" || grc=$?
  if [ "$grc" -ne 0 ] && { [ "$stopped" -eq 0 ] || [ "$grc" -ne 130 ]; }; then
    err=${err:-"generator failed (exit $grc): $(tail -2 "$TMP/pktgen.err")"}
  fi
  if [ -z "$err" ] && declare -F "row_check_$id" >/dev/null; then
    err=$("row_check_$id" 2>&1) || true
  fi
  "row_teardown_$id" >/dev/null 2>&1 || err=${err:-"teardown failed"}
  if dut_has_xdp; then
    ip -n "$DUT_NS" link set dev "$DUT_IF" xdp off
    err=${err:-"an XDP program stayed on the DUT after teardown"}
  fi
  if ip -n "$GEN_NS" -d link show dev "$GEN_IF" 2>/dev/null | grep -q 'prog/xdp'; then
    ip -n "$GEN_NS" link set dev "$GEN_IF" xdp off
    err=${err:-"an XDP program stayed on the generator's end after teardown"}
  fi
  if [ -n "$err" ]; then
    ATTEMPT_NOTE=$err
    return
  fi
  [ ! -s "$TMP/row.note" ] || ROW_NOTE="${ROW_NOTE:+$ROW_NOTE; }$(cat "$TMP/row.note")"
  ATTEMPT_STATUS=ok
  ATTEMPT_JSON=$(jq -c --arg c "${COUNTER_DESC[$id]}" --arg note "$ROW_NOTE" --arg shares "$ROW_SHARES_CPU" \
    --argjson s "$(printf '%s\n' "${samples[@]}" | jq -s .)" \
    --argjson wt "$(printf '%s\n' "${waits[@]}" | jq -s .)" \
    --argjson x "$(printf '%s\n' "${extra[@]}" | jq -s .)" --arg xfn "$ROW_EXTRA" \
    --argjson params "$ROW_PARAMS" '
    {samples_pps: $s,
     pps: ($s | sort | .[(length - 1) / 2 | floor]),
     offered_pps: .pps,
     generator_packets: .packets,
     not_delivered: (.peer.not_delivered // null),
     traffic: {src, dst, sport, dport, flows, order},
     cpu_wait_share: ($wt | max),
     cpu_shared_with_generator: ($shares == "1"),
     samples_cpu_wait_share: $wt,
     counter: $c} + $params + (if $note == "" then {} else {note: $note} end)
    + (if $xfn == "" then {} else
        {extra: {counter: $xfn, samples_pps: $x, pps: ($x | sort | .[(length - 1) / 2 | floor])}} end)' \
    "$TMP/pktgen.json")
}

# A row at one queue count. A full run measures again (up to MAX_ATTEMPTS) when other work
# kept the measured threads waiting for a CPU more than WAIT_LIMIT of the time, and keeps
# the least disturbed attempt; the report shows how disturbed it was.
measure() {
  local id=$1 q=$2 n best='' best_wait=''
  for n in $(seq "$MAX_ATTEMPTS"); do
    attempt "$id" "$q"
    if [ "$ATTEMPT_STATUS" != ok ]; then
      [ -z "$best" ] || break
      record "$id" "$q" "$ATTEMPT_STATUS" --arg extra "$(jq -nc --arg n "$ATTEMPT_NOTE" '{note: $n}')"
      if [ "$ATTEMPT_STATUS" = not_available ]; then say "  $id: $ATTEMPT_NOTE"; else say "  $id: FAILED: $ATTEMPT_NOTE"; fi
      return 0
    fi
    local wait_share
    wait_share=$(jq -n "$ATTEMPT_JSON | .cpu_wait_share")
    if [ -z "$best" ] || awk -v a="$wait_share" -v b="$best_wait" 'BEGIN { exit !(a < b) }'; then
      best=$ATTEMPT_JSON best_wait=$wait_share
    fi
    [ "$ROW_SHARES_CPU" -eq 0 ] || break
    awk -v a="$best_wait" -v l="$WAIT_LIMIT" 'BEGIN { exit !(a <= l) }' && break
    if [ "$n" -lt "$MAX_ATTEMPTS" ]; then
      say "  $id: other work held the CPUs ${best_wait} of the time; measuring again"
      # Let a burst of other work pass rather than run into it again at once.
      sleep 3
    fi
  done
  best=$(jq -c --argjson n "$n" '. + {attempts: $n}' <<<"$best")
  record "$id" "$q" ok --arg extra "$best"
  say "  $(printf '%-20s %d queue(s): %7.3f Mpps processed, %7.3f Mpps offered, CPU wait %s' "$id" "$q" \
    "$(jq -n "$best | .pps / 1e6")" "$(jq -n "$best | .offered_pps / 1e6")" "$best_wait")"
}

# ---- micro benchmarks ----------------------------------------------------------------------
# xdpctl-microbench (ns per packet per program path, policies of 1/1k/10k rules) and
# xdpctl-prefixbench (prefix tables against the kernel's LPM trie) through
# BPF_PROG_TEST_RUN, after the matrix so that no generator runs beside them, each in a bpffs
# of its own. A quick run takes the two cheapest paths of the first and skips the second.
MICRO=$TMP/micro.json
run_micro_one() {  # name binary [benchmark args...]
  local name=$1 bin=$2 raw=$TMP/$1.raw.json status=ok note=''
  shift 2
  : >"$TMP/$name.err"
  if [ ! -x "$bin" ]; then
    status=not_available note="$bin is not built (meson -Dbench=true)"
  elif ! unshare --mount --propagation private sh -c 'mount -t bpf xdpctl-bench /sys/fs/bpf && exec "$@"' sh \
      "$bin" --benchmark_out="$raw" --benchmark_out_format=json "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
      [ ! -s "$raw" ]; then
    status=failed note="$(tail -c 600 "$TMP/$name.err")"
  fi
  say "  $name: $status${note:+ ($note)}"
  # Benchmark's own fields out, the counters (ns_per_packet, ...) kept; the log lines
  # (policy compile and commit times) with them.
  jq -nc --arg name "$name" --arg status "$status" --arg note "$note" --arg args "$*" \
    --rawfile log "$TMP/$name.err" --slurpfile raw <( [ "$status" = ok ] && cat "$raw" || echo '{}') '
    {($name): ({status: $status, args: $args}
      + (if $note == "" then {} else {note: $note} end)
      + (if $status == "ok" then {
          log: ($log | split("\n") | map(select(test("^policy of|error"; "i")))),
          library_build_type: $raw[0].context.library_build_type,
          benchmarks: [$raw[0].benchmarks[] | select(.run_type == "iteration")
            | {name: (.name | sub("/manual_time$"; "") | sub("/iterations:[0-9]+"; ""))}
              + with_entries(select(.key | IN("name", "family_index", "per_family_instance_index",
                  "run_name", "run_type", "repetitions", "repetition_index", "threads",
                  "cpu_time", "items_per_second") | not))]}
         else {} end))}' >>"$MICRO"
}
run_micro() {
  : >"$MICRO"
  if [ -n "$ONLY_ROWS" ]; then
    jq -nc '{"xdpctl-microbench": {status: "skipped", note: "--rows run"},
             "xdpctl-prefixbench": {status: "skipped", note: "--rows run"}}' >>"$MICRO"
    return
  fi
  say "micro benchmarks:"
  if [ "$QUICK" -eq 1 ]; then
    run_micro_one xdpctl-microbench "$MICROBENCH" '--benchmark_filter=^(empty_xdp|xdpctl_xdp)/tcp4_64' \
      --benchmark_min_time=0.05
    run_micro_one xdpctl-microbench-ratios "$MICROBENCH" "--benchmark_filter=$MICRO_RATIO_CASES" \
      --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true --benchmark_min_time=0.05
    jq -nc '{"xdpctl-prefixbench": {status: "skipped", note: "quick run: run scripts/bench.sh without --quick"}}' >>"$MICRO"
  else
    run_micro_one xdpctl-microbench "$MICROBENCH"
    run_micro_one xdpctl-prefixbench "$PREFIXBENCH"
    # The cases issue 12's micro bars compare (parse+count and the LB's conntrack hit against
    # the empty program), again: a single run of each drifts 10-40 % with what else the
    # host does, so each runs MICRO_REPS times in a random order among the others and the
    # bars take the medians.
    run_micro_one xdpctl-microbench-ratios "$MICROBENCH" "--benchmark_filter=$MICRO_RATIO_CASES" \
      --benchmark_repetitions="$MICRO_REPS" --benchmark_enable_random_interleaving=true
  fi
}
MICRO_REPS=9
MICRO_RATIO_CASES='^(empty_xdp/tcp4_64|xdpctl_xdp/no_policy_no_vip/tcp4_64|xdpctl_xdp_lb/conntrack_hit)(/|$)'


# ---- control plane, and one rule beside xdp-filter's (issue 4) -----------------------------
# bench/control_plane.sh (rule add/del at 10,000 rules, apply, set load of 1M prefixes, map
# memory) and bench/prog_run_compare.sh (ns/packet of xdpctl with one rule and xdp-filter
# with the equivalent rule on the same frame, and both programs' sizes: xdpctl's follows the
# policy), each in a bpffs of its own. Full runs only.
CONTROL=$TMP/control.json
run_control() {
  if [ "$QUICK" -eq 1 ] || [ -n "$ONLY_ROWS" ]; then
    jq -nc '{status: "skipped", note: "full runs only"}' >"$CONTROL"
    return
  fi
  say "control plane; one rule beside xdp-filter:"
  local cp pr pr10k
  cp=$(bash "$REPO/bench/control_plane.sh" "$BUILD" 2>"$TMP/control.err") &&
    jq -e . <<<"$cp" >/dev/null 2>&1 || cp=$(jq -nc --rawfile e "$TMP/control.err" '{status: "failed", note: ($e | .[-400:])}')
  pr=$(bash "$REPO/bench/prog_run_compare.sh" "$BUILD/ctl/xdpctl" 2>"$TMP/compare.err") &&
    jq -e . <<<"$pr" >/dev/null 2>&1 || pr=$(jq -nc --rawfile e "$TMP/compare.err" '{status: "failed", note: ($e | .[-400:])}')
  # Issue 12's one-field case: 10,000 source /32 drop rules in both, the frame's source among them.
  pr10k=$(bash "$REPO/bench/prog_run_compare.sh" "$BUILD/ctl/xdpctl" 7 1000000 10000 2>"$TMP/compare10k.err") &&
    jq -e . <<<"$pr10k" >/dev/null 2>&1 || pr10k=$(jq -nc --rawfile e "$TMP/compare10k.err" '{status: "failed", note: ($e | .[-400:])}')
  say "  $cp"
  say "  $pr"
  say "  $pr10k"
  jq -nc --argjson cp "$cp" --argjson pr "$pr" --argjson pr10k "$pr10k" \
    '{control_plane: $cp, one_rule_vs_xdp_filter: $pr, src_rules_10000_vs_xdp_filter: $pr10k}' >"$CONTROL"
}

# ---- run -----------------------------------------------------------------------------------
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Figures only compare within a run; other work on two CPUs moves them all the same way only
# if it is steady, so say when there is some.
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  say "warning: load average $LOAD_START before the run: other work shares the CPUs, figures will be noisy"
fi
# The cost model every figure of the run depends on: a helper call's measured price and the
# mitigations behind it (bench/cost_model.cpp), taken first, on an idle lab.
COST_MODEL=$("$COSTMODEL" 2>"$TMP/costmodel.err") && jq -e . <<<"$COST_MODEL" >/dev/null 2>&1 ||
  COST_MODEL=$(jq -nc --rawfile e "$TMP/costmodel.err" '{status: "failed", note: ($e | .[-400:])}')
say "cost model: $(jq -r 'if .helper_call_ns then "a helper call costs \(.helper_call_ns * 100 | round / 100) ns (\(.kind)); spec_rstack_overflow: \(.vulnerabilities.spec_rstack_overflow); a grace period \(.rcu.grace_period_ms * 1000 | round / 1000) ms (rcu_expedited \(.rcu.expedited))" else "not measured: \(.note)" end' <<<"$COST_MODEL")"
say "lab $GEN_NS / $DUT_NS; $( [ "$QUICK" -eq 1 ] && echo quick || echo full ) run: warm-up ${WARMUP}s, ${WINDOWS} window(s) of ${WINDOW}s per row"
lab_up
# The generator's one way to send (live frames of BPF_PROG_TEST_RUN), tried once with one
# frame: a kernel that refuses it (EPERM where the host forbids injecting frames, EINVAL
# before Linux 5.18) fails every row alike, so the rows are reported not measured, with its
# reason, and the micro and control-plane parts still run.
LIVE_NOTE=''
if ! "$PKTGEN" --netns "$GEN_NS" "$GEN_IF" --count 1 --size "$FRAME_SIZE" --src 198.18.0.1 --dst "$DUT_V4" \
    --dport "$PORT" --dst-mac "$DUT_MAC" -q >/dev/null 2>"$TMP/probe.err"; then
  LIVE_NOTE="the generator cannot send on this kernel: $(tail -1 "$TMP/probe.err")"
  say "warning: $LIVE_NOTE; no row is measured"
fi
for q in "${QUEUE_SETS[@]}"; do
  set_queues "$q"
  say "$q queue(s), $q generator thread(s):"
  for id in "${ROWS[@]}"; do
    if [ -n "$LIVE_NOTE" ]; then
      record "$id" "$q" not_available --arg extra '{"note": "not measured: no live frames (above)"}'
      continue
    fi
    measure "$id" "$q"
  done
done
# Every row is torn down: nothing of the lab runs beside them.
run_micro
run_control

# ---- report --------------------------------------------------------------------------------
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$( [ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] && echo true || echo false)
labels=$(for id in "${ROWS[@]}"; do jq -nc --arg id "$id" --arg l "${LABEL[$id]}" --arg s "${SHORT[$id]}" \
  --arg r "${REF[$id]:-}" --arg c "${COUNTER_DESC[$id]:-}" --arg k "${KIND[$id]:-rate}" \
  '{($id): {label: $l, short: $s, ref: $r, counter: $c, kind: $k}}'; done | jq -sc add)
order=$(printf '%s\n' "${ROWS[@]}" | jq -Rsc 'split("\n") | map(select(. != ""))')

jq -s \
  --arg started "$STARTED" --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg kernel "$(uname -r)" --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
  --argjson ncpu "$NCPU" --arg commit "$commit" --argjson dirty "$dirty" \
  --argjson quick "$( [ "$QUICK" -eq 1 ] && echo true || echo false)" \
  --argjson warmup "$WARMUP" --argjson window "$WINDOW" --argjson windows "$WINDOWS" \
  --argjson size "$FRAME_SIZE" --argjson port "$PORT" --argjson labels "$labels" --argjson order "$order" \
  --arg xdptools "$(dpkg-query -W -f='${Version}' xdp-tools 2>/dev/null || echo unknown)" \
  --arg nft "$(nft -v 2>/dev/null | head -1)" --arg iptables "$(iptables -V 2>/dev/null)" \
  --arg dpdk "$(pkg-config --modversion libdpdk 2>/dev/null || echo none)" \
  --arg mem "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
  --argjson cost "$COST_MODEL" \
  --arg gen_ns "$GEN_NS" --arg dut_ns "$DUT_NS" --arg load_start "$LOAD_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg fwd_vip "$FWD_VIP" --argjson fwd_be "$FWD_BACKENDS" --arg fwd_src "$FWD_SRC" --arg fwd_sport "$FWD_SPORT" \
  --argjson prio "$RULES_DROP_PRIORITY" --argjson pfx "$PREFIX_SET_SIZE" --arg pfx_src "$PREFIX_SRC" \
  --slurpfile micro "$MICRO" --slurpfile control "$CONTROL" --arg live_note "$LIVE_NOTE" '
  . as $res
  | ($res | map(select(.id == "xdp_drop" and .status == "ok")) | map({(.queues | tostring): .pps}) | add // {}) as $ceiling
  | {
      schema: "xdpctl-bench/1",
      started: $started, finished: $finished,
      machine: {kernel: $kernel, cpu: $cpu, cpus: $ncpu, memory: $mem,
                loadavg_start: $load_start, loadavg_end: $load_end, cost_model: $cost},
      commit: $commit, dirty: $dirty,
      live_frames: (if $live_note == "" then "ok" else $live_note end),
      versions: {"xdp-tools": $xdptools, nftables: $nft, iptables: $iptables, dpdk: $dpdk},
      parameters: {quick: $quick, warmup_s: $warmup, window_s: $window, windows: $windows,
                   frame_size: $size, proto: "udp", family: "ipv4", flows: 1,
                   src: "198.18.0.1:1024", dst: ("198.18.0.2:" + ($port | tostring)),
                   generator: "xdpctl-pktgen (BPF_PROG_TEST_RUN live frames, XDP_TX into a veth)",
                   figure: "median over the windows of packets/s read from the DUT counter",
                   rules: "issue-4 mix (xdpctl-benchgen) + rule --priority \($prio) --proto udp --dport \($port) --action drop",
                   prefix_set: {prefixes: $pfx, source_addresses: ("random in " + $pfx_src)},
                   forwarding: {vip: $fwd_vip, mode: "dsr", backends: $fwd_be, src: $fwd_src, sport: $fwd_sport,
                                generator_end: "bench_xdp_drop (takes the frames sent back)"}},
      lab: {generator_netns: $gen_ns, dut_netns: $dut_ns},
      rows: [ $order[] as $id | {
        id: $id, label: $labels[$id].label, short: $labels[$id].short, kind: $labels[$id].kind,
        counter: $labels[$id].counter,
        reference_ratio: ($labels[$id].ref | if . == "" then null else split("|") | {"1": .[0], "2": .[1]} end),
        results: ($res | map(select(.id == $id)) | map(
          {(.queues | tostring): (del(.id) + (if .status == "ok" and $ceiling[.queues | tostring] then
              {ratio_to_xdp_drop: (.pps / $ceiling[.queues | tostring])} else {} end)
            # A rate limit: what it let through (rule 2 counts it) against its rate.
            + (if .status == "ok" and .rate_limit and .extra then
                {passed_pps: .extra.pps, limited_pps: (.pps - .extra.pps),
                 passed_over_rate: (.extra.pps / .rate_limit.rate_pps)} else {} end))}) | add)
      } ]
    }
  # The issue-5 and issue-6 targets, from this run: ratio = row / reference row at the same queue count
  # (or the row at 2 queues / itself at 1).
  | (.rows | map({(.id): .results}) | add) as $r
  | def pps($id; $q): $r[$id][$q] | if . != null and .status == "ok" then .pps else null end;
    def target($what; $id; $q; $ref; $refq; $min):
      (pps($id; $q)) as $a | (pps($ref; $refq)) as $b
      | {target: $what, row: $id, queues: $q, bar: ">= \($min)"}
        + (if $a != null and $b != null and $b > 0 then {value: ($a / $b), met: ($a / $b >= $min)}
           else {value: null, met: null} end);
    # A figure of the micro benchmarks or the control plane against its ceiling.
    def bound($what; $src; $value; $max):
      {target: $what, row: $src, queues: "", bar: "<= \($max)"}
        + (if $value != null then {value: $value, met: ($value <= $max)} else {value: null, met: null} end);
    # The repeated micro cases: one row a case, the median of its repetitions (and the range).
    def medians: group_by(.name) | map((map(.ns_per_packet) | sort) as $v
      | {name: .[0].name, ns_per_packet: $v[(($v | length) - 1) / 2 | floor],
         min_ns: $v[0], max_ns: $v[-1], repetitions: ($v | length)});
    .micro = ($micro | add // {})
    | if .micro["xdpctl-microbench-ratios"].status == "ok" then
        .micro["xdpctl-microbench-ratios"].benchmarks |= medians else . end
    | ((.micro["xdpctl-microbench-ratios"].benchmarks // []) | map({(.name): .ns_per_packet}) | add // {}) as $med
    | def med_ratio($a; $b): if $med[$a] != null and $med[$b] != null and $med[$b] > 0 then $med[$a] / $med[$b] else null end;
      def ms($s): if $s == null then null else $s * 1000 end;
    .control = $control[0]
    | (.control.control_plane // {}) as $cp | (.control.one_rule_vs_xdp_filter // {}) as $pr
    | (.control.src_rules_10000_vs_xdp_filter // {}) as $pr10k
    # The bars of issue 12 (docs/benchmarks.md): live rows against their peers at the same queue
    # count, every xdpctl row at 2 queues against 1, then the micro and control-plane figures.
    | .targets = [
      (("1", "2") as $q | (target("xdpctl 1 rule / xdp-filter"; "xdpctl_rules_1"; $q; "xdp_filter"; $q; 1.1),
                            target("xdpctl 10,000 rules / xdp-filter"; "xdpctl_rules_10000"; $q; "xdp_filter"; $q; 1.0),
                            target("xdpctl 1M-prefix set / xdp-filter"; "xdpctl_prefix_1m"; $q; "xdp_filter"; $q; 0.8),
                            target("xdpctl LB DSR / bare MAC-rewrite forwarding"; "xdpctl_lb_dsr"; $q; "bare_fwd"; $q; 0.8))),
      (("xdpctl_count_xdp", "xdpctl_rules_1", "xdpctl_rules_1000", "xdpctl_rules_10000", "xdpctl_prefix_1m",
        "xdpctl_count_tc", "xdpctl_lb_dsr", "xdpctl_rate_limit")
        | target("xdpctl 2 queues / 1 queue"; .; "2"; .; "1"; 1.8)),
      bound("1 rule, bpftool prog run ns: xdpctl / xdp-filter"; "prog_run_compare.sh"; $pr.ratio; 0.8),
      bound("1 rule, JIT bytes: xdpctl / xdp-filter"; "prog_run_compare.sh"; $pr.jited_bytes_ratio; 3),
      bound("10,000 source /32 rules, bpftool prog run ns: xdpctl / xdp-filter"; "prog_run_compare.sh"; $pr10k.ratio; 1.0),
      bound("parse+count / empty XDP program (medians)"; "microbench";
            med_ratio("xdpctl_xdp/no_policy_no_vip/tcp4_64"; "empty_xdp/tcp4_64"); 2),
      bound("LB conntrack hit / empty XDP program (medians)"; "microbench";
            med_ratio("xdpctl_xdp_lb/conntrack_hit"; "empty_xdp/tcp4_64"); 3),
      bound("rule add at 10,000 rules, ms"; "control_plane.sh"; $cp.rule_add_at_10000_rules_ms; 20),
      bound("rule add of new rules up to 10,000, ms"; "control_plane.sh"; $cp.new_rule_add_at_10000_rules_ms; 20),
      bound("the same, each /32 in a /16 no rule names, ms"; "control_plane.sh"; $cp.new_rule_add_new_16_at_10000_rules_ms; 20),
      bound("rule add with a 1M-prefix set in use, ms"; "control_plane.sh"; $cp.rule_add_beside_1m_set_ms; 50),
      bound("rule add with 1M random /32s in use, ms"; "control_plane.sh"; $cp.rule_add_beside_1m_random_32s_ms; 50),
      bound("rule add that puts a 1M-prefix set in use, ms"; "control_plane.sh"; ms($cp.rule_add_with_1m_set_s); 50),
      bound("rule add that puts 1M random /32s in use, ms"; "control_plane.sh"; ms($cp.rule_add_with_1m_random_32s_s); 50),
      bound("set add to a 1M-prefix set, ms"; "control_plane.sh"; ms($cp.set_add_to_1m_set_s); 20),
      bound("set add to 1M random /32s, ms"; "control_plane.sh"; ms($cp.set_add_to_1m_random_32s_s); 20),
      bound("set add to 1M random /32s with a state directory, ms"; "control_plane.sh";
            ms($cp.set_add_to_1m_random_32s_state_dir_s); 20),
      bound("rule add after a set add to 1M random /32s in use, ms"; "control_plane.sh";
            $cp.rule_add_after_set_add_1m_random_32s_ms; 50),
      bound("the same with a state directory, ms"; "control_plane.sh";
            $cp.rule_add_after_set_add_1m_random_32s_state_dir_ms; 50),
      bound("peak RSS of any policy command, MiB"; "control_plane.sh"; $cp.peak_rss_mib_any_command; 256)]
    ' "$RESULTS" >"$OUT/bench.json"

render_report "$OUT"
say "report: $OUT/bench.json, $OUT/bench.md, $OUT/bench.png"
cat "$OUT/bench.md"
