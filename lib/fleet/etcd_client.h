// etcd v3 JSON gateway (HTTP/1.1, keys/values base64) over Boost.Beast, TLS via Boost.Asio ssl.
// No gRPC stack: etcd 3.4's gateway (/v3/kv/put, /v3/kv/range, streaming /v3/watch) is all a
// fleet needs. The API is the contract with xdpd's follower (issue 15): add, do not change.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace xdpctl::fleet {

struct EtcdTls {
    std::string cacert, cert, key;  // files; empty = not given
};

struct EtcdConfig {
    // "http://127.0.0.1:2379" or "https://...": tried in order; a member that does not
    // answer -> the next.
    std::vector<std::string> endpoints;
    EtcdTls tls;
    std::chrono::milliseconds timeout{2000};  // per request / connect
};

struct EtcdKv {
    std::string key, value;
    int64_t create_revision = 0, mod_revision = 0, version = 0;
};

struct EtcdRange {
    int64_t header_revision = 0;
    std::vector<EtcdKv> kvs;
};

struct EtcdWatchEvent {
    enum class Type { Put, Delete } type;
    EtcdKv kv;
};

class EtcdError : public std::runtime_error {
public:
    enum class Kind {
        Unreachable,  // no member answered (connect, timeout, connection lost)
        Tls,          // handshake or certificate refused (either side)
        Http,         // a member answered with an HTTP error (etcd's message in what())
        Compacted,    // a watch from a revision etcd compacted away
        Protocol,     // an answer that is not etcd's JSON
    };
    EtcdError(Kind k, const std::string& what, int64_t compact_revision = 0);
    Kind kind() const { return kind_; }
    int64_t compact_revision() const { return compact_revision_; }  // set for Kind::Compacted

private:
    Kind kind_;
    int64_t compact_revision_;
};

class EtcdClient {  // blocking; one instance per thread
public:
    explicit EtcdClient(EtcdConfig cfg);
    ~EtcdClient();
    EtcdClient(EtcdClient&&) noexcept;
    EtcdClient& operator=(EtcdClient&&) noexcept;

    int64_t put(const std::string& key, const std::string& value);  // returns the new header revision
    EtcdRange get(const std::string& key);                           // exact key (kvs empty if absent)
    EtcdRange get_prefix(const std::string& prefix);
    const std::string& endpoint() const;  // the member last used

    // Streams events for `key` from start_revision; returns when on_event returns false or
    // `stop` becomes true (checked at least every 200 ms); throws EtcdError
    // (Kind::Compacted with compact_revision when etcd compacted past start_revision;
    // Unreachable when no member answers).
    void watch(const std::string& key, int64_t start_revision,
               const std::function<bool(const EtcdWatchEvent&)>& on_event, const std::atomic<bool>& stop);

    // Additions beyond the contract.
    // Deletes `key` (exact); returns the new header revision.
    int64_t del(const std::string& key);
    // Compacts the key-value history up to `revision` (physical: waits until done).
    void compact(int64_t revision);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xdpctl::fleet
