// RAII owner of a bpftool skeleton (as the kernel's selftests/bpf/test_cpp.cpp does):
// destroys the object, its maps and programs when it goes out of scope.
#pragma once

#include <memory>

namespace xdpctl {

template <typename Skel>
struct SkelDeleter {
    void operator()(Skel* s) const { Skel::destroy(s); }
};

template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

}  // namespace xdpctl
