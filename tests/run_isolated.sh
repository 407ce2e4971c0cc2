#!/bin/sh
# Runs a test program in a mount namespace of its own, so that meson may run it beside another
# test: a fresh bpffs at /sys/fs/bpf (pins and policy maps of its own), its own
# /run/xdpctl.lock and its own state directory. Network namespaces are already named per test
# process (tests/netns_lab.h), and ports are picked free, so nothing else is shared.
# Unprivileged, the program runs as it is (it skips by itself).
#
#   run_isolated.sh PROGRAM [ARGS...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ] || [ "${XDPCTL_TEST_ISOLATED:-}" = 1 ]; then
  exec "$@"
fi
exec unshare --mount --propagation private sh -eu -c '
  scratch=$(mktemp -d /tmp/xdpctl-test.XXXXXX)
  mount -t tmpfs -o mode=0700 tmpfs "$scratch"
  mount -t bpf bpf /sys/fs/bpf
  : >>/run/xdpctl.lock
  (umask 077; : >"$scratch/lock")
  mount --bind "$scratch/lock" /run/xdpctl.lock
  export XDPCTL_STATE_DIR="$scratch/state" XDPCTL_TEST_ISOLATED=1
  # Not exec: the scratch directory is removed after the program, whatever its end.
  rc=0; "$@" || rc=$?
  umount /run/xdpctl.lock "$scratch" 2>/dev/null || true
  rmdir "$scratch" 2>/dev/null || true
  # A test killed before its own cleanup (a timeout, the OOM killer) leaves its labs'"'"'
  # namespaces, named for its pid (tests/netns_lab.h): those of every test process that is
  # gone go now, with their veths. A running test'"'"'s are left alone.
  for ns in $(ip netns list 2>/dev/null | sed -n "s/^\(xdpctl-t[0-9][0-9]*-[^ ]*\).*/\1/p"); do
    pid=${ns#xdpctl-t}
    pid=${pid%%-*}
    [ -d "/proc/$pid" ] || ip netns del "$ns" 2>/dev/null || true
  done
  exit $rc' run_isolated.sh "$@"
