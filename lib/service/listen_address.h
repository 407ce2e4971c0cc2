// --metrics-listen ADDR:PORT: an IPv4 address or a bracketed IPv6 one, and a port.
#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace xdpctl::service {

// "127.0.0.1:9469", "[::1]:9469", "0.0.0.0:9469". A usage error naming the text otherwise.
boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& text);

}  // namespace xdpctl::service
