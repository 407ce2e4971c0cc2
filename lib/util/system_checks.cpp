#include "util/system_checks.h"

#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <bpf/libbpf.h>

#include "util/error.h"
#include "attach/iface_ref.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace xdpctl {

namespace {
bool has_cap(const __user_cap_data_struct (&data)[2], int cap)
{
    return data[cap / 32].effective & (1u << (cap % 32));
}
}  // namespace

void require_privileges()
{
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0)
        fail("cannot read this process's capabilities: {}", errno_str(errno));
    bool bpf = has_cap(data, CAP_BPF) || has_cap(data, CAP_SYS_ADMIN);
    bool net = has_cap(data, CAP_NET_ADMIN);
    if (!bpf || !net)
        fail("missing privileges: xdpctl needs root, or CAP_BPF and CAP_NET_ADMIN "
             "(run it with sudo)");
}

void require_bpffs()
{
    struct statfs st {};
    if (statfs(kBpffsRoot, &st) == 0 && st.f_type == BPF_FS_MAGIC)
        return;
    if (mkdir(kBpffsRoot, 0755) != 0 && errno != EEXIST)
        fail("bpffs is not mounted at {} and the directory cannot be created: {}", kBpffsRoot,
             errno_str(errno));
    if (mount("bpffs", kBpffsRoot, "bpf", 0, nullptr) != 0)
        fail("bpffs is not mounted at {} and mounting it failed: {} "
             "(mount it with 'mount -t bpf bpffs {}')",
             kBpffsRoot, errno_str(errno), kBpffsRoot);
}

void require_btf()
{
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        fail("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): "
             "xdpctl needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
}

void require_xdp_support()
{
    if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr) != 1)
        fail("this kernel cannot load XDP programs (CONFIG_BPF_SYSCALL/CONFIG_XDP_SOCKETS?)");
}

}  // namespace xdpctl
