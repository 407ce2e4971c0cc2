// A real etcd cluster for the fleet tests (issue 15): N members (3 by default) of the
// etcd-server binary on free ports of one address (127.0.0.1 by default), data directories in
// a temporary directory, and TLS made by the test with openssl: a CA, one certificate per
// member (server and peer), a client certificate; etcd asks clients for theirs
// (--client-cert-auth). Every member is killed and the directory removed when the object goes,
// also when a test fails; a test killed by a signal leaves nothing either (the members die
// with the process, the directory goes with the netns_lab emergency cleanup). Needs no root.
//
// The members are started by the thread that calls the constructor / start_member() and die
// when that thread ends (PR_SET_PDEATHSIG): start them from the test's own thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "fleet/etcd_client.h"

namespace xdpctl::test {

struct EtcdClusterOptions {
    int members = 3;
    // Where clients and peers reach the members (its certificates name it): an address of
    // the test's namespace, e.g. one hosts in other namespaces route to.
    std::string address = "127.0.0.1";
    bool tls = true;  // false: plain http, no certificates
};

class EtcdCluster {
public:
    // Starts every member and returns once the cluster has a leader and serves a write;
    // throws (with the members' logs) otherwise.
    explicit EtcdCluster(EtcdClusterOptions o = {});
    ~EtcdCluster();
    EtcdCluster(const EtcdCluster&) = delete;
    EtcdCluster& operator=(const EtcdCluster&) = delete;

    int size() const { return int(members_.size()); }
    std::string client_url(int i) const;           // "https://127.0.0.1:PORT"
    std::vector<std::string> client_urls() const;  // every member, in index order
    std::string endpoints() const;                 // the same, comma-separated (--etcd URL,URL,...)

    // The client's TLS files (empty without TLS) and the directory everything is in.
    const std::string& ca_file() const { return ca_; }
    const std::string& cert_file() const { return client_cert_; }
    const std::string& key_file() const { return client_key_; }
    const std::string& dir() const { return dir_; }
    // A client configuration for every member, with the client certificate.
    fleet::EtcdConfig client_config(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const;
    // The xdpctl / xdpd options naming the cluster: --etcd URLS [--etcd-cacert F --etcd-cert F --etcd-key F].
    std::vector<std::string> cli_args() const;

    // SIGTERM (stop_member) or SIGKILL (kill_member), then waits for the process to end.
    void stop_member(int i);
    void kill_member(int i);
    // Starts a stopped member again on its data directory and ports; returns once it answers
    // (its health, not the cluster's).
    void start_member(int i);
    // Several stopped members at once, then each one's health: after every member stopped,
    // one alone has no quorum and would never answer a health check.
    void start_members(const std::vector<int>& which);
    bool running(int i) const;

    // The index of the member the running ones agree is the leader, -1 when they do not
    // (yet): `etcdctl endpoint status` of each running member.
    int leader() const;
    // Waits (up to `limit`) for a leader, returns its index; throws if none came.
    int wait_leader(std::chrono::milliseconds limit = std::chrono::seconds(10)) const;
    // SIGKILL to the leader; returns its index.
    int kill_leader();

    // etcdctl with the cluster's endpoints and client certificate, then `args`; its stdout,
    // throws when it fails.
    std::string etcdctl(const std::vector<std::string>& args) const;
    // A member's log (stdout and stderr of etcd), for failure messages.
    std::string log(int i) const;

private:
    struct Member {
        std::string name, data_dir, log_file;
        int client_port = 0, peer_port = 0;
        pid_t pid = -1;
    };
    void make_certificates();
    void spawn(int i, bool new_cluster);
    void wait_member_healthy(int i, std::chrono::milliseconds limit) const;
    void reap(int i, int sig);
    void update_emergency_cleanup();
    void teardown();
    std::vector<std::string> etcdctl_base(const std::vector<std::string>& urls) const;

    EtcdClusterOptions opts_;
    std::string dir_, ca_, client_cert_, client_key_, initial_cluster_;
    std::vector<Member> members_;
    int emergency_slot_ = -1;
};

}  // namespace xdpctl::test
