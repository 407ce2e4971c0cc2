// Preconditions checked before xdpctl touches the kernel, each with its own message.
#pragma once

namespace xdpctl {

// Root, or CAP_BPF + CAP_NET_ADMIN (or CAP_SYS_ADMIN on kernels before CAP_BPF).
void require_privileges();
// bpffs at /sys/fs/bpf: mounts it when missing; fails when it can't.
void require_bpffs();
// /sys/kernel/btf/vmlinux: the programs use BTF-defined maps.
void require_btf();
// The kernel loads XDP and SCHED_CLS programs.
void require_xdp_support();

}  // namespace xdpctl
