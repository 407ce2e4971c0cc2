#include "etcd_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "netns_lab.h"


namespace xdpctl::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Free TCP ports of `address`: bound together (so they differ) and released. Another
// process may take one before etcd binds it: the constructor then starts again.
std::vector<int> free_ports(const std::string& address, int n)
{
    std::vector<int> fds, ports;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        inet_pton(AF_INET, address.c_str(), &a.sin_addr);
        socklen_t len = sizeof(a);
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
            getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error(fmt::format("no free port on {}: {}", address, strerror(errno)));
        fds.push_back(fd);
        ports.push_back(ntohs(a.sin_port));
    }
    for (int fd : fds)
        close(fd);
    return ports;
}

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string join(const std::vector<std::string>& v, const char* sep)
{
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : sep) + x;
    return s;
}

}  // namespace

EtcdCluster::EtcdCluster(EtcdClusterOptions o) : opts_(std::move(o))
{
    char tmpl[] = "/tmp/xdpctl-etcd-XXXXXX";
    if (!mkdtemp(tmpl))
        throw std::runtime_error(fmt::format("mkdtemp: {}", strerror(errno)));
    dir_ = tmpl;
    update_emergency_cleanup();
    try {
        if (opts_.tls)
            make_certificates();
        // A port taken by someone else between free_ports and etcd's bind: new ports.
        for (int attempt = 1;; attempt++) {
            members_.assign(opts_.members, {});
            std::vector<int> ports = free_ports(opts_.address, 2 * opts_.members);
            std::vector<std::string> peers;
            const std::string scheme = opts_.tls ? "https" : "http";
            for (int i = 0; i < opts_.members; i++) {
                Member& m = members_[i];
                m.name = fmt::format("m{}", i);
                m.data_dir = fmt::format("{}/{}-{}.data", dir_, m.name, attempt);
                m.log_file = fmt::format("{}/{}.log", dir_, m.name);
                m.client_port = ports[2 * i];
                m.peer_port = ports[2 * i + 1];
                peers.push_back(fmt::format("{}={}://{}:{}", m.name, scheme, opts_.address, m.peer_port));
            }
            initial_cluster_ = join(peers, ",");
            for (int i = 0; i < opts_.members; i++)
                spawn(i, true);
            try {
                for (int i = 0; i < opts_.members; i++)
                    wait_member_healthy(i, 15s);
                wait_leader(10s);
                etcdctl({"put", "/xdpctl-test/cluster-up", "1"});
                return;
            } catch (const std::exception&) {
                bool exited = false;
                for (int i = 0; i < opts_.members; i++)
                    exited |= !running(i);
                if (!exited || attempt == 3)
                    throw;
                for (int i = 0; i < opts_.members; i++)
                    reap(i, SIGKILL);
            }
        }
    } catch (const std::exception& e) {
        std::string logs;
        for (int i = 0; i < size(); i++)
            logs += fmt::format("\n--- {} ---\n{}", members_[i].name, log(i));
        teardown();
        throw std::runtime_error(fmt::format("etcd cluster did not start: {}{}", e.what(), logs));
    }
}

EtcdCluster::~EtcdCluster()
{
    teardown();
}

void EtcdCluster::teardown()
{
    for (int i = 0; i < size(); i++)
        reap(i, SIGKILL);
    if (!dir_.empty()) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    release_emergency_cleanup(emergency_slot_);
    emergency_slot_ = -1;
}

void EtcdCluster::update_emergency_cleanup()
{
    // The members die with the process (PR_SET_PDEATHSIG); the kill is for a handler that
    // runs while it still lives.
    std::string pids;
    for (const Member& m : members_)
        if (m.pid > 0)
            pids += fmt::format(" {}", m.pid);
    release_emergency_cleanup(emergency_slot_);
    emergency_slot_ = register_emergency_cleanup(
        fmt::format("{}rm -rf '{}'", pids.empty() ? "" : "kill -9" + pids + " 2>/dev/null; ", dir_));
}

void EtcdCluster::make_certificates()
{
    // EC keys: an RSA key takes ~0.1 s each to make.
    auto key = [&](const std::string& name) {
        run_ok({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                dir_ + "/" + name + ".key"});
    };
    key("ca");
    ca_ = dir_ + "/ca.pem";
    run_ok({"openssl", "req", "-x509", "-new", "-key", dir_ + "/ca.key", "-subj", "/CN=xdpctl-test-ca",
            "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign", "-out", ca_});
    auto signed_cert = [&](const std::string& name, const std::string& cn, const std::string& ext) {
        key(name);
        std::ofstream(dir_ + "/" + name + ".ext") << ext;
        run_ok({"openssl", "req", "-new", "-key", dir_ + "/" + name + ".key", "-subj", "/CN=" + cn, "-out",
                dir_ + "/" + name + ".csr"});
        run_ok({"openssl", "x509", "-req", "-in", dir_ + "/" + name + ".csr", "-CA", ca_, "-CAkey",
                dir_ + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir_ + "/" + name + ".ext",
                "-out", dir_ + "/" + name + ".pem"});
    };
    // One certificate for every member, as server and as peer (a peer is a client of the others).
    signed_cert("member", "xdpctl-test-etcd",
                fmt::format("subjectAltName=IP:{},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
                            "keyUsage=critical,digitalSignature,keyEncipherment\n",
                            opts_.address));
    signed_cert("client", "xdpctl-test-client",
                "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n");
    client_cert_ = dir_ + "/client.pem";
    client_key_ = dir_ + "/client.key";
}

void EtcdCluster::spawn(int i, bool new_cluster)
{
    Member& m = members_.at(i);
    const std::string scheme = opts_.tls ? "https" : "http";
    const std::string client = fmt::format("{}://{}:{}", scheme, opts_.address, m.client_port);
    const std::string peer = fmt::format("{}://{}:{}", scheme, opts_.address, m.peer_port);
    std::vector<std::string> argv = {
        "/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/usr/bin/etcd",
        "--name", m.name, "--data-dir", m.data_dir,
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", initial_cluster_, "--initial-cluster-token", fs::path(dir_).filename().string(),
        "--initial-cluster-state", new_cluster ? "new" : "existing",
        // Elections in ~0.5 s rather than ~1-2 s: the failover tests wait for them.
        "--heartbeat-interval", "50", "--election-timeout", "500",
        "--logger", "zap", "--log-outputs", "stderr", "--enable-v2=false"};
    if (opts_.tls) {
        const std::string cert = dir_ + "/member.pem", key = dir_ + "/member.key";
        for (const std::string& a : {"--cert-file=" + cert, "--key-file=" + key, "--trusted-ca-file=" + ca_,
                                     std::string("--client-cert-auth"), "--peer-cert-file=" + cert,
                                     "--peer-key-file=" + key, "--peer-trusted-ca-file=" + ca_,
                                     std::string("--peer-client-cert-auth")})
            argv.push_back(a);
    }
    m.pid = spawn_logged(argv, m.log_file, {}, true);  // a restart's log after the first run's
    update_emergency_cleanup();
}

void EtcdCluster::reap(int i, int sig)
{
    Member& m = members_.at(i);
    if (m.pid <= 0)
        return;
    kill(m.pid, sig);
    int status;
    while (waitpid(m.pid, &status, 0) < 0 && errno == EINTR) {
    }
    m.pid = -1;
    update_emergency_cleanup();
}

void EtcdCluster::stop_member(int i)
{
    reap(i, SIGTERM);
}

void EtcdCluster::kill_member(int i)
{
    reap(i, SIGKILL);
}

void EtcdCluster::start_member(int i)
{
    if (running(i))
        return;
    reap(i, SIGKILL);  // one that exited by itself
    spawn(i, false);
    wait_member_healthy(i, 15s);
}

void EtcdCluster::start_members(const std::vector<int>& which)
{
    for (int i : which)
        if (!running(i))
            spawn(i, false);
    for (int i : which)
        wait_member_healthy(i, 15s);
}

bool EtcdCluster::running(int i) const
{
    const Member& m = members_.at(i);
    if (m.pid <= 0)
        return false;
    // Not reaped here (WNOWAIT): a member that exited stays a zombie until reap().
    siginfo_t info{};
    return waitid(P_PID, m.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

std::string EtcdCluster::client_url(int i) const
{
    const Member& m = members_.at(i);
    return fmt::format("{}://{}:{}", opts_.tls ? "https" : "http", opts_.address, m.client_port);
}

std::vector<std::string> EtcdCluster::client_urls() const
{
    std::vector<std::string> v;
    for (int i = 0; i < size(); i++)
        v.push_back(client_url(i));
    return v;
}

std::string EtcdCluster::endpoints() const
{
    return join(client_urls(), ",");
}

fleet::EtcdConfig EtcdCluster::client_config(std::chrono::milliseconds timeout) const
{
    fleet::EtcdConfig c;
    c.endpoints = client_urls();
    c.tls = {ca_, client_cert_, client_key_};
    c.timeout = timeout;
    return c;
}

std::vector<std::string> EtcdCluster::cli_args() const
{
    std::vector<std::string> v = {"--etcd", endpoints()};
    if (opts_.tls)
        v.insert(v.end(), {"--etcd-cacert", ca_, "--etcd-cert", client_cert_, "--etcd-key", client_key_});
    return v;
}

std::vector<std::string> EtcdCluster::etcdctl_base(const std::vector<std::string>& urls) const
{
    std::vector<std::string> v = {"/usr/bin/etcdctl", "--endpoints=" + join(urls, ","), "--command-timeout=2s",
                                  "--dial-timeout=1s"};
    if (opts_.tls)
        v.insert(v.end(), {"--cacert=" + ca_, "--cert=" + client_cert_, "--key=" + client_key_});
    return v;
}

std::string EtcdCluster::etcdctl(const std::vector<std::string>& args) const
{
    std::vector<std::string> argv = etcdctl_base(client_urls());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_ok(argv);
}

void EtcdCluster::wait_member_healthy(int i, std::chrono::milliseconds limit) const
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::vector<std::string> argv = etcdctl_base({client_url(i)});
    argv.insert(argv.end(), {"endpoint", "health"});
    for (;;) {
        if (!running(i))
            throw std::runtime_error(fmt::format("etcd member {} exited", members_[i].name));
        CmdResult r = run_cmd(argv, 5s);
        if (r.exit_code == 0)
            return;
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error(fmt::format("etcd member {} not healthy after {} ms: {}", members_[i].name,
                                                 limit.count(), r.err));
        std::this_thread::sleep_for(100ms);
    }
}

int EtcdCluster::leader() const
{
    // Each running member's own id and the leader it follows.
    std::vector<uint64_t> ids(size(), 0);
    uint64_t agreed = 0;
    for (int i = 0; i < size(); i++) {
        if (!running(i))
            continue;
        std::vector<std::string> argv = etcdctl_base({client_url(i)});
        argv.insert(argv.end(), {"endpoint", "status", "--write-out=json"});
        CmdResult r = run_cmd(argv, 5s);
        if (r.exit_code != 0)
            return -1;
        nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
        if (j.is_discarded() || !j.is_array() || j.empty())
            return -1;
        // etcdctl leaves out fields that are 0: no "leader" while an election runs.
        const nlohmann::json& st = j[0].value("Status", nlohmann::json::object());
        ids[i] = st.value("header", nlohmann::json::object()).value("member_id", uint64_t{0});
        const uint64_t lead = st.value("leader", uint64_t{0});
        if (lead == 0 || (agreed && lead != agreed))
            return -1;
        agreed = lead;
    }
    for (int i = 0; i < size(); i++)
        if (agreed && ids[i] == agreed)
            return i;
    return -1;
}

int EtcdCluster::wait_leader(std::chrono::milliseconds limit) const
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int l = leader();
        if (l >= 0)
            return l;
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error(fmt::format("no etcd leader after {} ms", limit.count()));
        std::this_thread::sleep_for(100ms);
    }
}

int EtcdCluster::kill_leader()
{
    int l = wait_leader();
    kill_member(l);
    return l;
}

std::string EtcdCluster::log(int i) const
{
    std::string s = read_file(members_.at(i).log_file);
    return s.size() > 4000 ? "..." + s.substr(s.size() - 4000) : s;
}

}  // namespace xdpctl::test
