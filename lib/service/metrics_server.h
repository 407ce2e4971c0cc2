// xdpd's HTTP endpoint (Boost.Beast on the daemon's one io_context): GET or HEAD /metrics
// answers with what the handler returns; other paths 404, other methods 405, a request
// header over header_limit 431, a malformed request 400. Every connection is its own chain
// of async operations with a deadline (timeout) on each read and write, so a slow or idle
// client is dropped at its deadline and never holds up another scrape.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace xdpctl::service {

struct HttpOptions {
    std::chrono::seconds timeout{10};
    size_t header_limit = 8 * 1024;
    size_t max_connections = 256;  // more are accepted and closed at once
};

class MetricsServer {
public:
    // The body of a 200 answer to /metrics, with its content type.
    struct Page {
        std::string content_type;
        std::string body;
    };
    using Handler = std::function<Page()>;

    MetricsServer(boost::asio::io_context& io, Handler handler, HttpOptions options);
    ~MetricsServer();

    // Binds and starts accepting (replacing an earlier listener). Throws an Error naming the
    // address when it cannot bind.
    void listen(const boost::asio::ip::tcp::endpoint& where);
    // New connections use these from now on.
    void set_options(const HttpOptions& options);
    // Another path served (GET or HEAD) as `handler` says; none: that path is 404 again.
    void set_page(const std::string& path, Handler handler);
    void close();
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    struct State;  // shared with the connections

private:
    std::shared_ptr<State> state_;
};

}  // namespace xdpctl::service
