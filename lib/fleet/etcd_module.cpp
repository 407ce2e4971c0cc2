// The entry of xdpctl-etcd.so (etcd_module.h): the client of etcd_client.cpp behind the table.
#include "fleet/etcd_module.h"

namespace xdpctl::fleet {
namespace {

EtcdClient& client(void* c)
{
    return *static_cast<EtcdClient*>(c);
}

const EtcdModule kModule{
    kEtcdModuleVersion,
    [](EtcdConfig cfg) -> void* { return new EtcdClient(std::move(cfg)); },
    [](void* c) { delete static_cast<EtcdClient*>(c); },
    [](void* c, const std::string& key, const std::string& value) { return client(c).put(key, value); },
    [](void* c, const std::string& key) { return client(c).get(key); },
    [](void* c, const std::string& prefix) { return client(c).get_prefix(prefix); },
    [](const void* c) -> const std::string& { return static_cast<const EtcdClient*>(c)->endpoint(); },
    [](void* c, const std::string& key, int64_t start_revision,
       const std::function<bool(const EtcdWatchEvent&)>& on_event,
       const std::atomic<bool>& stop) { client(c).watch(key, start_revision, on_event, stop); },
    [](void* c, const std::string& key) { return client(c).del(key); },
    [](void* c, int64_t revision) { client(c).compact(revision); },
};

}  // namespace
}  // namespace xdpctl::fleet

extern "C" __attribute__((visibility("default"))) const xdpctl::fleet::EtcdModule* xdpctl_etcd_module()
{
    return &xdpctl::fleet::kModule;
}
