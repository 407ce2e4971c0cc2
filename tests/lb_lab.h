// The load balancer's lab for the tests with real TCP (test_lb_traffic.cpp, test_health.cpp):
// a client namespace, the LB namespace (xdpctl loaded on its veth) and three backend
// namespaces on one bridge (in a switch namespace). The LB sends what it balances back out of
// the interface it came in on (XDP_TX), to the backend's MAC; the backends hold the VIPs on
// lo and answer the client directly. Removed (and xdpctl unloaded) on destruction, or by the
// emergency cleanup when the test is killed.
#pragma once

#include <linux/if_link.h>
#include <net/if.h>

#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>  // boost 1.74 asio uses std::exchange without it (C++20)
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "attach/skeleton.h"
#include "netns_lab.h"
#include "xdpctl_bench_empty.skel.h"

namespace xdpctl::test {

// The VIPs the backends hold on lo and the client routes through the LB.
inline constexpr const char* kVip4 = "198.18.100.1";
inline constexpr const char* kVip6 = "2001:2:100::1";

struct Node {
    std::string ns, mac, ip4, ip6;
};

// The five namespaces and the bridge. Removed (and xdpctl unloaded) on destruction.
class LbLab {
public:
    LbLab()
    {
        base_ = unique_ns_name("");
        sw_ = base_ + "-sw";
        client_ = {base_ + "-c", "02:00:00:00:01:01", "198.18.1.1", "2001:2:1::1"};
        lb_ = {base_ + "-lb", "02:00:00:00:01:02", "198.18.1.2", "2001:2:1::2"};
        for (int i = 1; i <= 3; i++)
            backends_.push_back({fmt::format("{}-b{}", base_, i), fmt::format("02:00:00:00:01:1{}", i),
                                 fmt::format("198.18.1.1{}", i), fmt::format("2001:2:1::1{}", i)});
        // A test killed before its teardown still removes the namespaces (netns_lab.h).
        std::string cmd = "exec >/dev/null 2>&1; PATH=$PATH:/usr/sbin:/sbin;";
        for (const std::string& ns : all_ns())
            cmd += " ip netns del " + ns + ";";
        cleanup_slot_ = register_emergency_cleanup(cmd);
        try {
            build();
        } catch (...) {
            teardown();
            throw;
        }
    }
    ~LbLab() { teardown(); }

    const Node& client() const { return client_; }
    const Node& lb() const { return lb_; }
    const std::vector<Node>& backends() const { return backends_; }

private:
    std::vector<const Node*> ends() const
    {
        std::vector<const Node*> v{&client_, &lb_};
        for (const auto& b : backends_)
            v.push_back(&b);
        return v;
    }

    void build()
    {
        for (const std::string& ns : all_ns()) {
            run_ok({"ip", "netns", "add", ns});
            run_ok({"ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.all.accept_dad=0", "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0"});
            run_ok({"ip", "-n", ns, "link", "set", "lo", "up"});
        }
        run_ok({"ip", "-n", sw_, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"});
        run_ok({"ip", "-n", sw_, "link", "set", "br0", "up"});
        int n = 0;
        for (const Node* e : ends()) {
            const std::string port = fmt::format("p{}", n++);
            run_ok({"ip", "-n", sw_, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", e->ns});
            run_ok({"ip", "-n", sw_, "link", "set", port, "master", "br0", "up"});
            run_ok({"ip", "-n", e->ns, "link", "set", "eth0", "address", e->mac, "up"});
            run_ok({"ip", "-n", e->ns, "addr", "add", e->ip4 + "/24", "dev", "eth0"});
            run_ok({"ip", "-n", e->ns, "addr", "add", e->ip6 + "/64", "dev", "eth0", "nodad"});
            // XDP_TX into a veth leaves the frames in the peer's ring unless the peer has an
            // XDP program (GRO alone does not get them flushed): a pass-all one.
            if (e == &lb_)
                attach_pass_program(port);
        }
        // The client reaches the VIPs through the LB; its MTU leaves room for ipip's header.
        run_ok({"ip", "-n", client_.ns, "link", "set", "eth0", "mtu", "1400"});
        // A veth hands on TCP checksums unfilled (CHECKSUM_PARTIAL); XDP_TX makes a new frame
        // of the bytes, which the backend would find wrong. A NIC delivers them filled in.
        run_ok({"ip", "netns", "exec", client_.ns, "ethtool", "-K", "eth0", "tx", "off"});
        run_ok({"ip", "-n", client_.ns, "route", "add", std::string(kVip4) + "/32", "via", lb_.ip4});
        run_ok({"ip", "-n", client_.ns, "-6", "route", "add", std::string(kVip6) + "/128", "via", lb_.ip6});
        for (const auto& b : backends_) {
            run_ok({"ip", "-n", b.ns, "addr", "add", std::string(kVip4) + "/32", "dev", "lo"});
            run_ok({"ip", "-n", b.ns, "addr", "add", std::string(kVip6) + "/128", "dev", "lo"});
            // The VIP is on lo: never answer ARP for it on eth0 (the LB owns that).
            run_ok({"ip", "netns", "exec", b.ns, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1",
                    "net.ipv4.conf.all.arp_announce=2"});
        }
        CmdResult r = xdpctl({"-n", lb_.ns, "load", "eth0"});
        if (r.exit_code != 0)
            throw std::runtime_error(fmt::format("xdpctl load failed: {}", r.err));
    }

    void attach_pass_program(const std::string& port)
    {
        SkelPtr<xdpctl_bench_empty> pass(xdpctl_bench_empty::open_and_load());
        if (!pass)
            throw std::runtime_error("cannot load the pass-all XDP program");
        NetnsScope scope(sw_);
        const int ifindex = int(if_nametoindex(port.c_str()));
        // Attached by netlink: it stays with the device after the skeleton is gone.
        if (ifindex == 0 ||
            bpf_xdp_attach(ifindex, bpf_program__fd(pass->progs.bench_xdp_pass), XDP_FLAGS_DRV_MODE, nullptr) != 0)
            throw std::runtime_error("cannot attach the pass-all XDP program to " + port);
    }

    std::vector<std::string> all_ns() const
    {
        std::vector<std::string> v{sw_};
        for (const Node* e : ends())
            v.push_back(e->ns);
        return v;
    }

    void teardown() noexcept
    {
        try {
            run_cmd({xdpctl_bin(), "-n", lb_.ns, "unload", "eth0"});
            for (const auto& b : backends_)
                run_cmd({xdpctl_bin(), "-n", b.ns, "lb", "decap", "detach", "eth0"});
        } catch (...) {
        }
        for (const std::string& ns : all_ns())
            try {
                run_cmd({"ip", "netns", "del", ns});
            } catch (...) {
            }
        release_emergency_cleanup(cleanup_slot_);
        cleanup_slot_ = -1;
    }

    std::string base_, sw_;
    int cleanup_slot_ = -1;
    Node client_, lb_;
    std::vector<Node> backends_;
};

// An io_context run by a thread of its own inside a namespace, for the backends' servers:
// what run() is given runs on that thread (sockets made there are the namespace's). The
// owner calls stop() before destroying what the handlers use (its sockets), and declares
// this member before them (their io_context must outlive them).
class NetnsIoThread {
public:
    explicit NetnsIoThread(const std::string& ns) : work_(boost::asio::make_work_guard(io_))
    {
        std::promise<void> entered;
        auto f = entered.get_future();
        thread_ = std::thread([this, ns, &entered] {
            std::optional<NetnsScope> scope;  // for the thread's life
            try {
                scope.emplace(ns);
                entered.set_value();
            } catch (...) {
                entered.set_exception(std::current_exception());
                return;
            }
            io_.run();
        });
        try {
            f.get();
        } catch (...) {
            thread_.join();
            throw;
        }
    }
    ~NetnsIoThread() { stop(); }
    NetnsIoThread(const NetnsIoThread&) = delete;
    NetnsIoThread& operator=(const NetnsIoThread&) = delete;

    boost::asio::io_context& io() { return io_; }
    // Runs f on the thread and waits for it; what it throws is thrown here.
    void run(const std::function<void()>& f)
    {
        std::promise<void> done;
        boost::asio::post(io_, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        done.get_future().get();
    }
    void stop()
    {
        io_.stop();
        if (thread_.joinable())
            thread_.join();
    }

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::thread thread_;
};

}  // namespace xdpctl::test
