#!/usr/bin/env bash
# A fleet's convergence (issue 15, docs/fleet.md): the 8 simulated hosts of
# tests/test_fleet_hosts.cpp (each a network namespace with its own bpffs, state directory and
# xdpd --fleet) on its 3-member TLS etcd cluster, then
#   - the time from a put's answer to the last of the 8 hosts' status naming the revision, for a
#     10,000-rule policy replaced, one rule changed in it, and a 1-rule policy changed
#     (ROUNDS each, alternating, so that drift on a shared machine hits them alike);
#   - each xdpd's RSS at rest and its CPU time over IDLE_S seconds of watching.
#
#   bench/fleet_converge.sh BUILD_DIR [ROUNDS [IDLE_S]]     (as root; built with -Dtests=true)
#
# Prints median, min and max. The hosts share this machine's cores: 8 `xdpctl apply` of a
# 10,000-rule file run at once on 2 cores here, where a real fleet runs one per host.
set -euo pipefail

BUILD=$(cd "${1:?usage: fleet_converge.sh BUILD_DIR [ROUNDS [IDLE_S]]}" && pwd)
export FLEET_BENCH_ROUNDS=${2:-7} FLEET_BENCH_IDLE_S=${3:-30}
export XDPCTL_BIN=$BUILD/ctl/xdpctl XDPD_BIN=$BUILD/ctl/xdpd/xdpd
[ -x "$BUILD/tests/test_fleet_hosts" ] || { echo "fleet_converge: build $BUILD with -Dtests=true" >&2; exit 1; }
# A private mount namespace: the hosts' bpffs mounts and nothing else stay in it.
exec unshare --mount --propagation private "$BUILD/tests/test_fleet_hosts" \
  --gtest_also_run_disabled_tests --gtest_filter='FleetBench.DISABLED_Converge' --gtest_brief=1
