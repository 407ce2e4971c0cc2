// The load balancer through the real XDP program and the TC decapsulator, with
// BPF_PROG_TEST_RUN: the exact bytes that go out for DSR and IP-in-IP (v4, v6), checksums,
// non-VIP traffic untouched, fragments and ICMP to a VIP passed and counted, the connection
// table keeping a flow on its backend when the Maglev table changes, and the program picking
// the backend the C++ side computes with the same hash (what `lb trace` relies on), and the
// per-CPU flow cache in front of the connection table answering as the table would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include "bpf_test_run.h"
#include "util/error.h"
#include "lb/lb_maps.h"
#include "packet_builder.h"
#include "require_root.h"
#include "xdpctl_decap.skel.h"
#include "xdpctl_xdp.skel.h"

using namespace xdpctl;
using namespace xdpctl::lb;
using namespace xdpctl::test;

namespace {

// The VIPs and backends of these tests (benchmarking ranges only).
const Ipv4Addr kClient4{198, 18, 0, 1};
const Ipv4Addr kVip4{198, 19, 0, 1};
const Ipv4Addr kIpipSrc4{198, 19, 0, 254};
const Ipv6Addr kClient6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
const Ipv6Addr kVip6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01};
const Ipv6Addr kIpipSrc6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xfe};

Mac backend_mac(int i)
{
    return {0x02, 0x00, 0x00, 0x00, 0x0a, uint8_t(i)};
}

IpAddr ip4(const Ipv4Addr& a)
{
    return parse_ip(fmt::format("{}.{}.{}.{}", a[0], a[1], a[2], a[3]));
}

IpAddr ip6(const Ipv6Addr& a)
{
    IpAddr r;
    r.family = 6;
    std::memcpy(r.w, a.data(), 16);
    return r;
}

IpAddr backend4(int i)
{
    return parse_ip(fmt::format("198.19.10.{}", i));
}

IpAddr backend6(int i)
{
    return parse_ip(fmt::format("2001:2:0:a::{}", i));
}

BackendSpec backend(const IpAddr& a, int i, uint32_t weight = 1)
{
    BackendSpec b;
    b.addr = a;
    std::memcpy(b.mac.data(), backend_mac(i).data(), 6);
    b.weight = weight;
    return b;
}

struct Out {
    int err = 0;
    uint32_t retval = 0;
    std::vector<uint8_t> bytes;
};

// One run that also returns the frame as the program left it.
Out run_out(int prog_fd, const std::vector<uint8_t>& in)
{
    Out o;
    o.bytes.resize(in.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = o.bytes.data(),
                .data_size_in = uint32_t(in.size()), .data_size_out = uint32_t(o.bytes.size()),
                .repeat = 1);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
        o.err = -errno;
    o.retval = opts.retval;
    o.bytes.resize(opts.data_size_out);
    return o;
}

// An established connection's segment (ACK), or with `syn` a connection's first.
Frame tcp4(uint16_t sport, const Ipv4Addr& dst = kVip4, uint16_t dport = 80, size_t payload = 32,
           bool syn = false)
{
    Ipv4Opts ip;
    ip.src = kClient4;
    ip.dst = dst;
    TcpOpts t;
    t.sport = sport;
    t.dport = dport;
    t.flags = syn ? tcp_flags::syn : tcp_flags::ack;
    return PacketBuilder().eth(kDstMac, kSrcMac).ipv4(ip).tcp(t).payload(payload).build_frame();
}

Frame tcp6(uint16_t sport, const Ipv6Addr& dst = kVip6, uint16_t dport = 443)
{
    Ipv6Opts ip;
    ip.src = kClient6;
    ip.dst = dst;
    TcpOpts t;
    t.sport = sport;
    t.dport = dport;
    t.flags = tcp_flags::ack;
    return PacketBuilder().eth(kDstMac, kSrcMac).ipv6(ip).tcp(t).payload(40).build_frame();
}

void put16(std::vector<uint8_t>& b, size_t off, uint16_t v)
{
    b[off] = uint8_t(v >> 8);
    b[off + 1] = uint8_t(v);
}

// The Ethernet header the LB sends with: to the backend, from the address the frame came to.
std::vector<uint8_t> eth_out(int backend, uint16_t type)
{
    const Mac m = backend_mac(backend);
    std::vector<uint8_t> e(14);
    std::copy(m.begin(), m.end(), e.begin());
    std::copy(kDstMac.begin(), kDstMac.end(), e.begin() + 6);
    put16(e, 12, type);
    return e;
}

// Which test backend a frame the LB sent went to, by its destination MAC.
int backend_of(const Out& o)
{
    return o.bytes.size() >= 6 ? o.bytes[5] : -1;
}

uint32_t flow_hash4(uint16_t sport, uint16_t dport)
{
    uint32_t s[4] = {}, d[4] = {};
    std::memcpy(s, kClient4.data(), 4);
    std::memcpy(d, kVip4.data(), 4);
    return xdpctl_lb_flow_hash(s, d, (uint32_t(htons(sport)) << 16) | htons(dport), IPPROTO_TCP);
}

// Runs the test's packets on one CPU (the test run runs a program on the caller's): the
// flow cache is per CPU, and a test that sees a packet served from it must know which.
void run_on_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0) << "cannot run on CPU " << cpu;
}

// The connection-table key of tcp4(sport, kVip4, dport).
xdpctl_lb_flow_key flow_key4(uint16_t sport, uint16_t dport = 80)
{
    xdpctl_lb_flow_key fk{};
    std::memcpy(fk.saddr, kClient4.data(), 4);
    std::memcpy(fk.daddr, kVip4.data(), 4);
    fk.sport = htons(sport);
    fk.dport = htons(dport);
    fk.proto = IPPROTO_TCP;
    fk.family = 4;
    return fk;
}

uint32_t cache_slot_of(const xdpctl_lb_flow_key& fk)
{
    __u64 w[5];
    static_assert(sizeof(w) == sizeof(fk));
    std::memcpy(w, &fk, sizeof(w));
    return xdpctl_lb_fcache_slot_of(w);
}

// Empties a map as a fresh load leaves it: an array's elements zeroed (every CPU's), every
// other map's keys deleted. A ring buffer has nothing a program reads back.
void reset_map(const bpf_map* m)
{
    const int fd = bpf_map__fd(m);
    const uint32_t n = bpf_map__max_entries(m);
    switch (bpf_map__type(m)) {
    case BPF_MAP_TYPE_RINGBUF:
        return;
    case BPF_MAP_TYPE_ARRAY:
        if (bpf_map__map_flags(m) & BPF_F_MMAPABLE) {  // large (the policy's anchor lists): in place
            const size_t page = size_t(sysconf(_SC_PAGESIZE));
            const size_t len = (size_t(n) * bpf_map__value_size(m) + page - 1) / page * page;
            void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            ASSERT_NE(p, MAP_FAILED) << "cannot map " << bpf_map__name(m) << ": " << errno_str(errno);
            std::memset(p, 0, len);
            munmap(p, len);
            return;
        }
        [[fallthrough]];
    case BPF_MAP_TYPE_PERCPU_ARRAY: {
        const size_t cpus = bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY ? libbpf_num_possible_cpus() : 1;
        // per-CPU values are 8-byte aligned each in the syscall's buffer
        const size_t vsize = cpus > 1 ? (bpf_map__value_size(m) + 7) / 8 * 8 : bpf_map__value_size(m);
        const size_t row = vsize * cpus;
        // Read whole, then only what is not zero written: most of the object's maps are the
        // policy's, which these tests never fill (a write of every element costs ~1 s a suite).
        std::vector<uint8_t> vals(size_t(n) * row), zeros(size_t(n) * row);
        std::vector<uint32_t> keys(n), dirty;
        uint32_t batch = 0, count = n;
        const int err = bpf_map_lookup_batch(fd, nullptr, &batch, keys.data(), vals.data(), &count, nullptr);
        ASSERT_TRUE(err == 0 || errno == ENOENT) << "cannot read " << bpf_map__name(m) << ": " << errno_str(errno);
        for (uint32_t i = 0; i < count; i++)
            if (std::memcmp(&vals[i * row], zeros.data(), row) != 0)
                dirty.push_back(keys[i]);
        count = uint32_t(dirty.size());
        if (count) {
            ASSERT_EQ(bpf_map_update_batch(fd, dirty.data(), zeros.data(), &count, nullptr), 0)
                << "cannot zero " << bpf_map__name(m) << ": " << errno_str(errno);
        }
        return;
    }
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_PROG_ARRAY: {  // every index is a key: the ones that hold something emptied
        uint32_t id = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (bpf_map_lookup_elem(fd, &i, &id) == 0) {
                ASSERT_EQ(bpf_map_delete_elem(fd, &i), 0) << "cannot empty " << bpf_map__name(m) << ": " << errno_str(errno);
            }
        }
        return;
    }
    default: {
        // the keys first: a hash map's walk from its start passes every empty bucket
        const size_t ks = bpf_map__key_size(m);
        std::vector<uint8_t> keys, next(ks);
        const void* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
            keys.insert(keys.end(), next.begin(), next.end());
            prev = &keys[keys.size() - ks];
        }
        for (size_t off = 0; off < keys.size(); off += ks)
            ASSERT_EQ(bpf_map_delete_elem(fd, &keys[off]), 0)
                << "cannot empty " << bpf_map__name(m) << ": " << errno_str(errno);
    }
    }
}

// Every test runs on both programs that balance: xdpctl_xdp (the filter and the balancer,
// the flow cache's probe a function of its own) and xdpctl_lb_only (what `load` attaches
// while VIPs exist and no policy: the probe inlined), loaded as the loader loads them.
// Each is loaded once for the suite (a load costs ~0.3 s, the suite has ~50 cases); every
// case starts from its maps emptied as a fresh load has them (the LB's, the flow cache, the
// counters, the policy's: all of them), so cases stay independent.
class LbBpf : public ::testing::TestWithParam<const char*> {
protected:
    static void TearDownTestSuite() { loaded_.clear(); }
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        ASSERT_EQ(sched_getaffinity(0, sizeof(saved_), &saved_), 0);
        run_on_cpu(sched_getcpu());
        SkelPtr<xdpctl_xdp>& xdp = loaded_[GetParam()];
        if (!xdp)
            ASSERT_NO_FATAL_FAILURE(load(xdp));
        else
            ASSERT_NO_FATAL_FAILURE(reset(*xdp));
        xdp_ = xdp.get();
        prog_ = bpf_object__find_program_by_name(xdp_->obj, GetParam());
        maps_ = std::make_unique<LbMaps>(LbMaps::from_skeleton(*xdp_));
    }
    void TearDown() override { sched_setaffinity(0, sizeof(saved_), &saved_); }

    void load(SkelPtr<xdpctl_xdp>& xdp)
    {
        xdp.reset(xdpctl_xdp::open());
        ASSERT_TRUE(xdp) << "cannot open the XDP program: " << errno_str(errno);
        bpf_program* prog = bpf_object__find_program_by_name(xdp->obj, GetParam());
        ASSERT_TRUE(prog) << GetParam();
        if (prog != xdp->progs.xdpctl_xdp) {
            xdp->rodata->cfg_paths = XDPCTL_PATH_LB;
            bpf_program__set_autoload(xdp->progs.xdpctl_xdp, false);
            bpf_program__set_autoload(prog, true);
        }
        const int err = xdpctl_xdp::load(xdp.get());
        if (err)
            xdp.reset();
        ASSERT_EQ(err, 0) << "cannot load " << GetParam() << ": " << errno_str(errno);
    }
    static void reset(xdpctl_xdp& xdp)
    {
        const bpf_map* m;
        bpf_object__for_each_map(m, xdp.obj) {
            if (!bpf_map__is_internal(m)) {
                ASSERT_NO_FATAL_FAILURE(reset_map(m));
            }
        }
        std::memset(xdp.bss, 0, sizeof(*xdp.bss));
    }

    int prog() const { return bpf_program__fd(prog_); }
    // vip4() (dsr) with test backends 1 and 2 (backend4(i), MAC backend_mac(i)).
    void vip4_with_two_backends();
    uint64_t stat(int idx) const { return maps_->stats().cnt[idx]; }
    // The flow cache's slot of `fk` as this CPU holds it, as stored.
    xdpctl_lb_fcache_slot cached_raw(const xdpctl_lb_flow_key& fk) const
    {
        std::vector<xdpctl_lb_fcache_slot> v(libbpf_num_possible_cpus());
        const uint32_t idx = cache_slot_of(fk);
        EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(xdp_->maps.xdpctl_lb_fcache), &idx, v.data()), 0);
        return v.at(sched_getcpu());
    }
    // The same, its key without this build's mark and `hits` the hits alone (abi:
    // XDPCTL_LB_FCACHE_PEND_SHIFT; without the bytes pending).
    xdpctl_lb_fcache_slot cached(const xdpctl_lb_flow_key& fk) const
    {
        xdpctl_lb_fcache_slot s = cached_raw(fk);
        if ((s.key[4] & XDPCTL_LB_FCACHE_KEY_MARK) == XDPCTL_LB_FCACHE_KEY_MARK)
            s.key[4] &= ~XDPCTL_LB_FCACHE_KEY_MARK;
        s.hits &= (1u << XDPCTL_LB_FCACHE_PEND_SHIFT) - 1;
        return s;
    }

    static std::map<std::string, SkelPtr<xdpctl_xdp>> loaded_;  // by program name
    cpu_set_t saved_{};
    xdpctl_xdp* xdp_ = nullptr;
    bpf_program* prog_ = nullptr;
    std::unique_ptr<LbMaps> maps_;
};

std::map<std::string, SkelPtr<xdpctl_xdp>> LbBpf::loaded_;

INSTANTIATE_TEST_SUITE_P(Programs, LbBpf, ::testing::Values("xdpctl_xdp", "xdpctl_lb_only"),
                         [](const auto& info) { return std::string(info.param); });

VipSpec vip4(uint16_t port = 80)
{
    return {ip4(kVip4), port, IPPROTO_TCP};
}

VipSpec vip6(uint16_t port = 443)
{
    return {ip6(kVip6), port, IPPROTO_TCP};
}

void LbBpf::vip4_with_two_backends()
{
    maps_->add_vip(vip4(), {});
    for (int i = 1; i <= 2; i++)
        maps_->add_backend(vip4(), backend(backend4(i), i));
}

}  // namespace

TEST_P(LbBpf, DsrRewritesOnlyTheMacs)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Frame f = tcp4(40001);
    const Out o = run_out(prog(), f.bytes);
    ASSERT_EQ(o.err, 0);
    EXPECT_EQ(o.retval, uint32_t(XDP_TX));
    std::vector<uint8_t> want = eth_out(1, 0x0800);
    want.insert(want.end(), f.bytes.begin() + 14, f.bytes.end());
    EXPECT_EQ(o.bytes, want);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_TX), 1u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 1u);
    auto vc = maps_->vip_counters(0);
    EXPECT_EQ(vc.packets, 1u);
    EXPECT_EQ(vc.bytes, f.bytes.size());
    EXPECT_EQ(vc.new_flows, 1u);
    // The same flow again: a connection-table hit, no new flow.
    ASSERT_EQ(run_out(prog(), f.bytes).bytes, want);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 1u);
    EXPECT_EQ(maps_->vip_counters(0).new_flows, 1u);
    EXPECT_EQ(maps_->backend_counters(maps_->backends(0)[0].slot).packets, 2u);
}

TEST_P(LbBpf, Ipip4ExactBytesAndChecksum)
{
    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    o.ipip_source = ip4(kIpipSrc4);
    maps_->add_vip(vip4(), o);
    maps_->add_backend(vip4(), backend(backend4(2), 2));
    const Frame f = tcp4(40002);
    const Out out = run_out(prog(), f.bytes);
    ASSERT_EQ(out.err, 0);
    ASSERT_EQ(out.retval, uint32_t(XDP_TX));

    const size_t inner_len = f.l3_end - f.l3_off;
    std::vector<uint8_t> outer = {0x45, f.bytes[f.l3_off + 1], 0, 0, 0, 0, 0, 0, 64, IPPROTO_IPIP, 0, 0};
    put16(outer, 2, uint16_t(inner_len + 20));
    outer.insert(outer.end(), kIpipSrc4.begin(), kIpipSrc4.end());
    const uint8_t be[4] = {198, 19, 10, 2};
    outer.insert(outer.end(), be, be + 4);
    put16(outer, 10, inet_checksum(outer.data(), outer.size()));

    std::vector<uint8_t> want = eth_out(2, 0x0800);
    want.insert(want.end(), outer.begin(), outer.end());
    want.insert(want.end(), f.bytes.begin() + 14, f.bytes.end());
    EXPECT_EQ(out.bytes, want);
    // The program's checksum verifies (sums to zero over the header).
    EXPECT_EQ(inet_checksum(out.bytes.data() + 14, 20), 0);
    // The inner packet's own checksums are untouched (and still right).
    EXPECT_EQ(inet_checksum(out.bytes.data() + 34, 20), 0);
}

TEST_P(LbBpf, Ipip6ExactBytes)
{
    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    o.ipip_source = ip6(kIpipSrc6);
    maps_->add_vip(vip6(), o);
    maps_->add_backend(vip6(), backend(backend6(3), 3));
    const Frame f = tcp6(40003);
    const Out out = run_out(prog(), f.bytes);
    ASSERT_EQ(out.err, 0);
    ASSERT_EQ(out.retval, uint32_t(XDP_TX));

    uint32_t s[4], d[4];
    std::memcpy(s, kClient6.data(), 16);
    std::memcpy(d, kVip6.data(), 16);
    const uint32_t hash = xdpctl_lb_flow_hash(s, d, (uint32_t(htons(40003)) << 16) | htons(443), IPPROTO_TCP);
    const size_t inner_len = f.l3_end - f.l3_off;
    // version 6, the inner traffic class (0), the flow label from the flow hash
    std::vector<uint8_t> outer = {0x60, uint8_t((hash >> 16) & 0x0f), uint8_t(hash >> 8), uint8_t(hash), 0, 0,
                                  41, 64};
    put16(outer, 4, uint16_t(inner_len));
    outer.insert(outer.end(), kIpipSrc6.begin(), kIpipSrc6.end());
    const IpAddr be_addr = backend6(3);
    const uint8_t* be = reinterpret_cast<const uint8_t*>(be_addr.w);
    outer.insert(outer.end(), be, be + 16);

    std::vector<uint8_t> want = eth_out(3, 0x86dd);
    want.insert(want.end(), outer.begin(), outer.end());
    want.insert(want.end(), f.bytes.begin() + 14, f.bytes.end());
    EXPECT_EQ(out.bytes, want);
}

// A connection-table hit compares the entry's VIP by id with the packet (IPv6 addresses, a
// port-0 VIP) and, for ipip over IPv6, hashes the flow again for the outer flow label (no
// ports for a 3-tuple VIP): the hit sends the same bytes as the miss before it.
TEST_P(LbBpf, HitsSendWhatTheMissSent)
{
    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    o.flags = XDPCTL_LB_F_HASH_3TUPLE;
    o.ipip_source = ip6(kIpipSrc6);
    maps_->add_vip(vip6(), o);
    maps_->add_backend(vip6(), backend(backend6(2), 2));
    const Frame f6 = tcp6(40010);
    const Out miss = run_out(prog(), f6.bytes);
    ASSERT_EQ(miss.retval, uint32_t(XDP_TX));
    uint32_t s[4], d[4];
    std::memcpy(s, kClient6.data(), 16);
    std::memcpy(d, kVip6.data(), 16);
    const uint32_t hash = xdpctl_lb_flow_hash(s, d, 0, IPPROTO_TCP);
    ASSERT_GE(miss.bytes.size(), 18u);
    EXPECT_EQ(miss.bytes[15] & 0x0f, int((hash >> 16) & 0x0f));
    EXPECT_EQ(miss.bytes[16], uint8_t(hash >> 8));
    EXPECT_EQ(miss.bytes[17], uint8_t(hash));
    const Out hit = run_out(prog(), f6.bytes);
    EXPECT_EQ(hit.retval, uint32_t(XDP_TX));
    EXPECT_EQ(hit.bytes, miss.bytes);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 1u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 1u);

    maps_->add_vip(vip4(0), {});
    maps_->add_backend(vip4(0), backend(backend4(1), 1));
    const Frame f4 = tcp4(40011, kVip4, 8080);
    const Out miss4 = run_out(prog(), f4.bytes);
    ASSERT_EQ(miss4.retval, uint32_t(XDP_TX));
    EXPECT_EQ(run_out(prog(), f4.bytes).bytes, miss4.bytes);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 2u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 2u);
    // Another port of the same address is its own flow: a miss.
    EXPECT_EQ(run_out(prog(), tcp4(40011, kVip4, 8081).bytes).retval, uint32_t(XDP_TX));
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 3u);
}

TEST_P(LbBpf, TooBigForIpipIsPassedAndCounted)
{
    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    maps_->add_vip(vip4(), o);
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    // 1,490 bytes of IP: 1,510 once encapsulated, over the 1,500 MTU.
    const Frame big = tcp4(40004, kVip4, 80, 1490 - 40);
    const Out out = run_out(prog(), big.bytes);
    EXPECT_EQ(out.retval, uint32_t(XDP_PASS));
    EXPECT_EQ(out.bytes, big.bytes);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_TOO_BIG), 1u);
    EXPECT_EQ(maps_->vip_counters(0).packets, 0u);
    // 1,480 fits exactly.
    const Frame fits = tcp4(40005, kVip4, 80, 1480 - 40);
    EXPECT_EQ(run_out(prog(), fits.bytes).retval, uint32_t(XDP_TX));
}

TEST_P(LbBpf, NonVipTrafficUntouched)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Ipv4Addr other{198, 19, 0, 2};
    for (const Frame& f : {tcp4(40006, other), tcp4(40006, kVip4, 81), tcp6(40006)}) {
        const Out o = run_out(prog(), f.bytes);
        EXPECT_EQ(o.retval, uint32_t(XDP_PASS));
        EXPECT_EQ(o.bytes, f.bytes);
    }
    // UDP to the TCP VIP's address and port: not the VIP.
    Ipv4Opts ip;
    ip.src = kClient4;
    ip.dst = kVip4;
    const auto udp = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(ip).udp(40006, 80).build();
    EXPECT_EQ(run_out(prog(), udp).bytes, udp);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_TX), 0u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 0u);
}

TEST_P(LbBpf, AnyPortVip)
{
    maps_->add_vip(vip4(0), {});
    maps_->add_backend(vip4(0), backend(backend4(1), 1));
    for (uint16_t port : {80, 8080, 1}) {
        const Out o = run_out(prog(), tcp4(40007, kVip4, port).bytes);
        EXPECT_EQ(o.retval, uint32_t(XDP_TX)) << port;
    }
}

TEST_P(LbBpf, FragmentsIcmpAndOtherProtocolsToAVipArePassedAndCounted)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    Ipv4Opts ip;
    ip.src = kClient4;
    ip.dst = kVip4;
    const auto echo = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(ip).icmp_echo().build();
    Ipv4Opts first = ip;
    first.more_fragments = true;
    const auto frag1 = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(first).tcp().payload(16).build();
    Ipv4Opts later = ip;
    later.frag_offset = 10;
    later.protocol = IPPROTO_TCP;
    const auto frag2 = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(later).payload(16).build();
    Ipv4Opts gre = ip;
    gre.protocol = 47;
    const auto other = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(gre).payload(16).build();
    for (const auto& f : {echo, frag1, frag2, other}) {
        const Out o = run_out(prog(), f);
        EXPECT_EQ(o.retval, uint32_t(XDP_PASS));
        EXPECT_EQ(o.bytes, f);
    }
    EXPECT_EQ(stat(XDPCTL_LB_CNT_ICMP), 1u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_FRAGMENT), 2u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_OTHER_PROTO), 1u);
    // ICMP to an address that is no VIP's: not counted.
    Ipv4Opts elsewhere = ip;
    elsewhere.dst = {198, 19, 0, 9};
    run_out(prog(), PacketBuilder().eth(kDstMac, kSrcMac).ipv4(elsewhere).icmp_echo().build());
    EXPECT_EQ(stat(XDPCTL_LB_CNT_ICMP), 1u);
    // A VLAN-tagged frame to the VIP is passed, counted.
    const auto tagged = PacketBuilder().eth(kDstMac, kSrcMac).vlan(10).ipv4(ip).tcp().build();
    EXPECT_EQ(run_out(prog(), tagged).bytes, tagged);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_VLAN), 1u);
}

TEST_P(LbBpf, NoBackendPasses)
{
    maps_->add_vip(vip4(), {});
    const Frame f = tcp4(40008);
    EXPECT_EQ(run_out(prog(), f.bytes).bytes, f.bytes);
    maps_->add_backend(vip4(), backend(backend4(1), 1, 0));  // weight 0
    EXPECT_EQ(run_out(prog(), f.bytes).bytes, f.bytes);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_NO_BACKEND), 2u);
}

// The program's choice for new flows is table[ring_pos(hash)], computed here with the
// shared hash; and trace, which reads the live maps, agrees before and after the flows.
TEST_P(LbBpf, ProgramAndTraceAgreeWithTheSharedHash)
{
    maps_->add_vip(vip4(), {});
    for (int i = 1; i <= 3; i++)
        maps_->add_backend(vip4(), backend(backend4(i), i, uint32_t(i)));
    const auto table = maps_->ring(0);
    std::map<uint32_t, int> slot_to_test_backend;
    for (const auto& b : maps_->backends(0))
        slot_to_test_backend[b.slot] = b.mac()[5];
    std::map<int, int> spread;
    for (uint16_t sport = 20000; sport < 20600; sport++) {
        FlowSpec fl{IPPROTO_TCP, ip4(kClient4), ip4(kVip4), sport, 80};
        const TraceResult before = maps_->trace(fl);
        ASSERT_TRUE(before.vip_found);
        ASSERT_FALSE(before.conntrack_hit);
        const int want = slot_to_test_backend.at(table[xdpctl_lb_ring_pos(flow_hash4(sport, 80), 65537)]);
        ASSERT_EQ(before.backend->mac()[5], want);
        const Out o = run_out(prog(), tcp4(sport).bytes);
        ASSERT_EQ(backend_of(o), want) << "sport " << sport;
        const TraceResult after = maps_->trace(fl);
        ASSERT_TRUE(after.conntrack_hit);
        ASSERT_EQ(after.backend->mac()[5], want);
        ASSERT_EQ(after.maglev->mac()[5], want);
        spread[want]++;
    }
    // Weights 1:2:3 over 600 flows.
    EXPECT_GT(spread[3], spread[1]);
    // trace changed no counter: one miss and one packet a flow.
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 600u);
    EXPECT_EQ(maps_->vip_counters(0).packets, 600u);
}

TEST_P(LbBpf, ConnectionTableKeepsFlowsWhenTheTableChanges)
{
    vip4_with_two_backends();
    std::map<uint16_t, int> first;
    for (uint16_t sport = 30000; sport < 30200; sport++)
        first[sport] = backend_of(run_out(prog(), tcp4(sport).bytes));
    std::set<int> seen;
    for (auto& [s, b] : first)
        seen.insert(b);
    ASSERT_EQ(seen, (std::set<int>{1, 2}));

    // Drain backend 1 and add a third: established flows stay where they are.
    maps_->set_weight(vip4(), backend4(1), 0);
    maps_->add_backend(vip4(), backend(backend4(3), 3));
    for (auto& [sport, b] : first) {
        ASSERT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), b) << "sport " << sport;
        // trace says the same, and where a new connection on the tuple would go
        const TraceResult t = maps_->trace({IPPROTO_TCP, ip4(kClient4), ip4(kVip4), sport, 80});
        ASSERT_TRUE(t.conntrack_hit);
        ASSERT_EQ(t.backend->mac()[5], b);
        ASSERT_NE(t.maglev->mac()[5], 1);
    }
    // New flows never go to the drained backend.
    for (uint16_t sport = 31000; sport < 31200; sport++)
        ASSERT_NE(backend_of(run_out(prog(), tcp4(sport).bytes)), 1);

    // A SYN on the 5-tuple of an established flow opens a new connection: scheduled afresh,
    // never to the drained backend (clients reuse ports).
    for (auto& [sport, b] : first)
        if (b == 1) {
            const int now = backend_of(run_out(prog(), tcp4(sport, kVip4, 80, 32, true).bytes));
            ASSERT_NE(now, 1) << "sport " << sport;
            // and the table now holds the new backend for the tuple
            ASSERT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), now);
            b = now;
        }

    // Deleting backend 1 reschedules its flows; the others' stay.
    maps_->del_backend(vip4(), backend4(1));
    for (auto& [sport, b] : first) {
        const int now = backend_of(run_out(prog(), tcp4(sport).bytes));
        if (b == 1)
            ASSERT_NE(now, 1);
        else
            ASSERT_EQ(now, b);
    }
}

// An entry counts only while its backend slot holds the incarnation it was made with: one
// the sweep did not reach (or a packet made while a backend was being replaced) is a miss.
TEST_P(LbBpf, AnEntryOfAnEarlierIncarnationIsAMiss)
{
    maps_->add_vip(vip4(), {});
    const BackendEntry b1 = maps_->add_backend(vip4(), backend(backend4(1), 1));
    maps_->add_backend(vip4(), backend(backend4(2), 2));
    // A flow the table sends to backend 2.
    uint16_t sport = 42000;
    while (maps_->trace({IPPROTO_TCP, ip4(kClient4), ip4(kVip4), sport, 80}).maglev->mac()[5] != 2)
        sport++;
    const xdpctl_lb_flow_key fk = flow_key4(sport);
    xdpctl_lb_flow fl{b1.slot, 0, XDPCTL_LB_FLOW_F_VALID, b1.rec.gen};
    const int ct = maps_->fds().ct.get();
    // A write of the table from userspace voids the flow cache's copies (conntrack_changed),
    // else the copy of the entry the packet before made would still answer.
    ASSERT_EQ(bpf_map_update_elem(ct, &fk, &fl, BPF_ANY), 0);
    maps_->conntrack_changed();
    EXPECT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 1) << "the entry of this incarnation";
    fl.be_gen = b1.rec.gen - 1;
    ASSERT_EQ(bpf_map_update_elem(ct, &fk, &fl, BPF_ANY), 0);
    maps_->conntrack_changed();
    EXPECT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 2) << "an earlier incarnation's entry";
    // The miss replaced it with the table's choice.
    ASSERT_EQ(bpf_map_lookup_elem(ct, &fk, &fl), 0);
    EXPECT_NE(fl.backend, b1.slot);
}

// Slots freed and given again get a new incarnation; the sweep removes what names the old.
TEST_P(LbBpf, FreedSlotsGetNewIncarnationsAndTheirEntriesGo)
{
    maps_->add_vip(vip4(), {});
    const BackendEntry first = maps_->add_backend(vip4(), backend(backend4(1), 1));
    for (uint16_t sport = 43000; sport < 43050; sport++)
        ASSERT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 1);
    maps_->del_backend(vip4(), backend4(1));
    const BackendEntry again = maps_->add_backend(vip4(), backend(backend4(2), 2));
    EXPECT_EQ(again.slot, first.slot);
    EXPECT_EQ(again.rec.gen, first.rec.gen + 1);
    xdpctl_lb_flow_key k{};
    EXPECT_NE(bpf_map_get_next_key(maps_->fds().ct.get(), nullptr, &k), 0) << "entries of the deleted backend";
    maps_->del_vip(vip4());
    maps_->add_vip(vip4(), {});
    EXPECT_EQ(maps_->add_backend(vip4(), backend(backend4(2), 2)).rec.gen, first.rec.gen + 2);
}

TEST_P(LbBpf, VipDeletedStopsBalancing)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Frame f = tcp4(40009);
    EXPECT_EQ(run_out(prog(), f.bytes).retval, uint32_t(XDP_TX));
    maps_->del_vip(vip4());
    EXPECT_EQ(run_out(prog(), f.bytes).bytes, f.bytes);
    EXPECT_TRUE(maps_->vips().empty());
    EXPECT_TRUE(maps_->backends(0).empty());
    // Another VIP takes the freed id (and backend slot): the old flow's table entry names
    // that id, but the packet is not the new VIP's.
    maps_->add_vip(vip4(81), {});
    maps_->add_backend(vip4(81), backend(backend4(2), 2));
    ASSERT_EQ(maps_->vips()[0].rec.id, 0u);
    EXPECT_EQ(run_out(prog(), f.bytes).bytes, f.bytes);
    EXPECT_EQ(backend_of(run_out(prog(), tcp4(40009, kVip4, 81).bytes)), 2);
}

// ---- the flow cache ----

// A packet the cache answers goes out and is counted exactly as one the table answers.
TEST_P(LbBpf, FlowCacheHitsSendAndCountWhatTableHitsDo)
{
    vip4_with_two_backends();
    const Frame f = tcp4(44000);
    const xdpctl_lb_flow_key fk = flow_key4(44000);
    const Out miss = run_out(prog(), f.bytes);
    ASSERT_EQ(miss.retval, uint32_t(XDP_TX));
    const int be = backend_of(miss);
    const uint32_t slot = maps_->backends(0).at(be - 1).slot;
    const xdpctl_lb_ctr first = maps_->backend_counters(slot);
    ASSERT_EQ(first.packets, 1u);
    EXPECT_EQ(cached(fk).key[4], 0u) << "a new flow made a copy (its next packet makes it)";

    const Out from_table = run_out(prog(), f.bytes);
    EXPECT_EQ(cached(fk).copy.backend, slot) << "the second packet did not copy the table's entry";
    EXPECT_EQ(cached(fk).copy.mac[5], be) << "the copy does not hold the backend's MAC";
    EXPECT_EQ(cached(fk).hits, 0u);
    const Out from_cache = run_out(prog(), f.bytes);
    EXPECT_EQ(cached(fk).hits, 1u) << "the third packet was not the cache's";
    maps_->conntrack_changed();  // the copy void: the next packet reads the table
    const Out from_table_again = run_out(prog(), f.bytes);
    EXPECT_EQ(cached(fk).hits, 0u) << "the fourth packet did not copy the table's entry";

    for (const Out* o : {&from_table, &from_cache, &from_table_again}) {
        EXPECT_EQ(o->retval, uint32_t(XDP_TX));
        EXPECT_EQ(o->bytes, miss.bytes);
    }
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 1u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 3u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_TX), 4u);
    for (const xdpctl_lb_ctr& c : {maps_->backend_counters(slot), maps_->vip_counters(0)}) {
        EXPECT_EQ(c.packets, 4u);
        EXPECT_EQ(c.bytes, 4 * first.bytes);
        EXPECT_EQ(c.new_flows, 1u);
    }
}

// The cache answers while the table has lost the entry (an LRU eviction), until the
// XDPCTL_LB_FCACHE_REFRESH-th hit reads the table again and puts the flow back in it.
TEST_P(LbBpf, FlowCacheReadsTheTableEveryRefreshHits)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Frame f = tcp4(44100);
    const xdpctl_lb_flow_key fk = flow_key4(44100);
    ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), 1);
    ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), 1);  // copied
    const int ct = maps_->fds().ct.get();
    ASSERT_EQ(bpf_map_delete_elem(ct, &fk), 0);
    xdpctl_lb_flow fl{};
    for (uint32_t hit = 1; hit < XDPCTL_LB_FCACHE_REFRESH; hit++) {
        ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), 1) << "hit " << hit;
        ASSERT_NE(bpf_map_lookup_elem(ct, &fk, &fl), 0) << "hit " << hit << " read the table";
    }
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 1u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), XDPCTL_LB_FCACHE_REFRESH);
    EXPECT_EQ(backend_of(run_out(prog(), f.bytes)), 1);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 2u) << "the refresh did not find the table without the flow";
    EXPECT_EQ(bpf_map_lookup_elem(ct, &fk, &fl), 0) << "the refresh did not put the flow back";
}

// A SYN scheduled on another CPU replaces the table's entry; this CPU's copy of the old
// one must not answer the connection's next packet.
TEST_P(LbBpf, FlowCacheCopyDiesWhenAnotherCpuReschedules)
{
    std::vector<int> cpus;  // the CPUs the test may run on (SetUp's pin aside)
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &saved_))
            cpus.push_back(c);
    if (cpus.size() < 2)
        GTEST_SKIP() << "needs two CPUs";
    vip4_with_two_backends();
    uint16_t sport = 44200;
    while (maps_->trace({IPPROTO_TCP, ip4(kClient4), ip4(kVip4), sport, 80}).maglev->mac()[5] != 1)
        sport++;
    run_on_cpu(cpus[0]);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 1);
    ASSERT_EQ(cached(flow_key4(sport)).hits, 1u);
    maps_->set_weight(vip4(), backend4(1), 0);
    run_on_cpu(cpus[1]);
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(sport, kVip4, 80, 32, true).bytes)), 2);
    run_on_cpu(cpus[0]);
    EXPECT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 2) << "the first CPU's copy answered";
    EXPECT_EQ(backend_of(run_out(prog(), tcp4(sport).bytes)), 2);
}

// Two flows of one slot: the first copied keeps the slot (no rewrite on every packet), the
// other is served by the table; each keeps its own backend.
TEST_P(LbBpf, FlowCacheSlotSharedByTwoFlows)
{
    vip4_with_two_backends();
    auto maglev = [&](uint16_t sport) {
        return maps_->trace({IPPROTO_TCP, ip4(kClient4), ip4(kVip4), sport, 80}).maglev->mac()[5];
    };
    // Two flows of one slot that the table sends to different backends.
    std::map<uint32_t, uint16_t> by_slot;
    uint16_t a = 0, b = 45000;
    for (;; b++) {
        ASSERT_LT(b, 65000) << "no two flows share a slot";
        auto [it, fresh] = by_slot.emplace(cache_slot_of(flow_key4(b)), b);
        if (!fresh && maglev(it->second) != maglev(b)) {
            a = it->second;
            break;
        }
    }
    for (int round = 0; round < 3; round++) {
        EXPECT_EQ(backend_of(run_out(prog(), tcp4(a).bytes)), maglev(a)) << "round " << round;
        EXPECT_EQ(backend_of(run_out(prog(), tcp4(b).bytes)), maglev(b)) << "round " << round;
    }
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 2u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 4u);
    const xdpctl_lb_fcache_slot s = cached(flow_key4(a));
    const xdpctl_lb_flow_key ka = flow_key4(a);
    EXPECT_EQ(std::memcmp(s.key, &ka, sizeof(ka)), 0) << "the second flow took the slot";
    EXPECT_EQ(s.hits, 1u);
}

// A VIP deleted and made again: its first backend takes the freed slot, a new incarnation;
// the copy of the old VIP's flow names the old one and is not a hit.
TEST_P(LbBpf, FlowCacheCopyOfAnEarlierIncarnationIsAMiss)
{
    maps_->add_vip(vip4(), {});
    const BackendEntry old = maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Frame f = tcp4(44300);
    // two packets: the copy is made, no hit of it pending (pending counts keep the VIP's id
    // and the backend's slot from being given again: FlowCacheCountersAreExact)
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), 1);
    ASSERT_TRUE(cached(flow_key4(44300)).copy.flags & XDPCTL_LB_FLOW_F_PEND_COPY);
    ASSERT_EQ(cached(flow_key4(44300)).hits, 0u);
    maps_->del_vip(vip4());
    maps_->add_vip(vip4(), {});
    ASSERT_EQ(maps_->add_backend(vip4(), backend(backend4(1), 1)).slot, old.slot);
    EXPECT_EQ(backend_of(run_out(prog(), f.bytes)), 1);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 2u);
    EXPECT_EQ(maps_->vip_counters(0).new_flows, 1u) << "the made-again VIP inherited the flow";
}

// The held bit: a slot's word is odd only while some CPU may hold a copy in it. A new flow
// in a slot without copies leaves the word as it was (no copy to kill: no atomic add, and
// the probe of a flow nobody copied reads no slot), the flow's next packet makes the copy
// and the word odd in one step, an insert (a SYN) makes it even again and the copy dead, and
// a miss of a flow under an odd word (another flow's copy) raises it.
TEST_P(LbBpf, FlowCacheWordIsOddOnlyWhileACopyMayExist)
{
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const xdpctl_lb_flow_key fk = flow_key4(44400);
    const uint32_t idx = cache_slot_of(fk);
    auto word = [&] {
        uint32_t w = 0;
        EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(xdp_->maps.xdpctl_lb_fgen), &idx, &w), 0);
        return w;
    };
    const uint32_t w0 = word();
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44400).bytes)), 1);
    const uint32_t w1 = word();
    EXPECT_EQ(w0 % 2, 0u);
    EXPECT_EQ(w1, w0) << "a new flow in a slot without copies changed the word";
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44400).bytes)), 1);
    const uint32_t w2 = word();
    EXPECT_EQ(w2, w1 + 1) << "the copy did not make the word odd";
    EXPECT_EQ(cached(fk).gen, w2);
    EXPECT_TRUE(cached(fk).copy.flags & XDPCTL_LB_FLOW_F_MAC_COPY);
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44400).bytes)), 1);
    EXPECT_EQ(cached(fk).hits, 1u) << "the third packet was not the cache's";
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44400, kVip4, 80, 32, true).bytes)), 1);  // SYN: an insert
    const uint32_t w3 = word();
    EXPECT_GT(w3, w2);
    EXPECT_EQ(w3 % 2, 0u) << "the insert left the held bit set";
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44400).bytes)), 1);
    EXPECT_EQ(cached(fk).hits, 0u) << "the dead copy answered";
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 3u);
    // Another flow of the slot, new, under the odd word of the first one's copy: its insert
    // raises the word (to even), as any insert while a copy may exist.
    const uint32_t w4 = word();
    ASSERT_EQ(w4 % 2, 1u);
    uint16_t other = 44401;
    while (cache_slot_of(flow_key4(other)) != idx)
        ASSERT_LT(++other, 65000) << "no other flow of the slot";
    ASSERT_EQ(run_out(prog(), tcp4(other).bytes).retval, uint32_t(XDP_TX));
    EXPECT_EQ(word(), w4 + 1) << "a miss under an odd word did not raise it";
}

// An older build's copy (a struct xdpctl_lb_flow where the copy is, marked
// XDPCTL_LB_FLOW_F_DSR_COPY) is not answered from: this build's hit would read a MAC there;
// an ipip VIP's flows are never copied.
TEST_P(LbBpf, FlowCacheAnswersOnlyDsrCopiesOfThisBuild)
{
    maps_->add_vip(vip4(), {});
    const BackendEntry be = maps_->add_backend(vip4(), backend(backend4(1), 1));
    const xdpctl_lb_flow_key fk = flow_key4(44450);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(backend_of(run_out(prog(), tcp4(44450).bytes)), 1);
    ASSERT_TRUE(cached(fk).copy.flags & XDPCTL_LB_FLOW_F_MAC_COPY);
    const int fc = bpf_map__fd(xdp_->maps.xdpctl_lb_fcache);
    const uint32_t idx = cache_slot_of(fk);
    std::vector<xdpctl_lb_fcache_slot> v(libbpf_num_possible_cpus());
    ASSERT_EQ(bpf_map_lookup_elem(fc, &idx, v.data()), 0);
    const xdpctl_lb_flow older{be.slot, 0, XDPCTL_LB_FLOW_F_VALID | XDPCTL_LB_FLOW_F_DSR_COPY, be.rec.gen};
    static_assert(sizeof(older) == sizeof(v[0].copy));
    std::memcpy(&v.at(sched_getcpu()).copy, &older, sizeof(older));
    ASSERT_EQ(bpf_map_update_elem(fc, &idx, v.data(), BPF_ANY), 0);
    ASSERT_EQ(backend_of(run_out(prog(), tcp4(44450).bytes)), 1);
    EXPECT_EQ(cached(fk).hits, 0u) << "an older build's copy answered";
    EXPECT_TRUE(cached(fk).copy.flags & XDPCTL_LB_FLOW_F_MAC_COPY) << "the table hit did not copy again";
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT), 2u);

    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    o.ipip_source = ip4(kIpipSrc4);
    maps_->add_vip(vip4(81), o);
    maps_->add_backend(vip4(81), backend(backend4(2), 2));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(run_out(prog(), tcp4(44450, kVip4, 81).bytes).retval, uint32_t(XDP_TX));
    EXPECT_EQ(cached(flow_key4(44450, 81)).copy.flags, 0u) << "an ipip flow was copied";
}

// A VIP's delete frees its backends and voids the copies: a flow's copy, whose hit reads
// neither the VIP nor the backend, stops answering with it.
TEST_P(LbBpf, FlowCacheCopyDiesWithItsVip)
{
    // Another VIP on the address, so the packet still reaches the cache after the delete.
    maps_->add_vip(vip4(81), {});
    maps_->add_backend(vip4(81), backend(backend4(2), 2));
    maps_->add_vip(vip4(), {});
    maps_->add_backend(vip4(), backend(backend4(1), 1));
    const Frame f = tcp4(44470);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), 1);
    ASSERT_EQ(cached(flow_key4(44470)).hits, 1u);
    maps_->del_vip(vip4());
    const Out o = run_out(prog(), f.bytes);
    EXPECT_EQ(o.retval, uint32_t(XDP_PASS));
    EXPECT_EQ(o.bytes, f.bytes);
}

// A backend's delete voids the copies (their hits send to the MAC they hold): the flow is
// scheduled again on the other backend, whose copy then answers. A weight change leaves the
// copies (the datapath reads no weight).
TEST_P(LbBpf, FlowCacheCopyDiesWithItsBackend)
{
    vip4_with_two_backends();
    const Frame f = tcp4(44480);
    const xdpctl_lb_flow_key fk = flow_key4(44480);
    const int first = backend_of(run_out(prog(), f.bytes));
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), first);
    ASSERT_EQ(cached(fk).hits, 1u);
    maps_->set_weight(vip4(), backend4(first), 2);
    ASSERT_EQ(backend_of(run_out(prog(), f.bytes)), first);
    EXPECT_EQ(cached(fk).hits, 2u) << "a weight change voided the copy";
    maps_->del_backend(vip4(), backend4(first));
    const int other = 3 - first;
    EXPECT_EQ(backend_of(run_out(prog(), f.bytes)), other) << "the copy answered with the deleted backend";
    EXPECT_EQ(backend_of(run_out(prog(), f.bytes)), other);
    EXPECT_EQ(backend_of(run_out(prog(), f.bytes)), other);
    EXPECT_EQ(cached(fk).hits, 1u) << "the new backend's copy did not answer";
    EXPECT_EQ(cached(fk).copy.mac[5], other);
}

// The VIP and backend counters read exactly what was forwarded, whether the cache or the
// table answered: N packets of a flow (past a refresh), then after its copy was replaced
// (another flow of the slot took it), after its backend's MAC changed in place (the copy
// made again answers with the new MAC), and after the backend was deleted (the flow moves).
TEST_P(LbBpf, FlowCacheCountersAreExact)
{
    vip4_with_two_backends();
    // Two flows of one slot.
    std::map<uint32_t, uint16_t> by_slot;
    uint16_t a = 0, b = 46000;
    for (;; b++) {
        ASSERT_LT(b, 65000) << "no two flows share a slot";
        auto [it, fresh] = by_slot.emplace(cache_slot_of(flow_key4(b)), b);
        if (!fresh) {
            a = it->second;
            break;
        }
    }
    const uint64_t len = tcp4(a).bytes.size();
    std::map<uint32_t, uint64_t> sent;  // by backend slot
    uint64_t all = 0;
    // The backend slot a frame went to, by its destination MAC.
    auto slot_of = [&](const Out& o) {
        for (const auto& be : maps_->backends(0))
            if (std::equal(be.rec.mac, be.rec.mac + 6, o.bytes.begin()))
                return int64_t(be.slot);
        return int64_t(-1);
    };
    auto send = [&](uint16_t sport, int n) {
        uint32_t slot = 0;
        for (int i = 0; i < n; i++) {
            const Out o = run_out(prog(), tcp4(sport).bytes);
            EXPECT_EQ(o.retval, uint32_t(XDP_TX));
            const int64_t s = slot_of(o);
            EXPECT_GE(s, 0) << "sent to no backend's MAC";
            slot = uint32_t(s);
            sent[slot]++;
            all++;
        }
        return slot;
    };
    auto expect_exact = [&](const char* when) {
        for (const auto& be : maps_->backends(0)) {
            const xdpctl_lb_ctr c = maps_->backend_counters(be.slot);
            EXPECT_EQ(c.packets, sent[be.slot]) << when << ", backend slot " << be.slot;
            EXPECT_EQ(c.bytes, sent[be.slot] * len) << when << ", backend slot " << be.slot;
        }
        const xdpctl_lb_ctr v = maps_->vip_counters(0);
        EXPECT_EQ(v.packets, all) << when;
        EXPECT_EQ(v.bytes, all * len) << when;
        EXPECT_EQ(stat(XDPCTL_LB_CNT_TX), all) << when;
        EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_HIT) + stat(XDPCTL_LB_CNT_CT_MISS), all) << when;
        // the listing's read (lb list, metrics): the same
        const LbMaps::AllCounters every = maps_->all_counters();
        for (const auto& be : maps_->backends(0))
            EXPECT_EQ(every.backend.at(be.slot).bytes, sent[be.slot] * len) << when << ", all_counters";
        EXPECT_EQ(every.vip.at(0).packets, all) << when << ", all_counters";
        EXPECT_EQ(every.stats.cnt[XDPCTL_LB_CNT_TX], all) << when << ", all_counters";
    };
    const uint32_t a_slot = send(a, int(XDPCTL_LB_FCACHE_REFRESH) + 36);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_CT_MISS), 1u);
    EXPECT_GE(stat(XDPCTL_LB_CNT_CT_HIT), XDPCTL_LB_FCACHE_REFRESH + 35);
    EXPECT_GT(cached(flow_key4(a)).hits, 0u) << "the cache answered none of the flow's packets";
    expect_exact("N packets of one flow");
    EXPECT_EQ(maps_->vip_counters(0).new_flows, 1u);

    send(b, 5);  // b's insert kills a's copy, b's next packet takes the slot
    send(a, 5);
    const xdpctl_lb_flow_key kb = flow_key4(b);
    EXPECT_EQ(std::memcmp(cached(kb).key, &kb, sizeof(kb)), 0) << "b did not take the slot";
    expect_exact("after the slot's copy was replaced");

    // a takes the slot back (its SYN, an insert scheduled as before, kills b's copy; its
    // next packet copies), then its backend gets another MAC in place (slot, counters and
    // connections kept): the copy answers with the new MAC.
    const xdpctl_lb_flow_key ka = flow_key4(a);
    {
        const Out syn = run_out(prog(), tcp4(a, kVip4, 80, 32, true).bytes);
        ASSERT_EQ(slot_of(syn), int64_t(a_slot));
        sent[a_slot]++;
        all++;
    }
    send(a, 2);
    ASSERT_EQ(cached(ka).hits, 1u) << "a's copy did not answer";
    std::vector<BackendSpec> want;
    for (const auto& be : maps_->backends(0)) {
        BackendSpec spec = backend(be.addr(), be.rec.mac[5]);
        if (be.slot == a_slot)
            spec.mac[5] = 0x42;
        want.push_back(spec);
    }
    maps_->set_backends(vip4(), want);
    EXPECT_EQ(send(a, 3), a_slot);
    // the change voided the copy (it holds the MAC): the first packet read the table and
    // copied again, the next two were the new copy's
    EXPECT_EQ(cached(ka).hits, 2u) << "the MAC change did not void the copy, or its new one did not answer";
    EXPECT_EQ(cached(ka).copy.mac[5], 0x42);
    const Out o = run_out(prog(), tcp4(a).bytes);
    EXPECT_EQ(o.bytes.at(5), 0x42) << "a's packet went out with the old MAC";
    sent[a_slot]++;
    all++;
    expect_exact("after a MAC change");

    // a's backend deleted while its copy's hits are pending (abi: XDPCTL_LB_FCACHE_PEND_SHIFT):
    // they count for the VIP, and no backend takes the slot while they are pending (they
    // would land on it when the slot is copied again).
    ASSERT_GT(cached(ka).hits, 0u) << "no hits pending";
    maps_->del_backend(vip4(), maps_->backends(0).at(0).slot == a_slot ? maps_->backends(0).at(0).addr()
                                                                         : maps_->backends(0).at(1).addr());
    EXPECT_EQ(maps_->vip_counters(0).packets, all) << "the deleted backend's pending hits were lost";
    const BackendEntry third = maps_->add_backend(vip4(), backend(backend4(3), 3));
    EXPECT_NE(third.slot, a_slot) << "a new backend took a slot with counts pending for the old";
    sent.erase(a_slot);
    // a moves to another backend: its first packet inserts, its second copies (the dead copy's
    // pending hits go to the counters), the next two are hits of the new copy
    const uint32_t moved = send(a, 4);
    EXPECT_NE(moved, a_slot);
    EXPECT_EQ(cached(ka).hits, 2u);
    expect_exact("after a backend delete");
    EXPECT_EQ(maps_->backend_counters(third.slot).packets, sent[third.slot]) << "after a backend delete";

    // the VIP deleted while hits are pending: a VIP made again takes another id while they
    // are (its counters start at 0)
    maps_->del_vip(vip4());
    const VipEntry again = maps_->add_vip(vip4(), {});
    EXPECT_NE(again.rec.id, 0u) << "a new VIP took the id of one with counts pending";
    EXPECT_EQ(maps_->vip_counters(again.rec.id).packets, 0u);
    EXPECT_EQ(stat(XDPCTL_LB_CNT_TX), all) << "after a VIP delete";
}

// ---- the decapsulator ----

class LbDecap : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        skel_.reset(xdpctl_decap::open_and_load());
        ASSERT_TRUE(skel_) << "cannot load the decapsulator: " << errno_str(errno);
    }
    void listen_on(const IpAddr& a)
    {
        xdpctl_lb_decap_key k{};
        std::memcpy(k.addr, a.w, sizeof(k.addr));
        k.family = a.family;
        __u32 one = 1;
        ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.xdpctl_decap_dst), &k, &one, BPF_ANY), 0);
    }
    int prog() const { return bpf_program__fd(skel_->progs.xdpctl_decap); }

    SkelPtr<xdpctl_decap> skel_;
};

TEST_F(LbDecap, StripsIpipAddressedToTheHost)
{
    listen_on(backend4(2));
    const Frame inner = tcp4(40010);
    std::vector<uint8_t> inner_ip(inner.bytes.begin() + 14, inner.bytes.end());
    Ipv4Opts outer;
    outer.src = kIpipSrc4;
    outer.dst = {198, 19, 10, 2};
    outer.protocol = IPPROTO_IPIP;
    const auto enc = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(outer).payload(inner_ip).build();
    const Out o = run_out(prog(), enc);
    ASSERT_EQ(o.err, 0);
    EXPECT_EQ(o.retval, uint32_t(TCX_NEXT));
    std::vector<uint8_t> want(enc.begin(), enc.begin() + 14);
    want.insert(want.end(), inner_ip.begin(), inner_ip.end());
    EXPECT_EQ(o.bytes, want);

    // To another address: untouched.
    outer.dst = {198, 19, 10, 3};
    const auto other = PacketBuilder().eth(kDstMac, kSrcMac).ipv4(outer).payload(inner_ip).build();
    EXPECT_EQ(run_out(prog(), other).bytes, other);
    // Plain TCP to the host: untouched.
    const Frame plain = tcp4(40011, {198, 19, 10, 2});
    EXPECT_EQ(run_out(prog(), plain.bytes).bytes, plain.bytes);
}

TEST_F(LbDecap, StripsIp6ip6)
{
    listen_on(backend6(3));
    const Frame inner = tcp6(40012);
    std::vector<uint8_t> inner_ip(inner.bytes.begin() + 14, inner.bytes.end());
    Ipv6Opts outer;
    outer.src = kIpipSrc6;
    std::memcpy(outer.dst.data(), backend6(3).w, 16);
    outer.next_header = 41;
    const auto enc = PacketBuilder().eth(kDstMac, kSrcMac).ipv6(outer).payload(inner_ip).build();
    const Out o = run_out(prog(), enc);
    ASSERT_EQ(o.err, 0);
    std::vector<uint8_t> want(enc.begin(), enc.begin() + 14);
    want.insert(want.end(), inner_ip.begin(), inner_ip.end());
    EXPECT_EQ(o.bytes, want);
}

// What the LB sends, the decapsulator turns back into the client's packet.
// The interface's counters (L3, L4, malformed reason, verdict) of every frame are what the
// parser and count_packet give, as xdpctl_xdp without a VIP counts them: xdpctl_lb_only
// counts the common TCP/UDP IPv4 frame on a path of its own (lib/bpf/lb_fast.h) and leaves
// the others, malformed ones too, to the parser; balanced, passed, hit or missed.
TEST_P(LbBpf, InterfaceCountersAreTheParsersOnEveryFrame)
{
    static const ParserPrograms ref(XDPCTL_MALFORMED_PASS);
    vip4_with_two_backends();
    const VipSpec udp_vip{ip4(kVip4), 53, IPPROTO_UDP};
    maps_->add_vip(udp_vip, {});
    maps_->add_backend(udp_vip, backend(backend4(1), 1));
    maps_->add_vip(vip6(), {});
    maps_->add_backend(vip6(), backend(backend6(1), 1));
    Ipv4Opts ip;
    ip.src = kClient4;
    ip.dst = kVip4;
    Ipv4Opts options = ip;
    options.options_len = 8;
    Ipv4Opts first = ip;
    first.more_fragments = true;
    Ipv4Opts later = ip;
    later.frag_offset = 10;
    later.protocol = IPPROTO_TCP;
    TcpOpts ack;
    ack.flags = tcp_flags::ack;
    const auto tcp = [&](const Ipv4Opts& o) { return PacketBuilder().eth(kDstMac, kSrcMac).ipv4(o).tcp(ack); };
    const auto udp = [&](const Ipv4Opts& o) { return PacketBuilder().eth(kDstMac, kSrcMac).ipv4(o).udp(40000, 53); };
    const std::vector<std::pair<const char*, std::vector<uint8_t>>> frames = {
        {"new flow", tcp4(41000).bytes},
        {"table hit", tcp4(41000).bytes},
        {"cache hit", tcp4(41000).bytes},
        {"cache hit again", tcp4(41000).bytes},
        {"syn", tcp4(41000, kVip4, 80, 32, true).bytes},
        {"no VIP's port", tcp4(41000, kVip4, 81).bytes},
        {"no VIP's address", tcp4(41000, {198, 19, 0, 9}).bytes},
        {"udp", udp(ip).payload(20).build()},
        {"udp cache hit", udp(ip).payload(20).build()},
        {"udp, 8 bytes", udp(ip).build()},
        {"udp padded", udp(ip).pad_to(60).build()},
        {"tcp padded", tcp(ip).pad_to(60).build()},
        {"tcp options", PacketBuilder().eth(kDstMac, kSrcMac).ipv4(ip).tcp([] {
             TcpOpts t;
             t.flags = tcp_flags::ack;
             t.options_len = 12;
             return t;
         }()).build()},
        {"ipv4 options", tcp(options).build()},
        {"first fragment", tcp(first).payload(16).build()},
        {"later fragment", PacketBuilder().eth(kDstMac, kSrcMac).ipv4(later).payload(16).build()},
        {"icmp", PacketBuilder().eth(kDstMac, kSrcMac).ipv4(ip).icmp_echo().build()},
        {"vlan", PacketBuilder().eth(kDstMac, kSrcMac).vlan(10).ipv4(ip).tcp(ack).build()},
        {"ipv6", tcp6(41000).bytes},
        {"ipv6 hit", tcp6(41000).bytes},
        {"tcp doff 4", tcp(ip).tcp_doff(4).build()},
        {"tcp doff past the packet", tcp(ip).tcp_doff(15).payload(8).build()},
        {"tcp doff one word past the packet", tcp(ip).tcp_doff(6).build()},
        {"tcp doff to the packet's end", tcp(ip).tcp_doff(6).payload(4).build()},
        {"ip version 5", tcp(ip).ip_version(5).build()},
        {"ihl 4", tcp(ip).ihl(4).build()},
        {"total length over the frame", tcp(ip).ipv4_total_length(200).build()},
        {"total length a byte over the frame", tcp(ip).payload(4).ipv4_total_length(20 + 20 + 4 + 1).build()},
        {"total length the frame's", tcp(ip).payload(4).pad_to(60).ipv4_total_length(60 - 14).build()},
        {"total length under the header", tcp(ip).ipv4_total_length(16).build()},
        {"total length cuts the tcp header", tcp(ip).ipv4_total_length(30).build()},
        {"total length cuts the udp header", udp(ip).ipv4_total_length(24).build()},
        {"frame cut in the tcp header", tcp(ip).truncate(50).build()},
        {"frame cut in the tcp header, lengths fit", tcp(ip).truncate(50, true).build()},
        {"frame cut in the udp header, lengths fit", udp(ip).truncate(40, true).build()},
        {"frame cut in the ip header", tcp(ip).truncate(30).build()},
    };
    const int stats_fd = bpf_map__fd(xdp_->maps.xdpctl_stats);
    for (const auto& [what, f] : frames) {
        const auto want = ref.run(XDPCTL_HOOK_XDP, f);
        const HookCounters before = read_hook_counters(stats_fd, XDPCTL_HOOK_XDP);
        const Out o = run_out(prog(), f);
        const HookCounters after = read_hook_counters(stats_fd, XDPCTL_HOOK_XDP);
        ASSERT_EQ(o.err, 0) << what;
        for (size_t i = 0; i < after.size(); i++) {
            EXPECT_EQ(after[i].packets - before[i].packets, want.delta[i].packets) << what << ", counter " << i;
            EXPECT_EQ(after[i].bytes - before[i].bytes, want.delta[i].bytes) << what << ", counter " << i;
        }
    }
    // the cases are what they say: balanced, hits of the cache among them
    EXPECT_GE(stat(XDPCTL_LB_CNT_TX), 6u);
    EXPECT_GE(cached(flow_key4(41000)).hits, 2u);
}

TEST_P(LbBpf, EncapThenDecapGivesTheOriginalPacket)
{
    SkelPtr<xdpctl_decap> dec(xdpctl_decap::open_and_load());
    ASSERT_TRUE(dec) << "cannot load the decapsulator: " << errno_str(errno);
    VipOptions o;
    o.mode = XDPCTL_LB_MODE_IPIP;
    maps_->add_vip(vip4(), o);
    maps_->add_backend(vip4(), backend(backend4(2), 2));
    xdpctl_lb_decap_key k{};
    k.addr[0] = backend4(2).w[0];
    k.family = 4;
    __u32 one = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(dec->maps.xdpctl_decap_dst), &k, &one, BPF_ANY), 0);
    const Frame f = tcp4(40013);
    const Out enc = run_out(prog(), f.bytes);
    ASSERT_EQ(enc.retval, uint32_t(XDP_TX));
    const Out d = run_out(bpf_program__fd(dec->progs.xdpctl_decap), enc.bytes);
    ASSERT_EQ(d.bytes.size(), f.bytes.size());
    EXPECT_TRUE(std::equal(d.bytes.begin() + 14, d.bytes.end(), f.bytes.begin() + 14));
}
