// lb::CounterFloor (lib/lb/counter_floor.h): successive reads of the balancer's counters by
// one process never go down while their owner is the same, and a real reset (an owner made
// again, the maps made anew) is shown as one.
#include <gtest/gtest.h>

#include "lb/counter_floor.h"
#include "lb/lb_model.h"

using namespace xdpctl;
using namespace xdpctl::lb;

namespace {

constexpr uint64_t kSlack = 1000;

VipEntry vip(uint32_t id, const char* spec, uint64_t table_gen)
{
    VipEntry v;
    v.spec = parse_vip(spec);
    v.rec.id = id;
    v.rec.table_gen = table_gen;
    return v;
}

BackendEntry backend(uint32_t slot, uint32_t gen)
{
    BackendEntry b;
    b.slot = slot;
    b.rec.gen = gen;
    return b;
}

// A read with VIP 0 and backend slot 3 at `packets` (bytes 100 each) and `tx` forwarded.
LbMaps::AllCounters read(uint64_t vip_packets, uint64_t backend_packets, uint64_t tx)
{
    LbMaps::AllCounters a;
    a.vip.resize(4);
    a.backend.resize(8);
    a.vip[0] = {vip_packets, vip_packets * 100, 1};
    a.backend[3] = {backend_packets, backend_packets * 100, 1};
    a.stats.cnt[XDPCTL_LB_CNT_TX] = tx;
    a.stats.cnt[XDPCTL_LB_CNT_CT_HIT] = tx;
    return a;
}

TEST(CounterFloor, AReadShortOfPendingHitsShowsTheLastValue)
{
    CounterFloor f(kSlack);
    const std::vector<VipEntry> vips{vip(0, "198.18.0.1:80/tcp", 1)};
    const std::vector<BackendEntry> bes{backend(3, 1)};
    f.hold(vips, bes, read(500, 400, 600));
    // the next read misses 40 hits a slot moved into counters read before it
    const LbMaps::AllCounters short_read = f.hold(vips, bes, read(460, 360, 560));
    EXPECT_EQ(short_read.vip[0].packets, 500u);
    EXPECT_EQ(short_read.vip[0].bytes, 50000u);
    EXPECT_EQ(short_read.backend[3].packets, 400u);
    EXPECT_EQ(short_read.stats.cnt[XDPCTL_LB_CNT_TX], 600u);
    EXPECT_EQ(short_read.stats.cnt[XDPCTL_LB_CNT_CT_HIT], 600u);
    // a whole read past the last value passes
    const LbMaps::AllCounters whole = f.hold(vips, bes, read(520, 410, 630));
    EXPECT_EQ(whole.vip[0].packets, 520u);
    EXPECT_EQ(whole.backend[3].bytes, 41000u);
    EXPECT_EQ(whole.stats.cnt[XDPCTL_LB_CNT_TX], 630u);
}

TEST(CounterFloor, AnOwnerMadeAgainStartsFromItsOwnCounts)
{
    CounterFloor f(kSlack);
    f.hold({vip(0, "198.18.0.1:80/tcp", 5)}, {backend(3, 1)}, read(500, 400, 600));
    // the slot given to another backend (incarnation 2), the VIP made again (table gen 1)
    LbMaps::AllCounters again = f.hold({vip(0, "198.18.0.1:80/tcp", 1)}, {backend(3, 2)}, read(7, 7, 607));
    EXPECT_EQ(again.vip[0].packets, 7u);
    EXPECT_EQ(again.backend[3].packets, 7u);
    // another VIP on the id
    f.hold({vip(0, "198.18.0.1:80/tcp", 1)}, {backend(3, 2)}, read(50, 50, 650));
    again = f.hold({vip(0, "198.18.0.2:80/tcp", 1)}, {}, read(3, 0, 653));
    EXPECT_EQ(again.vip[0].packets, 3u);
    // a deleted owner is forgotten: the same VIP later starts from its own counts
    f.hold({}, {}, read(0, 0, 653));
    again = f.hold({vip(0, "198.18.0.2:80/tcp", 4)}, {}, read(1, 0, 654));
    EXPECT_EQ(again.vip[0].packets, 1u);
}

TEST(CounterFloor, GlobalCountsResetWhenTheMapsAreMadeAnew)
{
    CounterFloor f(kSlack);
    f.hold({}, {}, read(0, 0, 50000));
    EXPECT_EQ(f.hold({}, {}, read(0, 0, 50000 - kSlack)).stats.cnt[XDPCTL_LB_CNT_TX], 50000u)
        << "a drop within the slack is a short read";
    EXPECT_EQ(f.hold({}, {}, read(0, 0, 12)).stats.cnt[XDPCTL_LB_CNT_TX], 12u) << "a reset was held";
    EXPECT_EQ(f.hold({}, {}, read(0, 0, 20)).stats.cnt[XDPCTL_LB_CNT_TX], 20u);
}

}  // namespace
