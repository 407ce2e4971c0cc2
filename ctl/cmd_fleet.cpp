// `xdpctl fleet push|status`: one policy for a fleet of hosts through etcd (docs/fleet.md).
// push checks a file as `apply` does, minus what only each host can say (its interfaces, its
// neighbours, its loaded programs), and puts it as the fleet's config; each host's xdpd
// applies it and reports back under the fleet's status keys, which `status` (and push
// --wait) read.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include <fmt/core.h>

#include "command.h"
#include "fleet/etcd_client.h"
#include "fleet/etcd_endpoint.h"
#include "fleet/fleet_keys.h"
#include "fleet/fleet_status.h"
#include "policy/policy_store.h"
#include "util/error.h"
#include "util/input_file.h"

namespace xdpctl::ctl {

using namespace std::chrono_literals;
using fleet::FleetStatus;

namespace {

struct EtcdOpts {
    std::string urls, fleet, cacert, cert, key;
};

void add_etcd_options(CLI::App* cmd, EtcdOpts& o)
{
    cmd->add_option("--etcd", o.urls, "etcd members, URL[,URL...] (http:// or https://; the next one when one does not answer)")
        ->required();
    cmd->add_option("--fleet", o.fleet, "The fleet's name (its keys are under /xdpctl/fleet/NAME/)")->required();
    cmd->add_option("--etcd-cacert", o.cacert, "CA certificate (PEM) that signed the etcd members' (default: the system's CAs)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--etcd-cert", o.cert, "Client certificate (PEM) for etcd's client-cert-auth")->check(CLI::ExistingFile);
    cmd->add_option("--etcd-key", o.key, "The client certificate's key (PEM)")->check(CLI::ExistingFile);
}

// The client configuration the options say, checked (usage errors); warns about plain HTTP.
fleet::EtcdConfig etcd_config(const EtcdOpts& o)
{
    fleet::validate_fleet_name(o.fleet);
    fleet::EtcdConfig cfg;
    std::vector<std::string> plain;
    bool any_tls = false;
    for (size_t at = 0;;) {
        const size_t comma = o.urls.find(',', at);
        std::string url = o.urls.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        try {
            const fleet::EtcdEndpoint ep = fleet::parse_etcd_endpoint(url);
            if (ep.tls)
                any_tls = true;
            else
                plain.push_back(url);
        } catch (const std::invalid_argument& e) {
            fail_usage("--etcd: {}", e.what());
        }
        cfg.endpoints.push_back(url);
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    if (o.cert.empty() != o.key.empty())
        fail_usage("--etcd-cert and --etcd-key go together: a client certificate needs its key");
    if (!any_tls && !(o.cacert.empty() && o.cert.empty()))
        fail_usage("--etcd-cacert/--etcd-cert/--etcd-key are for https:// members, and every --etcd URL is http://");
    std::string plain_urls;
    for (const auto& u : plain)
        plain_urls += (plain_urls.empty() ? "" : ", ") + u;
    if (!plain.empty())
        fmt::print(stderr,
                   "xdpctl: warning: etcd over plain HTTP ({}): anyone on the network can read the fleet's policy and "
                   "change the firewall of every host; use https:// with --etcd-cacert, --etcd-cert, --etcd-key\n",
                   plain_urls);
    cfg.tls = {o.cacert, o.cert, o.key};
    return cfg;
}

struct HostRow {
    std::string host;
    std::optional<FleetStatus> status;  // none: the key is not a status xdpd wrote
    std::string unreadable;             // why, then
};

// Every host's status key, by host id.
std::map<std::string, HostRow> read_hosts(fleet::EtcdClient& c, const std::string& fleet_name)
{
    std::map<std::string, HostRow> hosts;
    for (const auto& kv : c.get_prefix(fleet::status_prefix(fleet_name)).kvs) {
        const std::string host = fleet::host_of_status_key(fleet_name, kv.key);
        if (host.empty())
            continue;
        HostRow r{host, std::nullopt, ""};
        try {
            r.status = fleet::status_from_json_text(kv.value);
        } catch (const std::exception& e) {
            r.unreadable = fmt::format("unreadable status in {}: {}", kv.key, e.what());
        }
        hosts[host] = std::move(r);
    }
    return hosts;
}

double unix_now()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string age_text(double seconds)
{
    const int64_t s = std::max<int64_t>(0, std::llround(seconds));
    if (s < 120)
        return fmt::format("{}s", s);
    if (s < 2 * 3600)
        return fmt::format("{}m", s / 60);
    if (s < 48 * 3600)
        return fmt::format("{}h", s / 3600);
    return fmt::format("{}d", s / 86400);
}

std::string error_text(const HostRow& r)
{
    if (!r.status)
        return r.unreadable;
    if (r.status->error.empty())
        return "";
    return fmt::format("revision {} refused: {}", r.status->tried_revision, r.status->error);
}

// ---- push ----------------------------------------------------------------------------------

struct PushOpts {
    EtcdOpts etcd;
    std::string file;
    double wait_s = -1;  // < 0: no --wait
    bool json = false;
};

// Checks the file as `apply` does before it changes anything, but for the parts each host
// checks itself: its interfaces (--iif), its neighbour table (backends without --mac), the
// programs loaded there. Usage errors name the file (and its line and token).
void check_fleet_file(const GlobalOptions& g, const std::string& text, const std::string& file)
{
    ApplyFile f = parse_apply_text(g, text, file, false);
    check_new_rules({}, f.policy, file, false);
    try {
        policy::PolicyStore::check_portable(std::move(f.policy));
    } catch (const Error& e) {
        if (e.code() != ExitCode::usage)
            throw;
        fail_usage("{}: {}", file, e.what());
    }
}

enum class HostResult { applied, refused, waiting };

int push(const GlobalOptions& g, const PushOpts& o)
{
    fleet::EtcdConfig cfg = etcd_config(o.etcd);
    const std::string text = read_input_file(o.file, kRuleFile);
    check_fleet_file(g, text, o.file);

    fleet::EtcdClient c(cfg);
    // The hosts --wait waits for: those that reported before this revision.
    std::map<std::string, HostRow> before;
    if (o.wait_s >= 0)
        before = read_hosts(c, o.etcd.fleet);
    int64_t rev = 0;
    try {
        rev = c.put(fleet::config_key(o.etcd.fleet), text);
    } catch (const fleet::EtcdError& e) {
        const std::string what = e.what();
        if (e.kind() == fleet::EtcdError::Kind::Http &&
            (what.find("larger than max") != std::string::npos || what.find("too large") != std::string::npos))
            fail("{}: {} bytes, more than etcd takes in one request: its --max-request-bytes (1.5 MiB by "
                 "default) must be larger ({})",
                 o.file, text.size(), what);
        throw;
    }
    const bool json = o.json || g.pretty;
    if (o.wait_s < 0) {
        if (json)
            print_json(g, {{"fleet", o.etcd.fleet}, {"revision", rev}});
        else
            fmt::print("{}\n", rev);
        return 0;
    }
    if (!json) {
        fmt::print("{}\n", rev);
        std::fflush(stdout);
    }

    std::map<std::string, HostResult> result;
    for (const auto& [host, _] : before)
        result[host] = HostResult::waiting;
    std::map<std::string, HostRow> now = before;
    std::string etcd_error;  // the last, while waiting: a member may come back
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.wait_s);
    for (;;) {
        bool waiting = false;
        for (auto& [host, res] : result) {
            auto it = now.find(host);
            const FleetStatus* st = it != now.end() && it->second.status ? &*it->second.status : nullptr;
            if (st && st->applied_revision >= rev)
                res = HostResult::applied;
            else if (st && st->refused(rev))
                res = HostResult::refused;
            else
                res = HostResult::waiting;
            waiting |= res == HostResult::waiting;
        }
        if (!waiting || std::chrono::steady_clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(50ms);
        try {
            now = read_hosts(c, o.etcd.fleet);
            etcd_error.clear();
        } catch (const fleet::EtcdError& e) {
            etcd_error = e.what();
        }
    }

    int refused = 0, late = 0;
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& [host, res] : result) {
        const HostRow& row = now[host];
        const int64_t applied = row.status ? row.status->applied_revision : 0;
        std::string line;
        nlohmann::json j = {{"host", host}, {"applied_revision", applied}};
        if (res == HostResult::applied) {
            j["result"] = "applied";
            line = fmt::format("{}: applied (revision {})", host, applied);
        } else if (res == HostResult::refused) {
            refused++;
            j["result"] = "refused";
            j["error"] = row.status->error;
            line = fmt::format("{}: refused: {} (revision {} stays in force)", host, row.status->error, applied);
        } else {
            late++;
            j["result"] = "timeout";
            j["error"] = error_text(row);
            line = fmt::format("{}: not applied within {} s (revision {} in force{})", host, o.wait_s, applied,
                               error_text(row).empty() ? "" : "; " + error_text(row));
        }
        hosts.push_back(j);
        if (!json)
            fmt::print("{}\n", line);
    }
    if (json)
        print_json(g, {{"fleet", o.etcd.fleet}, {"revision", rev}, {"hosts", hosts}});
    std::fflush(stdout);  // the hosts before the error line that sums them up
    if (result.empty())
        fmt::print(stderr, "xdpctl: no host has reported for fleet {} yet: none to wait for\n", o.etcd.fleet);
    if (refused || late)
        fail("revision {}: {} of {} host(s) refused it, {} did not apply it within {} s{}", rev, refused,
             result.size(), late, o.wait_s, etcd_error.empty() ? "" : " (etcd: " + etcd_error + ")");
    return 0;
}

// ---- status --------------------------------------------------------------------------------

struct StatusOpts {
    EtcdOpts etcd;
    bool json = false;
};

int status(const GlobalOptions& g, const StatusOpts& o)
{
    fleet::EtcdClient c(etcd_config(o.etcd));
    const fleet::EtcdRange config = c.get(fleet::config_key(o.etcd.fleet));
    const int64_t config_rev = config.kvs.empty() ? 0 : config.kvs[0].mod_revision;
    const std::map<std::string, HostRow> hosts = read_hosts(c, o.etcd.fleet);
    const double t = unix_now();
    auto in_sync = [&](const HostRow& r) { return r.status && config_rev && r.status->applied_revision == config_rev; };

    if (o.json || g.pretty) {
        nlohmann::json jh = nlohmann::json::array();
        for (const auto& [host, r] : hosts) {
            nlohmann::json j = {{"host", host}, {"in_sync", in_sync(r)}};
            if (r.status) {
                j.update(fleet::to_json(*r.status));
                j["host"] = host;  // the key's, should the value say otherwise
                j["age_s"] = std::max(0.0, t - r.status->time);
            } else {
                j["error"] = r.unreadable;
            }
            jh.push_back(j);
        }
        print_json(g, {{"fleet", o.etcd.fleet}, {"config_key", fleet::config_key(o.etcd.fleet)},
                       {"config_revision", config_rev}, {"hosts", jh}});
        return 0;
    }
    const auto synced = std::count_if(hosts.begin(), hosts.end(), [&](const auto& h) { return in_sync(h.second); });
    if (config_rev)
        fmt::print("fleet {}: config revision {}, {} host(s), {} in sync\n", o.etcd.fleet, config_rev, hosts.size(),
                   synced);
    else
        fmt::print("fleet {}: no config pushed ({} absent), {} host(s)\n", o.etcd.fleet,
                   fleet::config_key(o.etcd.fleet), hosts.size());
    if (hosts.empty())
        return 0;
    size_t w = 4;
    for (const auto& [host, _] : hosts)
        w = std::max(w, host.size());
    // The host column as wide as the longest id (padded here: fmt's dynamic width trips gcc 12's
    // -Wstringop-overflow).
    auto pad = [w](const std::string& s) { return s + std::string(w - s.size(), ' '); };
    fmt::print("{}  {:>8}  {:<7}  {:>5}  {:<8}  {}\n", pad("HOST"), "APPLIED", "IN SYNC", "AGE", "VERSION", "ERROR");
    for (const auto& [host, r] : hosts) {
        if (!r.status) {
            fmt::print("{}  {:>8}  {:<7}  {:>5}  {:<8}  {}\n", pad(host), "-", "no", "-", "-", r.unreadable);
            continue;
        }
        const FleetStatus& s = *r.status;
        const std::string sync = in_sync(r) ? "yes" : !config_rev ? "-" : s.applied_revision < config_rev ? "behind" : "no";
        fmt::print("{}  {:>8}  {:<7}  {:>5}  {:<8}  {}\n", pad(host), s.applied_revision, sync, age_text(t - s.time),
                   s.version.empty() ? "-" : s.version, error_text(r));
    }
    return 0;
}

}  // namespace

void add_fleet_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto* fleet = app.add_subcommand("fleet", "One policy for many hosts through etcd: push a file, see which "
                                              "revision each host's xdpd applied (docs/fleet.md)");
    fleet->require_subcommand(1);

    auto po = std::make_shared<PushOpts>();
    auto* push_cmd = fleet->add_subcommand("push", "Check FILE as 'apply' does and put it as the fleet's config; "
                                                   "prints the new revision");
    add_etcd_options(push_cmd, po->etcd);
    push_cmd->add_option("file", po->file, "Policy file (the format 'xdpctl export' prints)")->required();
    push_cmd->add_option("--wait", po->wait_s,
                         "Then wait at most S seconds until every host that reported before applied or refused "
                         "it; exit 1 if one refused it or did not answer")
        ->check(CLI::Range(0.0, 3600.0))
        ->type_name("SECONDS");
    push_cmd->add_flag("-j,--json", po->json, "JSON output (keys in docs/cli.md)");
    push_cmd->callback([&g, &run, po] { run = [&g, po] { return push(g, *po); }; });

    auto so = std::make_shared<StatusOpts>();
    auto* status_cmd = fleet->add_subcommand("status", "Every host of the fleet: applied revision, in sync or not, "
                                                       "last error, age of its report");
    add_etcd_options(status_cmd, so->etcd);
    status_cmd->add_flag("-j,--json", so->json, "JSON output (keys in docs/cli.md)");
    status_cmd->callback([&g, &run, so] { run = [&g, so] { return status(g, *so); }; });
}

}  // namespace xdpctl::ctl
