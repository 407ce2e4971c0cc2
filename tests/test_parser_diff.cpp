// The BPF parser (lib/bpf/parse.h) against a reference parser written from the protocol
// specs (tests/reference_parser.cpp), on random and mutated frames through
// BPF_PROG_TEST_RUN: the same L3 and L4 class, malformed reason, VLAN IDs, addresses, ports
// (ICMP type/code) and TCP flags, for every frame. The programs run in explain mode
// (lib/bpf/explain.h), which writes everything the parser found into xdpctl_explain_out.
//
//   XDPCTL_PARSER_DIFF_FRAMES  frames to run (default 300000, ~3 s; 1000000 for a full run, ~9 s)
//   XDPCTL_PARSER_DIFF_SEED    the RNG seed (default: from the clock; printed either way)
//
// A mismatch prints the frame in hex, both parses and the seed that makes it again.
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "util/error.h"
#include "packet_builder.h"
#include "reference_parser.h"
#include "require_root.h"
#include "attach/skeleton.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

using namespace xdpctl;
using namespace xdpctl::test;

namespace {

constexpr size_t kEthHlen = 14;
// The largest frame kept: an XDP test run takes one page less head- and tailroom.
constexpr size_t kMaxFrame = 3400;

uint64_t env_u64(const char* name, uint64_t fallback)
{
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

template <typename Skel>
SkelPtr<Skel> load_explain(const char* name)
{
    SkelPtr<Skel> s(Skel::open());
    if (!s)
        fail("cannot open the {} skeleton: {}", name, errno_str(errno));
    s->rodata->cfg_explain = 1;
    s->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    if (int err = Skel::load(s.get()))
        fail("cannot load {}: {}", name, errno_str(err));
    return s;
}

// ---- frames --------------------------------------------------------------------------

class FrameSource {
public:
    explicit FrameSource(uint64_t seed) : rng_(seed) {}

    // The next frame: mostly one random frame, mutated or not; now and then a frame cut at
    // every offset, one cut per call.
    std::vector<uint8_t> next()
    {
        if (!queue_.empty()) {
            auto f = std::move(queue_.front());
            queue_.pop_front();
            return f;
        }
        PacketBuilder b = random_packet();
        const size_t n = b.build().size();
        if (n <= 400 && one_in(1000)) {
            // Every cut: as in flight (lengths of the whole packet) and as a short packet.
            for (size_t cut = kEthHlen; cut < n; cut++) {
                queue_.push_back(PacketBuilder(b).truncate(cut, false).build());
                queue_.push_back(PacketBuilder(b).truncate(cut, true).build());
            }
            return b.build();
        }
        return mutate(b);
    }

private:
    uint32_t below(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
    bool one_in(uint32_t n) { return below(n) == 0; }
    uint8_t byte() { return uint8_t(below(256)); }
    template <typename T>
    T pick(std::initializer_list<T> v) { return v.begin()[below(uint32_t(v.size()))]; }

    template <size_t N>
    std::array<uint8_t, N> addr()
    {
        std::array<uint8_t, N> a;
        for (auto& x : a)
            x = byte();
        return a;
    }

    // A protocol number for the layer after IP: mostly those xdpctl reads, sometimes any.
    uint8_t upper_proto()
    {
        return one_in(4) ? byte() : pick<uint8_t>({6, 17, 1, 58, 47, 50, 59, 132, 0, 43, 44, 60, 51});
    }

    void add_upper(PacketBuilder& b)
    {
        switch (below(6)) {
        case 0:
            b.tcp({.sport = uint16_t(below(65536)), .dport = uint16_t(below(65536)), .flags = byte(),
                   .options_len = one_in(3) ? 4 * below(11) : 0});
            break;
        case 1:
            b.udp(uint16_t(below(65536)), uint16_t(below(65536)));
            break;
        case 2:
            b.icmp_echo(uint16_t(below(65536)));
            break;
        case 3:
            b.icmpv6_echo(uint16_t(below(65536)));
            break;
        default:
            break;  // the protocol number alone, and whatever payload
        }
        if (!one_in(3))
            b.payload(below(one_in(10) ? 1400 : 40), byte());
    }

    void add_ipv6_chain(PacketBuilder& b)
    {
        // 0-3 headers mostly; long chains up to 12 (past the parser's bound of 8) and long
        // headers now and then.
        const int n = one_in(4) ? int(below(13)) : int(below(4));
        for (int i = 0; i < n; i++) {
            const Ext kind = pick<Ext>({Ext::hop_by_hop, Ext::routing, Ext::dstopts, Ext::fragment, Ext::ah});
            if (kind == Ext::fragment) {
                const uint16_t offset = one_in(2) ? 0 : uint16_t(below(8192));
                b.ext_fragment(offset, one_in(2), uint32_t(below(1u << 31)), upper_proto());
            } else if (kind == Ext::ah) {
                b.ext(kind, 4 * (3 + below(one_in(8) ? 200 : 6)));
            } else {
                b.ext(kind, 8 * (1 + below(one_in(8) ? 256 : 4)));
            }
        }
    }

    PacketBuilder random_packet()
    {
        PacketBuilder b;
        const uint32_t tags = pick<uint32_t>({0, 0, 0, 0, 1, 1, 2, 2, 3});
        for (uint32_t i = 0; i < tags; i++)
            b.vlan(uint16_t(below(4096)), one_in(2) ? kTpid8021Q : kTpid8021AD);
        switch (below(20)) {
        case 0:
            b.arp_request(addr<4>(), addr<4>());
            break;
        case 1:  // unknown, or a tag announced and missing
            b.ethertype(pick<uint16_t>({0x88b5, 0x88cc, 0x8847, 0x0842, kTpid8021Q, kTpid8021AD,
                                        uint16_t(below(65536))}));
            b.payload(below(64), byte());
            break;
        case 2:
        case 3:
        case 4:
        case 5:
        case 6:
        case 7:
        case 8:
        case 9: {
            Ipv4Opts o{.src = addr<4>(), .dst = addr<4>(), .options_len = one_in(4) ? 4 * below(11) : 0};
            if (one_in(4)) {
                o.frag_offset = one_in(2) ? 0 : uint16_t(below(8192));
                o.more_fragments = one_in(2);
            }
            if (one_in(5))
                o.protocol = upper_proto();
            b.ipv4(o);
            add_upper(b);
            break;
        }
        default: {
            Ipv6Opts o{.src = addr<16>(), .dst = addr<16>()};
            if (one_in(5))
                o.next_header = upper_proto();
            b.ipv6(o);
            add_ipv6_chain(b);
            add_upper(b);
            break;
        }
        }
        if (one_in(4))
            b.pad_to(60 + below(8));
        return b;
    }

    // Mutations on top of a well-formed frame: the builder's breaks, cuts, bytes overwritten.
    std::vector<uint8_t> mutate(const PacketBuilder& b)
    {
        Frame fr;
        try {
            PacketBuilder broken(b);
            switch (below(10)) {
            case 0:
                broken.ihl(uint8_t(below(16)));
                break;
            case 1:
                broken.ip_version(uint8_t(below(16)));
                break;
            case 2:
                if (one_in(2))
                    broken.ipv4_total_length(uint16_t(below(one_in(2) ? 100 : 65536)));
                else
                    broken.ipv6_payload_length(uint16_t(below(one_in(2) ? 100 : 65536)));
                break;
            case 3:
                broken.tcp_doff(uint8_t(below(16)));
                break;
            case 4: {
                const size_t n = b.build().size();
                broken.truncate(kEthHlen + below(uint32_t(n - kEthHlen + 1)), one_in(2));
                break;
            }
            default:
                break;
            }
            fr = broken.build_frame();
        } catch (const std::exception&) {
            // A break this packet has no header for (no IPv4 header, no TCP header): the
            // packet as it was.
            fr = b.build_frame();
        }
        auto& f = fr.bytes;
        switch (below(8)) {
        case 0:
        case 1: {  // a few bytes anywhere in the first 128
            const int n = 1 + int(below(4));
            for (int i = 0; i < n; i++)
                f[below(uint32_t(std::min<size_t>(f.size(), 128)))] = byte();
            break;
        }
        case 2:  // an extension header's next header or length
            if (!fr.ext_offs.empty()) {
                const size_t at = fr.ext_offs[below(uint32_t(fr.ext_offs.size()))] + below(4);
                if (at < f.size())
                    f[at] = one_in(2) ? byte() : pick<uint8_t>({0, 43, 44, 51, 60, 6, 17, 58, 59});
            }
            break;
        case 3:  // the cut of a frame in flight
            f.resize(kEthHlen + below(uint32_t(f.size() - kEthHlen + 1)));
            break;
        default:
            break;
        }
        if (one_in(200)) {  // noise with an EtherType that matters
            f.assign(kEthHlen + below(200), 0);
            for (auto& x : f)
                x = byte();
            const uint16_t t = pick<uint16_t>({0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806});
            f[12] = uint8_t(t >> 8);
            f[13] = uint8_t(t);
        }
        if (f.size() > kMaxFrame)
            f.resize(kMaxFrame);
        return f;
    }

    std::mt19937_64 rng_;
    std::deque<std::vector<uint8_t>> queue_;
};

// ---- comparing -----------------------------------------------------------------------

std::string hex(const std::vector<uint8_t>& f)
{
    std::string s;
    for (size_t i = 0; i < f.size(); i++)
        s += fmt::format("{:02x}{}", f[i], (i % 32 == 31) ? "\n" : (i % 2 ? " " : ""));
    return s;
}

std::string addr_str(const void* a, bool v4)
{
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v4 ? AF_INET : AF_INET6, a, buf, sizeof(buf));
    return buf;
}

// The fields the two parsers must agree on, as one line each for a readable diff. A field
// is included only where the parse reached it: addresses once the IP header was accepted,
// ports once the L4 header was read.
std::string describe(const RefParse& r, bool v4)
{
    std::string s = fmt::format("malformed={} l3_cnt={} l4_cnt={} l3_proto={:#06x} vlans={}", r.malformed,
                                r.l3_cnt, r.l4_cnt, r.l3_proto, r.n_vlans);
    for (int i = 0; i < r.n_vlans && i < XDPCTL_MAX_VLANS; i++)
        s += fmt::format(" vid{}={}", i, r.vlan_id[i]);
    if (r.ip_ok)
        s += fmt::format(" {} > {} frag={}", addr_str(r.saddr, v4), addr_str(r.daddr, v4), r.frag);
    if (r.l4_cnt != XDPCTL_CNT_MAX)
        s += fmt::format(" l4_proto={}", r.l4_proto);
    if (r.l4_ok)
        s += fmt::format(" sport={} dport={} tcp_flags={:#04x}", r.sport, r.dport, r.tcp_flags);
    return s;
}

// The explain record in the reference's terms (which fields count is decided by the
// reference's view of how far the parse got, so a field BPF left unset shows as a mismatch).
RefParse from_explain(const xdpctl_explain& e, const RefParse& ref)
{
    RefParse b;
    b.malformed = int(e.malformed);
    b.l3_cnt = e.l3_cnt;
    b.l4_cnt = e.l4_cnt;
    b.l3_proto = e.l3_proto;
    b.n_vlans = e.n_vlans;
    std::memcpy(b.vlan_id, e.vlan_id, sizeof(b.vlan_id));
    b.ip_ok = ref.ip_ok;
    std::memcpy(b.saddr, e.saddr, sizeof(b.saddr));
    std::memcpy(b.daddr, e.daddr, sizeof(b.daddr));
    b.frag = e.frag;
    b.l4_proto = e.l4_proto;
    b.l4_ok = ref.l4_ok;
    const bool icmp = e.l4_cnt == XDPCTL_CNT_L4_ICMP || e.l4_cnt == XDPCTL_CNT_L4_ICMPV6;
    b.sport = icmp ? e.sport : ntohs(e.sport);  // ICMP: the type as a number, not network order
    b.dport = icmp ? e.dport : ntohs(e.dport);
    b.tcp_flags = e.l4_cnt == XDPCTL_CNT_L4_TCP ? e.tcp_flags : 0;
    return b;
}

// Skb test runs refuse an untagged IPv4/IPv6 frame shorter than its fixed IP header
// (test_parser.cpp's kernel_refuses()).
bool skb_refuses(const std::vector<uint8_t>& f)
{
    const uint16_t type = uint16_t(f[12] << 8 | f[13]);
    return (type == 0x0800 && f.size() < kEthHlen + 20) || (type == 0x86dd && f.size() < kEthHlen + 40);
}

TEST(ParserDiff, BpfAgreesWithReferenceOnRandomAndMutatedFrames)
{
    XDPCTL_REQUIRE_ROOT();
    const uint64_t frames = env_u64("XDPCTL_PARSER_DIFF_FRAMES", 300000);
    const uint64_t seed = env_u64("XDPCTL_PARSER_DIFF_SEED",
                                  uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::printf("parser_diff: %llu frames, seed %llu (XDPCTL_PARSER_DIFF_SEED=%llu repeats this run)\n",
                (unsigned long long)frames, (unsigned long long)seed, (unsigned long long)seed);

    auto xdp = load_explain<xdpctl_xdp>("xdpctl_xdp");
    auto tc = load_explain<xdpctl_tc>("xdpctl_tc");
    xdpctl_explain& xdp_out = xdp->bss->xdpctl_explain_out;
    xdpctl_explain& tc_out = tc->bss->xdpctl_explain_out;
    const int xdp_fd = bpf_program__fd(xdp->progs.xdpctl_xdp);
    const int tc_fd = bpf_program__fd(tc->progs.xdpctl_tc_in);

    FrameSource src(seed);
    uint64_t malformed = 0, tc_runs = 0, mismatches = 0;
    uint64_t by_reason[XDPCTL_CNT_MAX + 1] = {}, by_l4[XDPCTL_CNT_MAX + 1] = {};
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < frames && mismatches < 5; i++) {
        const std::vector<uint8_t> f = src.next();
        const RefParse ref = reference_parse(f);
        const bool v4 = ref.l3_cnt == XDPCTL_CNT_L3_IPV4;
        malformed += ref.malformed != 0;
        by_reason[ref.malformed]++;
        by_l4[ref.l4_cnt]++;

        // XDP takes every frame; TC (the skb path, same parser) one in four.
        struct Hook {
            const char* name;
            int fd;
            bool xdp;
            xdpctl_explain* out;
        };
        for (const Hook& h : {Hook{"xdp", xdp_fd, true, &xdp_out}, Hook{"tc_ingress", tc_fd, false, &tc_out}}) {
            if (!h.xdp && (i % 4 != 0 || skb_refuses(f)))
                continue;
            tc_runs += !h.xdp;
            std::memset(h.out, 0, sizeof(*h.out));
            const auto run = test_run(h.fd, f);
            ASSERT_EQ(run.err, 0) << h.name << ": BPF_PROG_TEST_RUN refused frame " << i << " ("
                                  << f.size() << " bytes):\n" << hex(f);
            ASSERT_EQ(h.out->done, 1u) << h.name << ": the program wrote no explain record";
            const std::string want = describe(ref, v4), got = describe(from_explain(*h.out, ref), v4);
            EXPECT_EQ(h.out->len, f.size());
            if (want != got) {
                mismatches++;
                ADD_FAILURE() << h.name << ": frame " << i << " of seed " << seed << " (" << f.size()
                              << " bytes):\n"
                              << hex(f) << "\n reference: " << want << "\n       bpf: " << got;
            }
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("parser_diff: %llu frames (%llu malformed) on XDP, %llu on TC, in %.1f s\n",
                (unsigned long long)frames, (unsigned long long)malformed, (unsigned long long)tc_runs, secs);
    std::string reasons;
    for (int r = 0; r <= XDPCTL_CNT_MAX; r++)
        if (by_reason[r])
            reasons += fmt::format(" {}:{}", r == 0 ? "ok" : counter_name(r), by_reason[r]);
    for (int c = XDPCTL_CNT_L4_FIRST; c <= XDPCTL_CNT_L4_OTHER; c++)
        reasons += fmt::format(" {}:{}", counter_name(c), by_l4[c]);
    std::printf("parser_diff: by reason and L4 class:%s\n", reasons.c_str());
    // Every reason a test run can produce shows up, or the generator lost its reach.
    for (int r = XDPCTL_CNT_BAD_VLAN_TRUNCATED; r < XDPCTL_CNT_MAX && frames >= 100000; r++)
        EXPECT_GT(by_reason[r], 0u) << "no frame was malformed as " << counter_name(r);
}

}  // namespace
