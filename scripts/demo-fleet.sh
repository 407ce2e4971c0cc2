#!/usr/bin/env bash
# One policy for a fleet (docs/fleet.md): a local etcd and three simulated hosts, each a
# network namespace with its own bpffs, state directory and xdpd --fleet. `xdpctl fleet push`
# puts a policy, every host applies it and reports; UDP from a generator shows it in force;
# a bad revision put straight into etcd is refused by every host, which keeps the last good
# one. Then it removes everything it made, also on Ctrl-C and on failure.
#
#   bash scripts/demo.sh fleet      (as root; or bash scripts/demo-fleet.sh)
#
# BUILD_DIR (default build) can be overridden. Traffic and etcd stay in 198.18.0.0/15 between
# the demo's own namespaces (xdpctl-fleet<pid>-*); each host has a bpffs of its own, so the
# host's /sys/fs/bpf/xdpctl is not touched.
set -euo pipefail

DEMO_NAME=demo-fleet
# shellcheck source=scripts/demo_prelude.sh
source "$(dirname "${BASH_SOURCE[0]}")/demo_prelude.sh"
XDPD=$BUILD_DIR/ctl/xdpd/xdpd
P=xdpctl-fleet$$
NET=$P-net        # etcd and the traffic generator
HOSTS=(h1 h2 h3)
ETCD=http://198.18.0.1:2379
FLEET=demo
TMP=$(mktemp -d /tmp/xdpctl-demo-fleet.XXXXXX)
declare -A HOLDER XDPD_PID
ETCD_PID=

# xdpctl where etcd is reachable (the generator's namespace).
fleetctl() {
  show "xdpctl $*"
  ip netns exec "$NET" "$XDPCTL" "$@"
}
# A command on host $1: its network namespace and its mount namespace (its own bpffs).
on_host() {
  local h=$1
  shift
  nsenter -t "${HOLDER[$h]}" -m -n -- "$@"
}
# The same in the background, $! its pid (nsenter execs the command: $! is the command).
bg_on_host() {
  local h=$1
  shift
  nsenter -t "${HOLDER[$h]}" -m -n -- "$@" &
}

# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  local rc=$? h p
  trap - EXIT INT TERM
  [ "$rc" -ne 0 ] && printf '\n%sdemo-fleet: stopped (exit %d); cleaning up%s\n' "$RED" "$rc" "$OFF" >&2
  section "Clean up"
  # xdpd first (its programs stay attached: they go with the namespaces), then the holders of
  # the hosts' mount namespaces (their bpffs goes with them), then etcd.
  for p in "${XDPD_PID[@]}" "${HOLDER[@]}" $ETCD_PID; do kill "$p" 2>/dev/null || true; done
  for p in "${XDPD_PID[@]}" "${HOLDER[@]}" $ETCD_PID; do wait "$p" 2>/dev/null || true; done
  for h in "${HOSTS[@]}" net; do
    [ -e "/run/netns/$P-$h" ] && { ip netns del "$P-$h" || rc=1; }
  done
  rm -rf "$TMP"
  if [ -n "$(find /run/netns -maxdepth 1 -name "$P-*" 2>/dev/null)" ]; then
    printf '%sdemo-fleet: namespaces %s-* left behind%s\n' "$RED" "$P" "$OFF" >&2
    rc=1
  else
    info "xdpd and etcd stopped, namespaces $P-* and their bpffs removed"
  fi
  [ "$rc" -eq 0 ] && info "${GREEN}done${OFF}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# UDP to each host's ports 7001 and 7002 (3 datagrams each), then each host's socket count:
# what the policy in force there let through.
traffic() {
  local h i=0 rx=()
  for h in "${HOSTS[@]}"; do
    i=$((i + 1))
    for port in 7001 7002; do
      bg_on_host "$h" timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(2)
open(sys.argv[3], "w").close()
n = 0
try:
    while True: s.recv(16); n += 1; s.settimeout(0.3)
except Exception: pass
print(n)' "198.18.$i.2" "$port" "$TMP/bound-$h-$port" >"$TMP/got-$h-$port"
      rx+=($!)
    done
  done
  # Every receiver bound before the first datagram.
  for h in "${HOSTS[@]}"; do
    for port in 7001 7002; do
      for _ in $(seq 100); do [ -e "$TMP/bound-$h-$port" ] && break; sleep 0.05; done
      rm -f "$TMP/bound-$h-$port"
    done
  done
  ip netns exec "$NET" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1, int(sys.argv[1]) + 1):
    for port in (7001, 7002):
        for _ in range(3): s.sendto(b"x", ("198.18.%d.2" % i, port))' "${#HOSTS[@]}"
  wait "${rx[@]}" || true
  for h in "${HOSTS[@]}"; do
    info "$h: port 7001 got $(cat "$TMP/got-$h-7001")/3, port 7002 got $(cat "$TMP/got-$h-7002")/3"
  done
}

# ---------------------------------------------------------------------------------------------
section "Build"
for c in meson ninja ip ethtool etcd etcdctl nsenter python3 timeout; do
  command -v "$c" >/dev/null || { echo "demo-fleet: $c is missing (bash scripts/setup.sh)" >&2; exit 1; }
done
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" >"$TMP/meson.log" 2>&1 || { cat "$TMP/meson.log" >&2; exit 1; }
fi
# fleet push/status load etcd's client from the module beside xdpctl (lib/fleet/etcd_module.h)
ninja -C "$BUILD_DIR" ctl/xdpctl ctl/xdpctl-etcd.so ctl/xdpd/xdpd | tail -n 1

# ---------------------------------------------------------------------------------------------
section "Lab: etcd on $ETCD in $NET, hosts ${HOSTS[*]} on a veth each"
ip netns add "$NET"
ip -n "$NET" link set lo up
ip -n "$NET" addr add 198.18.0.1/32 dev lo
i=0
for h in "${HOSTS[@]}"; do
  i=$((i + 1))
  ip netns add "$P-$h"
  ip link add "xf$$-$i" netns "$NET" type veth peer name eth0 netns "$P-$h"
  ip -n "$NET" addr add "198.18.$i.1/24" dev "xf$$-$i"
  ip -n "$NET" link set "xf$$-$i" up
  ip netns exec "$NET" ethtool -K "xf$$-$i" tx off >/dev/null
  ip -n "$P-$h" link set lo up
  ip -n "$P-$h" addr add "198.18.$i.2/24" dev eth0
  ip -n "$P-$h" link set eth0 up
  ip -n "$P-$h" route add default via "198.18.$i.1"
done
show "etcd --listen-client-urls $ETCD ...   (one member; docs/fleet.md has TLS)"
ip netns exec "$NET" etcd --name demo --data-dir "$TMP/etcd" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls http://198.18.0.1:2380 --initial-advertise-peer-urls http://198.18.0.1:2380 \
  --initial-cluster demo=http://198.18.0.1:2380 >"$TMP/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do
  ip netns exec "$NET" etcdctl --endpoints "$ETCD" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
ip netns exec "$NET" etcdctl --endpoints "$ETCD" endpoint health

# ---------------------------------------------------------------------------------------------
section "Each host: its own bpffs and state directory, xdpctl on eth0, xdpd --fleet $FLEET"
for h in "${HOSTS[@]}"; do
  mkdir "$TMP/$h" && mkdir -m 700 "$TMP/$h/state"
  # A process holding the host's mount namespace: bpffs (and /run, so its own writer lock).
  ip netns exec "$P-$h" sh -c "mount -t bpf bpf /sys/fs/bpf && mount -t tmpfs tmpfs /run && \
    touch $TMP/$h/ready && exec sleep 600" &
  HOLDER[$h]=$!
done
for h in "${HOSTS[@]}"; do
  for _ in $(seq 100); do [ -e "$TMP/$h/ready" ] && break; sleep 0.05; done
  on_host "$h" "$XDPCTL" --state-dir "$TMP/$h/state" load eth0 >/dev/null
  bg_on_host "$h" "$XDPD" --config /dev/null --state-dir "$TMP/$h/state" --metrics-listen 127.0.0.1:9469 \
    --etcd "$ETCD" --fleet "$FLEET" --host "$h" >"$TMP/$h/xdpd.log" 2>&1
  XDPD_PID[$h]=$!
done
show "xdpd --state-dir DIR --etcd $ETCD --fleet $FLEET --host h1    (h2, h3 the same)"
sleep 0.5
sed -n 's/^<[0-9]>/    h1: /p' "$TMP/h1/xdpd.log" | grep fleet || true

# ---------------------------------------------------------------------------------------------
section "Push a policy (drops UDP port 7001) and wait for every host"
cat >"$TMP/policy.rules" <<'EOF'
default pass
rule --id 1 --proto udp --dport 7001 --action drop
EOF
sed 's/^/    | /' "$TMP/policy.rules"
fleetctl fleet push --etcd "$ETCD" --fleet "$FLEET" --wait 10 "$TMP/policy.rules" 2>&1
fleetctl fleet status --etcd "$ETCD" --fleet "$FLEET" 2>&1
traffic

# ---------------------------------------------------------------------------------------------
section "A one-rule change: drop 7002 instead"
sed -i 's/7001/7002/' "$TMP/policy.rules"
fleetctl fleet push --etcd "$ETCD" --fleet "$FLEET" --wait 10 "$TMP/policy.rules" 2>&1
traffic

# ---------------------------------------------------------------------------------------------
section "A bad line: push refuses it; put straight into etcd, every host refuses it"
printf 'default pass\nrule --proto udp --dport 70000 --action drop\n' >"$TMP/bad.rules"
fleetctl fleet push --etcd "$ETCD" --fleet "$FLEET" "$TMP/bad.rules" 2>&1 || info "(exit $?: nothing put)"
show "etcdctl put /xdpctl/fleet/$FLEET/config < bad.rules"
ip netns exec "$NET" etcdctl --endpoints "$ETCD" put "/xdpctl/fleet/$FLEET/config" <"$TMP/bad.rules"
sleep 0.5
fleetctl fleet status --etcd "$ETCD" --fleet "$FLEET" 2>&1 || true
info "the last good revision stays in force (7002 dropped):"
traffic
show "curl -s 127.0.0.1:9469/metrics | grep xdpctl_fleet   (on h1)"
on_host h1 curl -s 127.0.0.1:9469/metrics | grep '^xdpctl_fleet' | sed 's/^/    /'
