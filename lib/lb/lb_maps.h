// The writer and reader of the load balancer's maps (lib/bpf/lb_maps.h; layout in the "load
// balancing" section of abi/xdpctl_abi.h). Every change has one publish point, a single map
// update that packets see whole: a VIP record, or a VIP's Maglev table swapped in its
// ARRAY_OF_MAPS slot. A change that fails before it leaves the maps as they were.
// One writer at a time (the caller holds the lock: LbStore).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "attach/iface_pins.h"
#include "lb/health_check.h"
#include "lb/lb_health_maps.h"
#include "lb/lb_model.h"
#include "util/unique_fd.h"
#include "lb/fcache_pending.h"

namespace xdpctl::lb {

// Every LB map, by its pinned name (the loader pins maps by name).
struct LbMapFds {
    UniqueFd ctl;       // xdpctl_lb_ctl
    UniqueFd vips;      // xdpctl_lb_vips
    UniqueFd vip_ids;   // xdpctl_lb_vip_ids
    UniqueFd backends;  // xdpctl_lb_backends
    UniqueFd rings;     // xdpctl_lb_rings
    UniqueFd ct;        // xdpctl_lb_ct
    UniqueFd vctr;      // xdpctl_lb_vctr
    UniqueFd bctr;      // xdpctl_lb_bctr
    UniqueFd stats;     // xdpctl_lb_stats
    // The flow cache's generation words (abi: struct xdpctl_lb_fcache_slot); none when the
    // pinned maps are of a program without the cache.
    UniqueFd fgen;      // xdpctl_lb_fgen
    // The flow cache itself, whose slots hold counts pending (lb/fcache_pending.h); none as fgen.
    UniqueFd fcache;    // xdpctl_lb_fcache
    // Userspace's own (lb_health_maps.h), when pinned; made by the first write that needs one.
    UniqueFd checks;    // xdpctl_lb_checks
    UniqueFd health;    // xdpctl_lb_health
};

// The maps of a loaded skeleton that declares them (the XDP object), as fds of their own.
template <typename Skel>
LbMapFds lb_map_fds(const Skel& s)
{
    return LbMapFds{dup_map_fd(s.maps.xdpctl_lb_ctl),      dup_map_fd(s.maps.xdpctl_lb_vips),
                    dup_map_fd(s.maps.xdpctl_lb_vip_ids),  dup_map_fd(s.maps.xdpctl_lb_backends),
                    dup_map_fd(s.maps.xdpctl_lb_rings),    dup_map_fd(s.maps.xdpctl_lb_ct),
                    dup_map_fd(s.maps.xdpctl_lb_vctr),     dup_map_fd(s.maps.xdpctl_lb_bctr),
                    dup_map_fd(s.maps.xdpctl_lb_stats),    dup_map_fd(s.maps.xdpctl_lb_fgen),
                    dup_map_fd(s.maps.xdpctl_lb_fcache),   {}, {}};
}

// The maps pinned under `dir` (/sys/fs/bpf/xdpctl/maps).
LbMapFds lb_map_fds_pinned(const std::string& dir);

// Whether every map lb_map_fds_pinned requires is pinned under `dir`. A command creating the
// shared maps pins them one by one, in the object's order: one name alone (the VIP table,
// pinned before the counters) does not say that the others are there yet.
bool lb_maps_pinned(const std::string& dir);

struct VipOptions {
    uint32_t mode = XDPCTL_LB_MODE_DSR;
    uint32_t flags = 0;                          // XDPCTL_LB_F_*
    uint32_t ring_size = XDPCTL_LB_RING_DEFAULT; // a prime
    std::optional<IpAddr> ipip_source;           // default: the VIP's address
};

struct BackendSpec {
    IpAddr addr;
    MacAddr mac{};
    uint32_t weight = 1;
    std::optional<CheckSpec> check;  // its own health check (else the VIP's applies)
};

struct VipEntry {
    VipSpec spec;
    xdpctl_lb_vip rec{};
};

struct BackendEntry {
    uint32_t slot = 0;
    xdpctl_lb_backend rec{};
    IpAddr addr() const;
    MacAddr mac() const;
    bool down() const { return rec.flags & XDPCTL_LB_BE_F_DOWN; }
    // What the Maglev table gives it: 0 while a health check holds it down.
    uint32_t effective_weight() const { return down() ? 0 : rec.weight; }
};

// The checks a VIP's options and a backend get before any map changes (usage errors naming
// the value): shared by the `lb` commands and the `lb` lines of an apply file.
void check_vip_options(const VipSpec& v, const VipOptions& o);
void check_backend(const VipSpec& v, uint32_t mode, const BackendSpec& b);

// Where `lb trace` says a flow goes.
struct TraceResult {
    bool vip_found = false;
    VipEntry vip;
    bool conntrack_hit = false;
    uint32_t hash = 0, ring_pos = 0; // the Maglev lookup (also done on a hit, for reference)
    std::optional<BackendEntry> backend;  // what the flow's packets get; none: no backend
    std::optional<BackendEntry> maglev;   // what a new connection (TCP SYN) on it would get
};

class LbMaps {
public:
    explicit LbMaps(LbMapFds fds);

    template <typename Skel>
    static LbMaps from_skeleton(const Skel& s) { return LbMaps(lb_map_fds(s)); }

    std::vector<VipEntry> vips() const;  // sorted by id
    std::optional<VipEntry> find_vip(const VipSpec& v) const;
    std::vector<BackendEntry> backends(uint32_t vip_id) const;  // sorted by slot

    VipEntry add_vip(const VipSpec& v, const VipOptions& o);
    void del_vip(const VipSpec& v);
    BackendEntry add_backend(const VipSpec& v, const BackendSpec& b);
    void set_weight(const VipSpec& v, const IpAddr& backend, uint32_t weight);
    void del_backend(const VipSpec& v, const IpAddr& backend);
    // Makes `want` the VIP's backends with one table swap: a backend kept (same address)
    // keeps its slot, counters and connections; MAC and weight are updated in place.
    void set_backends(const VipSpec& v, const std::vector<BackendSpec>& want);

    // An upgrade's: into LB maps just recreated in a new layout (no program runs on them
    // yet), `vips` with the ids they had and `slots` (backend slots, free ones too) as they
    // were, incarnations kept, so connection-table entries and the counters by VIP id and
    // backend slot stay theirs; each VIP's Maglev table is built again from its backends.
    void restore(const std::vector<VipEntry>& vips, const std::vector<BackendEntry>& slots);

    // Summed over CPUs, with the counts pending in the flow cache (lb/fcache_pending.h;
    // each call reads the whole cache, 512 KiB per CPU: a listing takes all_counters()).
    xdpctl_lb_ctr vip_counters(uint32_t id) const;
    xdpctl_lb_ctr backend_counters(uint32_t slot) const;
    xdpctl_lb_stats stats() const;
    // Every VIP's (by id) and backend's (by slot) counters and the stats, as above, the cache
    // read once.
    struct AllCounters {
        std::vector<xdpctl_lb_ctr> vip, backend;
        xdpctl_lb_stats stats{};
    };
    AllCounters all_counters() const;

    // The VIP's Maglev table as installed (slots), for tests and trace.
    std::vector<uint32_t> ring(uint32_t vip_id) const;

    // Which backend the flow gets, read from the live maps, changing nothing.
    TraceResult trace(const FlowSpec& f) const;
    // Deletes the connection-table entries no backend answers to any more (deleted VIPs and
    // backends); returns how many. The datapath ignores them anyway (gen check): this keeps
    // them from taking room and from showing in `lb trace`. After every change that frees
    // a backend slot.
    size_t sweep_conntrack();
    // Voids every flow-cache copy of a connection-table entry (abi: struct
    // xdpctl_lb_fcache_slot): after a write of the table from userspace that the datapath
    // must see, other than the sweep's (whose entries no packet would count anyway), and
    // after a backend is freed or its MAC changes (a copy's hit reads neither the backend's
    // record nor its VIP, it sends to the MAC it holds).
    void conntrack_changed();

    const LbMapFds& fds() const { return fds_; }

    // ---- health checks (lb_health_maps.cpp) ----
    // A VIP's check (backend none) or one backend's; none when not set.
    std::optional<CheckSpec> check(const VipSpec& v, const std::optional<IpAddr>& backend) const;
    // Sets (or with `c` none removes) it; the VIP and backend must exist. Writer only.
    void set_check(const VipSpec& v, const std::optional<IpAddr>& backend, const std::optional<CheckSpec>& c);
    // Removes the checks of VIPs and backends that are gone; after every change that
    // deletes one.
    void prune_checks();
    // Takes the backend out of rotation (its table share goes to the others; its
    // connections stay) or brings it back with its configured weight: one table swap.
    // False when the backend is not there (any more) or already in that state.
    bool set_down(const VipSpec& v, const IpAddr& backend, bool down);
    // xdpd's results for the backend; none when it has none for this incarnation.
    std::optional<LbHealthRec> health(const BackendEntry& b) const;
    void write_health(const BackendEntry& b, const LbHealthRec& h);

private:
    VipEntry require_vip(const VipSpec& v) const;
    std::vector<BackendEntry> all_backends() const;
    // The backend slots not to place a backend in: used, or named by pending counts.
    std::vector<bool> slots_taken() const;
    // Builds the VIP's table from these backends and swaps it in (the publish point).
    void install_ring(const xdpctl_lb_vip& vip, const std::vector<BackendEntry>& bes);
    // A new backend of VIP `vip_id` in a free slot, counters zeroed, written (it is not
    // reachable until a table names it).
    BackendEntry place_backend(uint32_t slot, const BackendSpec& b, uint32_t vip_id);
    void write_backend(uint32_t slot, const xdpctl_lb_backend& rec);
    // The incarnation (xdpctl_lb_backend.gen) slot `slot` holds, used or not.
    uint32_t slot_gen(uint32_t slot) const;
    // Marks the slot free, keeping its incarnation.
    void free_backend(uint32_t slot);
    void write_vip_slot(uint32_t id, const xdpctl_lb_vip_slot& s);
    void update_ctl();
    void zero_counters(int fd, uint32_t idx);
    // The flow cache's pending counts (lb/fcache_pending.h).
    FcachePending pending() const;

    LbMapFds fds_;
};

}  // namespace xdpctl::lb
