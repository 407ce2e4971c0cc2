#!/usr/bin/env bash
# A two-namespace lab for xdpctl: a traffic source and a device under test joined by a veth pair.
#
#   scripts/lab.sh up|down|status
#
#   ${LAB_PREFIX}-gen  [xl-gen] 198.18.0.1/24 2001:2::1/64 ---veth--- [xl-dut] 198.18.0.2/24 2001:2::2/64  ${LAB_PREFIX}-dut
#
# Addresses are from the benchmarking ranges (198.18.0.0/15, RFC 2544; 2001:2::/48, RFC 5180),
# so nothing that leaks out of the lab routes anywhere. Every step checks before it acts, so
# `up` on a lab that is up, or `down` on one that is not, is fine.
#
# Tests run their own copy by overriding names (all optional):
#   LAB_PREFIX (xdpctl-lab)   namespaces ${LAB_PREFIX}-gen and ${LAB_PREFIX}-dut; keep it "xdpctl-*"
#   LAB_GEN_NS, LAB_DUT_NS    the namespaces' names outright
#   LAB_GEN_IF (xl-gen), LAB_DUT_IF (xl-dut)
#   LAB_GEN_V4, LAB_DUT_V4, LAB_V4_PLEN (24), LAB_GEN_V6, LAB_DUT_V6, LAB_V6_PLEN (64)
# The veth ends are created directly inside their namespaces, so two labs with different
# prefixes can use the same interface names and addresses at the same time.
#
# `down` also unloads xdpctl from the lab's interfaces if it is still loaded there (pins live
# in the host's bpffs and outlive the namespace); it uses $XDPCTL, or build/ctl/xdpctl.
set -euo pipefail
# The lab is a sandbox, not the host's configuration: nothing goes to the state directory
# that `xdpctl restore` and xdpd bring back after a reboot (set but empty records nothing).
export XDPCTL_STATE_DIR=

LAB_PREFIX=${LAB_PREFIX:-xdpctl-lab}
GEN_NS=${LAB_GEN_NS:-$LAB_PREFIX-gen}
DUT_NS=${LAB_DUT_NS:-$LAB_PREFIX-dut}
GEN_IF=${LAB_GEN_IF:-xl-gen}
DUT_IF=${LAB_DUT_IF:-xl-dut}
GEN_V4=${LAB_GEN_V4:-198.18.0.1}
DUT_V4=${LAB_DUT_V4:-198.18.0.2}
V4_PLEN=${LAB_V4_PLEN:-24}
GEN_V6=${LAB_GEN_V6:-2001:2::1}
DUT_V6=${LAB_DUT_V6:-2001:2::2}
V6_PLEN=${LAB_V6_PLEN:-64}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIN_ROOT=/sys/fs/bpf/xdpctl

say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
usage: $0 up|down|status

  up      create $GEN_NS and $DUT_NS joined by $GEN_IF <-> $DUT_IF
  down    remove them (and unload xdpctl from them if it is still loaded)
  status  show what exists; exit 0 if the lab is fully up, 1 if not

Names and addresses can be overridden through LAB_PREFIX, LAB_GEN_NS, LAB_DUT_NS,
LAB_GEN_IF, LAB_DUT_IF, LAB_GEN_V4, LAB_DUT_V4, LAB_GEN_V6, LAB_DUT_V6 (see the top of $0).
EOF
}

ns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ns_exists "$1" && ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces)"
  command -v ip >/dev/null || die "'ip' is missing: install iproute2 (scripts/setup.sh does)"
}

# Sets up one end: its address, links up, loopback up.
configure_end() {
  local ns=$1 dev=$2 v4=$3 v6=$4
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$v4/$V4_PLEN" dev "$dev"
  # nodad: the address is usable at once instead of "tentative" for a second or two
  ip -n "$ns" -6 addr replace "$v6/$V6_PLEN" dev "$dev" nodad
  ip -n "$ns" link set "$dev" up
}

lab_up() {
  need_root
  local ns
  for ns in "$GEN_NS" "$DUT_NS"; do
    if ns_exists "$ns"; then
      say "namespace $ns exists"
    else
      ip netns add "$ns"
      say "created namespace $ns"
    fi
  done

  # A veth deletes both ends together, so one end without the other means something else
  # took the name: stop rather than guess.
  if link_exists "$GEN_NS" "$GEN_IF" && link_exists "$DUT_NS" "$DUT_IF"; then
    say "veth $GEN_IF <-> $DUT_IF exists"
  elif link_exists "$GEN_NS" "$GEN_IF" || link_exists "$DUT_NS" "$DUT_IF"; then
    die "only one end of $GEN_IF <-> $DUT_IF exists; run '$0 down' and then '$0 up'"
  else
    ip link add "$GEN_IF" netns "$GEN_NS" type veth peer name "$DUT_IF" netns "$DUT_NS"
    say "created veth $GEN_IF ($GEN_NS) <-> $DUT_IF ($DUT_NS)"
  fi

  configure_end "$GEN_NS" "$GEN_IF" "$GEN_V4" "$GEN_V6"
  configure_end "$DUT_NS" "$DUT_IF" "$DUT_V4" "$DUT_V6"

  # veth runs XDP_TX/XDP_REDIRECT only in NAPI mode: GRO on the peer turns that on, so an
  # XDP program on the dut end can bounce traffic back to the generator.
  if command -v ethtool >/dev/null; then
    ip netns exec "$GEN_NS" ethtool -K "$GEN_IF" gro on >/dev/null
  else
    say "warning: ethtool is missing, GRO stays off on $GEN_IF (scripts/setup.sh installs it)"
  fi

  say "up:"
  lab_show
}

# Unloads xdpctl from every interface of namespace $1 it is loaded on. xdpctl keys its pins
# by the namespace's identity (the device and inode of its nsfs file, docs/architecture.md).
unload_xdpctl() {
  local ns=$1 dir d xdpctl
  dir=$(stat -L -c "$PIN_ROOT/ns/%d-%i/if" "/run/netns/$ns" 2>/dev/null) || return 0
  [ -d "$dir" ] || return 0
  xdpctl=${XDPCTL:-$REPO/build/ctl/xdpctl}
  for d in "$dir"/*/; do
    [ -d "$d" ] || continue
    d=$(basename "$d")
    if [ -x "$xdpctl" ] && "$xdpctl" -n "$ns" unload "$d" >/dev/null; then
      say "unloaded xdpctl from $d@$ns"
    else
      say "warning: xdpctl is still loaded on $d@$ns (pins in $dir/$d): run 'xdpctl -n $ns unload $d'"
    fi
  done
}

lab_down() {
  need_root
  local ns removed=0
  for ns in "$DUT_NS" "$GEN_NS"; do
    unload_xdpctl "$ns"
    if ns_exists "$ns"; then
      # Deleting the namespace deletes the veth end in it, and with it the peer.
      ip netns del "$ns"
      say "removed namespace $ns"
      removed=1
    fi
  done
  [ "$removed" -eq 1 ] || say "nothing to remove ($GEN_NS and $DUT_NS do not exist)"
}

# Prints the namespaces, their ends and addresses; returns 1 unless all is there and up.
lab_show() {
  local ns dev ok=0 line
  for pair in "$GEN_NS:$GEN_IF" "$DUT_NS:$DUT_IF"; do
    ns=${pair%%:*}
    dev=${pair#*:}
    if ! ns_exists "$ns"; then
      printf '  %-20s missing\n' "$ns"
      ok=1
      continue
    fi
    if ! link_exists "$ns" "$dev"; then
      printf '  %-20s %-8s missing\n' "$ns" "$dev"
      ok=1
      continue
    fi
    # "xl-dut UP 198.18.0.2/24 2001:2::2/64 fe80::.../64"
    line=$(ip -n "$ns" -br addr show dev "$dev" | awk '{sub(/@.*/, "", $1); $1=$1; print}')
    printf '  %-20s %s\n' "$ns" "$line"
    case "$line" in *" UP "*) ;; *) ok=1 ;; esac
    if ip -n "$ns" link show dev "$dev" | grep -q 'prog/xdp'; then
      printf '  %-20s %s\n' "" "$(ip -n "$ns" link show dev "$dev" | grep -o 'prog/xdp.*')"
    fi
  done
  return "$ok"
}

lab_status() {
  need_root
  if lab_show; then
    say "up"
  else
    say "not (fully) up"
    return 1
  fi
}

case "${1:-}" in
  up) lab_up ;;
  down) lab_down ;;
  status) lab_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
