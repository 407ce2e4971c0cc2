// An etcd member's URL, and the error type of the etcd client (etcd_client.h): what xdpctl
// needs of the client without the client itself, which is a module of its own in xdpctl
// (etcd_module.h: Boost.Asio and OpenSSL are loaded only by the fleet commands).
#pragma once

#include <cstdint>
#include <string>

#include "fleet/etcd_client.h"

namespace xdpctl::fleet {

struct EtcdEndpoint {
    std::string url;  // as given, for messages
    bool tls = false;
    std::string host;  // without [] for IPv6
    uint16_t port = 2379;
};
// "http://HOST[:PORT]" or "https://HOST[:PORT]" (IPv6 as [ADDR]), a trailing '/' allowed.
// Throws std::invalid_argument saying what is wrong.
EtcdEndpoint parse_etcd_endpoint(const std::string& url);

}  // namespace xdpctl::fleet
