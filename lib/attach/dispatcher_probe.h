// libxdp's dispatcher (several XDP programs on one interface through freplace) where the
// kernel allows it: the same kinds of programs loaded and attached to each other, never to an
// interface, and the kernel's answer kept. Where it refuses, `load --next` chains instead.
#pragma once

#include <string>

namespace xdpctl {

struct DispatcherSupport {
    bool available = false;
    std::string reason;  // why not, in the kernel's words (errno, verifier's last lines)
};

DispatcherSupport probe_libxdp_dispatcher();

}  // namespace xdpctl
