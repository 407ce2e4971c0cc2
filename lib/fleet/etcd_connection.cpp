#include "fleet/etcd_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <limits>
#include <optional>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>

namespace xdpctl::fleet {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

class EtcdTlsContext {
public:
    ssl::context ctx{ssl::context::tls_client};
};

std::shared_ptr<EtcdTlsContext> make_tls_context(const EtcdTls& tls)
{
    auto c = std::make_shared<EtcdTlsContext>();
    auto fail = [](const std::string& what, const std::string& file, const error_code& ec) {
        throw EtcdError(EtcdError::Kind::Tls, fmt::format("{} {}: {}", what, file, ec.message()));
    };
    error_code ec;
    c->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    // The member's certificate is always verified: against the CA file, else the system's.
    c->ctx.set_verify_mode(ssl::verify_peer);
    if (tls.cacert.empty())
        c->ctx.set_default_verify_paths(ec);
    else
        c->ctx.load_verify_file(tls.cacert, ec);
    if (ec)
        fail("cannot read the CA certificate", tls.cacert.empty() ? "(system default)" : tls.cacert, ec);
    if (tls.cert.empty() != tls.key.empty())
        throw EtcdError(EtcdError::Kind::Tls, "a client certificate needs its key, and a key its certificate: "
                                              "give both or neither");
    if (!tls.cert.empty()) {
        c->ctx.use_certificate_chain_file(tls.cert, ec);
        if (ec)
            fail("cannot read the client certificate", tls.cert, ec);
        c->ctx.use_private_key_file(tls.key, ssl::context::pem, ec);
        if (ec)
            fail("cannot read the client key", tls.key, ec);
        if (SSL_CTX_check_private_key(c->ctx.native_handle()) != 1)
            throw EtcdError(EtcdError::Kind::Tls,
                            fmt::format("the client key {} does not belong to the certificate {}", tls.key, tls.cert));
    }
    return c;
}

struct EtcdConnection::Impl {
    asio::io_context ioc;
    EtcdEndpoint ep;
    std::shared_ptr<EtcdTlsContext> tls;
    std::chrono::milliseconds timeout;
    std::optional<tcp::socket> plain;
    std::optional<ssl::stream<tcp::socket>> secure;
    beast::flat_buffer buf;
    bool broken = false;

    tcp::socket& sock() { return secure ? secure->next_layer() : *plain; }

    enum class Ended { done, timed_out, stopped };
    // Runs the one queued operation until its handler ran, or until `deadline` passes or
    // `stop` is set: then cancels it and waits for its handler. `stop` is looked at every 200 ms.
    Ended run(const bool& done, std::optional<Clock::time_point> deadline, const std::atomic<bool>* stop,
              const std::function<void()>& cancel)
    {
        ioc.restart();
        while (!done) {
            const auto now = Clock::now();
            const bool stopping = stop && stop->load();
            if (stopping || (deadline && now >= *deadline)) {
                cancel();
                ioc.restart();
                ioc.run();
                broken = true;
                return stopping ? Ended::stopped : Ended::timed_out;
            }
            auto step = std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(200));
            if (deadline)
                step = std::min(step, *deadline - now);
            if (ioc.stopped())
                ioc.restart();
            ioc.run_for(step);
        }
        return Ended::done;
    }

    void cancel_io()
    {
        error_code ignored;
        sock().cancel(ignored);
    }

    [[noreturn]] void timed_out(const char* doing)
    {
        broken = true;
        throw EtcdError(EtcdError::Kind::Unreachable,
                        fmt::format("{}: no answer within {} ms ({})", ep.url, timeout.count(), doing));
    }

    [[noreturn]] void io_failed(const error_code& ec, const char* doing)
    {
        broken = true;
        // An error of the TLS library: the handshake, a certificate, an alert. A member that
        // went away mid-stream (no close_notify) is the network's, not TLS's.
        if (ec.category() == asio::error::get_ssl_category()) {
            std::string hint;
            const std::string m = ec.message();
            if (m.find("certificate required") != std::string::npos || m.find("bad certificate") != std::string::npos ||
                m.find("unknown ca") != std::string::npos || m.find("handshake failure") != std::string::npos)
                hint = " (the member wants a client certificate it trusts: give the client certificate and key)";
            else if (m.find("wrong version number") != std::string::npos || m.find("packet length too long") != std::string::npos)
                hint = " (is it a plain http:// member?)";
            throw EtcdError(EtcdError::Kind::Tls, fmt::format("{}: TLS error while {}: {}{}", ep.url, doing, m, hint));
        }
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated)
            throw EtcdError(EtcdError::Kind::Unreachable, fmt::format("{}: the member closed the connection while {}", ep.url, doing));
        if (ec.category() == error_code(http::error::bad_version).category())
            throw EtcdError(EtcdError::Kind::Protocol, fmt::format("{}: not an HTTP answer while {}: {}", ep.url, doing, ec.message()));
        throw EtcdError(EtcdError::Kind::Unreachable, fmt::format("{}: {} failed: {}", ep.url, doing, ec.message()));
    }

    void connect(Clock::time_point deadline)
    {
        tcp::resolver resolver(ioc);
        tcp::resolver::results_type results;
        error_code ec;
        bool done = false;
        resolver.async_resolve(ep.host, std::to_string(ep.port), [&](const error_code& e, tcp::resolver::results_type r) {
            ec = e;
            results = std::move(r);
            done = true;
        });
        if (run(done, deadline, nullptr, [&] { resolver.cancel(); }) != Ended::done)
            timed_out("resolving the host name");
        if (ec) {
            broken = true;
            throw EtcdError(EtcdError::Kind::Unreachable, fmt::format("{}: cannot resolve {}: {}", ep.url, ep.host, ec.message()));
        }
        if (ep.tls)
            secure.emplace(ioc, tls->ctx);
        else
            plain.emplace(ioc);
        done = false;
        asio::async_connect(sock(), results, [&](const error_code& e, const tcp::endpoint&) {
            ec = e;
            done = true;
        });
        if (run(done, deadline, nullptr, [&] { cancel_io(); }) != Ended::done)
            timed_out("connecting");
        if (ec)
            io_failed(ec, "connecting");
        // A watch is quiet for long: keepalive finds a member that vanished (~11 s) where no
        // FIN or RST came.
        error_code ignored;
        sock().set_option(tcp::no_delay(true), ignored);
        sock().set_option(asio::socket_base::keep_alive(true), ignored);
        const int idle = 5, intvl = 2, cnt = 3;
        setsockopt(sock().native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(sock().native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(sock().native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        if (!ep.tls)
            return;
        SSL* ssl_handle = secure->native_handle();
        // OpenSSL's own name check: its verify result then says what did not match.
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
        error_code not_ip;
        asio::ip::make_address(ep.host, not_ip);
        if (!not_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(param, ep.host.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl_handle, ep.host.c_str());
            X509_VERIFY_PARAM_set1_host(param, ep.host.c_str(), ep.host.size());
        }
        done = false;
        secure->async_handshake(ssl::stream_base::client, [&](const error_code& e) {
            ec = e;
            done = true;
        });
        if (run(done, deadline, nullptr, [&] { cancel_io(); }) != Ended::done)
            timed_out("the TLS handshake");
        if (ec) {
            const long verify = SSL_get_verify_result(ssl_handle);
            if (verify != X509_V_OK) {
                broken = true;
                throw EtcdError(EtcdError::Kind::Tls, fmt::format("{}: the member's certificate is not trusted: {}", ep.url,
                                                                  X509_verify_cert_error_string(verify)));
            }
            io_failed(ec, "the TLS handshake");
        }
    }

    template <typename Op>
    Ended io(Op&& op, std::optional<Clock::time_point> deadline, const std::atomic<bool>* stop, error_code& ec)
    {
        bool done = false;
        auto handler = [&](const error_code& e, std::size_t) {
            ec = e;
            done = true;
        };
        if (secure)
            op(*secure, handler);
        else
            op(*plain, handler);
        return run(done, deadline, stop, [&] { cancel_io(); });
    }

    void send(const std::string& target, const std::string& json, Clock::time_point deadline,
              const std::vector<std::pair<std::string, std::string>>& headers = {})
    {
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, ep.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", ep.host, ep.port)
                                                                         : fmt::format("{}:{}", ep.host, ep.port));
        req.set(http::field::content_type, "application/json");
        for (const auto& [k, v] : headers)
            req.set(k, v);
        req.body() = json;
        req.prepare_payload();
        error_code ec;
        if (io([&](auto& s, auto h) { http::async_write(s, req, h); }, deadline, nullptr, ec) != Ended::done)
            timed_out("sending a request");
        if (ec)
            io_failed(ec, "sending a request");
    }
};

EtcdConnection::EtcdConnection(const EtcdEndpoint& ep, std::shared_ptr<EtcdTlsContext> tls, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>())
{
    impl_->ep = ep;
    impl_->tls = std::move(tls);
    impl_->timeout = timeout;
    if (ep.tls && !impl_->tls)
        throw EtcdError(EtcdError::Kind::Tls, fmt::format("{}: https without a TLS context", ep.url));
    impl_->connect(Clock::now() + timeout);
}

EtcdConnection::~EtcdConnection() = default;

bool EtcdConnection::usable() const
{
    return !impl_->broken;
}

EtcdHttpResponse EtcdConnection::post(const std::string& target, const std::string& json)
{
    Impl& d = *impl_;
    const auto deadline = Clock::now() + d.timeout;
    d.send(target, json, deadline);
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t(256) << 20);
    error_code ec;
    if (d.io([&](auto& s, auto h) { http::async_read(s, d.buf, parser, h); }, deadline, nullptr, ec) != Impl::Ended::done)
        d.timed_out("waiting for the answer");
    if (ec)
        d.io_failed(ec, "reading the answer");
    if (!parser.get().keep_alive())
        d.broken = true;
    return {parser.get().result_int(), std::move(parser.get().body())};
}

unsigned EtcdConnection::post_stream(const std::string& target, const std::string& json,
                                     const std::function<bool(const std::string&)>& on_data,
                                     const std::atomic<bool>& stop, std::string& error_body)
{
    Impl& d = *impl_;
    const auto deadline = Clock::now() + d.timeout;
    // etcd cancels the watch when its member has no leader, rather than keep it open with
    // nothing coming (grpc-gateway passes Grpc-Metadata-* on as gRPC metadata).
    d.send(target, json, deadline, {{"Grpc-Metadata-hasleader", "true"}});
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    error_code ec;
    Impl::Ended e = d.io([&](auto& s, auto h) { http::async_read_header(s, d.buf, parser, h); }, deadline, &stop, ec);
    if (e == Impl::Ended::stopped)
        return 200;
    if (e == Impl::Ended::timed_out)
        d.timed_out("waiting for the answer");
    if (ec)
        d.io_failed(ec, "reading the answer");
    if (parser.get().result_int() != 200) {
        if (d.io([&](auto& s, auto h) { http::async_read(s, d.buf, parser, h); }, deadline, &stop, ec) != Impl::Ended::done)
            d.timed_out("reading the answer");
        if (ec)
            d.io_failed(ec, "reading the answer");
        error_body = std::move(parser.get().body());
        d.broken = true;
        return parser.get().result_int();
    }
    d.broken = true;  // a stream is not followed by another request
    for (;;) {
        if (parser.is_done())
            throw EtcdError(EtcdError::Kind::Unreachable, fmt::format("{}: the member ended the stream", d.ep.url));
        e = d.io([&](auto& s, auto h) { http::async_read_some(s, d.buf, parser, h); }, std::nullopt, &stop, ec);
        if (e == Impl::Ended::stopped)
            return 200;
        if (ec)
            d.io_failed(ec, "reading the stream");
        std::string data = std::move(parser.get().body());
        parser.get().body().clear();
        if (!data.empty() && !on_data(data))
            return 200;
    }
}

}  // namespace xdpctl::fleet
