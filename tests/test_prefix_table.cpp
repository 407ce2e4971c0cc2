// Prefix tables: the builder's input checks, and random prefix sets (nested prefixes, /0,
// /32, /128, exceptions) looked up by the real BPF lookup code (lib/bpf/prefix_table.h, run
// by bench/bpf/xdpctl_bench_prefix.bpf.c under BPF_PROG_TEST_RUN) against PrefixReference,
// on over 100,000 addresses per family. One test run looks up a whole batch: the program
// walks an address array and records each answer at the same index.
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <iostream>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "bpf_test_run.h"
#include "util/error.h"
#include "policy/prefix_table.h"
#include "attach/skeleton.h"
#include "xdpctl_bench_prefix.skel.h"
#include "require_root.h"

using namespace xdpctl;

namespace {


constexpr size_t kMaxBatch = size_t(1) << 20;  // BENCH_ADDRS in the BPF program

// The test program, loaded once: the verifier pass is what costs, not the runs.
class Harness {
public:
    Harness()
        : skel_(open_and_load()), addrs4_(bpf_map__fd(skel_->maps.addrs4)),
          addrs6_(bpf_map__fd(skel_->maps.addrs6)), results_(bpf_map__fd(skel_->maps.results))
    {
    }

    static Harness& get()
    {
        static std::unique_ptr<Harness> h;
        if (!h)
            h = std::make_unique<Harness>();
        return *h;
    }

    xdpctl_bench_prefix* skel() const { return skel_.get(); }

    void install(const PrefixTable& t)
    {
        UniqueFd fd = create_prefix_table_map(t);
        install_prefix_table(bpf_map__fd(skel_->maps.pfx_tables), 0, fd.get());
        table_ = std::move(fd);  // the previous generation is closed here, after the switch
    }

    std::vector<uint32_t> run4(const std::vector<uint32_t>& addrs, bpf_program* prog = nullptr)
    {
        for (size_t i = 0; i < addrs.size(); i++)
            addrs4_.at<uint32_t>(i) = htonl(addrs[i]);
        return run(prog ? prog : skel_->progs.pfx4_table, addrs.size());
    }

    std::vector<uint32_t> run6(const std::vector<Ip6>& addrs, bpf_program* prog = nullptr)
    {
        for (size_t i = 0; i < addrs.size(); i++) {
            uint8_t* b = &addrs6_.at<uint8_t>(i);
            for (int k = 0; k < 8; k++) {
                b[k] = uint8_t(addrs[i].hi >> (56 - 8 * k));
                b[8 + k] = uint8_t(addrs[i].lo >> (56 - 8 * k));
            }
        }
        return run(prog ? prog : skel_->progs.pfx6_table, addrs.size());
    }

private:
    static xdpctl_bench_prefix* open_and_load()
    {
        xdpctl_bench_prefix* s = xdpctl_bench_prefix::open_and_load();
        if (!s)
            fail("cannot load xdpctl_bench_prefix: {}", errno_str(errno));
        return s;
    }

    std::vector<uint32_t> run(bpf_program* prog, size_t n)
    {
        if (n > kMaxBatch)
            fail("batch of {} over {}", n, kMaxBatch);
        skel_->bss->next_index = 0;
        skel_->bss->record = 1;
        const std::vector<uint8_t> frame(64, 0);  // ignored by the program
        const test::RunResult r = test::test_run(bpf_program__fd(prog), frame, int(n));
        if (r.err)
            fail("BPF_PROG_TEST_RUN: {}", errno_str(r.err));
        if (r.retval != XDP_PASS)
            fail("program returned {}", r.retval);
        if (skel_->bss->next_index != n)
            fail("program ran {} times, not {}", skel_->bss->next_index, n);
        std::vector<uint32_t> out(n);
        for (size_t i = 0; i < n; i++)
            out[i] = results_.at<uint32_t>(i);
        return out;
    }

    SkelPtr<xdpctl_bench_prefix> skel_;
    MappedMap addrs4_, addrs6_, results_;
    UniqueFd table_;
};

// ---- random sets ---------------------------------------------------------------------------

using Rng = std::mt19937_64;

uint32_t random_value(Rng& rng, double except_share)
{
    if (std::uniform_real_distribution<>(0, 1)(rng) < except_share)
        return XDPCTL_PFX_EXCEPTED;
    return uint32_t(std::uniform_int_distribution<uint32_t>(1, 5000)(rng));
}

// Lengths drawn so the level boundaries (/16-/17, /24-/25) and the ends (/0, /32) all occur.
unsigned random_len4(Rng& rng, unsigned min_len)
{
    static const unsigned favoured[] = {0, 1, 8, 15, 16, 17, 23, 24, 25, 31, 32};
    unsigned len;
    if (rng() % 2)
        len = favoured[rng() % std::size(favoured)];
    else
        len = unsigned(rng() % 33);
    return std::max(len, min_len);
}

unsigned random_len6(Rng& rng, unsigned min_len)
{
    static const unsigned favoured[] = {0, 1, 15, 16, 17, 32, 48, 63, 64, 65, 127, 128};
    unsigned len;
    if (rng() % 2)
        len = favoured[rng() % std::size(favoured)];
    else
        len = unsigned(rng() % 129);
    return std::max(len, min_len);
}

// Random draws repeat prefixes with other values, which the builder rightly refuses: keep
// the first of each.
template <typename Entry>
void keep_first(std::vector<Entry>& v)
{
    std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.prefix < b.prefix; });
    v.erase(std::unique(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.prefix == b.prefix; }),
            v.end());
}

// `n` random /32s over all of IPv4 (most alone in their /16), values 1-50, sorted.
std::vector<PrefixEntry4> random_hosts(Rng& rng, int n)
{
    std::vector<PrefixEntry4> v;
    for (int i = 0; i < n; i++)
        v.push_back({{uint32_t(rng()), 32}, 1 + uint32_t(rng() % 50)});
    keep_first(v);
    return v;
}

// About half the prefixes are nested inside an earlier one, a share of them exceptions.
std::vector<PrefixEntry4> random_set4(Rng& rng, size_t n, bool with_default)
{
    std::vector<PrefixEntry4> v;
    if (with_default)
        v.push_back({{0, 0}, random_value(rng, 0)});
    while (v.size() < n) {
        Prefix4 p;
        if (!v.empty() && rng() % 2) {
            const Prefix4 outer = v[rng() % v.size()].prefix;
            if (outer.len == 32)
                continue;
            p.len = uint8_t(random_len4(rng, outer.len + 1u));
            p.addr = (outer.addr | (uint32_t(rng()) & ~mask4(outer.len))) & mask4(p.len);
        } else {
            p.len = uint8_t(random_len4(rng, 0));
            p.addr = uint32_t(rng()) & mask4(p.len);
        }
        v.push_back({p, random_value(rng, 0.2)});
    }
    keep_first(v);
    return v;
}

std::vector<PrefixEntry6> random_set6(Rng& rng, size_t n, bool with_default)
{
    std::vector<PrefixEntry6> v;
    if (with_default)
        v.push_back({{{0, 0}, 0}, random_value(rng, 0)});
    while (v.size() < n) {
        Prefix6 p;
        const Ip6 bits{rng(), rng()};
        if (!v.empty() && rng() % 2) {
            const Prefix6 outer = v[rng() % v.size()].prefix;
            if (outer.len == 128)
                continue;
            p.len = uint8_t(random_len6(rng, outer.len + 1u));
            const Ip6 om = mask6(outer.len);
            p.addr = Ip6{outer.addr.hi | (bits.hi & ~om.hi), outer.addr.lo | (bits.lo & ~om.lo)} & mask6(p.len);
        } else {
            p.len = uint8_t(random_len6(rng, 0));
            // Real tables share their first bits; a few top /16s make level 1 and the hash meet.
            Ip6 a = bits;
            if (rng() % 4)
                a.hi = (a.hi & 0x0000ffffffffffffULL) | (uint64_t(0x2001 + rng() % 4) << 48);
            p.addr = a & mask6(p.len);
        }
        v.push_back({p, random_value(rng, 0.2)});
    }
    keep_first(v);
    return v;
}

// Uniform addresses, addresses inside random prefixes, and each prefix's first and last
// address with their outside neighbours: where an off-by-one in expansion would show.
std::vector<uint32_t> probe_addrs4(Rng& rng, const std::vector<PrefixEntry4>& set, size_t n)
{
    std::vector<uint32_t> a;
    a.reserve(n);
    while (a.size() < n) {
        const Prefix4 p = set[rng() % set.size()].prefix;
        const uint32_t last = p.addr | ~mask4(p.len);
        switch (rng() % 5) {
        case 0:
            a.push_back(uint32_t(rng()));
            break;
        case 1:
        case 2:
            a.push_back(p.addr | (uint32_t(rng()) & ~mask4(p.len)));
            break;
        case 3:
            a.push_back(p.addr);
            a.push_back(p.addr - 1);
            break;
        default:
            a.push_back(last);
            a.push_back(last + 1);
            break;
        }
    }
    a.resize(n);
    return a;
}

std::vector<Ip6> probe_addrs6(Rng& rng, const std::vector<PrefixEntry6>& set, size_t n)
{
    auto minus1 = [](Ip6 x) { return Ip6{x.hi - (x.lo == 0), x.lo - 1}; };
    auto plus1 = [](Ip6 x) { return Ip6{x.hi + (x.lo == ~0ULL), x.lo + 1}; };
    std::vector<Ip6> a;
    a.reserve(n);
    while (a.size() < n) {
        const Prefix6 p = set[rng() % set.size()].prefix;
        const Ip6 m = mask6(p.len);
        const Ip6 last{p.addr.hi | ~m.hi, p.addr.lo | ~m.lo};
        switch (rng() % 5) {
        case 0:
            a.push_back({rng(), rng()});
            break;
        case 1:
        case 2:
            a.push_back({p.addr.hi | (rng() & ~m.hi), p.addr.lo | (rng() & ~m.lo)});
            break;
        case 3:
            a.push_back(p.addr);
            a.push_back(minus1(p.addr));
            break;
        default:
            a.push_back(last);
            a.push_back(plus1(last));
            break;
        }
    }
    a.resize(n);
    return a;
}

std::string str6(Ip6 a)
{
    return to_string(Prefix6{a, 128});
}

// Compares a batch, reporting the first few differences with their addresses.
template <typename Addr, typename Ref, typename Fmt>
void expect_same(const std::vector<Addr>& addrs, const std::vector<uint32_t>& got, Ref ref, Fmt fmt)
{
    size_t bad = 0;
    for (size_t i = 0; i < addrs.size(); i++) {
        const uint32_t want = ref(addrs[i]);
        if (got[i] != want && ++bad <= 5)
            ADD_FAILURE() << fmt(addrs[i]) << ": BPF says " << got[i] << ", reference says " << want;
    }
    EXPECT_EQ(bad, 0u) << "of " << addrs.size() << " addresses";
}

void check4(const std::vector<PrefixEntry4>& set, const std::vector<uint32_t>& addrs,
            const PrefixTableLimits& opts = {})
{
    const PrefixTable t = PrefixTable::build(set, {}, opts);
    const PrefixReference ref(set, {});
    Harness& h = Harness::get();
    h.install(t);
    expect_same(addrs, h.run4(addrs), [&](uint32_t a) { return ref.lookup4(a); },
                [](uint32_t a) { return to_string(Prefix4{a, 32}); });
}

void check6(const std::vector<PrefixEntry6>& set, const std::vector<Ip6>& addrs)
{
    const PrefixTable t = PrefixTable::build({}, set);
    const PrefixReference ref({}, set);
    Harness& h = Harness::get();
    h.install(t);
    expect_same(addrs, h.run6(addrs), [&](Ip6 a) { return ref.lookup6(a); }, str6);
}

// ---- input checks (no root needed) ---------------------------------------------------------

TEST(PrefixParse, AcceptsCidrsAddressesAndExceptions)
{
    Cidr c = parse_cidr("10.1.0.0/16");
    EXPECT_FALSE(c.v6);
    EXPECT_FALSE(c.except);
    EXPECT_EQ(c.p4.addr, 0x0a010000u);
    EXPECT_EQ(c.p4.len, 16);

    c = parse_cidr("!192.0.2.7");
    EXPECT_TRUE(c.except);
    EXPECT_EQ(c.p4.len, 32);

    c = parse_cidr("2001:db8::/32");
    EXPECT_TRUE(c.v6);
    EXPECT_EQ(c.p6.addr.hi, 0x20010db800000000ULL);
    EXPECT_EQ(c.p6.len, 32);
    EXPECT_EQ(to_string(c.p6), "2001:db8::/32");

    c = parse_cidr("::/0");
    EXPECT_EQ(c.p6.len, 0);
    EXPECT_EQ(parse_cidr("0.0.0.0/0").p4.len, 0);
    EXPECT_EQ(parse_cidr("::1").p6.len, 128);
}

TEST(PrefixParse, RejectsBadInputNamingIt)
{
    for (const char* bad : {"10.0.0.0/33", "10.1.2.3/8", "10.0.0/8", "10.0.0.0/", "10.0.0.0/8x",
                            "2001:db8::/129", "2001:db8::1/64", "::g/8", "", "!", "10.0.0.0/-1"}) {
        try {
            parse_cidr(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage) << bad;
            if (*bad) {
                EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
            }
        }
    }
    try {
        parse_cidr("10.1.2.3/8");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("10.0.0.0/8"), std::string::npos) << e.what();
    }
}

template <typename Fn>
bool throws_usage(Fn&& fn)
{
    try {
        fn();
    } catch (const Error& e) {
        return e.code() == ExitCode::usage;
    }
    return false;
}

TEST(PrefixBuild, RejectsBadEntries)
{
    const PrefixEntry4 host_bits{{0x0a000001, 8}, 1};
    const PrefixEntry4 too_long{{0, 33}, 1};
    const PrefixEntry4 zero_value{{0x0a000000, 8}, 0};
    const PrefixEntry4 ref_value{{0x0a000000, 8}, XDPCTL_PFX_REF | 1};
    const PrefixEntry6 host_bits6{{{0, 1}, 64}, 1};
    for (const PrefixEntry4& e : {host_bits, too_long, zero_value, ref_value})
        EXPECT_TRUE(throws_usage([&] { PrefixTable::build(std::vector{e}, {}); }));
    EXPECT_TRUE(throws_usage([&] { PrefixTable::build({}, std::vector{host_bits6}); }));

    // The same prefix twice: once is fine, two different answers are not.
    const PrefixEntry4 a{{0x0a000000, 8}, 7}, b{{0x0a000000, 8}, 8};
    EXPECT_EQ(PrefixTable::build(std::vector{a, a}, {}).stats().v4_prefixes, 1u);
    EXPECT_TRUE(throws_usage([&] { PrefixTable::build(std::vector{a, b}, {}); }));

    // Over the memory limit: refused by the builder, before any allocation.
    std::vector<PrefixEntry4> many;
    for (uint32_t i = 0; i < 2000; i++)
        many.push_back({{i << 8, 32}, 1});
    EXPECT_TRUE(throws_usage([&] { PrefixTable::build(many, {}, {.max_bytes = 1 << 20}); }));
}

TEST(PrefixBuild, MemoryFollowsTheChunksNeeded)
{
    // 10/8 lives in level 1; 10.1/17 needs the /16's chunk; 10.1.0/25 and 10.1.0.128/25
    // share one /24 chunk under it; 10.2.3.4/32 needs a chunk at each level.
    const std::vector<PrefixEntry4> v4 = {{{0x0a000000, 8}, 1},
                                          {{0x0a010000, 17}, 2},
                                          {{0x0a010000, 25}, 3},
                                          {{0x0a010080, 25}, 4},
                                          {{0x0a020304, 32}, 5}};
    const PrefixTable dense = PrefixTable::build(v4, {}, {.sparse = false});
    EXPECT_EQ(dense.stats().v4_l2_chunks, 2u);
    EXPECT_EQ(dense.stats().v4_l3_chunks, 2u);
    EXPECT_EQ(dense.stats().v4_sparse_chunks, 0u);
    // Chunks have room between them in a table of few (PrefixTable::build): 4 take 5 slots,
    // after the span of sparse lines (one line, rounded up to a chunk's 16).
    EXPECT_EQ(dense.stats().bytes, (XDPCTL_PFX6_BUCKET_LINE + 16 + 5 * XDPCTL_PFX_CHUNK_LINES) * 64u);
    EXPECT_EQ(dense.lines()[0].hdr.magic, XDPCTL_PFX_MAGIC);
    EXPECT_EQ(dense.lines()[0].hdr.lines, dense.lines().size());
    // Each /24 holds at most XDPCTL_PFX_SPARSE_PREFIXES longer prefixes: a line each.
    const PrefixTable t = PrefixTable::build(v4, {});
    EXPECT_EQ(t.stats().v4_l2_chunks, 2u);
    EXPECT_EQ(t.stats().v4_l3_chunks, 0u);
    EXPECT_EQ(t.stats().v4_sparse_chunks, 2u);
    // The two lines' span (4: a power of two over 1.25 times them), rounded up to 16, then
    // 3 chunk slots.
    EXPECT_EQ(t.stats().bytes, (XDPCTL_PFX6_BUCKET_LINE + 16 + 3 * XDPCTL_PFX_CHUNK_LINES) * 64u);
    EXPECT_EQ(t.lines()[0].hdr.lines, t.lines().size());
}

static size_t lines_differing(const PrefixTable& a, const PrefixTable& b);

// `hosts` and one more /32 (value 7) at a random address whose /16 none of them holds; none
// when the address drawn is in one of theirs.
std::optional<std::vector<PrefixEntry4>> with_host_in_a_new_16(Rng& rng, const std::vector<PrefixEntry4>& hosts)
{
    const uint32_t a = uint32_t(rng());
    if (std::any_of(hosts.begin(), hosts.end(), [&](const PrefixEntry4& h) { return h.prefix.addr >> 16 == a >> 16; }))
        return std::nullopt;
    std::vector<PrefixEntry4> more = hosts;
    more.push_back({{a, 32}, 7});
    return more;
}

// A /16 with at most XDPCTL_PFX_SPARSE16_PREFIXES prefixes past /16 is one line at level 1
// (a policy's hosts, each alone in its /16: 10,000 rules of the benchmark's mix made ~7,700
// chunks of 1 KiB and as many /24 lines); one with more keeps its chunk; one whose prefixes
// all say what covers it is a leaf in level 1. Lines sit in address order with room, as
// sparse /24 lines do: a host in a new /16 changes a few.
TEST(PrefixBuild, FewPrefixesInASlash16AreOneLine)
{
    const std::vector<PrefixEntry4> v4 = {
        {{0x0a000000, 8}, 1},
        // 10.1/16: one host, one line
        {{0x0a010203, 32}, 2},
        // 10.2/16: six prefixes, a chunk (and its /24 lines)
        {{0x0a020001, 32}, 3}, {{0x0a020102, 32}, 3}, {{0x0a020203, 32}, 3},
        {{0x0a020304, 32}, 3}, {{0x0a020405, 32}, 3}, {{0x0a020506, 32}, 3},
        // 10.3/16: two /17s of the /8's value: a leaf in level 1
        {{0x0a030000, 17}, 1}, {{0x0a038000, 17}, 1},
        // 11.0/16: a /20 and a /32 at its last address, under nothing
        {{0x0b000000, 20}, 4}, {{0x0b00ffff, 32}, 5},
    };
    const PrefixTable t = PrefixTable::build(v4, {}, {.sparse16 = true});
    EXPECT_EQ(t.stats().v4_sparse16, 3u);
    EXPECT_EQ(t.stats().v4_l2_chunks, 1u);
    EXPECT_EQ(t.stats().v4_sparse_chunks, 6u);
    const auto words = reinterpret_cast<const uint32_t*>(t.lines().data());
    const uint32_t e = words[XDPCTL_PFX4_L1_WORD + 0x0a01];
    ASSERT_EQ(e & (XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE), XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE);
    const xdpctl_pfx_line& l = t.lines()[e & XDPCTL_PFX_CHUNK_MASK];
    // 10.1.2.3 alone in the /8's 1: runs 1 | 2 | 1, starting at 0, 0x0203 and 0x0204.
    EXPECT_EQ(l.half[0], 0x0203u);
    EXPECT_EQ(l.half[1], 0x0204u);
    EXPECT_EQ(l.half[2], 0xffffu);
    EXPECT_EQ(l.word[XDPCTL_PFX_SPARSE16_VALUE_WORD], 1u);
    EXPECT_EQ(l.word[XDPCTL_PFX_SPARSE16_VALUE_WORD + 1], 2u);
    EXPECT_EQ(l.word[XDPCTL_PFX_SPARSE16_VALUE_WORD + 2], 1u);
    EXPECT_EQ(l.word[XDPCTL_PFX_LINE_WORDS - 1], 1u) << "past the last run, its value again";
    EXPECT_EQ(words[XDPCTL_PFX4_L1_WORD + 0x0a02] & (XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE), XDPCTL_PFX_REF);
    EXPECT_EQ(words[XDPCTL_PFX4_L1_WORD + 0x0a03], 1u);
    EXPECT_EQ(words[XDPCTL_PFX4_L1_WORD + 0x0b00] & XDPCTL_PFX_SPARSE, XDPCTL_PFX_SPARSE);
    const PrefixReference ref(v4, {});
    for (uint32_t a : {0x0a010203u, 0x0a010202u, 0x0a010204u, 0x0b000fffu, 0x0b001000u, 0x0b00fffeu, 0x0b00ffffu})
        EXPECT_EQ(ref.lookup4(a), [&] {  // the line's runs, read as the datapath does
            const uint32_t l1 = words[XDPCTL_PFX4_L1_WORD + (a >> 16)];
            const xdpctl_pfx_line& s16 = t.lines()[l1 & XDPCTL_PFX_CHUNK_MASK];
            uint32_t run = 0;
            for (int k = 0; k < XDPCTL_PFX_SPARSE16_STARTS; k++)
                run += (uint32_t(s16.half[k]) - (a & 0xffff) - 1) >> 31;
            return s16.word[XDPCTL_PFX_SPARSE16_VALUE_WORD + run];
        }()) << to_string(Prefix4{a, 32});

    // 7,000 hosts over all of IPv4, most alone in their /16: a line each, not a chunk and
    // a line; a host in a /16 none holds changes a few lines.
    Rng rng(17);
    const std::vector<PrefixEntry4> hosts = random_hosts(rng, 7000);
    const PrefixTable chunks = PrefixTable::build(hosts, {});
    const PrefixTable lines = PrefixTable::build(hosts, {}, {.sparse16 = true});
    EXPECT_GT(lines.stats().v4_sparse16, 6500u);
    EXPECT_LT(lines.stats().v4_l2_chunks, 100u);
    EXPECT_LT(lines.stats().bytes * 4, chunks.stats().bytes) << "a quarter of the memory, at most";
    std::vector<size_t> changed;
    for (int k = 0; k < 40; k++) {
        const auto more = with_host_in_a_new_16(rng, hosts);
        if (!more)
            continue;
        const PrefixTable m = PrefixTable::build(*more, {}, {.sparse16 = true});
        ASSERT_EQ(m.lines().size(), lines.lines().size()) << "the same span of lines";
        changed.push_back(lines_differing(m, lines));
    }
    ASSERT_GT(changed.size(), 30u);
    std::sort(changed.begin(), changed.end());
    EXPECT_LE(changed[changed.size() / 2], 50u);
    EXPECT_LE(changed.back(), 500u);
    // Six hosts in a /16 none holds: a chunk more, where there were few. The sparse lines
    // come before the chunks: none moves (chunks first, every line and its level-1 word did).
    for (uint32_t k = 0; k < 4; k++) {
        std::vector<PrefixEntry4> more = hosts;
        const uint32_t x = (0xc6130000u + (k << 16));  // 198.19/16 on, none of the hosts' (checked)
        if (std::any_of(hosts.begin(), hosts.end(), [&](const PrefixEntry4& h) { return h.prefix.addr >> 16 == x >> 16; }))
            continue;
        for (uint32_t i = 0; i < 6; i++)
            more.push_back({{x | (i << 8) | 1, 32}, 7});
        const PrefixTable m = PrefixTable::build(more, {}, {.sparse16 = true});
        ASSERT_EQ(m.stats().v4_l2_chunks, lines.stats().v4_l2_chunks + 1);
        EXPECT_LE(lines_differing(m, lines), 60u) << "six hosts in " << to_string(Prefix4{x, 16});
    }
}

// Level 1's word for /16 `x`, and the level-2 word for /24 `y` under it (its chunk's).
uint32_t l1_word(const PrefixTable& t, uint32_t x)
{
    return reinterpret_cast<const uint32_t*>(t.lines().data())[XDPCTL_PFX4_L1_WORD + x];
}

uint32_t l2_word(const PrefixTable& t, uint32_t x, uint32_t y)
{
    const uint32_t e = l1_word(t, x);
    return reinterpret_cast<const uint32_t*>(t.lines().data())[(e & XDPCTL_PFX_CHUNK_MASK) * XDPCTL_PFX_CHUNK_WORDS + y];
}

// Members inside a member (a block list's aggregate and the routes under it; the 1M-prefix
// row's /8s over its BGP routes): a /16 or a /24 whose every address has one value is that
// value in the level above, a leaf, where the lookup stops (one_leaf). Where anything inside
// differs (an exception, another value), the level stays.
TEST(PrefixBuild, LevelsOfOneValueAreLeavesAbove)
{
    constexpr uint32_t X = XDPCTL_PFX_EXCEPTED;
    const std::vector<PrefixEntry4> v4 = {
        {{0x0a000000, 8}, 1},
        // 10.1/16: members at every level under the /8, one value: settled in level 1
        {{0x0a010000, 17}, 1}, {{0x0a010200, 24}, 1}, {{0x0a010300, 25}, 1}, {{0x0a010404, 32}, 1},
        // 10.2/16: an exception in 10.2.3/24 keeps the /16's chunk and that /24's line;
        // 10.2.4/24's two /25s (one value) are a leaf in level 2
        {{0x0a020300, 24}, 1}, {{0x0a020305, 32}, X}, {{0x0a020400, 25}, 1}, {{0x0a020480, 25}, 1},
        // 11.0/16, under nothing: two /17s of one value cover it, a leaf in level 1
        {{0x0b000000, 17}, 1}, {{0x0b008000, 17}, 1},
        // 12.0.0/24, under nothing: two /25s cover it (a leaf in level 2); the rest of 12.0/16
        // has none
        {{0x0c000000, 25}, 1}, {{0x0c000080, 25}, 1},
        // 13.0/16: two values, no leaf
        {{0x0d000000, 17}, 1}, {{0x0d008000, 17}, 2},
    };
    for (const bool sparse : {true, false}) {
        SCOPED_TRACE(sparse);
        const PrefixTable t = PrefixTable::build(v4, {}, {.sparse = sparse});
        EXPECT_EQ(l1_word(t, 0x0a01), 1u);
        EXPECT_EQ(l1_word(t, 0x0b00), 1u);
        EXPECT_TRUE(l1_word(t, 0x0a02) & XDPCTL_PFX_REF);
        EXPECT_TRUE(l2_word(t, 0x0a02, 3) & XDPCTL_PFX_REF);
        EXPECT_EQ(l2_word(t, 0x0a02, 4), 1u);
        EXPECT_TRUE(l1_word(t, 0x0c00) & XDPCTL_PFX_REF);
        EXPECT_EQ(l2_word(t, 0x0c00, 0), 1u);
        EXPECT_EQ(l2_word(t, 0x0c00, 1), XDPCTL_PFX_NONE);
        EXPECT_TRUE(l1_word(t, 0x0d00) & XDPCTL_PFX_REF);
        // 10.1/16 and 11.0/16 in level 1; 10.1.3/24, 10.1.4/24, 10.2.4/24, 12.0.0/24 in level 2
        EXPECT_EQ(t.stats().v4_settled, 6u);
    }
}

// Through BPF, against the reference: sets' values (a member or an exception), nested half
// the time, so that many levels are settled, in sparse and dense tables.
TEST(PrefixTableBpfEdges, SettledLevelsAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    for (const bool sparse : {true, false}) {
        SCOPED_TRACE(sparse);
        Rng rng(sparse ? 31 : 32);
        auto set = random_set4(rng, 30000, false);
        for (PrefixEntry4& e : set)
            e.value = e.value == XDPCTL_PFX_EXCEPTED || e.value % 4 == 0 ? e.value : 1;
        keep_first(set);
        ASSERT_GT(PrefixTable::build(set, {}, {.sparse = sparse}).stats().v4_settled, 100u);
        check4(set, probe_addrs4(rng, set, 120000), {.sparse = sparse});
    }
}

// 1M random /32s (a block list of single addresses): one line per /24, not 1 KiB.
TEST(PrefixBuild, RandomHostsTakeALineEach)
{
    Rng rng(5);
    std::vector<PrefixEntry4> v4;
    for (int i = 0; i < 1000000; i++)
        v4.push_back({{uint32_t(rng()), 32}, 1});
    keep_first(v4);
    const PrefixTableLimits mib256{.max_bytes = uint64_t(256) << 20};
    const PrefixTable t = PrefixTable::build(v4, {}, mib256);
    EXPECT_LT(t.stats().v4_l3_chunks, 100u);
    EXPECT_LT(t.stats().bytes, uint64_t(200) << 20);
    EXPECT_TRUE(throws_usage([&] { PrefixTable::build(v4, {}, {.max_bytes = mib256.max_bytes, .sparse = false}); }))
        << "dense, the same set takes ~1 GiB";
}

// The lines in which two tables differ, counting those one has past the other's end.
static size_t lines_differing(const PrefixTable& a, const PrefixTable& b)
{
    const size_t common = std::min(a.lines().size(), b.lines().size());
    size_t n = std::max(a.lines().size(), b.lines().size()) - common;
    for (size_t i = 0; i < common; i++)
        n += std::memcmp(&a.lines()[i], &b.lines()[i], sizeof(xdpctl_pfx_line)) != 0;
    return n;
}

// Sparse lines of a policy's own table (up to 65,536 of them) sit at their /24's share of a
// span with room (PrefixTable::build): a /32 more in a /16 that has a chunk, or one fewer,
// changes the lines up to the next gap and their level-2 words (hosts crowded into a few
// /16s make longer runs: at most 200 of the ~52,800 lines here), where packed lines moved
// every line after it and the level-2 word of each (415-12,659 lines here, median 6,490;
// a commit refills such a table in place, only where its pages changed).
TEST(PrefixBuild, OneHostMoreOrFewerChangesAFewLines)
{
    Rng rng(11);
    std::vector<PrefixEntry4> v4;
    // Seven hosts a /16 on average, in 1,000 /16s: a host's /16 keeps its chunk without it
    // (a /16 that gains or loses its chunk moves the chunks after it: not here).
    std::vector<uint32_t> s16(1000);
    for (uint32_t& x : s16)
        x = uint32_t(rng()) & 0xffff0000u;
    for (int i = 0; i < 7000; i++)
        v4.push_back({{s16[i % s16.size()] | (uint32_t(rng()) & 0xffff), 32}, 1 + uint32_t(rng() % 50)});
    keep_first(v4);
    auto others_in_16 = [&](uint32_t a) {
        return std::count_if(v4.begin(), v4.end(), [&](const PrefixEntry4& e) { return e.prefix.addr >> 16 == a >> 16; });
    };
    const PrefixTable all = PrefixTable::build(v4, {});
    ASSERT_GT(all.stats().v4_sparse_chunks, 6000u);
    // (A line more or fewer at the end: the last run grew or shrank.)
    auto lines_changed = [&](const PrefixTable& t) { return lines_differing(t, all); };
    for (int k = 0; k < 50; k++) {
        // One fewer: the header's count, the /24's level-2 word, and the lines up to a gap
        // with the level-2 word of each.
        std::vector<PrefixEntry4> fewer = v4;
        const size_t gone = rng() % fewer.size();
        if (others_in_16(fewer[gone].prefix.addr) < 2)
            continue;
        fewer.erase(fewer.begin() + ptrdiff_t(gone));
        EXPECT_LE(lines_changed(PrefixTable::build(fewer, {})), 200u) << "one host fewer, " << k;
        // One more, in another /24 of the /16 of a host there (its chunk is there already).
        std::vector<PrefixEntry4> more = v4;
        const uint32_t a = v4[rng() % v4.size()].prefix.addr ^ 0x00008000u;
        if (std::any_of(v4.begin(), v4.end(), [&](const PrefixEntry4& e) { return e.prefix.addr >> 8 == a >> 8; }))
            continue;
        more.push_back({{a, 32}, 7});
        EXPECT_LE(lines_changed(PrefixTable::build(more, {})), 200u) << "one host more, " << k;
    }
}

// Chunks of a policy's own table (up to 32,768 of them) sit at their share of slots with
// room (PrefixTable::build), as its sparse lines do: a host in a /16 that had none (its /16
// gains a chunk), or the last host of one gone, changes the chunks up to the next free slot
// and the level-1 words of their /16s, where packed chunks moved every chunk after it, every
// sparse line after those and the level-2 word of each (~all of the ~130,000 lines here).
TEST(PrefixBuild, OneSlash16MoreOrFewerChangesAFewChunks)
{
    Rng rng(13);
    // 7,000 hosts over all of IPv4, as the benchmark mix's rules have: most in a /16 alone.
    std::vector<PrefixEntry4> v4 = random_hosts(rng, 7000);
    const PrefixTable all = PrefixTable::build(v4, {});
    ASSERT_GT(all.stats().v4_l2_chunks, 6000u);
    auto lines_changed = [&](const PrefixTable& t) { return lines_differing(t, all); };
    std::vector<size_t> changed;
    for (int k = 0; k < 40; k++) {
        // A host in a /16 none holds: a chunk more.
        const auto more = with_host_in_a_new_16(rng, v4);
        if (!more)
            continue;
        const PrefixTable t = PrefixTable::build(*more, {});
        ASSERT_EQ(t.stats().v4_l2_chunks, all.stats().v4_l2_chunks + 1);
        ASSERT_EQ(t.lines().size(), all.lines().size()) << "the same slots, the same sparse lines";
        changed.push_back(lines_changed(t));
        // The last host of a /16 gone: a chunk fewer.
        std::vector<PrefixEntry4> fewer = v4;
        const size_t gone = rng() % fewer.size();
        if (std::count_if(v4.begin(), v4.end(), [&](const PrefixEntry4& e) {
                return e.prefix.addr >> 16 == v4[gone].prefix.addr >> 16;
            }) != 1)
            continue;
        fewer.erase(fewer.begin() + ptrdiff_t(gone));
        changed.push_back(lines_changed(PrefixTable::build(fewer, {})));
    }
    ASSERT_GT(changed.size(), 40u);
    std::sort(changed.begin(), changed.end());
    // A chunk is 16 lines: the median change a few chunks, the worst tens, not thousands.
    EXPECT_LE(changed[changed.size() / 2], 200u);
    EXPECT_LE(changed.back(), 2000u);
    std::cout << "lines changed: median " << changed[changed.size() / 2] << ", most " << changed.back() << " of "
              << all.lines().size() << "\n";
}

// The lines of a map `fd` of `lines` lines, read through a mapping of it.
std::vector<xdpctl_pfx_line> map_lines(int fd, size_t lines)
{
    const MappedMap m(fd);
    const auto all = m.as<xdpctl_pfx_line>();
    return {all.begin(), all.begin() + ptrdiff_t(std::min(lines, all.size()))};
}

// A table built in the map a sink gives (a new map, in a commit), through windows of it, is
// the table built in memory of its own, line for line; a sink that gives no map leaves the
// table its own. Large tables: windows are unmapped and mapped again as the build moves on
// (a set of /32s), or kept once it keeps coming back to older ones (all lengths mixed).
TEST(PrefixBuild, SinkGetsTheSameLines)
{
    XDPCTL_REQUIRE_ROOT();
    const std::vector<PrefixEntry6> v6 = {{{{0x20010db800000000ull, 0}, 32}, 7}, {{{0x20010db800010000ull, 0}, 48}, 8}};
    // ... and a set's (one value: levels settled as the build goes, lines skipped)
    for (const auto& [shortest, values] : {std::pair{8u, 50u}, std::pair{32u, 50u}, std::pair{8u, 1u}}) {
        SCOPED_TRACE("/" + std::to_string(shortest) + " and longer, " + std::to_string(values) + " values");
        Rng rng(7 + shortest);
        std::vector<PrefixEntry4> v4;
        for (int i = 0; i < 200000; i++) {
            const unsigned len = shortest + unsigned(rng() % (33 - shortest));
            v4.push_back({{uint32_t(rng()) & mask4(len), uint8_t(len)}, 1 + uint32_t(rng() % values)});
        }
        keep_first(v4);
        const PrefixTable own = PrefixTable::build(v4, v6);
        ASSERT_GT(own.stats().bytes, uint64_t(40) << 20);  // ten windows and more
        UniqueFd fd;
        PrefixTable sunk = PrefixTable::build(v4, v6, {}, [&](uint64_t lines) {
            LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
            fd = UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_sink", 4, sizeof(xdpctl_pfx_line), uint32_t(lines), &opts));
            return fd.get();
        });
        ASSERT_TRUE(fd);
        ASSERT_TRUE(sunk.sunk());
        EXPECT_FALSE(own.sunk());
        EXPECT_TRUE(sunk.lines().empty());
        const std::vector<xdpctl_pfx_line> in_map = map_lines(fd.get(), own.lines().size() + 1);
        ASSERT_EQ(in_map.size(), own.lines().size());
        EXPECT_EQ(std::memcmp(in_map.data(), own.lines().data(), own.lines().size_bytes()), 0);
        const std::vector<uint32_t> l1 = sunk.take_sunk_l1();
        ASSERT_EQ(l1.size(), size_t(XDPCTL_PFX_L1_ENTRIES));
        // the table's words as one array (a line's word[] has 16: UBSan objects to indexing past it)
        const auto* own_words = reinterpret_cast<const uint32_t*>(own.lines().data());
        EXPECT_EQ(std::memcmp(l1.data(), own_words + XDPCTL_PFX4_L1_WORD, l1.size() * 4), 0);
        const PrefixTable declined = PrefixTable::build(v4, v6, {}, [](uint64_t) { return -1; });
        EXPECT_FALSE(declined.sunk());
        ASSERT_EQ(declined.lines().size(), own.lines().size());
        EXPECT_EQ(std::memcmp(declined.lines().data(), own.lines().data(), own.lines().size_bytes()), 0);
    }
}

TEST(PrefixReferenceTest, LongestMatchAndExceptions)
{
    const std::vector<PrefixEntry4> v4 = {{{0x0a000000, 8}, 1},
                                          {{0x0a010000, 16}, XDPCTL_PFX_EXCEPTED},
                                          {{0x0a010100, 24}, 3}};
    const PrefixReference ref(v4, {});
    EXPECT_EQ(ref.lookup4(0x0a020304), 1u);
    EXPECT_EQ(ref.lookup4(0x0a010204), XDPCTL_PFX_EXCEPTED);
    EXPECT_EQ(ref.lookup4(0x0a010104), 3u);
    EXPECT_EQ(ref.lookup4(0x0b000000), XDPCTL_PFX_NONE);
}

// ---- through BPF -----------------------------------------------------------------------------

class PrefixTableBpf : public ::testing::TestWithParam<int> {};

TEST_P(PrefixTableBpf, Ipv4MatchesReference)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(1000 + GetParam());
    const auto set = random_set4(rng, GetParam() % 2 ? 2000 : 30000, GetParam() % 3 == 0);
    const std::vector<uint32_t> addrs = probe_addrs4(rng, set, 120000);
    check4(set, addrs);
    check4(set, addrs, {.sparse16 = true});
}

TEST_P(PrefixTableBpf, Ipv6MatchesReference)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(2000 + GetParam());
    const auto set = random_set6(rng, GetParam() % 2 ? 2000 : 30000, GetParam() % 3 == 0);
    check6(set, probe_addrs6(rng, set, 120000));
}

INSTANTIATE_TEST_SUITE_P(Seeds, PrefixTableBpf, ::testing::Range(0, 4));

TEST(PrefixTableBpfEdges, EmptyDefaultOnlyAndExceptionsOnly)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(7);
    std::vector<uint32_t> a4(20000);
    std::vector<Ip6> a6(20000);
    for (auto& a : a4)
        a = uint32_t(rng());
    for (auto& a : a6)
        a = {rng(), rng()};
    a4.push_back(0);
    a4.push_back(~0u);
    a6.push_back({0, 0});
    a6.push_back({~0ULL, ~0ULL});

    check4({}, a4);
    check6({}, a6);
    check4({{{0, 0}, 9}}, a4);
    check6({{{{0, 0}, 0}, 9}}, a6);
    // Exceptions with nothing wider: the answer is "excepted" inside them, none outside.
    check4({{{0x80000000, 1}, XDPCTL_PFX_EXCEPTED}, {{0xc0000000, 2}, 4}}, a4);
    check6({{{{0x8000000000000000ULL, 0}, 1}, XDPCTL_PFX_EXCEPTED}, {{{~0ULL, ~0ULL}, 128}, 4}}, a6);
}

// `units` random /`unit_len`s (16 or 24), each crowded with 1 to `most` prefixes longer than
// it (of every length past it): at its first and last address, nested, a host just before
// the last address (its run ends where the last one starts), exceptions, under a covering
// prefix 8 bits shorter or the unit itself or under nothing. Their bases go to `bases`.
std::vector<PrefixEntry4> crowded_units(Rng& rng, unsigned unit_len, unsigned most, int units, std::vector<uint32_t>& bases)
{
    std::vector<PrefixEntry4> v4;
    const uint32_t inside = ~mask4(unit_len);
    for (int g = 0; g < units; g++) {
        const uint32_t base = uint32_t(rng()) & mask4(unit_len);
        bases.push_back(base);
        if (rng() % 4 == 0)
            v4.push_back({{base & mask4(unit_len - 8), uint8_t(unit_len - 8)}, random_value(rng, 0.1)});
        if (rng() % 3 == 0)
            v4.push_back({{base, uint8_t(unit_len)}, random_value(rng, 0.1)});
        const unsigned k = 1 + unsigned(rng() % most);
        for (unsigned i = 0; i < k; i++) {
            unsigned len = unit_len + 1 + unsigned(rng() % (32 - unit_len));
            uint32_t low = uint32_t(rng()) & inside;
            if (i == 0)
                low = 0;
            else if (i == 1)
                low = inside;
            else if (i == 2 && rng() % 2)  // nested in the first
                low = uint32_t(rng()) & inside & 0xff;
            else if (i == 3 && rng() % 2) {
                low = inside - 1;
                len = 32;
            }
            v4.push_back({{(base | low) & mask4(len), uint8_t(len)}, random_value(rng, 0.1)});
        }
    }
    keep_first(v4);
    return v4;
}

// 3,000 crowded units of /unit_len (crowded_units) and the addresses to probe them at:
// 100,000 near their prefixes' edges, and every address of `whole` units (each `every`-th).
struct CrowdedProbe {
    std::vector<PrefixEntry4> v4;
    std::vector<uint32_t> addrs;
};
CrowdedProbe crowded_and_probed(Rng& rng, unsigned unit_len, unsigned max_prefixes, size_t whole, size_t every)
{
    CrowdedProbe out;
    std::vector<uint32_t> units;
    out.v4 = crowded_units(rng, unit_len, max_prefixes, 3000, units);
    out.addrs = probe_addrs4(rng, out.v4, 100000);
    for (size_t i = 0; i < whole; i++)
        for (uint64_t b = 0; b < uint64_t(1) << (32 - unit_len); b++)
            out.addrs.push_back(units[i * every] | uint32_t(b));
    return out;
}

// Crowded /24s: 1 to 9 prefixes past /24 each (sparse up to XDPCTL_PFX_SPARSE_PREFIXES,
// dense past it); every address of some of them probed. Sparse and dense tables must
// answer alike, and as the reference does.
TEST(PrefixTableBpfEdges, SparseAndDenseThirdLevelsAgree)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(21);
    const auto [v4, addrs] = crowded_and_probed(rng, 24, 9, 300, 10);
    EXPECT_GT(PrefixTable::build(v4, {}).stats().v4_sparse_chunks, 1000u);
    EXPECT_GT(PrefixTable::build(v4, {}).stats().v4_l3_chunks, 100u);
    check4(v4, addrs);
    check4(v4, addrs, {.sparse = false});
}

// Crowded /16s: 1 to 8 prefixes past /16 each (a sparse /16 up to
// XDPCTL_PFX_SPARSE16_PREFIXES, a chunk past it); every address of some of them probed.
// Tables with and without sparse /16s must answer alike, and as the reference does.
TEST(PrefixTableBpfEdges, SparseSlash16sAgree)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(23);
    const auto [v4, addrs] = crowded_and_probed(rng, 16, 8, 3, 100);
    const PrefixTable t = PrefixTable::build(v4, {}, {.sparse16 = true});
    EXPECT_GT(t.stats().v4_sparse16, 1000u);
    EXPECT_GT(t.stats().v4_l2_chunks, 500u);
    check4(v4, addrs, {.sparse16 = true});
    check4(v4, addrs);
}

// A BGP-sized IPv4 set (1M prefixes, mostly /24) and a 256k IPv6 one: chunk numbers and
// bucket counts far past the small tests', where an overflow in the layout would show.
TEST(PrefixTableBpfEdges, LargeSets)
{
    XDPCTL_REQUIRE_ROOT();
    Rng rng(11);
    std::vector<PrefixEntry4> v4;
    v4.reserve(1000000);
    while (v4.size() < 1000000) {
        const unsigned r = unsigned(rng() % 100);
        const unsigned len = r < 60 ? 24 : r < 95 ? 8 + unsigned(rng() % 17) : 25 + unsigned(rng() % 8);
        v4.push_back({{uint32_t(rng()) & mask4(len), uint8_t(len)}, random_value(rng, 0.05)});
    }
    keep_first(v4);
    check4(v4, probe_addrs4(rng, v4, 200000));

    std::vector<PrefixEntry6> v6;
    while (v6.size() < 256000) {
        const unsigned r = unsigned(rng() % 100);
        const unsigned len = r < 50 ? 48 : r < 70 ? 32 : r < 97 ? 17 + unsigned(rng() % 48) : 65 + unsigned(rng() % 64);
        const Ip6 a{(uint64_t(0x2000 + rng() % 0x400) << 48) | (rng() >> 16), rng()};
        v6.push_back({{a & mask6(len), uint8_t(len)}, random_value(rng, 0.05)});
    }
    keep_first(v6);
    check6(v6, probe_addrs6(rng, v6, 200000));
}

// One map update switches the whole table: every lookup after it sees the new generation.
TEST(PrefixTableBpfEdges, GenerationSwitch)
{
    XDPCTL_REQUIRE_ROOT();
    Harness& h = Harness::get();
    const std::vector<PrefixEntry4> a4 = {{{0x0a000000, 8}, 1}};
    const std::vector<PrefixEntry6> a6 = {{{{0x20010db800000000ULL, 0}, 32}, 1}};
    const std::vector<PrefixEntry4> b4 = {{{0x0a000000, 8}, 2}, {{0x0a010000, 16}, XDPCTL_PFX_EXCEPTED}};
    const std::vector<PrefixEntry6> b6 = {{{{0x20010db800000000ULL, 0}, 32}, 2}};
    const std::vector<uint32_t> q4 = {0x0a020304, 0x0a010203};
    const std::vector<Ip6> q6 = {{0x20010db800010000ULL, 1}};
    for (int round = 0; round < 3; round++) {
        h.install(PrefixTable::build(a4, a6));
        EXPECT_EQ(h.run4(q4), (std::vector<uint32_t>{1, 1}));
        EXPECT_EQ(h.run6(q6), (std::vector<uint32_t>{1}));
        h.install(PrefixTable::build(b4, b6));
        EXPECT_EQ(h.run4(q4), (std::vector<uint32_t>{2, XDPCTL_PFX_EXCEPTED}));
        EXPECT_EQ(h.run6(q6), (std::vector<uint32_t>{2}));
    }
}

// Counts the calls the verifier left in a loaded program's instructions.
int xlated_calls(bpf_program* prog)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0)
        fail("prog info: {}", errno_str(errno));
    std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
    bpf_prog_info info2{};
    info2.xlated_prog_len = info.xlated_prog_len;
    info2.xlated_prog_insns = reinterpret_cast<__u64>(insns.data());
    len = sizeof(info2);
    if (bpf_prog_get_info_by_fd(bpf_program__fd(prog), &info2, &len) != 0)
        fail("prog insns: {}", errno_str(errno));
    return int(std::count_if(insns.begin(), insns.end(),
                             [](const bpf_insn& i) { return i.code == (BPF_JMP | BPF_CALL); }));
}

// The cost model in docs/prefix-sets.md rests on this: lookups in a plain array are inlined
// by the verifier (no call at all), lookups in a BPF_F_INNER_MAP table are one call per line.
TEST(PrefixTableBpfEdges, VerifierInlinesPlainArrayLookups)
{
    XDPCTL_REQUIRE_ROOT();
    Harness& h = Harness::get();
    EXPECT_EQ(xlated_calls(h.skel()->progs.pfx4_flat), 0);
    EXPECT_EQ(xlated_calls(h.skel()->progs.pfx6_flat), 0);
    // Call sites: level 1, a sparse /16, level 2, a dense or a sparse level 3; a lookup
    // makes at most 3.
    EXPECT_EQ(xlated_calls(h.skel()->progs.pfx4_table), 5);
    EXPECT_EQ(xlated_calls(h.skel()->progs.pfx4_base), 0);
}

}  // namespace
