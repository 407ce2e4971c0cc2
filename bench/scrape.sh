#!/usr/bin/env bash
# xdpd's scrape time (issue 14: at most 100 ms at 10,000 rules): 10,000 rules of the
# benchmark mix in force (xdpctl-benchgen), one interface loaded (a veth pair in a namespace
# of its own), xdpd on a free loopback port; the wall clock of ROUNDS `curl /metrics`, median
# and spread, beside `xdpctl rule list --json` and `xdpctl stats --all --json` (the commands
# whose readers a scrape runs, each a process of its own) measured in the same run, and
# xdpd's own figures: the scrape's time inside xdpd (xdpctl_scrape_duration_seconds) and its
# CPU time per scrape, which what else the machine runs does not inflate.
#
#   bench/scrape.sh BUILD_DIR [ROUNDS]
#
# Prints one JSON object. Needs root. Runs in a private mount namespace with its own bpffs.
set -euo pipefail

BUILD=$(cd "${1:?usage: scrape.sh BUILD_DIR [ROUNDS]}" && pwd)
ROUNDS=${2:-21}
XDPCTL=$BUILD/ctl/xdpctl
XDPD=$BUILD/ctl/xdpd/xdpd
GEN=$BUILD/bench/xdpctl-benchgen

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"

WORK=$(mktemp -d)
NS=xdpctl-bscrape-$$
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link add bs0 type veth peer name bs1
ip -n "$NS" link set bs0 up
ip -n "$NS" link set bs1 up
"$XDPCTL" -n "$NS" load bs0 >/dev/null
"$GEN" rules 10000 >"$WORK/rules"
"$XDPCTL" apply "$WORK/rules" >/dev/null
[ "$("$XDPCTL" rule list --json | jq '.rules | length')" = 10000 ]

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$XDPD" --config /dev/null --metrics-listen "127.0.0.1:$PORT" 2>"$WORK/xdpd.log" &
PID=$!
for _ in $(seq 50); do grep -q "serving metrics" "$WORK/xdpd.log" && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
[ "$(grep -c '^xdpctl_rule_packets_total{' "$WORK/metrics")" = 10000 ]

ms() {  # wall clock of a command in ms
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))e-3
}
cpu_ticks() {  # xdpd's user + system CPU time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$PID/stat"
}
SCRAPE=() LIST=() STATS=() INPROC=()
CPU=0
for _ in $(seq "$ROUNDS"); do  # alternated, so drift hits all three alike
  c0=$(cpu_ticks)
  SCRAPE+=("$(ms curl -sf -o "$WORK/m" "http://127.0.0.1:$PORT/metrics")")
  CPU=$((CPU + $(cpu_ticks) - c0))
  INPROC+=("$(awk '/^xdpctl_scrape_duration_seconds/ { print $2 * 1000 }' "$WORK/m")")
  LIST+=("$(ms "$XDPCTL" rule list --json)")
  STATS+=("$(ms "$XDPCTL" stats --all --json)")
done
stat() {  # median, min, max
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "{\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
# The wall clock suffers from whatever else the machine runs; xdpd's CPU time per scrape
# (from /proc, clock ticks summed over the rounds) does not.
printf '{"rules": 10000, "rounds": %s, "load_average": "%s", "metrics_bytes": %s, "scrape_ms": %s, "scrape_in_xdpd_ms": %s, "xdpd_cpu_ms_per_scrape": %.1f, "rule_list_json_ms": %s, "stats_all_json_ms": %s}\n' \
  "$ROUNDS" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(wc -c <"$WORK/metrics")" "$(stat "${SCRAPE[@]}")" "$(stat "${INPROC[@]}")" \
  "$(awk -v c="$CPU" -v n="$ROUNDS" -v hz="$(getconf CLK_TCK)" 'BEGIN { print c * 1000 / hz / n }')" \
  "$(stat "${LIST[@]}")" "$(stat "${STATS[@]}")"
"$XDPCTL" apply /dev/null >/dev/null
"$XDPCTL" -n "$NS" unload bs0 >/dev/null
