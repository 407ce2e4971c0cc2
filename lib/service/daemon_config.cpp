#include "service/daemon_config.h"

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "service/listen_address.h"

namespace xdpctl::service {

namespace {
std::string trim(const std::string& s)
{
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos)
        return "";
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}
}  // namespace

DaemonConfig parse_daemon_config(const std::string& text, const std::string& path)
{
    DaemonConfig c;
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); n++) {
        if (auto hash = line.find('#'); hash != std::string::npos)
            line.resize(hash);
        line = trim(line);
        if (line.empty())
            continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            fail_usage("{}:{}: expected 'key = value', got '{}'", path, n, line);
        const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        if (value.empty())
            fail_usage("{}:{}: {} has no value", path, n, key);
        if (key == "metrics-listen") {
            try {
                parse_listen_address(value);
            } catch (const Error& e) {
                fail_usage("{}:{}: {}", path, n, e.what());
            }
            c.metrics_listen = value;
        } else if (key == "http-timeout") {
            unsigned s = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), s);
            if (ec != std::errc() || end != value.data() + value.size() || s < 1 || s > 300)
                fail_usage("{}:{}: http-timeout '{}': expected whole seconds, 1-300", path, n, value);
            c.http_timeout = std::chrono::seconds(s);
        } else if (key == "keep-events") {
            size_t k = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), k);
            if (ec != std::errc() || end != value.data() + value.size() || k > 100000)
                fail_usage("{}:{}: keep-events '{}': expected a number of events, 0-100000", path, n, value);
            c.keep_events = k;
        } else if (!parse_fleet_key(c.fleet, key, value, fmt::format("{}:{}", path, n))) {
            fail_usage("{}:{}: unknown key '{}' (known: metrics-listen, http-timeout, keep-events, etcd, "
                       "fleet, host, etcd-cacert, etcd-cert, etcd-key)", path, n, key);
        }
    }
    return c;
}

DaemonConfig read_daemon_config(const std::string& path, bool must_exist)
{
    std::ifstream f(path);
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return DaemonConfig{};
        fail_usage("cannot read the configuration file {}: {}", path, errno_str(errno));
    }
    std::stringstream text;
    text << f.rdbuf();
    return parse_daemon_config(text.str(), path);
}

}  // namespace xdpctl::service
