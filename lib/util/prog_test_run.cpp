#include "util/prog_test_run.h"

#include <cerrno>

#include <bpf/bpf.h>
#include <linux/bpf.h>

namespace xdpctl {

ProgRunResult prog_test_run(int prog_fd, bool xdp, const std::vector<uint8_t>& frame, uint32_t ifindex, int repeat)
{
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = repeat);
    xdp_md xctx{};
    __sk_buff sctx{};
    if (ifindex) {
        if (xdp) {
            xctx.data_end = static_cast<uint32_t>(frame.size());
            xctx.ingress_ifindex = ifindex;
            opts.ctx_in = &xctx;
            opts.ctx_size_in = sizeof(xctx);
        } else {
            sctx.ifindex = ifindex;
            opts.ctx_in = &sctx;
            opts.ctx_size_in = sizeof(sctx);
        }
    }
    ProgRunResult r;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
        r.err = -errno;
    r.retval = opts.retval;
    r.duration_ns = opts.duration;
    return r;
}

}  // namespace xdpctl
