// xdpctl-dpdk-bench: the DPDK row of scripts/bench.sh. It reads one port (the af_xdp PMD on
// the device-under-test veth, in practice), one RX queue per lcore, and classifies as the
// other rows do: UDP to the benchmark port is dropped, everything else passes (there is no
// kernel behind DPDK to pass to, so "pass" means counted and freed). The rule table is an
// rte_hash keyed by (IP protocol, destination port), looked up a burst at a time.
//
// Prints one JSON line a second with the running totals, and one at the end:
//   {"t": 1.0, "rx": N, "drop": N, "pass": N}
//   {"final": true, "t": ..., "rx": ..., "drop": ..., "pass": ..., "pps": ..., "eth": {...}}
//
// usage: xdpctl-dpdk-bench EAL-ARGS -- [--dport 9] [--duration 10]
#include <signal.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRxDesc = 1024;
constexpr unsigned kMbufs = 8191;
constexpr unsigned kMbufCache = 256;

enum Action : uint8_t { kPass = 0, kDrop = 1 };

// The hash key: what the benchmark's one rule looks at. Padding is explicit so that the
// bytes hashed are always defined.
struct RuleKey {
    uint8_t proto;
    uint8_t pad;
    rte_be16_t dport;
};
static_assert(sizeof(RuleKey) == 4);

struct alignas(RTE_CACHE_LINE_SIZE) LcoreStats {
    std::atomic<uint64_t> rx{0}, drop{0}, pass{0};
};

std::atomic<bool> g_stop{false};
LcoreStats g_stats[RTE_MAX_LCORE];
rte_hash* g_rules;
Action g_actions[16];  // indexed by the position rte_hash gives a key
uint16_t g_port;

void on_signal(int)
{
    g_stop = true;
}

// The (protocol, destination port) of a frame, or proto 0 when it is not TCP/UDP over IP.
RuleKey key_of(rte_mbuf* m)
{
    RuleKey k{};
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const uint8_t* p = reinterpret_cast<const uint8_t*>(eth + 1);
    const uint8_t* end = rte_pktmbuf_mtod(m, const uint8_t*) + rte_pktmbuf_data_len(m);
    uint16_t type = eth->ether_type;
    for (int i = 0; i < 2 && (type == RTE_BE16(RTE_ETHER_TYPE_VLAN) ||
                              type == RTE_BE16(RTE_ETHER_TYPE_QINQ));
         i++) {
        if (p + sizeof(rte_vlan_hdr) > end)
            return k;
        type = reinterpret_cast<const rte_vlan_hdr*>(p)->eth_proto;
        p += sizeof(rte_vlan_hdr);
    }
    uint8_t proto;
    if (type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p);
        if (p + sizeof *ip > end || (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)))
            return k;
        proto = ip->next_proto_id;
        p += rte_ipv4_hdr_len(ip);
    } else if (type == RTE_BE16(RTE_ETHER_TYPE_IPV6)) {
        const auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(p);
        if (p + sizeof *ip > end)
            return k;
        proto = ip->proto;  // extension headers: not in this benchmark's traffic
        p += sizeof *ip;
    } else {
        return k;
    }
    if ((proto != IPPROTO_UDP && proto != IPPROTO_TCP) || p + 4 > end)
        return k;
    k.proto = proto;
    std::memcpy(&k.dport, p + 2, sizeof k.dport);
    return k;
}

// One lcore's RX queue: receive a burst, classify it with one bulk hash lookup, count, free.
class Poller {
public:
    explicit Poller(uint16_t queue) : queue_(queue), st_(g_stats[rte_lcore_id()])
    {
        for (unsigned i = 0; i < kBurst; i++)
            key_ptrs_[i] = &keys_[i];
    }

    void once()
    {
        const uint16_t n = rte_eth_rx_burst(g_port, queue_, pkts_, kBurst);
        if (!n)
            return;
        for (uint16_t i = 0; i < n; i++)
            keys_[i] = key_of(pkts_[i]);
        rte_hash_lookup_bulk(g_rules, key_ptrs_, n, pos_);
        uint64_t drops = 0;
        for (uint16_t i = 0; i < n; i++)
            drops += pos_[i] >= 0 && g_actions[pos_[i]] == kDrop;
        rte_pktmbuf_free_bulk(pkts_, n);
        // One writer per counter: relaxed stores are enough for the reporter's snapshots.
        add(st_.rx, n);
        add(st_.drop, drops);
        add(st_.pass, n - drops);
    }

private:
    static void add(std::atomic<uint64_t>& c, uint64_t v)
    {
        c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    }

    uint16_t queue_;
    LcoreStats& st_;
    rte_mbuf* pkts_[kBurst];
    RuleKey keys_[kBurst];
    const void* key_ptrs_[kBurst];
    int32_t pos_[kBurst];
};

int poll_queue(void* arg)
{
    Poller p(uint16_t(reinterpret_cast<uintptr_t>(arg)));
    while (!g_stop.load(std::memory_order_relaxed))
        p.once();
    return 0;
}

struct Totals {
    uint64_t rx = 0, drop = 0, pass = 0;
};

Totals totals()
{
    Totals t;
    for (auto& s : g_stats) {
        t.rx += s.rx.load(std::memory_order_relaxed);
        t.drop += s.drop.load(std::memory_order_relaxed);
        t.pass += s.pass.load(std::memory_order_relaxed);
    }
    return t;
}

[[noreturn]] void die(const char* what, int err)
{
    std::fprintf(stderr, "xdpctl-dpdk-bench: %s: %s\n", what, rte_strerror(err < 0 ? -err : err));
    rte_eal_cleanup();
    std::exit(1);
}

void setup_port(uint16_t nq)
{
    rte_eth_dev_info info;
    if (int e = rte_eth_dev_info_get(g_port, &info))
        die("rte_eth_dev_info_get", e);
    if (nq > info.max_rx_queues) {
        std::fprintf(stderr,
                     "xdpctl-dpdk-bench: %u lcores but the port has %u RX queues (af_xdp: "
                     "queue_count=N in --vdev, and as many channels on the interface)\n",
                     nq, info.max_rx_queues);
        rte_eal_cleanup();
        std::exit(2);
    }
    rte_mempool* pool = rte_pktmbuf_pool_create("xdpctl_mbufs", kMbufs * nq, kMbufCache, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (!pool)
        die("rte_pktmbuf_pool_create", rte_errno);
    rte_eth_conf conf{};
    // One TX queue per RX queue: the af_xdp PMD pairs them in one socket, and wants both.
    if (int e = rte_eth_dev_configure(g_port, nq, nq, &conf))
        die("rte_eth_dev_configure", e);
    for (uint16_t q = 0; q < nq; q++) {
        if (int e = rte_eth_rx_queue_setup(g_port, q, kRxDesc, rte_eth_dev_socket_id(g_port),
                                           nullptr, pool))
            die("rte_eth_rx_queue_setup", e);
        if (int e = rte_eth_tx_queue_setup(g_port, q, kRxDesc, rte_eth_dev_socket_id(g_port),
                                           nullptr))
            die("rte_eth_tx_queue_setup", e);
    }
    if (int e = rte_eth_dev_start(g_port))
        die("rte_eth_dev_start", e);
    rte_eth_stats_reset(g_port);
}

void setup_rules(uint16_t dport)
{
    rte_hash_parameters p{};
    p.name = "xdpctl_rules";
    p.entries = 16;
    p.key_len = sizeof(RuleKey);
    p.hash_func = rte_jhash;
    p.socket_id = int(rte_socket_id());
    g_rules = rte_hash_create(&p);
    if (!g_rules)
        die("rte_hash_create", rte_errno);
    const RuleKey k{IPPROTO_UDP, 0, rte_cpu_to_be_16(dport)};
    const int32_t pos = rte_hash_add_key(g_rules, &k);
    if (pos < 0 || pos >= int32_t(sizeof g_actions))
        die("rte_hash_add_key", pos);
    g_actions[pos] = kDrop;
}

}  // namespace

int main(int argc, char** argv)
{
    const int eal_args = rte_eal_init(argc, argv);
    if (eal_args < 0)
        die("rte_eal_init (EAL arguments)", rte_errno);
    argc -= eal_args;
    argv += eal_args;

    unsigned dport = 9;
    double duration = 10;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--dport" && i + 1 < argc) {
            dport = unsigned(std::strtoul(argv[++i], nullptr, 10));
        } else if (a == "--duration" && i + 1 < argc) {
            duration = std::strtod(argv[++i], nullptr);
        } else {
            std::fprintf(stderr, "usage: xdpctl-dpdk-bench EAL-ARGS -- [--dport PORT] "
                                 "[--duration SECONDS]\n");
            rte_eal_cleanup();
            return 2;
        }
    }
    if (dport > 65535 || !(duration > 0)) {
        std::fprintf(stderr, "xdpctl-dpdk-bench: --dport is 0-65535, --duration above 0\n");
        rte_eal_cleanup();
        return 2;
    }
    if (rte_eth_dev_count_avail() != 1) {
        std::fprintf(stderr, "xdpctl-dpdk-bench: expected exactly one port (give one --vdev), "
                             "found %u\n",
                     rte_eth_dev_count_avail());
        rte_eal_cleanup();
        return 2;
    }
    g_port = uint16_t(rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER));

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    const uint16_t nq = uint16_t(rte_lcore_count());
    setup_rules(uint16_t(dport));
    setup_port(nq);

    // One queue per lcore: workers take the first ones.
    uint16_t q = 0;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore)
    rte_eal_remote_launch(poll_queue, reinterpret_cast<void*>(uintptr_t(q++)), lcore);

    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t start = rte_get_tsc_cycles();
    const uint64_t end = start + uint64_t(duration * double(hz));
    uint64_t next = start + hz;
    // The main lcore polls the last queue itself and reports once a second in between.
    Poller mine(q);
    while (!g_stop.load(std::memory_order_relaxed)) {
        const uint64_t now = rte_get_tsc_cycles();
        if (now >= next) {
            const Totals t = totals();
            std::printf("{\"t\": %.3f, \"rx\": %" PRIu64 ", \"drop\": %" PRIu64
                        ", \"pass\": %" PRIu64 "}\n",
                        double(now - start) / double(hz), t.rx, t.drop, t.pass);
            std::fflush(stdout);
            next += hz;
        }
        if (now >= end)
            break;
        mine.once();
    }
    g_stop = true;
    rte_eal_mp_wait_lcore();
    const double secs = double(rte_get_tsc_cycles() - start) / double(hz);
    const Totals t = totals();
    rte_eth_stats es{};
    rte_eth_stats_get(g_port, &es);
    std::printf("{\"final\": true, \"t\": %.3f, \"rx\": %" PRIu64 ", \"drop\": %" PRIu64
                ", \"pass\": %" PRIu64 ", \"pps\": %.1f, \"queues\": %u, \"dport\": %u, "
                "\"eth\": {\"ipackets\": %" PRIu64 ", \"imissed\": %" PRIu64
                ", \"ierrors\": %" PRIu64 "}}\n",
                secs, t.rx, t.drop, t.pass, double(t.rx) / secs, nq, dport, es.ipackets,
                es.imissed, es.ierrors);
    std::fflush(stdout);
    rte_eth_dev_stop(g_port);
    rte_eth_dev_close(g_port);
    rte_eal_cleanup();
    return 0;
}
