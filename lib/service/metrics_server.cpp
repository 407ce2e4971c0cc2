#include "service/metrics_server.h"

#include <map>
#include <optional>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "util/error.h"
#include "service/log.h"

namespace xdpctl::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct MetricsServer::State {
    asio::io_context& io;
    Handler handler;
    HttpOptions options;
    std::map<std::string, Handler, std::less<>> pages;  // besides /metrics
    std::optional<tcp::acceptor> acceptor;
    uint64_t listener = 0;  // which listen() the pending accept belongs to
    size_t connections = 0;
};

namespace {

constexpr size_t kBodyLimit = 64 * 1024;  // /metrics takes no body; anything more is refused

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(tcp::socket socket, std::shared_ptr<MetricsServer::State> state)
        : stream_(std::move(socket)), state_(std::move(state)), options_(state_->options)
    {
        state_->connections++;
    }
    ~Connection() { state_->connections--; }

    void start() { read(); }

private:
    void read()
    {
        parser_.emplace();
        parser_->header_limit(uint32_t(options_.header_limit));
        parser_->body_limit(kBodyLimit);
        stream_.expires_after(options_.timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec)
    {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
            // The client went, or sent nothing whole in time: nobody to answer.
            close();
            return;
        }
        if (ec == http::error::header_limit)
            return reply_error(http::status::request_header_fields_too_large, "request header too large\n");
        if (ec == http::error::body_limit)
            return reply_error(http::status::payload_too_large, "request body too large\n");
        if (ec)
            return reply_error(http::status::bad_request, "bad request: " + ec.message() + "\n");

        const auto& req = parser_->get();
        keep_alive_ = req.keep_alive();
        const std::string_view target(req.target().data(), req.target().size());
        const std::string_view path = target.substr(0, target.find('?'));
        const auto page_it = state_->pages.find(path);
        if (path != "/metrics" && page_it == state_->pages.end())
            return reply(http::status::not_found, "text/plain; charset=utf-8",
                         "not found: xdpd serves /metrics\n", false);
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            return reply(http::status::method_not_allowed, "text/plain; charset=utf-8",
                         "method not allowed: GET or HEAD\n", false);
        MetricsServer::Page page;
        try {
            page = page_it != state_->pages.end() ? page_it->second() : state_->handler();
        } catch (const std::exception& e) {
            log(LogLevel::error, "scrape failed: {}", e.what());
            return reply(http::status::internal_server_error, "text/plain; charset=utf-8",
                         std::string("scrape failed: ") + e.what() + "\n", false);
        }
        reply(http::status::ok, page.content_type, std::move(page.body), req.method() == http::verb::head);
    }

    void reply_error(http::status status, std::string text)
    {
        keep_alive_ = false;  // the rest of the stream cannot be trusted to be a request
        reply(status, "text/plain; charset=utf-8", std::move(text), false);
    }

    void reply(http::status status, const std::string& type, std::string body, bool head_only)
    {
        res_.emplace(status, 11);
        res_->set(http::field::server, "xdpd");
        res_->set(http::field::content_type, type);
        if (status == http::status::method_not_allowed)
            res_->set(http::field::allow, "GET, HEAD");
        res_->keep_alive(keep_alive_);
        if (head_only) {
            res_->content_length(body.size());  // what GET would send, without the body
        } else {
            res_->body() = std::move(body);
            res_->prepare_payload();
        }
        stream_.expires_after(options_.timeout);
        http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec || !self->keep_alive_)
                return self->close();
            self->read();
        });
    }

    void close()
    {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    std::shared_ptr<MetricsServer::State> state_;
    HttpOptions options_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> res_;
    bool keep_alive_ = false;
};

void accept(const std::shared_ptr<MetricsServer::State>& state)
{
    if (!state->acceptor)
        return;
    state->acceptor->async_accept(
        [state, listener = state->listener](beast::error_code ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted || !state->acceptor || state->listener != listener)
                return;  // closed, or replaced by another listen()
            if (ec) {
                log(LogLevel::warning, "accept: {}", ec.message());
            } else if (state->connections >= state->options.max_connections) {
                beast::error_code ignored;
                s.close(ignored);
            } else {
                std::make_shared<Connection>(std::move(s), state)->start();
            }
            accept(state);
        });
}

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, Handler handler, HttpOptions options)
    : state_(std::make_shared<State>(State{io, std::move(handler), options, {}, std::nullopt, 0, 0}))
{
}

MetricsServer::~MetricsServer()
{
    close();
}

void MetricsServer::listen(const tcp::endpoint& where)
{
    tcp::acceptor a(state_->io);
    beast::error_code ec;
    a.open(where.protocol(), ec);
    if (!ec)
        a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        a.bind(where, ec);
    if (!ec)
        a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        fail("cannot listen on {}:{}: {}", where.address().to_string(), where.port(), ec.message());
    close();
    state_->acceptor.emplace(std::move(a));
    state_->listener++;
    accept(state_);
}

void MetricsServer::set_options(const HttpOptions& options)
{
    state_->options = options;
}

void MetricsServer::set_page(const std::string& path, Handler handler)
{
    if (handler)
        state_->pages[path] = std::move(handler);
    else
        state_->pages.erase(path);
}

void MetricsServer::close()
{
    if (state_->acceptor) {
        beast::error_code ignored;
        state_->acceptor->close(ignored);
        state_->acceptor.reset();
    }
}

tcp::endpoint MetricsServer::local_endpoint() const
{
    return state_->acceptor ? state_->acceptor->local_endpoint() : tcp::endpoint{};
}

}  // namespace xdpctl::service
