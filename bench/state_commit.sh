#!/usr/bin/env bash
# What recording the state (docs/service.md) adds to a commit: wall clock of `rule add`
# (a commit of the whole policy) with 10,000 rules in force, then with a 1,000,000-prefix
# set in the policy too, each with the state directory
#   none   --state-dir '' (nothing recorded: the commit alone)
#   tmpfs  on /dev/shm (the write and its fsyncs cost memory copies only)
#   disk   under /var/lib (the real disk: fsync of the rules file, the manifest, the directory)
# taken in turn, round after round, so that drift on a shared machine hits all three alike.
#
#   bench/state_commit.sh BUILD_DIR [ROUNDS]
#
# Prints a line per case: median seconds, min-max, and the record's own part as the command
# measures it (XDPCTL_TRACE_COMMIT's "state directory" line), which the noise of whole
# commands on a shared machine does not blur. Needs root; a private bpffs of its own.
set -euo pipefail

BUILD=$(cd "${1:?usage: state_commit.sh BUILD_DIR [ROUNDS]}" && pwd)
ROUNDS=${2:-9}
XDPCTL=$BUILD/ctl/xdpctl
x() { "$XDPCTL" --wait 120 "$@"; }  # other writers on the host (tests) may hold the lock a while
GEN=$BUILD/bench/xdpctl-benchgen

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"

WORK=$(mktemp -d)
SHM=$(mktemp -d /dev/shm/xdpctl-state-bench.XXXXXX)
DISK=$(mktemp -d /var/lib/xdpctl-state-bench.XXXXXX)
trap 'rm -rf "$WORK" "$SHM" "$DISK"' EXIT INT TERM
"$GEN" rules 9998 >"$WORK/rules"
"$GEN" hosts 1000000 >"$WORK/hosts"

secs() {
  local t0 t1
  t0=$(date +%s%N)
  XDPCTL_TRACE_COMMIT=1 "$@" >/dev/null 2>"$WORK/trace"
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "median %.4f s  (min %.4f, max %.4f, n %d)", v[int((NR + 1) / 2)], v[1], v[NR], NR}'; }

declare -A DIRS=([none]="" [tmpfs]="$SHM/state" [disk]="$DISK/state")
run_case() {
  local label=$1
  # Every directory holds the state in force before the timing (the first write of a set
  # is not what a commit next to it costs).
  for k in tmpfs disk; do x --state-dir "${DIRS[$k]}" policy default pass >/dev/null; done
  declare -A T=([none]="" [tmpfs]="" [disk]="") R=([none]="" [tmpfs]="" [disk]="")
  for ((i = 0; i < ROUNDS; i++)); do
    for k in none tmpfs disk; do
      T[$k]+=" $(secs x --state-dir "${DIRS[$k]}" rule add --id 4000000 --src 198.19.7.0/24 --proto udp --dport 53 --action drop)"
      R[$k]+=" $(awk '/^commit: state directory/ {printf "%.4f", $4 / 1000; f = 1} END {if (!f) printf "0"}' "$WORK/trace")"
      x --state-dir "${DIRS[$k]}" rule del 4000000 >/dev/null
    done
  done
  for k in none tmpfs disk; do
    # shellcheck disable=SC2086
    echo "$label, state $k: $(stats ${T[$k]}); the record itself: $(stats ${R[$k]})"
  done
}

x --state-dir '' apply "$WORK/rules" >/dev/null
run_case "rule add at 10,000 rules"
x --state-dir '' set create big >/dev/null
x --state-dir '' set load big "$WORK/hosts" >/dev/null
x --state-dir '' rule add --id 3999999 --src @big --action drop >/dev/null
run_case "rule add at 10,000 rules + a 1,000,000-prefix set"
du -sh "${DIRS[disk]}" | awk '{print "state directory size: " $1}'
