#include "generator.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>

#include "util/error.h"
#include "util/libbpf_log.h"
#include "packet_builder.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "xdpctl_pktgen.h"
#include "xdpctl_pktgen.skel.h"

namespace xdpctl::pktgen {

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kFcs = 4;
constexpr unsigned kMinFrame = 64, kMaxFrame = 1518;
constexpr uint32_t kMaxBatch = 256;  // TEST_XDP_MAX_BATCH in net/bpf/test_run.c
// Each call should last at least this long, and at least kOverheadFactor times what a call
// costs with nothing to send, so that the per-call setup stays a few percent at most.
constexpr double kCallSeconds = 0.01;
constexpr double kOverheadFactor = 20;
// A paced thread sends when a slice of this length at the target rate is due (or the
// per-call minimum above, when that is longer).
constexpr double kPaceSeconds = 0.001;

unsigned header_bytes(const GenConfig& c)
{
    return 14 + (c.vlan ? 4 : 0) + (c.src.ipv6 ? 40 : 20) + (c.tcp ? 20 : 8);
}

double secs(Clock::duration d)
{
    return std::chrono::duration<double>(d).count();
}

std::vector<uint8_t> build_template(const GenConfig& c, const Mac& src_mac)
{
    static constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    test::PacketBuilder b;
    b.eth(c.dst_mac.value_or(kBroadcast), c.src_mac.value_or(src_mac));
    if (c.vlan)
        b.vlan(*c.vlan);
    if (c.src.ipv6) {
        test::Ipv6Opts o;
        o.src = c.src.base;
        o.dst = c.dst.base;
        b.ipv6(o);
    } else {
        test::Ipv4Opts o;
        std::copy_n(c.src.base.begin(), 4, o.src.begin());
        std::copy_n(c.dst.base.begin(), 4, o.dst.begin());
        b.ipv4(o);
    }
    if (c.tcp) {
        test::TcpOpts o;
        o.sport = c.sport.first;
        o.dport = c.dport.first;
        o.flags = test::tcp_flags::ack;
        b.tcp(o);
    } else {
        b.udp(c.sport.first, c.dport.first);
    }
    b.payload(c.frame_size - kFcs - header_bytes(c));
    return b.build();
}

std::vector<unsigned> pick_cpus(const GenConfig& c)
{
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        fail("cannot read this process's CPU affinity: {}", errno_str(errno));
    if (!c.cpus.empty()) {
        for (unsigned cpu : c.cpus)
            if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))
                fail_usage("--cpus: CPU {} is not one this process may run on", cpu);
        return c.cpus;
    }
    std::vector<unsigned> cpus;
    for (unsigned cpu = 0; cpu < CPU_SETSIZE && cpus.size() < c.threads; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            cpus.push_back(cpu);
    if (cpus.size() < c.threads)
        fail_usage("--threads {}: only {} CPUs available; one thread per CPU", c.threads,
                   cpus.size());
    return cpus;
}

SkelPtr<xdpctl_pktgen> load_writer(const GenConfig& c, int ifindex,
                                   const std::vector<unsigned>& cpus)
{
    SkelPtr<xdpctl_pktgen> s(xdpctl_pktgen::open());
    if (!s)
        fail("cannot open the frame writer's BPF object: {}", errno_str(errno));
    auto* ro = s->rodata;
    ro->cfg_ifindex = uint32_t(ifindex);
    ro->cfg_l3_off = 14 + (c.vlan ? 4 : 0);
    ro->cfg_ipv6 = c.src.ipv6;
    ro->cfg_tcp = c.tcp;
    ro->cfg_random = c.order == FlowOrder::random;
    ro->cfg_vary = c.src.count > 1 || c.dst.count > 1 || c.sport.count > 1 || c.dport.count > 1;
    ro->cfg_l4_csum = 1;
    ro->cfg_src_base = c.src.low32();
    ro->cfg_dst_base = c.dst.low32();
    ro->cfg_src_count = c.src.count;
    ro->cfg_dst_count = c.dst.count;
    ro->cfg_sport_base = c.sport.first;
    ro->cfg_dport_base = c.dport.first;
    ro->cfg_sport_count = c.sport.count;
    ro->cfg_dport_count = c.dport.count;
    if (int err = xdpctl_pktgen::load(s.get()))
        fail("cannot load the frame writer (root?): {}\n{}", errno_str(err),
             libbpf_verifier_reason());

    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        fail("cannot count the possible CPUs: {}", errno_str(ncpu));
    std::vector<xdpctl_pktgen_cursor> cursors(size_t(ncpu), xdpctl_pktgen_cursor{0, 1});
    for (size_t k = 0; k < cpus.size(); k++)
        if (cpus[k] < unsigned(ncpu))
            cursors[cpus[k]] = {k, cpus.size()};
    uint32_t key = 0;
    if (bpf_map_update_elem(bpf_map__fd(s->maps.pktgen_cursor), &key, cursors.data(), BPF_ANY))
        fail("cannot set the flow cursors: {}", errno_str(errno));
    return s;
}

// Attaches the writer to the namespace's loopback (generic XDP, a link that ends with this
// process) so it stays in the kernel's XDP dispatcher: a test run of a program that is not
// there adds and removes it, an RCU grace period each, ~24 ms a call on this VM. The program
// passes everything that is not its own test run. Without it the generator still works,
// with longer calls.
UniqueFd anchor_in_dispatcher(int prog_fd)
{
    const int lo = int(if_nametoindex("lo"));
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_SKB_MODE);
    UniqueFd link(lo ? bpf_link_create(prog_fd, lo, BPF_XDP, &opts) : -1);
    if (!link)
        fmt::print(stderr,
                   "xdpctl-pktgen: warning: cannot attach to 'lo' ({}): every test run pays the "
                   "XDP dispatcher update, so calls are made longer\n",
                   lo ? errno_str(errno) : "no loopback");
    return link;
}

// The share of `total` that thread k of n takes; the first ones take the remainder.
uint64_t share(uint64_t total, size_t k, size_t n)
{
    return total / n + (k < total % n ? 1 : 0);
}

struct alignas(64) Worker {
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> done{false};
    double seconds = 0;
};

struct Shared {
    std::atomic<bool> stop{false};
    std::mutex err_mu;
    std::string error;

    void fail_with(std::string msg)
    {
        std::lock_guard lock(err_mu);
        if (error.empty())
            error = std::move(msg);
        stop = true;
    }
};

void worker_loop(int prog_fd, const std::vector<uint8_t>& frame, int ifindex, unsigned cpu,
                 uint64_t quota, double rate, const GenConfig& c, Clock::time_point start,
                 Worker& w, Shared& sh)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // The test run sends from the CPU it runs on, and veth picks the peer's queue by that CPU.
    if (int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
        sh.fail_with(fmt::format("cannot pin a thread to CPU {}: {}", cpu, errno_str(e)));
        w.done = true;
        return;
    }
    xdp_md md{};
    md.data_end = uint32_t(frame.size());
    md.ingress_ifindex = uint32_t(ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = uint32_t(frame.size()), .ctx_in = &md,
                .ctx_size_in = sizeof md, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                .batch_size = c.batch);

    uint64_t sent = 0;
    double last_pps = 0;
    // The first call sends one batch: what it takes is the floor of a call's cost, and sets
    // how long the following calls should be.
    uint64_t chunk = c.batch;
    double call_s = 0;
    uint64_t pace_min = rate > 0 ? std::max<uint64_t>(1, uint64_t(rate * kPaceSeconds)) : 0;
    while (!sh.stop) {
        const Clock::time_point now = Clock::now();
        const double elapsed = secs(now - start);
        if (c.duration > 0 && elapsed >= c.duration)
            break;
        if (quota && sent >= quota)
            break;
        uint64_t n = chunk;
        if (rate > 0) {
            const double due = rate * elapsed - double(sent);
            if (due < double(pace_min)) {
                const double wait = (double(pace_min) - due) / rate;
                std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 0.05)));
                continue;
            }
            n = std::min(n, uint64_t(due));
        }
        if (quota)
            n = std::min(n, quota - sent);
        // The last call of a timed run: only what fits in the time left at the last rate.
        if (c.duration > 0 && last_pps > 0)
            n = std::min(n, std::max<uint64_t>(1, uint64_t((c.duration - elapsed) * last_pps)));
        opts.repeat = uint32_t(std::min<uint64_t>(n, UINT32_MAX));
        // Slow paced runs send fewer frames a call than a batch holds.
        opts.batch_size = std::min<uint32_t>(c.batch, opts.repeat);
        const Clock::time_point t0 = Clock::now();
        if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
            const int e = errno;
            sh.fail_with(fmt::format(
                "BPF_PROG_TEST_RUN in live-frames mode failed on CPU {}: {}{}", cpu, errno_str(e),
                e == EINVAL ? " (needs BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18 or later, and an "
                              "Ethernet interface)"
                            : ""));
            break;
        }
        sent += opts.repeat;
        w.sent.store(sent, std::memory_order_relaxed);
        const double took = secs(Clock::now() - t0);
        if (call_s == 0) {
            call_s = std::max(kCallSeconds, kOverheadFactor * took);
            if (rate > 0)
                pace_min = std::max<uint64_t>(1, uint64_t(rate * std::max(kPaceSeconds, call_s)));
        }
        // Aim each call at call_s from the rate the last one reached.
        if (took > 0) {
            last_pps = double(opts.repeat) / took;
            chunk = uint64_t(std::clamp(last_pps * call_s, double(c.batch), double(1u << 26)));
        }
    }
    w.seconds = secs(Clock::now() - start);
    w.done = true;
}

}  // namespace

void validate(const GenConfig& c)
{
    if (c.threads < 1 || c.threads > 256)
        fail_usage("--threads {}: give 1 to 256", c.threads);
    if (!c.cpus.empty() && c.cpus.size() != c.threads)
        fail_usage("--cpus lists {} CPUs for {} threads: give one per thread", c.cpus.size(),
                   c.threads);
    if (c.src.ipv6 != c.dst.ipv6)
        fail_usage("--src is {} but --dst is {}: both must be of one family",
                   c.src.ipv6 ? "IPv6" : "IPv4", c.dst.ipv6 ? "IPv6" : "IPv4");
    if (c.frame_size < kMinFrame || c.frame_size > kMaxFrame)
        fail_usage("--size {}: frame sizes are {} to {} bytes (with the FCS, as RFC 2544 counts)",
                   c.frame_size, kMinFrame, kMaxFrame);
    const unsigned need = header_bytes(c) + kFcs;
    if (c.frame_size < need)
        fail_usage("--size {}: too small for {}{}/{}: the headers and FCS take {} bytes", c.frame_size,
                   c.vlan ? "VLAN/" : "", c.src.ipv6 ? "IPv6" : "IPv4", c.tcp ? "TCP" : "UDP",
                   need);
    if (c.vlan && *c.vlan > 4094)
        fail_usage("--vlan {}: VLAN IDs are 0 to 4094", *c.vlan);
    if (c.batch < 1 || c.batch > kMaxBatch)
        fail_usage("--batch {}: give 1 to {}", c.batch, kMaxBatch);
    if (c.duration < 0)
        fail_usage("--duration must not be negative");
    if (!c.count && c.duration <= 0)
        fail_usage("give --count or --duration: the generator always stops on its own");
    if (c.rate && c.rate < c.threads)
        fail_usage("--rate {}: below one frame per second per thread", c.rate);
}

GenResult run(const GenConfig& c, const Progress& progress)
{
    validate(c);
    GenResult r;
    r.dev = netdev_info(c.iface);
    if (!r.dev.up)
        fail("interface '{}' is down: 'ip link set dev {} up' first", c.iface, c.iface);
    const unsigned l3_bytes = c.frame_size - kFcs - 14 - (c.vlan ? 4 : 0);
    if (l3_bytes > r.dev.mtu)
        fail_usage("--size {}: the IP packet ({} bytes) exceeds the MTU of '{}' ({})",
                   c.frame_size, l3_bytes, c.iface, r.dev.mtu);
    const std::vector<unsigned> cpus = pick_cpus(c);
    const std::vector<uint8_t> frame = build_template(c, r.dev.mac);
    r.frame_bytes = frame.size();
    r.flows = 1;
    for (uint64_t n : {c.src.count, c.dst.count, uint64_t(c.sport.count), uint64_t(c.dport.count)})
        r.flows = r.flows > UINT64_MAX / n ? UINT64_MAX : r.flows * n;

    SkelPtr<xdpctl_pktgen> skel = load_writer(c, r.dev.ifindex, cpus);
    const int prog_fd = bpf_program__fd(skel->progs.pktgen_tx);
    const UniqueFd anchor = anchor_in_dispatcher(prog_fd);
    const XmitCounters before = xdp_xmit_counters(c.iface);

    // Workers never see SIGINT/SIGTERM: a signal would cut a test run short with EINTR and
    // lose its count. This thread takes them with sigtimedwait instead.
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);

    Shared sh;
    std::vector<Worker> workers(cpus.size());
    std::vector<std::thread> threads;
    const Clock::time_point start = Clock::now();
    for (size_t k = 0; k < cpus.size(); k++) {
        const uint64_t quota = c.count ? share(c.count, k, cpus.size()) : 0;
        const double rate = c.rate ? double(share(c.rate, k, cpus.size())) : 0;
        threads.emplace_back(worker_loop, prog_fd, std::cref(frame), r.dev.ifindex, cpus[k],
                             quota, rate, std::cref(c), start, std::ref(workers[k]),
                             std::ref(sh));
    }

    auto total = [&] {
        uint64_t t = 0;
        for (const auto& w : workers)
            t += w.sent.load(std::memory_order_relaxed);
        return t;
    };
    auto all_done = [&] {
        return std::all_of(workers.begin(), workers.end(), [](const Worker& w) { return w.done.load(); });
    };
    Clock::time_point tick = start;
    uint64_t last = 0;
    while (!all_done()) {
        const Clock::time_point next = tick + std::chrono::seconds(1);
        // Wake often enough to notice the workers finishing; a signal ends the wait at once.
        const auto wait = std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50));
        if (wait.count() > 0) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
            timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
            if (sigtimedwait(&sigs, nullptr, &ts) > 0) {
                r.interrupted = true;
                sh.stop = true;
            }
        }
        const Clock::time_point now = Clock::now();
        if (now >= next && progress) {
            const uint64_t t = total();
            progress(secs(now - start), t, double(t - last) / secs(now - tick));
            last = t;
            tick = now;
        }
    }
    for (auto& t : threads)
        t.join();
    const double elapsed = secs(Clock::now() - start);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (!sh.error.empty())
        fail("{}", sh.error);

    const XmitCounters after = xdp_xmit_counters(c.iface);
    r.xmit.known = before.known && after.known;
    r.xmit.xmit = after.xmit - before.xmit;
    r.xmit.errors = after.errors - before.errors;
    for (size_t k = 0; k < cpus.size(); k++) {
        r.threads.push_back({cpus[k], workers[k].sent.load(), workers[k].seconds});
        r.packets += workers[k].sent.load();
        r.seconds = std::max(r.seconds, workers[k].seconds);
    }
    if (r.seconds <= 0)
        r.seconds = elapsed;
    return r;
}

}  // namespace xdpctl::pktgen
