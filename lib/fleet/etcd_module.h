// The etcd client (etcd_client.h) as xdpctl loads it: a module of its own, xdpctl-etcd.so,
// opened by the first EtcdClient a fleet command makes. Boost.Asio's TLS and OpenSSL are in
// the module only: linked into xdpctl, loading libssl and libcrypto cost every command ~0.9 ms
// of CPU at start (of ~2.8), for the two commands that talk to etcd. xdpd and the tests link
// the client itself (xdpctl_fleet_lib).
//
// The module and xdpctl are built together from one tree (same compiler, same libstdc++):
// the table passes C++ types as they are. `version` changes whenever the table does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "fleet/etcd_client.h"

namespace xdpctl::fleet {

struct EtcdModule {
    uint32_t version;
    void* (*open)(EtcdConfig cfg);  // a new client; throws as EtcdClient's constructor
    void (*close)(void* client);
    int64_t (*put)(void* client, const std::string& key, const std::string& value);
    EtcdRange (*get)(void* client, const std::string& key);
    EtcdRange (*get_prefix)(void* client, const std::string& prefix);
    const std::string& (*endpoint)(const void* client);
    void (*watch)(void* client, const std::string& key, int64_t start_revision,
                  const std::function<bool(const EtcdWatchEvent&)>& on_event, const std::atomic<bool>& stop);
    int64_t (*del)(void* client, const std::string& key);
    void (*compact)(void* client, int64_t revision);
};

inline constexpr uint32_t kEtcdModuleVersion = 1;
inline constexpr const char* kEtcdModuleFile = "xdpctl-etcd.so";
inline constexpr const char* kEtcdModuleEntry = "xdpctl_etcd_module";

}  // namespace xdpctl::fleet

// The module's one exported symbol.
extern "C" const xdpctl::fleet::EtcdModule* xdpctl_etcd_module();
