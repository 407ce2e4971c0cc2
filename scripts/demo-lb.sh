#!/usr/bin/env bash
# xdpctl's L4 load balancer end to end (docs/load-balancing.md): a client, the LB and three
# web backends in namespaces on one bridge; a DSR VIP and an IPIP VIP (with xdpctl's TC
# decapsulator on the backends), requests answered by different backends, `lb list`,
# `lb trace`, draining a backend. Then it removes everything it made, also on Ctrl-C and on
# failure, and puts back the LB and filter configuration that was there before.
#
#   bash scripts/demo.sh lb      (as root; or bash scripts/demo-lb.sh)
#
# BUILD_DIR (default build) can be overridden. Traffic stays in 198.18.0.0/15 between the
# demo's own namespaces (xdpctl-lb<pid>-*).
set -euo pipefail
# The demo's lab is not the host's configuration: nothing goes to the state directory that
# `xdpctl restore` and xdpd bring back after a reboot (set but empty records nothing).
export XDPCTL_STATE_DIR=

DEMO_NAME=demo-lb
# shellcheck source=scripts/demo_prelude.sh
source "$(dirname "${BASH_SOURCE[0]}")/demo_prelude.sh"
PASS_OBJ=$BUILD_DIR/xdpctl_bench_empty.bpf.o  # a pass-all XDP program (see below)
P=xdpctl-lb$$
NODES=(c lb b1 b2 b3)
BACKENDS=(b1 b2 b3)
CLIENT=198.18.1.1
LB=198.18.1.2
declare -A ADDR=([c]=198.18.1.1 [lb]=198.18.1.2 [b1]=198.18.1.11 [b2]=198.18.1.12 [b3]=198.18.1.13)
declare -A MAC=([c]=02:00:5e:12:01:01 [lb]=02:00:5e:12:01:02 [b1]=02:00:5e:12:01:11
                [b2]=02:00:5e:12:01:12 [b3]=02:00:5e:12:01:13)
VIP_DSR=198.18.100.1
VIP_IPIP=198.18.100.2
PORT=8080
TMP=$(mktemp -d /tmp/xdpctl-demo-lb.XXXXXX)
BG_PIDS=()
HAD_SHARED=0  # xdpctl's shared maps (policy, LB) were there before the demo
[ -d /sys/fs/bpf/xdpctl/maps ] && HAD_SHARED=1
LOADED=0

xdpctl() {
  show "xdpctl $*"
  "$XDPCTL" "$@"
}
in_ns() {
  local n=$1
  shift
  ip netns exec "$P-$n" "$@"
}

# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  local rc=$? b n
  trap - EXIT INT TERM
  for b in "${BG_PIDS[@]}"; do kill "$b" 2>/dev/null || true; done
  for b in "${BG_PIDS[@]}"; do wait "$b" 2>/dev/null || true; done
  [ "$rc" -ne 0 ] && printf '\n%sdemo-lb: stopped (exit %d); cleaning up%s\n' "$RED" "$rc" "$OFF" >&2
  section "Clean up"
  if [ -x "$XDPCTL" ]; then
    # The LB configuration is host-wide: what was there before, or none.
    if [ -f "$TMP/config.before" ]; then
      if [ "$HAD_SHARED" -eq 1 ]; then
        "$XDPCTL" apply "$TMP/config.before" >/dev/null || rc=1
      else
        "$XDPCTL" apply /dev/stdin >/dev/null <<<"default pass" || rc=1
      fi
    fi
    for b in "${BACKENDS[@]}"; do
      if [ -e "/run/netns/$P-$b" ]; then
        "$XDPCTL" -n "$P-$b" lb decap detach eth0 >/dev/null 2>&1 || true
      fi
    done
    # Loaded, or interrupted while loading (unload finishes what a load left).
    if [ "$LOADED" -eq 1 ] && [ -e "/run/netns/$P-lb" ]; then
      "$XDPCTL" -n "$P-lb" unload eth0 >/dev/null 2>&1 ||
        [ ! -e "$(stat -L -c '/sys/fs/bpf/xdpctl/ns/%d-%i/if/eth0' "/run/netns/$P-lb")" ] || rc=1
    fi
    # No xdpctl maps before the demo and none loaded now: `export` (interrupted before the
    # load) may have made the shared maps; remove them.
    if [ "$HAD_SHARED" -eq 0 ] && [ -d /sys/fs/bpf/xdpctl/maps ] &&
       "$XDPCTL" status --json 2>/dev/null | grep -q '"interfaces":\[\]'; then
      "$XDPCTL" unload --all --yes >/dev/null || rc=1
    fi
  fi
  for n in "${NODES[@]}" sw; do
    [ -e "/run/netns/$P-$n" ] && { ip netns del "$P-$n" || rc=1; }
  done
  rm -rf "$TMP"
  local left
  left=$(find /run/netns -maxdepth 1 -name "$P-*" 2>/dev/null | wc -l)
  if [ "$left" -ne 0 ]; then
    printf '%sdemo-lb: %s namespaces %s-* left behind%s\n' "$RED" "$left" "$P" "$OFF" >&2
    rc=1
  else
    info "namespaces $P-* removed, xdpctl unloaded, the configuration from before put back"
  fi
  [ "$rc" -eq 0 ] && info "${GREEN}done${OFF}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
section "Build"
for c in meson ninja ip ethtool nc python3; do
  command -v "$c" >/dev/null || { echo "demo-lb: $c is missing (bash scripts/setup.sh)" >&2; exit 1; }
done
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" >"$TMP/meson.log" 2>&1 || { cat "$TMP/meson.log" >&2; exit 1; }
fi
ninja -C "$BUILD_DIR" ctl/xdpctl xdpctl_bench_empty.bpf.o | tail -n 1

# ---------------------------------------------------------------------------------------------
section "Lab: client, LB and backends b1 b2 b3 on a bridge (namespaces $P-*)"
for n in sw "${NODES[@]}"; do
  ip netns add "$P-$n"
  ip -n "$P-$n" link set lo up
  # The backends get IPIP packets from the LB's address; the VIP is theirs too (on lo).
  in_ns "$n" sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip -n "$P-sw" link add br0 type bridge mcast_snooping 0
ip -n "$P-sw" link set br0 up
i=0
for n in "${NODES[@]}"; do
  i=$((i + 1))
  ip -n "$P-sw" link add "p$i" type veth peer name eth0 netns "$P-$n"
  ip -n "$P-sw" link set "p$i" master br0 up
  ip -n "$P-$n" link set eth0 address "${MAC[$n]}" up
  ip -n "$P-$n" addr add "${ADDR[$n]}/24" dev eth0
  # XDP_TX into a veth leaves the frames in the peer's ring unless the peer runs an XDP
  # program: a pass-all one on the LB's switch port. (A NIC needs nothing of the kind.)
  [ "$n" = lb ] && ip -n "$P-sw" link set "p$i" xdp obj "$PASS_OBJ" sec xdp
done
# The client reaches the VIPs through the LB, with room for IPIP's 20 bytes.
ip -n "$P-c" link set eth0 mtu 1400
ip -n "$P-c" route add 198.18.100.0/24 via "$LB"
# A veth hands TCP checksums on unfilled; XDP_TX sends the bytes as they are. A NIC fills them.
in_ns c ethtool -K eth0 tx off >/dev/null
for b in "${BACKENDS[@]}"; do
  ip -n "$P-$b" addr add "$VIP_DSR/32" dev lo
  ip -n "$P-$b" addr add "$VIP_IPIP/32" dev lo
  # The VIPs are on lo: the backends must not answer ARP for them (the LB does not either:
  # the client routes them to the LB's address).
  in_ns "$b" sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  mkdir -p "$TMP/$b"
  echo "$b" >"$TMP/$b/index.html"
  # The interpreter itself (not a wrapper such as pyenv's shim, which would outlive a kill),
  # bounded in time in case the cleanup never runs.
  ip netns exec "$P-$b" timeout 300 "$PYTHON" -m http.server -b 0.0.0.0 -d "$TMP/$b" "$PORT" >/dev/null 2>&1 &
  BG_PIDS+=($!)
done
info "client $CLIENT, LB $LB, backends ${ADDR[b1]} ${ADDR[b2]} ${ADDR[b3]} (each serves its name on :$PORT)"

# ---------------------------------------------------------------------------------------------
section "Load xdpctl on the LB, add a DSR VIP and an IPIP VIP"
"$XDPCTL" export >"$TMP/config.before"
if grep -q '^lb ' "$TMP/config.before"; then
  info "note: VIPs were configured before the demo; they are put back at the end"
fi
LOADED=1
xdpctl -n "$P-lb" load eth0
xdpctl lb vip add "$VIP_DSR:$PORT/tcp"
xdpctl lb vip add "$VIP_IPIP:$PORT/tcp" --mode ipip --ipip-source "$LB"
for b in "${BACKENDS[@]}"; do
  w=1
  [ "$b" = b3 ] && w=2
  xdpctl lb backend add "$VIP_DSR:$PORT/tcp" "${ADDR[$b]}" --mac "${MAC[$b]}" --weight "$w" >/dev/null
  xdpctl lb backend add "$VIP_IPIP:$PORT/tcp" "${ADDR[$b]}" --mac "${MAC[$b]}" >/dev/null
  # IPIP: the backend strips the outer header on ingress (TC), then answers the client itself.
  xdpctl -n "$P-$b" lb decap attach eth0 "${ADDR[$b]}"
done

# Waits (at most 5 s) until every backend's web server listens.
for b in "${BACKENDS[@]}"; do
  for _ in $(seq 50); do
    in_ns "$b" ss -Hltn "sport = :$PORT" | grep -q . && break
    sleep 0.1
  done
done

# ---------------------------------------------------------------------------------------------
requests() {  # VIP COUNT [spread]: one connection each (a new source port, so a new 5-tuple)
  local vip=$1 n=$2 spread=${3:-} i who
  show "for i in \$(seq $n); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -N $vip $PORT | tail -n 1; done   (in the client)"
  : >"$TMP/answers"
  for i in $(seq "$n"); do
    # The body (the backend's name) is the answer's last line.
    who=$(printf 'GET / HTTP/1.0\r\n\r\n' | in_ns c timeout 2 nc -N "$vip" "$PORT" | tail -n 1) || true
    if [ -z "$who" ]; then
      echo
      echo "demo-lb: request $i to $vip:$PORT was not answered" >&2
      return 1
    fi
    printf '%s ' "$who" | tee -a "$TMP/answers"
  done
  echo
  info "answers: $(tr ' ' '\n' <"$TMP/answers" | grep . | sort | uniq -c | awk '{printf "%s x%s  ", $2, $1}')"
  [ -z "$spread" ] || [ "$(tr ' ' '\n' <"$TMP/answers" | grep . | sort -u | wc -l)" -ge 2 ] ||
    { echo "demo-lb: all answers came from one backend" >&2; return 1; }
}

section "DSR: 12 requests to $VIP_DSR:$PORT (b3 has weight 2)"
requests "$VIP_DSR" 12 spread

section "IPIP: 12 requests to $VIP_IPIP:$PORT"
requests "$VIP_IPIP" 12 spread

section "What the LB counted"
xdpctl lb list
xdpctl lb trace "tcp $CLIENT:40000 -> $VIP_DSR:$PORT"

section "Drain b3 on the DSR VIP (weight 0: no new connections), 6 more requests"
xdpctl lb backend set "$VIP_DSR:$PORT/tcp" "${ADDR[b3]}" --weight 0
requests "$VIP_DSR" 6
if grep -q b3 "$TMP/answers"; then
  echo "demo-lb: b3 got a new connection after it was drained" >&2
  exit 1
fi

section "The LB configuration as export prints it (apply reads it back)"
show "xdpctl export | grep '^lb'"
"$XDPCTL" export | grep '^lb' | sed 's/^/    /'

# The EXIT trap puts the configuration back, unloads and removes the namespaces.
exit 0
