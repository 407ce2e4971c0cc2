#!/usr/bin/env bash
# `rule add` and `rule del` at 10,000 rules while xdpctl is dropping a line-rate flow on the
# same machine (issue 4: "rules change at runtime ... while traffic flows"): wall clock of the
# whole commands, median of ROUNDS, first idle and then under xdpctl-pktgen's flood on QUEUES
# queues (BPF_PROG_TEST_RUN live frames into a veth, 64-byte UDP to port 9; with 2 queues on
# a 2-CPU machine the generator and the drops take both CPUs, so xdpctl waits for one). Every frame must be
# decided by the same rule across all those commits, whichever generation it met: the script
# checks that one rule counted exactly what the generator delivered, and that XDP dropped
# them all.
#
#   bench/commit_under_traffic.sh BUILD_DIR [ROUNDS] [QUEUES]
#
# Prints one JSON object. Needs root. Namespaces xdpctl-ct<pid>-{gen,dut}, a private bpffs
# (this script re-executes itself under `unshare --mount`); the flood lasts at most 60 s.
set -euo pipefail

BUILD=$(cd "${1:?usage: commit_under_traffic.sh BUILD_DIR [ROUNDS] [QUEUES]}" && pwd)
ROUNDS=${2:-9}
QUEUES=${3:-1}
XDPCTL=$BUILD/ctl/xdpctl
PKTGEN=$BUILD/bench/xdpctl-pktgen
GEN=$BUILD/bench/xdpctl-benchgen

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"

GEN_NS=xdpctl-ct$$-gen
DUT_NS=xdpctl-ct$$-dut
WORK=$(mktemp -d)
PG_PID=
cleanup() {
  [ -n "$PG_PID" ] && kill "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null
  "$XDPCTL" -n "$DUT_NS" unload xc-dut >/dev/null 2>&1 || true
  ip netns del "$GEN_NS" 2>/dev/null || true
  ip netns del "$DUT_NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$GEN_NS"
ip netns add "$DUT_NS"
ip link add xc-gen netns "$GEN_NS" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
  peer name xc-dut netns "$DUT_NS" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
ip -n "$GEN_NS" addr add 198.18.0.1/24 dev xc-gen
ip -n "$DUT_NS" addr add 198.18.0.2/24 dev xc-dut
ip -n "$GEN_NS" link set xc-gen up
ip -n "$DUT_NS" link set xc-dut up
# A veth takes the generator's XDP_TX frames only in NAPI mode (an XDP program is there too).
ip netns exec "$DUT_NS" ethtool -K xc-dut gro on >/dev/null
DUT_MAC=$(ip -n "$DUT_NS" link show xc-dut | awk '/link\/ether/ {print $2}')

"$XDPCTL" -n "$DUT_NS" load xc-dut >/dev/null
# 9,998 rules of the mix and the drop rule for the flood: the add makes 10,000.
{ "$GEN" rules 9998; echo "rule --id 3999999 --priority 500 --proto udp --dport 9 --action drop"; } >"$WORK/policy"
"$XDPCTL" apply "$WORK/policy" >/dev/null

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ms_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
rounds() {  # prints "ADD_MEDIAN DEL_MEDIAN"
  local add=() del=() t
  for ((i = 0; i < ROUNDS; i++)); do
    t=$(date +%s%N)
    "$XDPCTL" rule add --id 4000000 --src 198.19.7.0/24 --proto udp --dport 53 --action drop >/dev/null
    add+=("$(ms_since "$t")")
    t=$(date +%s%N)
    "$XDPCTL" rule del 4000000 >/dev/null
    del+=("$(ms_since "$t")")
  done
  echo "$(median "${add[@]}") $(median "${del[@]}")"
}

read -r IDLE_ADD IDLE_DEL < <(rounds)
timeout 60 "$PKTGEN" --netns "$GEN_NS" xc-gen --threads "$QUEUES" --cpus "$(seq -s, 0 $((QUEUES - 1)))" \
  --size 64 --src 198.18.0.1 --dst 198.18.0.2 --sport 1024 --dport 9 --dst-mac "$DUT_MAC" --duration 60 -q >"$WORK/pktgen.json" &
PG_PID=$!
sleep 2
read -r BUSY_ADD BUSY_DEL < <(rounds)
kill -INT "$PG_PID" 2>/dev/null || true
wait "$PG_PID" 2>/dev/null || true
PG_PID=
DELIVERED=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["peer"]["delivered"])' "$WORK/pktgen.json")
read -r TOP_ID TOP_PACKETS < <("$XDPCTL" rule list --json | python3 -c 'import json, sys
r = max(json.load(sys.stdin)["rules"], key=lambda r: r["packets"])
print(r["id"], r["packets"])')
XDP_DROPS=$("$XDPCTL" -n "$DUT_NS" stats xc-dut --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["interfaces"][0]["hooks"]["xdp"]["verdict"]["drop"]["packets"])')
ok=false
[ "$TOP_PACKETS" = "$DELIVERED" ] && [ "$XDP_DROPS" = "$DELIVERED" ] && ok=true
echo "{\"rules\": 10000, \"rounds\": $ROUNDS, \"queues\": $QUEUES, \"idle_rule_add_ms\": $IDLE_ADD, \"idle_rule_del_ms\": $IDLE_DEL," \
  "\"traffic_rule_add_ms\": $BUSY_ADD, \"traffic_rule_del_ms\": $BUSY_DEL, \"frames_delivered\": $DELIVERED," \
  "\"deciding_rule\": $TOP_ID, \"its_packets\": $TOP_PACKETS, \"xdp_drops\": $XDP_DROPS, \"every_frame_one_rule\": $ok}"
