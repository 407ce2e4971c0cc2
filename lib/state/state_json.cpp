#include "state/state_json.h"

#include "util/error.h"
#include "attach/iface_ref.h"
#include "lb/lb_model.h"

namespace xdpctl::state {

using nlohmann::json;

json check_to_json(const std::optional<lb::CheckSpec>& c)
{
    if (!c)
        return nullptr;
    return {{"type", lb::format_check_type(*c)},
            {"port", c->port},
            {"interval_ms", c->interval.count()},
            {"timeout_ms", c->timeout.count()},
            {"rise", c->rise},
            {"fall", c->fall}};
}

std::optional<lb::CheckSpec> check_from_json(const json& j)
{
    if (j.is_null())
        return std::nullopt;
    lb::CheckSpec c = lb::parse_check_type(j.at("type").get<std::string>());
    c.port = j.at("port").get<uint16_t>();
    c.interval = std::chrono::milliseconds(j.at("interval_ms").get<uint32_t>());
    c.timeout = std::chrono::milliseconds(j.at("timeout_ms").get<uint32_t>());
    c.rise = j.at("rise").get<uint32_t>();
    c.fall = j.at("fall").get<uint32_t>();
    if (c.type != lb::CheckSpec::Type::none)
        lb::validate_check(c);
    return c;
}

nlohmann::json lb_to_json(const lb::LbConfig& c)
{
    json vips = json::array();
    for (const auto& v : c.vips) {
        json backends = json::array();
        for (const auto& b : v.backends)
        {
            json jb = {{"addr", lb::format_ip(b.addr)}, {"mac", lb::format_mac(b.mac)}, {"weight", b.weight}};
            if (b.check)  // absent: none (and in manifests written before health checks)
                jb["check"] = check_to_json(b.check);
            backends.push_back(std::move(jb));
        }
        json o = {{"vip", lb::format_vip(v.spec)},
                  {"mode", v.opts.mode},
                  {"flags", v.opts.flags},
                  {"ring_size", v.opts.ring_size},
                  {"backends", std::move(backends)}};
        if (v.opts.ipip_source)
            o["ipip_source"] = lb::format_ip(*v.opts.ipip_source);
        if (v.check)
            o["check"] = check_to_json(v.check);
        vips.push_back(std::move(o));
    }
    return vips;
}

lb::LbConfig lb_from_json(const nlohmann::json& j, const std::string& source)
{
    lb::LbConfig c;
    for (size_t i = 0; i < j.size(); i++) {
        const json& v = j.at(i);
        try {
            lb::VipConfig vc;
            vc.spec = lb::parse_vip(v.at("vip").get<std::string>());
            vc.opts.mode = v.at("mode").get<uint32_t>();
            vc.opts.flags = v.at("flags").get<uint32_t>();
            vc.opts.ring_size = v.at("ring_size").get<uint32_t>();
            if (v.contains("ipip_source"))
                vc.opts.ipip_source = lb::parse_ip(v.at("ipip_source").get<std::string>());
            vc.check = check_from_json(v.value("check", json()));
            for (const json& b : v.at("backends"))
                vc.backends.push_back({lb::parse_ip(b.at("addr").get<std::string>()),
                                       lb::parse_mac(b.at("mac").get<std::string>()),
                                       b.at("weight").get<uint32_t>(), check_from_json(b.value("check", json()))});
            c.vips.push_back(std::move(vc));
        } catch (const std::exception& e) {
            fail("{} is damaged: load-balancer VIP {}: {}", source, i + 1, e.what());
        }
    }
    return c;
}

namespace {
// "netns" and "interface", checked as the command line checks them.
IfaceRef iface_ref_from_json(const nlohmann::json& j)
{
    IfaceRef r{j.at("netns").get<std::string>(), j.at("interface").get<std::string>()};
    if (!r.netns.empty())
        validate_netns_name(r.netns);
    validate_ifname(r.ifname);
    return r;
}
}  // namespace

nlohmann::json iface_to_json(const IfaceRecord& r)
{
    return {{"netns", r.iface.netns},   {"interface", r.iface.ifname}, {"hooks", r.hooks},
            {"xdp_mode", r.xdp_mode},   {"tc_attach", r.tc_attach},    {"malformed", r.malformed}};
}

IfaceRecord iface_from_json(const nlohmann::json& j, const std::string& source)
{
    try {
        IfaceRecord r;
        r.iface = iface_ref_from_json(j);
        r.hooks = j.at("hooks").get<uint32_t>();
        r.xdp_mode = j.at("xdp_mode").get<uint32_t>();
        r.tc_attach = j.at("tc_attach").get<uint32_t>();
        r.malformed = j.at("malformed").get<uint32_t>();
        return r;
    } catch (const std::exception& e) {
        fail("{} is damaged: interface {}: {}", source, j.dump(), e.what());
    }
}

nlohmann::json decap_to_json(const DecapRecord& r)
{
    json addrs = json::array();
    for (const auto& a : r.addrs)
        addrs.push_back(lb::format_ip(a));
    return {{"netns", r.iface.netns}, {"interface", r.iface.ifname}, {"addrs", std::move(addrs)}};
}

DecapRecord decap_from_json(const nlohmann::json& j, const std::string& source)
{
    try {
        DecapRecord r;
        r.iface = iface_ref_from_json(j);
        for (const auto& a : j.at("addrs"))
            r.addrs.push_back(lb::parse_ip(a.get<std::string>()));
        return r;
    } catch (const std::exception& e) {
        fail("{} is damaged: decapsulator {}: {}", source, j.dump(), e.what());
    }
}

}  // namespace xdpctl::state
