#include "service/fleet_config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/error.h"

namespace xdpctl::service {

void parse_etcd_urls(FleetConfig& c, const std::string& text)
{
    c.etcd.clear();
    size_t from = 0;
    while (from <= text.size()) {
        size_t comma = text.find(',', from);
        if (comma == std::string::npos)
            comma = text.size();
        const std::string url = text.substr(from, comma - from);
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            fail_usage("etcd URL '{}': expected http://HOST:PORT or https://HOST:PORT", url);
        c.etcd.push_back(url);
        from = comma + 1;
    }
}

bool parse_fleet_key(FleetConfig& c, const std::string& key, const std::string& value,
                     const std::string& where)
{
    try {
        if (key == "etcd")
            parse_etcd_urls(c, value);
        else if (key == "fleet")
            c.fleet = value;
        else if (key == "host")
            c.host = value;
        else if (key == "etcd-cacert")
            c.cacert = value;
        else if (key == "etcd-cert")
            c.cert = value;
        else if (key == "etcd-key")
            c.key = value;
        else
            return false;
    } catch (const Error& e) {
        fail_usage("{}: {}", where, e.what());
    }
    return true;
}

FleetConfig merge_fleet_config(const FleetConfig& file, const FleetConfig& cli)
{
    FleetConfig c = file;
    if (!cli.etcd.empty())
        c.etcd = cli.etcd;
    for (auto [to, from] : {std::pair{&c.fleet, &cli.fleet}, {&c.host, &cli.host},
                            {&c.cacert, &cli.cacert}, {&c.cert, &cli.cert}, {&c.key, &cli.key}})
        if (!from->empty())
            *to = *from;
    return c;
}

void check_fleet_config(const FleetConfig& c)
{
    if (c.fleet.empty()) {
        if (!c.etcd.empty())
            fail_usage("--etcd without --fleet: name the fleet whose policy xdpd follows");
        return;
    }
    if (c.etcd.empty())
        fail_usage("--fleet {} without --etcd: name at least one etcd member URL", c.fleet);
    const bool tls = !c.cacert.empty() || !c.cert.empty() || !c.key.empty();
    const bool plain = std::any_of(c.etcd.begin(), c.etcd.end(),
                                   [](const std::string& u) { return u.rfind("http://", 0) == 0; });
    if (tls && plain)
        fail_usage("--etcd-cacert/--etcd-cert/--etcd-key need https:// etcd URLs");
    if (c.cert.empty() != c.key.empty())
        fail_usage("--etcd-cert and --etcd-key go together (a client certificate and its key)");
}

void check_fleet_files(const FleetConfig& c)
{
    for (auto [opt, file] : {std::pair{"--etcd-cacert", &c.cacert}, {"--etcd-cert", &c.cert}, {"--etcd-key", &c.key}})
        if (!file->empty() && access(file->c_str(), R_OK) != 0)
            fail_usage("{} {}: {}", opt, *file, errno_str(errno));
}

}  // namespace xdpctl::service
