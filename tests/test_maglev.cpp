// Weighted Maglev over simulated flows, hashed with the datapath's own flow hash
// (xdpctl_lb_flow_hash and xdpctl_lb_ring_pos from abi/xdpctl_abi.h): the shares follow the
// weights, and a change of the backend set moves few flows.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>
#include <random>

#include <gtest/gtest.h>

#include "util/error.h"
#include "lb/maglev.h"

using namespace xdpctl;
using namespace xdpctl::lb;

namespace {

constexpr int kFlows = 100000;
constexpr int kBackends = 10;

struct Flow {
    uint32_t saddr[4]{}, daddr[4]{};
    uint32_t ports = 0;
};

// Random clients (198.18.0.0/16, ephemeral ports) to one VIP, 198.19.0.1:80, fixed seed.
std::vector<Flow> make_flows()
{
    std::mt19937 rng(12345);
    std::vector<Flow> flows(kFlows);
    for (auto& f : flows) {
        f.saddr[0] = htonl(0xc6120000u | (rng() & 0xffff));
        f.daddr[0] = htonl(0xc6130001u);
        uint16_t sport = uint16_t(1024 + rng() % 64000);
        f.ports = (uint32_t(htons(sport)) << 16) | htons(80);
    }
    return flows;
}

MaglevBackend backend(uint32_t slot, uint32_t weight)
{
    uint32_t addr[4] = {htonl(0xc6130a00u + slot), 0, 0, 0};  // 198.19.10.slot
    return {slot, maglev_key(addr), weight};
}

std::vector<uint32_t> assign(const std::vector<uint32_t>& table, const std::vector<Flow>& flows)
{
    std::vector<uint32_t> out;
    out.reserve(flows.size());
    for (const auto& f : flows) {
        uint32_t h = xdpctl_lb_flow_hash(f.saddr, f.daddr, f.ports, IPPROTO_TCP);
        out.push_back(table[xdpctl_lb_ring_pos(h, uint32_t(table.size()))]);
    }
    return out;
}

std::map<uint32_t, int> counts(const std::vector<uint32_t>& v)
{
    std::map<uint32_t, int> c;
    for (uint32_t b : v)
        c[b]++;
    return c;
}

}  // namespace

TEST(Maglev, SharesFollowWeights)
{
    const auto flows = make_flows();
    for (bool weighted : {false, true}) {
        std::vector<MaglevBackend> bs;
        uint32_t total = 0;
        for (uint32_t i = 0; i < kBackends; i++) {
            bs.push_back(backend(i, weighted ? i + 1 : 100));
            total += bs.back().weight;
        }
        const auto table = build_maglev(bs, XDPCTL_LB_RING_DEFAULT);
        const auto tc = counts(table);
        const auto fc = counts(assign(table, flows));
        ASSERT_EQ(tc.count(XDPCTL_LB_NO_BACKEND), 0u);
        for (const auto& b : bs) {
            const double want = double(b.weight) / total;
            const double table_share = double(tc.at(b.slot)) / table.size();
            const double flow_share = double(fc.at(b.slot)) / kFlows;
            EXPECT_NEAR(table_share, want, want * 0.01) << "backend " << b.slot << " weighted " << weighted;
            EXPECT_NEAR(flow_share, want, want * 0.05) << "backend " << b.slot << " weighted " << weighted;
        }
    }
}

TEST(Maglev, RemovingOneMovesFewOthers)
{
    const auto flows = make_flows();
    std::vector<MaglevBackend> bs;
    for (uint32_t i = 0; i < kBackends; i++)
        bs.push_back(backend(i, 1));
    const auto before = assign(build_maglev(bs, XDPCTL_LB_RING_DEFAULT), flows);
    for (uint32_t gone : {0u, 4u, 9u}) {
        auto fewer = bs;
        fewer.erase(fewer.begin() + gone);
        const auto after = assign(build_maglev(fewer, XDPCTL_LB_RING_DEFAULT), flows);
        int others = 0, others_moved = 0;
        for (size_t i = 0; i < flows.size(); i++) {
            if (before[i] == gone) {
                EXPECT_NE(after[i], gone);
                continue;
            }
            others++;
            others_moved += after[i] != before[i];
        }
        EXPECT_LE(double(others_moved) / others, 0.03) << "removing backend " << gone;
        RecordProperty("moved_others_permille_without_" + std::to_string(gone),
                       int(1000.0 * others_moved / others));
    }
}

TEST(Maglev, AddingOneMovesAtMostItsShare)
{
    const auto flows = make_flows();
    std::vector<MaglevBackend> bs;
    for (uint32_t i = 0; i < kBackends; i++)
        bs.push_back(backend(i, 1));
    const auto before = assign(build_maglev(bs, XDPCTL_LB_RING_DEFAULT), flows);
    bs.push_back(backend(kBackends, 1));
    const auto after = assign(build_maglev(bs, XDPCTL_LB_RING_DEFAULT), flows);
    int moved = 0;
    for (size_t i = 0; i < flows.size(); i++)
        moved += after[i] != before[i];
    EXPECT_LE(double(moved) / kFlows, 1.2 / (kBackends + 1));
    // The new backend takes flows, and those are most of what moved.
    EXPECT_GT(counts(after)[kBackends], kFlows / (kBackends + 1) / 2);
}

TEST(Maglev, DrainedBackendHasNoPositions)
{
    std::vector<MaglevBackend> bs{backend(0, 1), backend(1, 0), backend(2, 1)};
    const auto c = counts(build_maglev(bs, 251));
    EXPECT_EQ(c.count(1), 0u);
    EXPECT_EQ(c.at(0) + c.at(2), 251);
    const auto none = build_maglev({backend(0, 0)}, 251);
    EXPECT_EQ(counts(none).at(XDPCTL_LB_NO_BACKEND), 251);
}

TEST(Maglev, SizeMustBePrime)
{
    EXPECT_THROW(build_maglev({backend(0, 1)}, 65536), Error);
    EXPECT_THROW(build_maglev({backend(0, 1)}, 1), Error);
    EXPECT_EQ(build_maglev({backend(0, 1)}, 7).size(), 7u);
}

TEST(Maglev, TableDependsOnTheSetNotTheOrder)
{
    std::vector<MaglevBackend> a{backend(0, 2), backend(1, 3), backend(2, 1)};
    std::vector<MaglevBackend> b{backend(2, 1), backend(1, 3), backend(0, 2)};
    EXPECT_EQ(build_maglev(a, 65537), build_maglev(b, 65537));
}
