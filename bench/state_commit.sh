#!/usr/bin/env bash
# What recording the state (docs/service.md) adds to a commit: wall clock of `rule add`
# (a commit of the whole policy) with 10,000 rules in force, then with a 1,000,000-prefix
# set in the policy too, then of `set add` of one prefix to that set (a journal append),
# each with the state directory
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
# run_case LABEL COMMAND UNDO: COMMAND timed, UNDO after it (both split into words).
run_case() {
  local label=$1 cmd=$2 undo=$3
  # Every directory holds the state in force before the timing (the first write of a set
  # is not what a commit next to it costs).
  for k in tmpfs disk; do x --state-dir "${DIRS[$k]}" policy default pass >/dev/null; done
  declare -A T=([none]="" [tmpfs]="" [disk]="") R=([none]="" [tmpfs]="" [disk]="")
  for ((i = 0; i < ROUNDS; i++)); do
    for k in none tmpfs disk; do
      # shellcheck disable=SC2086
      T[$k]+=" $(secs x --state-dir "${DIRS[$k]}" $cmd)"
      R[$k]+=" $(awk '/^commit: state directory/ {printf "%.4f", $4 / 1000; f = 1} END {if (!f) printf "0"}' "$WORK/trace")"
      # shellcheck disable=SC2086
      x --state-dir "${DIRS[$k]}" $undo >/dev/null
    done
  done
  for k in none tmpfs disk; do
    # shellcheck disable=SC2086
    echo "$label, state $k: $(stats ${T[$k]}); the record itself: $(stats ${R[$k]})"
  done
}

RULE="rule add --id 4000000 --src 198.19.7.0/24 --proto udp --dport 53 --action drop"
x --state-dir '' apply "$WORK/rules" >/dev/null
run_case "rule add at 10,000 rules" "$RULE" "rule del 4000000"
x --state-dir '' set create big >/dev/null
x --state-dir '' set load big "$WORK/hosts" >/dev/null
x --state-dir '' rule add --id 3999999 --src @big --action drop >/dev/null
run_case "rule add at 10,000 rules + a 1,000,000-prefix set" "$RULE" "rule del 4000000"
# One prefix into the set: a record appended to its journal (set.KEY.log), not the set rewritten.
run_case "set add of one prefix to the 1,000,000-prefix set" "set add big 198.19.99.0/24" "set del big 198.19.99.0/24"
du -sh "${DIRS[disk]}" | awk '{print "state directory size: " $1}'
