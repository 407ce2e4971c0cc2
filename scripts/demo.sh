#!/usr/bin/env bash
# xdpctl end to end: builds it, makes a two-namespace lab, attaches xdpctl on XDP and TC,
# sends real ICMP, TCP and UDP over IPv4 and IPv6, and shows what the counters saw, live and
# in total. Then it removes everything it made: also on Ctrl-C and on failure.
#
#   bash scripts/demo.sh        (as root)
#   bash scripts/demo.sh lb     the load balancer instead (scripts/demo-lb.sh)
#   bash scripts/demo.sh fleet  one policy for three hosts through etcd (scripts/demo-fleet.sh)
#
# BUILD_DIR (default build) and LAB_PREFIX (default xdpctl-lab, see scripts/lab.sh) can be
# overridden. Runs scripts/setup.sh only when something it needs is missing.
set -euo pipefail
# The demo's lab is not the host's configuration: nothing goes to the state directory that
# `xdpctl restore` and xdpd bring back after a reboot (set but empty records nothing).
export XDPCTL_STATE_DIR=

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
if [ "${1:-}" = lb ]; then
  exec bash "$REPO/scripts/demo-lb.sh"
fi
if [ "${1:-}" = fleet ]; then
  exec bash "$REPO/scripts/demo-fleet.sh"
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: must run as root (it attaches BPF programs and makes network namespaces)" >&2
  exit 1
fi

BUILD_DIR=${BUILD_DIR:-build}
export LAB_PREFIX=${LAB_PREFIX:-xdpctl-lab}
GEN=$LAB_PREFIX-gen
DUT=$LAB_PREFIX-dut
GEN_IF=xl-gen
DUT_IF=xl-dut
DUT_V4=198.18.0.2
DUT_V6=2001:2::2
BUILD_SHOW=$BUILD_DIR
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
XDPCTL=$BUILD_DIR/ctl/xdpctl
export XDPCTL  # lab.sh unloads with it if something is still loaded
# The DUT interface's pins: under its namespace's identity (docs/architecture.md), so only
# while the namespace exists; "" otherwise.
pin_dir() { stat -L -c "/sys/fs/bpf/xdpctl/ns/%d-%i/if/$DUT_IF" "/run/netns/$DUT" 2>/dev/null || true; }
TMP=$(mktemp -d /tmp/xdpctl-demo.XXXXXX)
BG_PIDS=()
STEPS=10
SHARED_MAPS=/sys/fs/bpf/xdpctl/maps
HAD_POLICY=0  # set before the demo touches the policy
STEP=0

if [ -t 1 ]; then
  BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' RED=$'\e[31m' OFF=$'\e[0m'
else
  BOLD='' DIM='' GREEN='' RED='' OFF=''
fi

section() {
  STEP=$((STEP + 1))
  printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$STEP" "$STEPS" "$*" "$OFF"
}
info() { printf '    %s\n' "$*"; }
# Shows a command as the user would type it, then runs it.
show() { printf '%s$ %s%s\n' "$DIM" "$*" "$OFF"; }
xdpctl() {
  show "xdpctl $*"
  "$XDPCTL" "$@"
}
in_gen() { ip netns exec "$GEN" "$@"; }
in_dut() { ip netns exec "$DUT" "$@"; }

# Starts a command in a namespace in the background and remembers it, so cleanup can stop
# it. `ip netns exec` execs the command, so $! is the command itself (timeout, ping).
bg_in() {
  ip netns exec "$@" &
  BG_PIDS+=($!)
}

# Waits for the background commands to end on their own (each is bounded by a timeout).
wait_bg() {
  local p
  for p in "${BG_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  BG_PIDS=()
}

stop_bg() {
  local p
  for p in "${BG_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${BG_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  BG_PIDS=()
}

# Waits (at most 5 s) until something listens on $1 (tcp|udp) port $2 in the dut.
wait_listen() {
  local flag=-Hltn _
  [ "$1" = udp ] && flag=-Hlun
  for _ in $(seq 50); do
    in_dut ss "$flag" "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  printf 'demo: nothing listens on %s port %s in %s after 5 s\n' "$1" "$2" "$DUT" >&2
  return 1
}

# The filtering policy is host-wide: put back what was there before the demo, or nothing.
# shellcheck disable=SC2317  # reached through cleanup
restore_policy() {
  [ -f "$TMP/policy.before" ] || return 0
  if [ "$HAD_POLICY" -eq 1 ]; then
    "$XDPCTL" apply "$TMP/policy.before" >/dev/null
  else
    "$XDPCTL" apply /dev/stdin >/dev/null <<<"default pass"
  fi
}

CLEANED=0
# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$CLEANED" -eq 1 ] && exit "$rc"
  CLEANED=1
  stop_bg
  if [ "$rc" -ne 0 ]; then
    printf '\n%sdemo: stopped (exit %d); cleaning up%s\n' "$RED" "$rc" "$OFF" >&2
  fi
  STEP=$((STEPS - 2))
  section "Clean up: unload xdpctl, remove the lab"
  restore_policy || rc=1
  local pins
  pins=$(pin_dir)  # before `lab.sh down` takes the namespace, and with it this name
  if [ -n "$pins" ] && [ -d "$pins" ] && [ -x "$XDPCTL" ]; then
    xdpctl -n "$DUT" unload "$DUT_IF" || rc=1
  fi
  bash "$REPO/scripts/lab.sh" down || rc=1
  rm -rf "$TMP"
  local left=()
  [ -e "/run/netns/$GEN" ] && left+=("namespace $GEN")
  [ -e "/run/netns/$DUT" ] && left+=("namespace $DUT")
  [ -n "$pins" ] && [ -e "$pins" ] && left+=("pins $pins")
  if [ "${#left[@]}" -ne 0 ]; then
    printf '%sdemo: left behind: %s%s\n' "$RED" "${left[*]}" "$OFF" >&2
    rc=1
  else
    info "nothing left behind: no lab namespaces, no xdpctl pins for $DUT_IF"
  fi
  if [ "$rc" -eq 0 ]; then
    STEP=$((STEPS - 1))
    section "Done"
    info "${GREEN}xdpctl counted real traffic on XDP, TC ingress and TC egress.${OFF}"
    info "Next: 'bash scripts/test.sh' runs the test suite; docs/cli.md explains every counter."
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
section "Requirements"
missing=()
for c in clang meson ninja bpftool pkg-config ip ethtool ping nc ss jq timeout; do
  command -v "$c" >/dev/null || missing+=("$c")
done
pkg-config --atleast-version=1.4 libbpf 2>/dev/null || missing+=("libbpf>=1.4")
[ -f "$BUILD_DIR/build.ninja" ] || missing+=("a build in $BUILD_SHOW/")
if [ "${#missing[@]}" -ne 0 ]; then
  info "missing: ${missing[*]}; running scripts/setup.sh"
  bash "$REPO/scripts/setup.sh"
else
  info "clang, meson, ninja, bpftool $(bpftool version 2>/dev/null | awk 'NR==1{print $2}'), libbpf $(pkg-config --modversion libbpf): all there"
fi
info "kernel $(uname -r)"

# ---------------------------------------------------------------------------------------------
section "Build ($BUILD_SHOW/)"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  show "meson setup $BUILD_SHOW"
  meson setup "$BUILD_DIR" >"$TMP/meson.log" 2>&1 || { cat "$TMP/meson.log" >&2; exit 1; }
fi
# Only the CLI (and the BPF objects in it): the demo needs nothing else.
show "ninja -C $BUILD_SHOW ctl/xdpctl"
ninja -C "$BUILD_DIR" ctl/xdpctl | tail -n 1
"$XDPCTL" version | paste -sd ' ' | sed 's/^/    /'

# ---------------------------------------------------------------------------------------------
section "Lab: $GEN ($GEN_IF) <-> $DUT ($DUT_IF)"
if [ -e "/run/netns/$DUT" ] || [ -e "/run/netns/$GEN" ]; then
  info "an earlier lab is still there: removing it first"
  bash scripts/lab.sh down
fi
show "scripts/lab.sh up"
bash scripts/lab.sh up

# ---------------------------------------------------------------------------------------------
section "Load xdpctl on $DUT_IF: XDP, TC ingress and TC egress"
xdpctl -n "$DUT" load "$DUT_IF" --hook both
echo
xdpctl status

# ---------------------------------------------------------------------------------------------
section "Traffic from $GEN to $DUT"

info "ICMP over IPv4: 20 echo requests"
show "ping -c 20 -i 0.05 $DUT_V4"
in_gen ping -q -c 20 -i 0.05 -w 10 "$DUT_V4" | grep transmitted | sed 's/^/    /'

info "TCP over IPv4: 1 MB to a listener in the dut"
bg_in "$DUT" timeout 10 nc -l "$DUT_V4" 5201 >"$TMP/tcp.out"
wait_listen tcp 5201
show "head -c 1000000 /dev/zero | nc -N $DUT_V4 5201"
head -c 1000000 /dev/zero | in_gen timeout 10 nc -N "$DUT_V4" 5201
wait_bg  # the listener ends when the sender closes
info "dut received $(wc -c <"$TMP/tcp.out") bytes"

info "UDP over IPv4: 10 datagrams"
bg_in "$DUT" timeout 10 nc -u -l "$DUT_V4" 5202 >"$TMP/udp4.out"
wait_listen udp 5202
show "for i in \$(seq 10); do echo \"datagram \$i\"; done >/dev/udp/$DUT_V4/5202"
in_gen bash -c "exec 3>/dev/udp/$DUT_V4/5202; for i in \$(seq 10); do echo \"datagram \$i\" >&3; done"
sleep 0.2
stop_bg
info "dut received $(wc -l <"$TMP/udp4.out") datagrams"

info "ICMPv6: 20 echo requests"
show "ping -6 -c 20 -i 0.05 $DUT_V6"
in_gen ping -6 -q -c 20 -i 0.05 -w 10 "$DUT_V6" | grep transmitted | sed 's/^/    /'

info "UDP over IPv6: 10 datagrams"
bg_in "$DUT" timeout 10 nc -6 -u -l "$DUT_V6" 5203 >"$TMP/udp6.out"
wait_listen udp 5203
show "for i in \$(seq 10); do echo \"datagram \$i\"; done >/dev/udp/$DUT_V6/5203"
in_gen bash -c "exec 3>/dev/udp/$DUT_V6/5203; for i in \$(seq 10); do echo \"datagram \$i\" >&3; done"
sleep 0.2
stop_bg
info "dut received $(wc -l <"$TMP/udp6.out") datagrams"

# ---------------------------------------------------------------------------------------------
section "Live rates: 3 periods of 1 s while ping (20/s) and UDP (~50/s) run"
bg_in "$DUT" timeout 10 nc -u -l "$DUT_V4" 5204 >/dev/null
wait_listen udp 5204
bg_in "$GEN" ping -q -c 60 -i 0.05 -w 10 "$DUT_V4" >/dev/null
bg_in "$GEN" timeout 10 bash -c "exec 3>/dev/udp/$DUT_V4/5204; for i in \$(seq 150); do echo \"tick \$i\" >&3; sleep 0.02; done"
xdpctl -n "$DUT" stats "$DUT_IF" --interval 1 --count 3
stop_bg

# ---------------------------------------------------------------------------------------------
section "Filter: drop UDP to port 5205, count ICMP (each change is one atomic commit)"
[ -d "$SHARED_MAPS" ] && HAD_POLICY=1
"$XDPCTL" export >"$TMP/policy.before"
xdpctl rule add --proto udp --dport 5205 --action drop
xdpctl rule add --priority 10 --proto icmp --action count
bg_in "$DUT" timeout 10 nc -u -l "$DUT_V4" 5205 >"$TMP/udp5205.out"
wait_listen udp 5205
show "for i in \$(seq 10); do echo \"datagram \$i\"; done >/dev/udp/$DUT_V4/5205"
in_gen bash -c "exec 3>/dev/udp/$DUT_V4/5205; for i in \$(seq 10); do echo \"datagram \$i\" >&3; done"
in_gen ping -q -c 5 -i 0.05 -w 5 "$DUT_V4" | grep transmitted | sed 's/^/    /'
sleep 0.2
stop_bg
info "dut received $(wc -l <"$TMP/udp5205.out") of 10 datagrams: XDP dropped them"
xdpctl rule list

# ---------------------------------------------------------------------------------------------
section "Totals"
xdpctl -n "$DUT" stats "$DUT_IF"
echo
info "The same as JSON, e.g. packets by L4 protocol on the XDP hook:"
show "xdpctl -n $DUT stats $DUT_IF --json | jq -c '.interfaces[0].hooks.xdp.l4 | map_values(.packets)'"
"$XDPCTL" -n "$DUT" stats "$DUT_IF" --json | jq -c '.interfaces[0].hooks.xdp.l4 | map_values(.packets)' |
  sed 's/^/    /'

# The EXIT trap unloads, removes the lab and checks that nothing is left.
exit 0
