# Sourced at the top of a bench script, with the script's arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/private_bpffs.sh" "$@"
# re-executes the script in a private mount namespace with an empty bpffs of its own at
# /sys/fs/bpf: what it loads and pins neither comes from nor goes to the machine's xdpctl
# state, and the bpffs goes away with the script.
if [ -z "${XDPCTL_BENCH_PRIVATE_BPFFS:-}" ]; then
  export XDPCTL_BENCH_PRIVATE_BPFFS=1
  exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf bpf /sys/fs/bpf
# Nor to the host's state directory (/var/lib/xdpctl), which `xdpctl restore` would bring
# back after a reboot: set but empty records nothing (a script that wants it gives --state-dir).
export XDPCTL_STATE_DIR=${XDPCTL_STATE_DIR-}
unset XDPCTL_BENCH_PRIVATE_BPFFS  # a bench script this one runs gets a bpffs of its own too
