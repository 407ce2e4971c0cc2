#!/usr/bin/env bash
# ns/packet of xdpctl with one rule beside xdp-filter with the equivalent rule, on the same
# 64-byte UDP frame, through BPF_PROG_TEST_RUN (`bpftool prog run`) on the programs as they
# are attached, in one run (issue 4: "xdpctl with 1 rule costs no more than xdp-filter").
#
#   bench/prog_run_compare.sh XDPCTL_BINARY [ROUNDS] [REPEAT] [SRC_RULES]
#
# SRC_RULES > 0: instead of the one port rule, SRC_RULES source /32 drop rules (the frame's
# source among them) in both: an xdpctl one-field policy (lib/policy/shapes.h) against
# xdp-filter's source address hash (issue 12: "10,000 single-field rules").
#
# Also the programs' sizes (verified instructions, translated and JIT bytes) and their ratios.
#
# Rounds alternate between the programs so that a machine busy with something else slows
# both alike; each figure is the median of its rounds. Prints one JSON object. Needs root,
# bpftool and xdp-filter. Each program gets a namespace of its own (xdpctl-pr<pid>-*) and a
# private bpffs (this script re-executes itself under `unshare --mount`): nothing it pins
# outlives it.
set -euo pipefail

XDPCTL=${1:?usage: prog_run_compare.sh XDPCTL_BINARY [ROUNDS] [REPEAT] [SRC_RULES]}
ROUNDS=${2:-7}
REPEAT=${3:-1000000}
SRC_RULES=${4:-0}
PORT=9

# shellcheck source=bench/private_bpffs.sh
source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"

NS_A=xdpctl-pr$$-a
NS_B=xdpctl-pr$$-b
FRAME=$(mktemp)
ADDRS=$(mktemp)
cleanup() {
  rm -f "$ADDRS" "$ADDRS.rules"
  "$XDPCTL" -n "$NS_A" unload veth0 >/dev/null 2>&1 || true
  "$XDPCTL" policy default pass >/dev/null 2>&1 || true
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -f "$FRAME"
}
trap cleanup EXIT INT TERM

for ns in "$NS_A" "$NS_B"; do
  ip netns add "$ns"
  ip -n "$ns" link add veth0 type veth peer name veth1
  ip -n "$ns" link set veth0 up
  ip -n "$ns" link set veth1 up
done

# Ethernet + IPv4 198.18.1.2 -> 198.19.0.1 + UDP 1234 -> 9, 18 bytes of payload: 60 bytes
# (64 on the wire with the FCS).
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
  02000000000202000000000108004500002e000100004011ed95c6120102c6130001$(
  )04d20009001a0000000000000000000000000000000000000000 >"$FRAME"

"$XDPCTL" -n "$NS_A" load veth0 >/dev/null
if [ "$SRC_RULES" -gt 0 ]; then
  # The frame's source, then SRC_RULES - 1 other addresses of 198.18.0.0/15 (no duplicate).
  python3 -c 'import random, sys
n = int(sys.argv[1]); rnd = random.Random(n); seen = {0xc6120102}; out = ["198.18.1.2"]
while len(out) < n:
    a = 0xc6120000 | rnd.getrandbits(17)
    if a not in seen:
        seen.add(a); out.append("%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255))
print("\n".join(out))' "$SRC_RULES" >"$ADDRS"
  awk '{ print "rule --src " $1 "/32 --action drop" }' "$ADDRS" >"$ADDRS.rules"
  "$XDPCTL" apply "$ADDRS.rules" >/dev/null
  XF_RULES="while read -r a; do xdp-filter ip \$a --mode src || exit 1; done <$ADDRS"
else
  "$XDPCTL" rule add --proto udp --dport "$PORT" --action drop >/dev/null
  XF_RULES="xdp-filter port $PORT --mode dst"
fi
# `ip netns exec` remounts /sys: xdp-filter gets a bpffs for the call; its program and maps
# stay attached to the veth after it (deleting the namespace takes them away).
ip netns exec "$NS_B" sh -c "mount -t bpf bpf /sys/fs/bpf && xdp-filter load veth0 --mode native && $XF_RULES"

prog_id() { ip -n "$1" -d link show veth0 | grep -o 'prog/xdp id [0-9]*' | awk '{print $3}'; }
ID_A=$(prog_id "$NS_A")
ID_B=$(prog_id "$NS_B")

# One round: "RETVAL NS" of a test run of REPEAT packets.
run() {
  bpftool prog run id "$1" data_in "$FRAME" repeat "$REPEAT" |
    awk '/Return value/ { gsub(",", "", $3); r = $3; d = $NF; sub("ns", "", d); print r, d }'
}
A=() B=()
for ((i = 0; i < ROUNDS; i++)); do
  read -r ra na < <(run "$ID_A")
  read -r rb nb < <(run "$ID_B")
  # Both must drop the frame (XDP_DROP = 1), or they do not do the same work.
  [ "$ra" = 1 ] || { echo "xdpctl returned $ra, not XDP_DROP" >&2; exit 1; }
  [ "$rb" = 1 ] || { echo "xdp-filter returned $rb, not XDP_DROP" >&2; exit 1; }
  A+=("$na") B+=("$nb")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
MA=$(median "${A[@]}")
MB=$(median "${B[@]}")
KEY=$([ "$SRC_RULES" -gt 0 ] && echo "xdpctl_${SRC_RULES}_src_rules" || echo xdpctl_1_rule)
# The programs' sizes as the kernel holds them (xdpctl's follows the policy: lib/attach/datapath_paths.h):
# verified instructions, translated and JIT bytes, and xdpctl's over xdp-filter's.
# bpftool shows no verified instruction count: that one is read with the bpf syscall
# (bpf_prog_info.verified_insns, at byte 216 of the struct in linux/bpf.h).
sizes() {
  python3 -c 'import ctypes, json, platform, struct, sys
info = json.loads(sys.argv[2])
nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
if nr:
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("III", int(sys.argv[1]), 0, 0), 128)
    fd = libc.syscall(nr, 13, attr, 128)  # BPF_PROG_GET_FD_BY_ID
    buf = ctypes.create_string_buffer(256)
    attr = ctypes.create_string_buffer(struct.pack("IIQ", max(fd, 0), 256, ctypes.addressof(buf)), 128)
    if fd >= 0 and libc.syscall(nr, 15, attr, 128) == 0:  # BPF_OBJ_GET_INFO_BY_FD
        info["verified_insns"] = struct.unpack_from("I", buf, 216)[0]
print(json.dumps(info))' "$1" "$(bpftool -j prog show id "$1")"
}
python3 -c 'import json, sys
k, a, b, r, n, pa, pb = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6]), json.loads(sys.argv[7])
out = {k + "_ns": a, "xdp_filter_ns": b, "ratio": round(a / b, 3), "rounds": r, "repeat": n}
for what, key in (("jited_bytes", "bytes_jited"), ("xlated_bytes", "bytes_xlated"), ("verified_insns", "verified_insns")):
    out[k + "_" + what] = pa.get(key)
    out["xdp_filter_" + what] = pb.get(key)
    if pa.get(key) and pb.get(key):
        out[what + "_ratio"] = round(pa[key] / pb[key], 3)
print(json.dumps(out))' "$KEY" "$MA" "$MB" "$ROUNDS" "$REPEAT" "$(sizes "$ID_A")" "$(sizes "$ID_B")"
