#!/usr/bin/env bash
# Control-plane costs of issue 4, wall clock of whole `xdpctl` commands as a user runs them:
#   - `rule add` (and `rule del`) with 9,999 rules of the benchmark mix in force (the add makes
#     it 10,000), median of ROUNDS; the same rule each round, so the commit finds the tables it
#     needs in the generation of two commits ago: the best case;
#   - `rule add` of ROUNDS new rules one after another, up to 10,000 (each a prefix, port and
#     priority the policy has not held): what a host adding rules pays, median; and the same
#     with each rule's /32 in a /16 that no rule names (a block list's next host: the source
#     table gains a chunk there);
#   - `apply` of those 9,999 rules onto an empty policy;
#   - `set load` of 1,000,000 prefixes spread like a BGP table, with the rules in force; then
#     `rule add --src @set` (the commit that puts the set in use), the rule add/del above again
#     with the set in use beside them (median of ROUNDS), `set add` of one prefix to it, and
#     `status`'s map memory;
#   - the same with 1,000,000 random /32s over all of IPv4 (the worst case for the tables),
#     set adds each followed by the rule add/del (the commit finds the set changed in place
#     since the last one), medians of ROUNDS; and those again with a state directory
#     recorded, as a host runs them by default;
#   - the largest resident set (peak RSS) of any of these commands.
# Each command is timed by xdpctl-cmdtime (bench/cmdtime.c): from its spawn to its exit, with
# none of the script's own forks (`date` and GNU time around a command cost 15-18 ms where a
# fork costs ~5 ms, a PVM guest: more than most of these commands).
#
#   bench/control_plane.sh BUILD_DIR [ROUNDS]
#
# Prints one JSON object. Needs root. Runs in a private mount namespace with its own bpffs and
# /run (this script re-executes itself under `unshare --mount`): the machine's policy is
# untouched, and other xdpctl commands' writer lock is not waited for.
set -euo pipefail

BUILD=$(cd "${1:?usage: control_plane.sh BUILD_DIR [ROUNDS]}" && pwd)
ROUNDS=${2:-9}
XDPCTL=$BUILD/ctl/xdpctl
GEN=$BUILD/bench/xdpctl-benchgen
CMDTIME=$BUILD/bench/xdpctl-cmdtime

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"
# And a /run of its own: with a private bpffs there is nothing to share with other xdpctl
# commands on the machine, whose holding the host-wide writer lock (/run/xdpctl.lock) would
# otherwise be timed as part of these commands.
mount -t tmpfs tmpfs /run

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
"$GEN" rules 9999 >"$WORK/rules"
"$GEN" prefixes 1000000 >"$WORK/prefixes"
"$GEN" hosts 1000000 >"$WORK/hosts"

# Seconds (4 decimals) a command takes; its output is dropped, a failure stops the script.
# Its peak RSS (KiB) goes into $WORK/rss, one line a command.
secs() {
  "$CMDTIME" "$WORK/timed" -- "$@" || return $?
  local line
  line=$(tail -1 "$WORK/timed")
  echo "${line#* }" >>"$WORK/rss"
  awk -v s="${line% *}" 'BEGIN { printf "%.4f", s }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# The floor under every figure here: spawning /bin/true and reaping it, timed the same way
# (ROUNDS before the rows and ROUNDS after). It moves with the host (a PVM guest's speed
# moved 20-40% within an hour), and every command's wall clock with it.
TRUE=()
spawn_rounds() {
  local line i
  for ((i = 0; i < ROUNDS; i++)); do
    "$CMDTIME" "$WORK/true_timed" -- /bin/true
    line=$(tail -1 "$WORK/true_timed")
    TRUE+=("$(awk -v s="${line% *}" 'BEGIN { printf "%.4f", s }')")
  done
}
spawn_rounds

APPLY=$(secs "$XDPCTL" apply "$WORK/rules")
# add_del_rounds: ROUNDS of `rule add` of one rule of the mix (rule 4000000) and its `rule del`,
# with the policy in force as it is; sets ADD and DEL to the times.
add_del_rounds() {
  ADD=() DEL=()
  for ((i = 0; i < ROUNDS; i++)); do
    ADD+=("$(secs "$XDPCTL" rule add --id 4000000 --src 198.19.7.0/24 --proto udp --dport 53 --action drop)")
    DEL+=("$(secs "$XDPCTL" rule del 4000000)")
  done
}
add_del_rounds
ADD_10K=$(median "${ADD[@]}") DEL_10K=$(median "${DEL[@]}")
# New rules: ROUNDS fewer rules of the mix, then ROUNDS rules none of whose prefixes, ports or
# priorities a commit has seen, each added on its own; then the 9,999 again.
head -n $((10000 - ROUNDS)) "$WORK/rules" >"$WORK/rules_fewer"
"$XDPCTL" apply "$WORK/rules_fewer" >/dev/null
NEW=()
for ((i = 0; i < ROUNDS; i++)); do
  NEW+=("$(secs "$XDPCTL" rule add --id $((4100000 + i)) --priority $((100 + 97 * i % 900)) \
    --src "198.19.$((10 + i)).$((1 + i))/32" --proto tcp --dport $((2000 + i)) --action drop)")
done
ADD_NEW_10K=$(median "${NEW[@]}")
# The same from the same 9,991 rules, each new /32 in a /16 of its own that no rule names.
"$XDPCTL" apply "$WORK/rules_fewer" >/dev/null
NEW16=()
a16=$((11 * 256 + 17))
for ((i = 0; i < ROUNDS; i++)); do
  while grep -q -- "--src $((a16 / 256)).$((a16 % 256))\." "$WORK/rules_fewer"; do a16=$((a16 + 1)); done
  NEW16+=("$(secs "$XDPCTL" rule add --id $((4150000 + i)) --priority $((100 + 97 * i % 900)) \
    --src "$((a16 / 256)).$((a16 % 256)).$((7 + i)).$((1 + i))/32" --proto tcp --dport $((3000 + i)) --action drop)")
  a16=$((a16 + 4099))
done
ADD_NEW16_10K=$(median "${NEW16[@]}")
"$XDPCTL" apply "$WORK/rules" >/dev/null
# From here 9,998 rules of the mix: with the set's rule and rule 4000000 the table is full.
"$XDPCTL" rule del 9999 >/dev/null
"$XDPCTL" set create bgp >/dev/null
SETLOAD=$(secs "$XDPCTL" set load bgp "$WORK/prefixes")
# The first rule on the set puts it in use: its entries go into the datapath's tables. Then
# the same add/del of one rule as at 10,000 rules, with the set in use beside it (issue 12:
# a commit must not rewrite the set's table).
ADD_SET=$(secs "$XDPCTL" rule add --id 4000001 --src @bgp --action drop)
add_del_rounds
ADD_BESIDE_SET=$(median "${ADD[@]}")
SA=()
for ((i = 0; i < ROUNDS; i++)); do
  SA+=("$(secs "$XDPCTL" set add bgp "198.18.$((100 + i)).0/24")")
done
SETADD=$(median "${SA[@]}")
MEM=$("$XDPCTL" status | awk '/^shared maps/ { for (i = 1; i <= NF; i++) if ($i == "MiB") print $(i - 1) }')
# The worst case: 1M random /32s, in use by a rule, beside 9,998 rules of the mix (and no
# other set: every command reads all sets, ~45 MiB a million entries).
"$XDPCTL" rule del 4000001 >/dev/null
"$XDPCTL" set destroy bgp >/dev/null
"$XDPCTL" set create hosts >/dev/null
HOSTLOAD=$(secs "$XDPCTL" set load hosts "$WORK/hosts")
ADD_HOSTS=$(secs "$XDPCTL" rule add --id 4000002 --src @hosts --action drop)
add_del_rounds
ADD_BESIDE_HOSTS=$(median "${ADD[@]}")
HMEM=$("$XDPCTL" status | awk '/^shared maps/ { for (i = 1; i <= NF; i++) if ($i == "MiB") print $(i - 1) }')
# What a host feeding a blocklist does, ROUNDS times: a `set add` of one /32 (in place, no
# commit), then the rule add/del above, whose commit finds the set changed since the last one.
# Sets SA and RA to the set adds' and rule adds' times; $@: xdpctl's global options.
HOST=0
set_rule_rounds() {
  SA=() RA=()
  for ((i = 0; i < ROUNDS; i++)); do
    HOST=$((HOST + 1))
    SA+=("$(secs "$XDPCTL" "$@" set add hosts "198.18.99.$HOST")")
    RA+=("$(secs "$XDPCTL" "$@" rule add --id 4000000 --src 198.19.7.0/24 --proto udp --dport 53 --action drop)")
    "$XDPCTL" "$@" rule del 4000000 >/dev/null
  done
}
set_rule_rounds
HOSTADD=$(median "${SA[@]}") ADD_AFTER_SETADD=$(median "${RA[@]}")
# The same as a host with durable state runs them (/var/lib/xdpctl by default; here a
# directory of the run's own): the first command records the whole policy, then each set add
# appends its change to the set's journal and each rule add to the rules' (docs/service.md,
# "State directory").
"$XDPCTL" --state-dir "$WORK/state" set add hosts 198.18.98.1 >/dev/null
set_rule_rounds --state-dir "$WORK/state"
HOSTADD_STATE=$(median "${SA[@]}") ADD_AFTER_SETADD_STATE=$(median "${RA[@]}")
"$XDPCTL" apply /dev/null >/dev/null 2>&1 || true
RSS=$(sort -n "$WORK/rss" | tail -1)
spawn_rounds
SPAWN=$(median "${TRUE[@]}")

awk -v apply="$APPLY" -v add="$ADD_10K" -v del="$DEL_10K" -v addnew="$ADD_NEW_10K" -v addnew16="$ADD_NEW16_10K" \
  -v besideset="$ADD_BESIDE_SET" -v besidehosts="$ADD_BESIDE_HOSTS" \
  -v setload="$SETLOAD" -v addset="$ADD_SET" -v setadd="$SETADD" -v mem="${MEM:-0}" \
  -v hostload="$HOSTLOAD" -v addhosts="$ADD_HOSTS" -v hostadd="$HOSTADD" -v hmem="${HMEM:-0}" \
  -v hoststate="$HOSTADD_STATE" -v rss="${RSS:-0}" -v rounds="$ROUNDS" \
  -v aftersetadd="$ADD_AFTER_SETADD" -v aftersetaddstate="$ADD_AFTER_SETADD_STATE" -v spawn="$SPAWN" 'BEGIN {
  printf "{\"apply_9999_rules_s\": %s, \"rule_add_at_10000_rules_ms\": %.1f, ", apply, add * 1000
  printf "\"new_rule_add_at_10000_rules_ms\": %.1f, ", addnew * 1000
  printf "\"new_rule_add_new_16_at_10000_rules_ms\": %.1f, ", addnew16 * 1000
  printf "\"rule_del_at_10000_rules_ms\": %.1f, \"set_load_1m_prefixes_s\": %s, ", del * 1000, setload
  printf "\"rule_add_with_1m_set_s\": %s, \"set_add_to_1m_set_s\": %s, ", addset, setadd
  printf "\"rule_add_beside_1m_set_ms\": %.1f, \"rule_add_beside_1m_random_32s_ms\": %.1f, ", besideset * 1000, besidehosts * 1000
  printf "\"policy_maps_mib_1m_prefixes_10k_rules\": %s, ", mem
  printf "\"set_load_1m_random_32s_s\": %s, \"rule_add_with_1m_random_32s_s\": %s, ", hostload, addhosts
  printf "\"set_add_to_1m_random_32s_s\": %s, \"policy_maps_mib_1m_random_32s\": %s, ", hostadd, hmem
  printf "\"set_add_to_1m_random_32s_state_dir_s\": %s, ", hoststate
  printf "\"rule_add_after_set_add_1m_random_32s_ms\": %.1f, ", aftersetadd * 1000
  printf "\"rule_add_after_set_add_1m_random_32s_state_dir_ms\": %.1f, ", aftersetaddstate * 1000
  printf "\"spawn_true_ms\": %.1f, ", spawn * 1000
  printf "\"peak_rss_mib_any_command\": %.1f, \"rounds\": %d}\n", rss / 1024, rounds
}'
