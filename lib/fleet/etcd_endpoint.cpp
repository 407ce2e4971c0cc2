#include "fleet/etcd_endpoint.h"

#include <stdexcept>

#include <fmt/core.h>

namespace xdpctl::fleet {

EtcdError::EtcdError(Kind k, const std::string& what, int64_t compact_revision)
    : std::runtime_error(what), kind_(k), compact_revision_(compact_revision)
{
}

EtcdEndpoint parse_etcd_endpoint(const std::string& url)
{
    auto bad = [&](const std::string& why) {
        return std::invalid_argument(fmt::format("etcd URL '{}': {}", url, why));
    };
    EtcdEndpoint ep;
    ep.url = url;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        ep.tls = true;
        rest = url.substr(8);
    } else {
        throw bad("expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    if (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    if (rest.find('/') != std::string::npos)
        throw bad("a member's URL has no path");
    std::string port;
    if (!rest.empty() && rest[0] == '[') {
        const size_t end = rest.find(']');
        if (end == std::string::npos)
            throw bad("no ']' after the IPv6 address");
        ep.host = rest.substr(1, end - 1);
        rest = rest.substr(end + 1);
        if (!rest.empty() && rest[0] != ':')
            throw bad("expected ':PORT' after ']'");
        port = rest.empty() ? "" : rest.substr(1);
        if (rest == ":")
            throw bad("no port after ':'");
    } else {
        const size_t colon = rest.find(':');
        if (colon != std::string::npos && rest.find(':', colon + 1) != std::string::npos)
            throw bad("an IPv6 address goes in brackets: [ADDR]:PORT");
        ep.host = rest.substr(0, colon);
        if (colon != std::string::npos) {
            port = rest.substr(colon + 1);
            if (port.empty())
                throw bad("no port after ':'");
        }
    }
    if (ep.host.empty())
        throw bad("no host");
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(port) == 0 || std::stoul(port) > 65535)
            throw bad(fmt::format("port '{}': expected 1-65535", port));
        ep.port = uint16_t(std::stoul(port));
    }
    return ep;
}

}  // namespace xdpctl::fleet
