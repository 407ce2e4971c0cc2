#include "service/listen_address.h"

#include <charconv>

#include "util/error.h"

namespace xdpctl::service {

boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& text)
{
    auto bad = [&](const char* why) -> boost::asio::ip::tcp::endpoint {
        fail_usage("listen address '{}': {} (expected ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469)",
                   text, why);
    };
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
        return bad("no port");
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos)
        return bad("an IPv6 address goes in brackets");
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
        return bad("the port is not a number 0-65535");
    boost::system::error_code aec;
    auto addr = boost::asio::ip::make_address(host, aec);
    if (aec)
        return bad("not an IP address");
    return {addr, static_cast<unsigned short>(port)};
}

}  // namespace xdpctl::service
