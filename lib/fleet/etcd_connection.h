// One HTTP/1.1 connection to one etcd member (plain TCP or TLS), every operation bounded in
// time: what EtcdClient (etcd_client.h) sends its JSON requests and its watch stream over.
// Errors are EtcdError: Unreachable for the network (refused, timed out, closed), Tls for the
// handshake and certificates (either side's).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "fleet/etcd_client.h"
#include "fleet/etcd_endpoint.h"

namespace xdpctl::fleet {

// The TLS settings every connection of a client shares (CA, client certificate).
class EtcdTlsContext;
std::shared_ptr<EtcdTlsContext> make_tls_context(const EtcdTls& tls);

struct EtcdHttpResponse {
    unsigned status = 0;
    std::string body;
};

class EtcdConnection {
public:
    // Connects (and shakes hands) within `timeout`; throws EtcdError.
    EtcdConnection(const EtcdEndpoint& ep, std::shared_ptr<EtcdTlsContext> tls, std::chrono::milliseconds timeout);
    ~EtcdConnection();

    // POST `target` with a JSON body; the whole response within the timeout.
    EtcdHttpResponse post(const std::string& target, const std::string& json);

    // POST `target` and hand each piece of the response body to `on_data` as it comes, until
    // on_data returns false, `stop` is set (looked at every 200 ms) or the member closes the
    // stream (EtcdError Unreachable). No time limit once the response headers came: a watch
    // is quiet for as long as its key does not change (TCP keepalive finds a dead member).
    // Returns the status when it is not 200 (the body then in `error_body`), else 200.
    unsigned post_stream(const std::string& target, const std::string& json,
                         const std::function<bool(const std::string&)>& on_data, const std::atomic<bool>& stop,
                         std::string& error_body);

    bool usable() const;  // no error yet: may carry the next request

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xdpctl::fleet
