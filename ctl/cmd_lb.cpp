// `xdpctl lb vip|backend|list|trace`: the load balancer's VIPs and backends (issue 6). Each
// change is one atomic step for every interface (lib/lb/lb_maps.h); bad input names the
// token and changes nothing (exit 2).
#include <netinet/in.h>

#include <cstring>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "lb/decap.h"
#include "state/state_json.h"
#include "state/state_record.h"
#include "lb/lb_config.h"
#include "lb/lb_store.h"
#include "lb/neigh.h"
#include "util/writer_lock.h"
#include "attach/netns.h"

namespace xdpctl::ctl {

using namespace xdpctl::lb;
using state::check_to_json;

namespace {

const char* mode_name(uint32_t m)
{
    return m == XDPCTL_LB_MODE_IPIP ? "ipip" : "dsr";
}

nlohmann::json ctr_json(const xdpctl_lb_ctr& c)
{
    return {{"packets", c.packets}, {"bytes", c.bytes}, {"new_flows", c.new_flows}};
}

const char* health_state(const BackendEntry& b, const std::optional<CheckSpec>& check)
{
    return b.down() ? "down" : check ? "up" : "unchecked";
}

// A backend's health as `lb list --json` gives it (docs/load-balancing.md, "Health checks").
nlohmann::json health_json(const LbMaps& m, const BackendEntry& b, const std::optional<CheckSpec>& check)
{
    nlohmann::json j = {{"state", health_state(b, check)}, {"check", check_to_json(check)}};
    if (const auto h = m.health(b)) {
        j["consecutive_passes"] = h->ok_run;
        j["consecutive_failures"] = h->fail_run;
        j["checks"] = h->checks;
        j["failures"] = h->failures;
        j["changes"] = h->changes;
        j["last_change"] =
            h->last_change_unix_ns ? nlohmann::json(double(h->last_change_unix_ns) / 1e9) : nlohmann::json();
        j["last_error"] = h->last_error;
    }
    return j;
}

// "; health down (3 failures in a row: connect: Connection refused)" for the text listing.
std::string health_text(const LbMaps& m, const BackendEntry& b, const std::optional<CheckSpec>& check)
{
    if (!check && !b.down())
        return "";
    std::string s = fmt::format("; health {}", health_state(b, check));
    if (check)
        s += " (" + format_check_type(*check);
    else
        s += " (no check";
    if (const auto h = m.health(b)) {
        if (h->fail_run)
            s += fmt::format(", {} failure(s) in a row: {}", h->fail_run, h->last_error);
        else
            s += fmt::format(", {} pass(es) in a row", h->ok_run);
    }
    return s + ")";
}

// `lb check set|del VIP [BACKEND]`: what the check is for (no backend: the VIP's default).
std::pair<VipSpec, std::optional<IpAddr>> check_target(const std::string& vip, const std::string& backend)
{
    std::optional<IpAddr> b;
    if (!backend.empty())
        b = parse_ip(backend);
    return {parse_vip(vip), b};
}

std::string check_target_name(const VipSpec& v, const std::optional<IpAddr>& b)
{
    return (b ? "backend " + format_ip(*b) + " of VIP " : "VIP ") + format_vip(v);
}

struct VipAddOpts {
    std::string vip, mode = "dsr", ipip_source, hash = "5tuple";
    uint32_t table_size = XDPCTL_LB_RING_DEFAULT;
    CheckOptions check;
};

// The health-check options (lib/lb/health_check.h) of `lb vip add`, `lb backend add`,
// `lb check set` and the file lines: one definition.
void add_check_options(CLI::App* c, CheckOptions& o, const char* whose)
{
    c->add_option("--check", o.check, fmt::format("Health check {}: tcp (connect), http:/PATH[:STATUS] "
                                                  "(GET, status default 200){}",
                                                  whose, std::string(whose) == "of the VIP's backends"
                                                             ? ""
                                                             : ", or none (not checked)"));
    c->add_option("--check-port", o.port, "Port the check connects to (default: the VIP's)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--check-interval", o.interval, "Time between checks, e.g. 500ms, 2s (default 2s)");
    c->add_option("--check-timeout", o.timeout, "Time a check may take, at most the interval (default 1s)");
    c->add_option("--rise", o.rise, "Passes in a row that bring a down backend back (default 2)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--fall", o.fall, "Failures in a row that take a backend out: weight 0 (default 3)")
        ->check(CLI::NonNegativeNumber);
}

// The options of `lb vip add` and of an apply file's `lb vip` line: one definition.
void add_vip_options(CLI::App* c, VipAddOpts& o)
{
    c->add_option("vip", o.vip, "The VIP")->required();
    c->add_option("--mode", o.mode, "dsr (rewrite MACs; backends hold the VIP on lo) or ipip "
                                    "(IP-in-IP to the backend)")
        ->check(CLI::IsMember({"dsr", "ipip"}));
    c->add_option("--ipip-source", o.ipip_source, "Outer source address for ipip (default: the VIP)");
    c->add_option("--hash", o.hash, "5tuple, or 3tuple (addresses and protocol: for UDP flows "
                                    "whose ports change)")
        ->check(CLI::IsMember({"5tuple", "3tuple"}));
    c->add_option("--table-size", o.table_size, "Maglev table size, a prime (default 65537)");
    add_check_options(c, o.check, "of the VIP's backends");
}

VipOptions vip_options(const VipAddOpts& o)
{
    VipOptions vo;
    vo.mode = o.mode == "ipip" ? XDPCTL_LB_MODE_IPIP : XDPCTL_LB_MODE_DSR;
    vo.flags = o.hash == "3tuple" ? XDPCTL_LB_F_HASH_3TUPLE : 0;
    vo.ring_size = o.table_size;
    if (!o.ipip_source.empty()) {
        if (vo.mode != XDPCTL_LB_MODE_IPIP)
            fail_usage("--ipip-source {}: only for --mode ipip", o.ipip_source);
        vo.ipip_source = parse_ip(o.ipip_source);
    }
    return vo;
}

void vip_add(const VipAddOpts& o)
{
    VipSpec v = parse_vip(o.vip);
    VipOptions vo = vip_options(o);
    // Checked with the rest before anything changes (LbConfig::add_vip does it all).
    LbConfig one;
    one.add_vip(v, vo, check_from_options(o.check));
    LbStore store;
    VipEntry e = store.maps().add_vip(v, vo);
    if (one.vips[0].check)
        store.maps().set_check(v, std::nullopt, one.vips[0].check);
    fmt::print("added VIP {} ({}, table size {}{})\n", format_vip(e.spec), mode_name(e.rec.mode),
               e.rec.ring_size,
               one.vips[0].check ? ", health check " + format_check_type(*one.vips[0].check) : "");
}

struct BackendOpts {
    std::string vip, backend, mac;
    uint32_t weight = 1;
    CheckOptions check;
};

// The options of `lb backend add` and of an apply file's `lb backend` line.
void add_backend_options(CLI::App* c, BackendOpts& o)
{
    c->add_option("vip", o.vip, "The VIP")->required();
    c->add_option("backend", o.backend, "The backend's address")->required();
    c->add_option("--weight", o.weight, "Share of new flows (0-1000; 0: no new flows)");
    c->add_option("--mac", o.mac, "The backend's (or its next hop's) MAC; default: from the "
                                  "neighbour table");
    add_check_options(c, o.check, "of this backend (over the VIP's)");
}

// The backend as given; without --mac, its MAC from the -n namespace's neighbour table.
BackendSpec backend_spec(const GlobalOptions& g, const BackendOpts& o, bool lookup_mac = true)
{
    BackendSpec b;
    b.addr = parse_ip(o.backend);
    b.weight = o.weight;
    b.check = check_from_options(o.check);
    check_fits_vip(parse_vip(o.vip), b.check, true);
    if (!o.mac.empty()) {
        b.mac = parse_mac(o.mac);
        return b;
    }
    if (!lookup_mac) {
        // A stand-in (locally administered, unicast) that passes the checks a MAC meets: the
        // host that applies the file looks the real one up.
        b.mac = parse_mac("02:00:00:00:00:01");
        return b;
    }
    std::optional<MacAddr> m;
    {
        NetnsScope ns(g.netns);
        m = neighbour_mac(b.addr);
    }
    if (!m)
        fail_usage("backend {}: no MAC address in the neighbour table{}; give it with --mac "
                   "(or ping the backend first)",
                   o.backend, g.netns.empty() ? "" : " of namespace " + g.netns);
    b.mac = *m;
    return b;
}

void backend_add(const GlobalOptions& g, const BackendOpts& o)
{
    VipSpec v = parse_vip(o.vip);
    LbStore store;
    if (!store.maps().find_vip(v))  // before asking the neighbour table about the backend
        fail_usage("no VIP {} ('xdpctl lb list' shows them)", format_vip(v));
    BackendSpec b = backend_spec(g, o);
    BackendEntry e = store.maps().add_backend(v, b);
    if (b.check)
        store.maps().set_check(v, b.addr, b.check);
    fmt::print("added backend {} (MAC {}, weight {}) to VIP {}\n", format_ip(e.addr()),
               format_mac(e.mac()), e.rec.weight, format_vip(v));
}

void list(const GlobalOptions& g, bool json)
{
    LbStore store(Access::read);
    LbMaps& m = store.maps();
    const auto vips = m.vips();
    const LbMaps::AllCounters all = m.all_counters();
    const xdpctl_lb_stats& st = all.stats;
    if (json || g.pretty) {
        nlohmann::json jv = nlohmann::json::array();
        for (const auto& v : vips) {
            nlohmann::json jb = nlohmann::json::array();
            const auto vcheck = m.check(v.spec, std::nullopt);
            for (const auto& b : m.backends(v.rec.id)) {
                const auto own = m.check(v.spec, b.addr());
                jb.push_back({{"address", format_ip(b.addr())},
                              {"mac", format_mac(b.mac())},
                              {"weight", b.rec.weight},
                              {"effective_weight", b.effective_weight()},
                              {"own_check", own ? check_to_json(own) : nlohmann::json()},
                              {"health", health_json(m, b, effective_check(vcheck, own))},
                              {"counters", ctr_json(all.backend.at(b.slot))}});
            }
            nlohmann::json j = {{"vip", format_vip(v.spec)},
                                {"mode", mode_name(v.rec.mode)},
                                {"hash", v.rec.flags & XDPCTL_LB_F_HASH_3TUPLE ? "3tuple" : "5tuple"},
                                {"table_size", v.rec.ring_size},
                                {"check", check_to_json(vcheck)},
                                {"counters", ctr_json(all.vip.at(v.rec.id))},
                                {"backends", jb}};
            if (v.rec.mode == XDPCTL_LB_MODE_IPIP) {
                IpAddr src;
                src.family = v.spec.addr.family;
                std::memcpy(src.w, v.rec.ipip_src, sizeof(src.w));
                j["ipip_source"] = format_ip(src);
            }
            jv.push_back(j);
        }
        nlohmann::json c;
        for (int i = 0; i < XDPCTL_LB_CNT_MAX; i++)
            c[lb_counter_name(i)] = st.cnt[i];
        print_json(g, {{"vips", jv}, {"counters", c}});
        return;
    }
    if (vips.empty())
        fmt::print("no VIPs\n");
    for (const auto& v : vips) {
        const auto& c = all.vip.at(v.rec.id);
        const auto vcheck = m.check(v.spec, std::nullopt);
        fmt::print("VIP {} mode {} hash {} table {}: {} packets, {} bytes, {} new flows{}\n",
                   format_vip(v.spec), mode_name(v.rec.mode),
                   v.rec.flags & XDPCTL_LB_F_HASH_3TUPLE ? "3tuple" : "5tuple", v.rec.ring_size,
                   c.packets, c.bytes, c.new_flows,
                   vcheck ? "; check" + format_check_options(*vcheck).substr(std::string(" --check").size()) : "");
        for (const auto& b : m.backends(v.rec.id)) {
            const auto& bc = all.backend.at(b.slot);
            const auto check = effective_check(vcheck, m.check(v.spec, b.addr()));
            fmt::print("  backend {:<28} mac {} weight {:>4}{}: {} packets, {} bytes, {} new flows{}\n",
                       format_ip(b.addr()), format_mac(b.mac()), b.rec.weight,
                       b.down() ? " (down: no new flows)" : b.rec.weight ? "" : " (draining)", bc.packets,
                       bc.bytes, bc.new_flows, health_text(m, b, check));
        }
    }
    fmt::print("conntrack: {} hits, {} misses\n", st.cnt[XDPCTL_LB_CNT_CT_HIT], st.cnt[XDPCTL_LB_CNT_CT_MISS]);
    for (int i = XDPCTL_LB_CNT_CT_MISS + 1; i < XDPCTL_LB_CNT_MAX; i++)
        fmt::print("{}: {}\n", lb_counter_name(i), st.cnt[i]);
}

void trace(const GlobalOptions& g, const std::string& text, bool json)
{
    FlowSpec f = parse_flow(text);
    LbStore store(Access::read);
    TraceResult r = store.maps().trace(f);
    if (json || g.pretty) {
        nlohmann::json j = {{"flow", text}, {"vip", nullptr}, {"backend", nullptr}};
        if (r.vip_found) {
            j["vip"] = format_vip(r.vip.spec);
            j["conntrack_hit"] = r.conntrack_hit;
            j["hash"] = r.hash;
            j["table_position"] = r.ring_pos;
            if (r.backend)
                j["backend"] = format_ip(r.backend->addr());
            j["new_connection_backend"] = r.maglev ? nlohmann::json(format_ip(r.maglev->addr())) : nlohmann::json();
        }
        print_json(g, j);
        return;
    }
    if (!r.vip_found) {
        fmt::print("no VIP: the packet is not load balanced (passed)\n");
        return;
    }
    fmt::print("VIP {} ({})\n", format_vip(r.vip.spec), mode_name(r.vip.rec.mode));
    if (r.conntrack_hit)
        fmt::print("connection table: hit\n");
    else
        fmt::print("connection table: miss; Maglev hash {:#010x}, table position {}\n", r.hash, r.ring_pos);
    if (r.backend)
        fmt::print("backend {} (MAC {})\n", format_ip(r.backend->addr()), format_mac(r.backend->mac()));
    else
        fmt::print("no backend of weight > 0: the packet is passed\n");
    if (r.conntrack_hit)
        fmt::print("a new connection (TCP SYN) on this 5-tuple would get {} (Maglev position {})\n",
                   r.maglev ? format_ip(r.maglev->addr()) : "no backend", r.ring_pos);
}

}  // namespace

void parse_lb_statement(const GlobalOptions& g, const std::vector<std::string>& args, LbConfig& config,
                        bool lookup_macs)
{
    if (!args.empty() && args[0] != "vip" && args[0] != "backend")
        fail_usage("unknown statement 'lb {}' (expected 'lb vip' or 'lb backend')", args[0]);
    // The `lb vip add` / `lb backend add` options, parsed by CLI11 as on the command line.
    CLI::App p{"lb"};
    p.set_help_flag();
    p.require_subcommand(1, 1);
    VipAddOpts va;
    BackendOpts bo;
    auto* vip = p.add_subcommand("vip", "A VIP");
    add_vip_options(vip, va);
    auto* be = p.add_subcommand("backend", "A backend of a VIP above");
    add_backend_options(be, bo);
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // what CLI11's parse takes
    try {
        p.parse(reversed);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        if (what.empty() || e.get_name() == "RequiredError")
            what = fmt::format("expected 'lb vip ADDR:PORT/PROTO [OPTIONS]' or 'lb backend VIP "
                               "ADDR [OPTIONS]'{}", what.empty() ? "" : " (" + what + ")");
        fail_usage("{}", what);
    }
    if (p.got_subcommand(vip)) {
        VipSpec v = parse_vip(va.vip);
        config.add_vip(v, vip_options(va), check_from_options(va.check));
    } else {
        VipSpec v = parse_vip(bo.vip);
        if (!config.has_vip(v))  // before asking the neighbour table about the backend
            fail_usage("no VIP {} before this line (an 'lb vip' line must come first)", format_vip(v));
        config.add_backend(v, backend_spec(g, bo, lookup_macs));
    }
}

void add_lb_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto* lb = app.add_subcommand("lb", "L4 load balancing: VIPs, backends (weighted Maglev, "
                                        "connection table, dsr or ipip forwarding)");
    lb->require_subcommand(1);

    auto* vip = lb->add_subcommand("vip", "Add or delete a VIP");
    vip->require_subcommand(1);
    auto va = std::make_shared<VipAddOpts>();
    auto* add = vip->add_subcommand("add", "Add a VIP: ADDR:PORT/tcp|udp ([ADDR]:PORT/... for "
                                           "IPv6; port 0: every port)");
    add_vip_options(add, *va);
    add->callback([&run, va] {
        run = [va] {
            vip_add(*va);
            return 0;
        };
    });
    auto vd = std::make_shared<std::string>();
    auto* del = vip->add_subcommand("del", "Delete a VIP and its backends");
    del->add_option("vip", *vd, "The VIP")->required();
    del->callback([&run, vd] {
        run = [vd] {
            VipSpec v = parse_vip(*vd);
            LbStore store;
            store.maps().del_vip(v);
            fmt::print("deleted VIP {}\n", format_vip(v));
            return 0;
        };
    });

    auto* be = lb->add_subcommand("backend", "Add, reweight or delete a VIP's backends");
    be->require_subcommand(1);
    auto ba = std::make_shared<BackendOpts>();
    auto* badd = be->add_subcommand("add", "Add a backend to a VIP");
    add_backend_options(badd, *ba);
    badd->callback([&g, &run, ba] {
        run = [&g, ba] {
            backend_add(g, *ba);
            return 0;
        };
    });
    auto bs = std::make_shared<BackendOpts>();
    auto* bset = be->add_subcommand("set", "Change a backend's weight (0 drains: no new flows, "
                                           "established ones stay)");
    bset->add_option("vip", bs->vip, "The VIP")->required();
    bset->add_option("backend", bs->backend, "The backend's address")->required();
    bset->add_option("--weight", bs->weight, "The new weight (0-1000)")->required();
    bset->callback([&run, bs] {
        run = [bs] {
            VipSpec v = parse_vip(bs->vip);
            IpAddr a = parse_ip(bs->backend);
            LbStore store;
            store.maps().set_weight(v, a, bs->weight);
            fmt::print("backend {} of VIP {}: weight {}\n", format_ip(a), format_vip(v), bs->weight);
            return 0;
        };
    });
    auto bd = std::make_shared<BackendOpts>();
    auto* bdel = be->add_subcommand("del", "Remove a backend (its connections are scheduled again)");
    bdel->add_option("vip", bd->vip, "The VIP")->required();
    bdel->add_option("backend", bd->backend, "The backend's address")->required();
    bdel->callback([&run, bd] {
        run = [bd] {
            VipSpec v = parse_vip(bd->vip);
            IpAddr a = parse_ip(bd->backend);
            LbStore store;
            store.maps().del_backend(v, a);
            fmt::print("deleted backend {} of VIP {}\n", format_ip(a), format_vip(v));
            return 0;
        };
    });

    auto* ck = lb->add_subcommand("check", "Set or remove the health check of a VIP (its backends' "
                                           "default) or of one backend; xdpd runs them");
    ck->require_subcommand(1);
    struct CheckCmdOpts {
        std::string vip, backend;
        CheckOptions check;
    };
    auto cs = std::make_shared<CheckCmdOpts>();
    auto* cset = ck->add_subcommand("set", "Set the check (replacing the one there)");
    cset->add_option("vip", cs->vip, "The VIP")->required();
    cset->add_option("backend", cs->backend, "One of its backends (default: the VIP's check)");
    add_check_options(cset, cs->check, "(for a backend, over the VIP's)");
    cset->callback([&run, cs] {
        run = [cs] {
            const auto [v, b] = check_target(cs->vip, cs->backend);
            const auto c = check_from_options(cs->check);
            if (!c)
                fail_usage("lb check set: --check is required");
            LbStore store;
            store.maps().set_check(v, b, c);
            fmt::print("health check of {}: {}\n", check_target_name(v, b), format_check_options(*c).substr(1));
            return 0;
        };
    });
    auto cd = std::make_shared<CheckCmdOpts>();
    auto* cdel = ck->add_subcommand("del", "Remove the check (a backend's: the VIP's applies again)");
    cdel->add_option("vip", cd->vip, "The VIP")->required();
    cdel->add_option("backend", cd->backend, "One of its backends (default: the VIP's check)");
    cdel->callback([&run, cd] {
        run = [cd] {
            const auto [v, b] = check_target(cd->vip, cd->backend);
            LbStore store;
            store.maps().set_check(v, b, std::nullopt);
            fmt::print("health check of {} removed\n", check_target_name(v, b));
            return 0;
        };
    });

    auto lj = std::make_shared<bool>(false);
    auto* ls = lb->add_subcommand("list", "VIPs and backends with their counters");
    ls->add_flag("-j,--json", *lj, "JSON output");
    ls->callback([&g, &run, lj] {
        run = [&g, lj] {
            list(g, *lj);
            return 0;
        };
    });

    auto* dc = lb->add_subcommand("decap", "The TC decapsulator for ipip backends (on the "
                                           "backend host's interface)");
    dc->require_subcommand(1);
    struct DecapOpts {
        std::string iface;
        std::vector<std::string> addrs;
    };
    auto da = std::make_shared<DecapOpts>();
    auto* dat = dc->add_subcommand("attach", "Strip IPIP/IP6IP6 headers addressed to ADDR... on "
                                             "IFACE's ingress (again: replaces the addresses)");
    dat->add_option("iface", da->iface, "Interface")->required();
    dat->add_option("addrs", da->addrs, "This host's addresses the load balancer sends to")->required();
    dat->callback([&g, &run, da] {
        run = [&g, da] {
            std::vector<IpAddr> addrs;
            for (const auto& a : da->addrs)
                addrs.push_back(parse_ip(a));
            IfaceRef iface = iface_arg(g, da->iface);
            WriterLock lock;
            bool fresh = decap_attach(iface, addrs);
            state::decap_attached(iface, addrs);
            fmt::print("decapsulator {} {} for {} address(es)\n", fresh ? "attached to" : "updated on",
                       iface.display(), addrs.size());
            return 0;
        };
    });
    auto dd = std::make_shared<std::string>();
    auto* ddt = dc->add_subcommand("detach", "Remove the decapsulator from IFACE");
    ddt->add_option("iface", *dd, "Interface")->required();
    ddt->callback([&g, &run, dd] {
        run = [&g, dd] {
            IfaceRef iface = iface_arg(g, *dd);
            WriterLock lock;
            decap_detach(iface);
            state::decap_detached(iface);
            fmt::print("decapsulator detached from {}\n", iface.display());
            return 0;
        };
    });

    struct TraceOpts {
        std::string flow;
        bool json = false;
    };
    auto to = std::make_shared<TraceOpts>();
    auto* tr = lb->add_subcommand("trace", "Which backend a flow gets, from the live maps "
                                           "(changes no counter): 'tcp SRC:PORT -> VIP:PORT'");
    tr->add_option("flow", to->flow, "The flow, one argument")->required();
    tr->add_flag("-j,--json", to->json, "JSON output");
    tr->callback([&g, &run, to] {
        run = [&g, to] {
            trace(g, to->flow, to->json);
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
