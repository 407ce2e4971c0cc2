#!/usr/bin/env bash
# What decision events (--log, issue 14 item 4) cost a packet: ns/packet of xdpctl's XDP
# program through BPF_PROG_TEST_RUN (`bpftool prog run`, REPEAT packets a run) on a 64-byte
# UDP frame that a drop rule decides, with the rule
#   nolog       without --log (the program has no log path: the baseline)
#   other_logs  without --log while another rule has it (the program has the log path)
#   log         with --log (100 events/s): nearly every packet is refused by its bucket
#   log_read    with --log --log-rate 1000000 and `xdpctl trace` reading the ring
#   log_unread  the same with nobody reading: once the ring is full, every event is lost
# all in one run, rounds alternating between the cases (each case's policy is applied, which
# reloads the program with its paths, before its test run). Each figure is the median of its
# rounds, with the lowest and highest; also each case's events per packet (from `rule list`).
#
#   bench/trace_overhead.sh XDPCTL_BINARY [ROUNDS] [REPEAT]
#
# Prints one JSON object. Needs root and bpftool. Its namespace (xdpctl-tr<pid>) and bpffs
# are private to it: nothing outlives it.
set -euo pipefail

XDPCTL=${1:?usage: trace_overhead.sh XDPCTL_BINARY [ROUNDS] [REPEAT]}
ROUNDS=${2:-7}
REPEAT=${3:-1000000}

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"

NS=xdpctl-tr$$
FRAME=$(mktemp)
RULES=$(mktemp)
TRACE_PID=
cleanup() {
  [ -n "$TRACE_PID" ] && kill -INT "$TRACE_PID" 2>/dev/null && wait "$TRACE_PID" 2>/dev/null
  "$XDPCTL" -n "$NS" unload veth0 >/dev/null 2>&1 || true
  "$XDPCTL" policy default pass >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  rm -f "$FRAME" "$RULES"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link add veth0 type veth peer name veth1
ip -n "$NS" link set veth0 up
ip -n "$NS" link set veth1 up
# Ethernet + IPv4 198.18.1.2 -> 198.19.0.1 + UDP 1234 -> 9: 60 bytes (as prog_run_compare.sh).
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
  02000000000202000000000108004500002e000100004011ed95c6120102c6130001$(
  )04d20009001a0000000000000000000000000000000000000000 >"$FRAME"
"$XDPCTL" -n "$NS" load veth0 --hook xdp >/dev/null

# Every case has the same two rules (the frame's, then one it does not match), so the
# programs differ by the log path and the rules' --log only.
RULE="rule --id 1 --proto udp --dport 9 --action drop"
OTHER="rule --id 2 --proto tcp --dport 1 --action drop"
policy() {
  case $1 in
  nolog) printf '%s\n%s\n' "$RULE" "$OTHER" ;;
  other_logs) printf '%s\n%s --log\n' "$RULE" "$OTHER" ;;
  log) printf '%s --log\n%s\n' "$RULE" "$OTHER" ;;
  log_read | log_unread) printf '%s --log --log-rate 1000000\n%s\n' "$RULE" "$OTHER" ;;
  esac >"$RULES"
  "$XDPCTL" apply "$RULES" >/dev/null
}
prog_id() { ip -n "$NS" -d link show veth0 | grep -o 'prog/xdp id [0-9]*' | awk '{print $3}'; }
# "RETVAL NS" of a test run of REPEAT packets.
run() {
  bpftool prog run id "$1" data_in "$FRAME" repeat "$REPEAT" |
    awk '/Return value/ { gsub(",", "", $3); r = $3; d = $NF; sub("ns", "", d); print r, d }'
}
rule1() { "$XDPCTL" rule list --json | python3 -c 'import json, sys
r = [r for r in json.load(sys.stdin)["rules"] if r["id"] == 1][0]
print(r["packets"], r.get("events", 0))'; }

CASES=(nolog other_logs log log_read log_unread)
declare -A NSV EVP
for ((i = 0; i < ROUNDS; i++)); do
  for c in "${CASES[@]}"; do
    policy "$c"
    if [ "$c" = log_read ]; then
      "$XDPCTL" trace >/dev/null 2>&1 &
      TRACE_PID=$!
      sleep 0.5
    fi
    read -r p0 e0 < <(rule1)
    read -r r ns < <(run "$(prog_id)")
    read -r p1 e1 < <(rule1)
    if [ -n "$TRACE_PID" ]; then
      kill -INT "$TRACE_PID"
      wait "$TRACE_PID" || true
      TRACE_PID=
    fi
    [ "$r" = 1 ] || { echo "$c: returned $r, not XDP_DROP" >&2; exit 1; }
    NSV[$c]+="$ns "
    EVP[$c]+="$(python3 -c "print(($e1 - $e0) / max(1, $p1 - $p0))") "
  done
done
python3 - "$ROUNDS" "$REPEAT" "${CASES[@]}" <<PY
import json, statistics, sys
rounds, repeat, cases = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
ns = {$(for c in "${CASES[@]}"; do printf '"%s": [%s], ' "$c" "$(echo ${NSV[$c]} | tr ' ' ',')"; done)}
evp = {$(for c in "${CASES[@]}"; do printf '"%s": [%s], ' "$c" "$(echo ${EVP[$c]} | tr ' ' ',')"; done)}
out = {"rounds": rounds, "repeat": repeat}
base = statistics.median(ns["nolog"])
for c in cases:
    m = statistics.median(ns[c])
    out[c] = {"ns_per_packet": m, "min": min(ns[c]), "max": max(ns[c]),
              "over_nolog_ns": round(m - base, 2), "ratio": round(m / base, 3),
              "events_per_packet": round(statistics.median(evp[c]), 5)}
print(json.dumps(out))
PY
