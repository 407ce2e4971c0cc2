// EtcdClient in xdpctl: each call goes to the client in xdpctl-etcd.so (etcd_module.h),
// opened by the first client made.
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <string>

#include <fmt/core.h>

#include "fleet/etcd_module.h"
#include "util/error.h"

#ifndef XDPCTL_ETCD_MODULE_PATH
#error "XDPCTL_ETCD_MODULE_PATH: where xdpctl-etcd.so is installed"
#endif

namespace xdpctl::fleet {

namespace {

// Beside the xdpctl that runs (a build tree), else where it is installed.
const EtcdModule& module()
{
    static const EtcdModule* m = [] {
        std::string tried;
        char exe[PATH_MAX];
        const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        std::string beside;
        if (n > 0) {
            const std::string path(exe, size_t(n));
            beside = path.substr(0, path.rfind('/') + 1) + kEtcdModuleFile;
        }
        for (const std::string& file : {beside, std::string(XDPCTL_ETCD_MODULE_PATH)}) {
            if (file.empty() || ::access(file.c_str(), F_OK) != 0)
                continue;
            void* h = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!h)
                fail("cannot load etcd's client {}: {}", file, dlerror());
            auto entry = reinterpret_cast<const EtcdModule* (*)()>(::dlsym(h, kEtcdModuleEntry));
            const EtcdModule* found = entry ? entry() : nullptr;
            if (!found || found->version != kEtcdModuleVersion)
                fail("{} is not the etcd client of this xdpctl (reinstall xdpctl)", file);
            return found;
        }
        fail("etcd's client {} is missing (looked beside xdpctl and at {}): reinstall xdpctl", kEtcdModuleFile,
             XDPCTL_ETCD_MODULE_PATH);
    }();
    return *m;
}

}  // namespace

struct EtcdClient::Impl {
    const EtcdModule& m;
    void* client;
};

EtcdClient::EtcdClient(EtcdConfig cfg)
{
    const EtcdModule& m = module();
    impl_ = std::make_unique<Impl>(Impl{m, m.open(std::move(cfg))});
}

EtcdClient::~EtcdClient()
{
    if (impl_)
        impl_->m.close(impl_->client);
}

EtcdClient::EtcdClient(EtcdClient&&) noexcept = default;
EtcdClient& EtcdClient::operator=(EtcdClient&& o) noexcept
{
    if (this != &o) {
        if (impl_)
            impl_->m.close(impl_->client);
        impl_ = std::move(o.impl_);
    }
    return *this;
}

int64_t EtcdClient::put(const std::string& key, const std::string& value)
{
    return impl_->m.put(impl_->client, key, value);
}

EtcdRange EtcdClient::get(const std::string& key)
{
    return impl_->m.get(impl_->client, key);
}

EtcdRange EtcdClient::get_prefix(const std::string& prefix)
{
    return impl_->m.get_prefix(impl_->client, prefix);
}

const std::string& EtcdClient::endpoint() const
{
    return impl_->m.endpoint(impl_->client);
}

void EtcdClient::watch(const std::string& key, int64_t start_revision,
                       const std::function<bool(const EtcdWatchEvent&)>& on_event, const std::atomic<bool>& stop)
{
    impl_->m.watch(impl_->client, key, start_revision, on_event, stop);
}

int64_t EtcdClient::del(const std::string& key)
{
    return impl_->m.del(impl_->client, key);
}

void EtcdClient::compact(int64_t revision)
{
    impl_->m.compact(impl_->client, revision);
}

}  // namespace xdpctl::fleet
