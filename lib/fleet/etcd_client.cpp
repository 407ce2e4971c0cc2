#include "fleet/etcd_client.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "fleet/etcd_connection.h"

namespace xdpctl::fleet {

using json = nlohmann::json;
using Kind = EtcdError::Kind;

namespace {

// An etcd error of the member rather than the request (no leader, timed out waiting for one):
// the next member may serve it.
class MemberUnavailable : public EtcdError {
public:
    explicit MemberUnavailable(const std::string& what) : EtcdError(Kind::Http, what) {}
};

// Throws the Http error etcd's JSON error `err` describes (MemberUnavailable when it is the
// member's).
[[noreturn]] void throw_etcd_error(const nlohmann::json& err, const std::string& what);

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(const std::string& in)
{
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
        out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
    }
    if (i + 1 == in.size()) {
        const uint32_t v = uint8_t(in[i]) << 16;
        out += {kB64[v >> 18], kB64[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        const uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8;
        out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
    }
    return out;
}

std::string b64_decode(const std::string& in)
{
    std::string out;
    out.reserve(in.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=')
            break;
        const char* p = c ? std::strchr(kB64, c) : nullptr;
        if (!p)
            throw EtcdError(Kind::Protocol, fmt::format("etcd sent invalid base64 (character {:#04x})", uint8_t(c)));
        acc = acc << 6 | uint32_t(p - kB64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

// proto3 JSON: int64 as a string, a field at its zero value left out.
int64_t i64(const json& j, const char* name)
{
    auto it = j.find(name);
    if (it == j.end() || it->is_null())
        return 0;
    if (it->is_number_integer())
        return it->get<int64_t>();
    if (it->is_string()) {
        const std::string s = it->get<std::string>();
        size_t used = 0;
        try {
            int64_t v = std::stoll(s, &used);
            if (used == s.size())
                return v;
        } catch (const std::exception&) {
        }
    }
    throw EtcdError(Kind::Protocol, fmt::format("etcd sent \"{}\": {}, not an integer", name, it->dump()));
}

std::string str(const json& j, const char* name)
{
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

EtcdKv kv_of(const json& j)
{
    EtcdKv kv;
    kv.key = b64_decode(str(j, "key"));
    kv.value = b64_decode(str(j, "value"));
    kv.create_revision = i64(j, "create_revision");
    kv.mod_revision = i64(j, "mod_revision");
    kv.version = i64(j, "version");
    return kv;
}

int64_t header_revision(const json& j)
{
    auto h = j.find("header");
    return h == j.end() ? 0 : i64(*h, "revision");
}

// The end of the range of keys starting with `prefix` (etcd's clientv3.GetPrefixRangeEnd).
std::string prefix_end(const std::string& prefix)
{
    std::string end = prefix;
    while (!end.empty()) {
        if (uint8_t(end.back()) < 0xff) {
            end.back() = char(uint8_t(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

json parse_json(const std::string& text, const std::string& url)
{
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw EtcdError(Kind::Protocol, fmt::format("{}: the answer is not a JSON object: {:.200}", url, text));
    return j;
}

// gRPC codes a member answers with when it, not the request, is the problem (no leader,
// timed out waiting for one, stopping): the next member may serve the request.
bool member_unavailable(const json& err)
{
    const int64_t code = err.contains("grpc_code") ? i64(err, "grpc_code") : i64(err, "code");
    const std::string m = str(err, "message") + str(err, "error");
    return code == 14 /* Unavailable */ || code == 4 /* DeadlineExceeded */ || m.find("no leader") != std::string::npos ||
           m.find("leader changed") != std::string::npos || m.find("stopped") != std::string::npos;
}

void throw_etcd_error(const json& body, const std::string& what)
{
    // {"error": "...", "message": "...", "code": N} for a request; a stream's, and a stream
    // refused before it began: {"error": {"grpc_code": N, "message": "...", ...}}.
    auto nested = body.find("error");
    const json& err = nested != body.end() && nested->is_object() ? *nested : body;
    std::string msg = str(err, "error").empty() ? str(err, "message") : str(err, "error");
    const std::string text = fmt::format("{}: {}", what, msg.empty() ? err.dump() : msg);
    if (member_unavailable(err))
        throw MemberUnavailable(text);
    throw EtcdError(Kind::Http, text);
}

// Splits a stream of JSON objects (one a line from etcd's gateway, but a line may come in
// pieces) into whole objects.
class JsonObjectSplitter {
public:
    template <typename F>
    void feed(const std::string& data, F&& on_object)
    {
        for (char c : data) {
            if (depth_ == 0 && c != '{')
                continue;  // the newline between objects
            cur_ += c;
            if (in_string_) {
                if (escape_)
                    escape_ = false;
                else if (c == '\\')
                    escape_ = true;
                else if (c == '"')
                    in_string_ = false;
                continue;
            }
            if (c == '"')
                in_string_ = true;
            else if (c == '{')
                depth_++;
            else if (c == '}' && --depth_ == 0) {
                std::string obj = std::move(cur_);
                cur_.clear();
                on_object(obj);
            }
        }
    }

private:
    std::string cur_;
    int depth_ = 0;
    bool in_string_ = false, escape_ = false;
};

}  // namespace

struct EtcdClient::Impl {
    EtcdConfig cfg;
    std::vector<EtcdEndpoint> endpoints;
    std::shared_ptr<EtcdTlsContext> tls;
    size_t current = 0;  // the member to try first: the last that answered
    std::unique_ptr<EtcdConnection> conn;  // to endpoints[current], kept between requests
    std::string last_url;

    // Calls `attempt` with a connection to each member in turn, from the current one, until
    // one does not throw Unreachable (or a member-side Http error); throws the last error
    // with every member's, when none answered.
    template <typename F>
    auto with_member(F&& attempt) -> decltype(attempt(std::declval<EtcdConnection&>()))
    {
        std::vector<std::pair<std::string, std::string>> errors;  // member, what it said
        bool tls_error = false;
        const size_t first = current;
        for (size_t n = 0; n < endpoints.size(); n++) {
            const size_t i = (first + n) % endpoints.size();
            try {
                if (!conn || !conn->usable() || i != current) {
                    conn.reset();
                    current = i;
                    conn = std::make_unique<EtcdConnection>(endpoints[i], tls, cfg.timeout);
                }
                last_url = endpoints[i].url;
                return attempt(*conn);
            } catch (const EtcdError& e) {
                conn.reset();
                const bool next = e.kind() == Kind::Unreachable || e.kind() == Kind::Tls ||
                                  dynamic_cast<const MemberUnavailable*>(&e);
                if (!next)
                    throw;
                tls_error |= e.kind() == Kind::Tls;
                std::string what = e.what();
                const std::string url = endpoints[i].url + ": ";
                if (what.rfind(url, 0) == 0)
                    what = what.substr(url.size());
                errors.emplace_back(endpoints[i].url, what);
            }
        }
        throw EtcdError(tls_error ? Kind::Tls : Kind::Unreachable, members_failed(errors));
    }

    // "URL: why" for one member; the members that said the same thing named together.
    static std::string members_failed(const std::vector<std::pair<std::string, std::string>>& errors)
    {
        std::vector<std::pair<std::string, std::string>> grouped;  // members, what they said
        for (const auto& [url, what] : errors) {
            auto same = std::find_if(grouped.begin(), grouped.end(), [&](const auto& g) { return g.second == what; });
            if (same == grouped.end())
                grouped.emplace_back(url, what);
            else
                same->first += ", " + url;
        }
        std::string s = errors.size() > 1 ? "no etcd member answered: " : "";
        for (size_t i = 0; i < grouped.size(); i++)
            s += fmt::format("{}{}: {}", i ? "; " : "", grouped[i].first, grouped[i].second);
        return s;
    }

    // A unary call: POST the JSON, the answer's JSON. An etcd error is Http.
    json call(const std::string& target, const json& body)
    {
        return with_member([&](EtcdConnection& c) {
            EtcdHttpResponse r = c.post(target, body.dump());
            if (r.status != 200) {
                json err = json::parse(r.body, nullptr, false);
                if (err.is_discarded() || !err.is_object())
                    throw EtcdError(Kind::Http, fmt::format("{}: HTTP {} for {}: {:.200}", c_url(), r.status, target, r.body));
                throw_etcd_error(err, fmt::format("{}: HTTP {}", c_url(), r.status));
            }
            return parse_json(r.body, c_url());
        });
    }

    const std::string& c_url() const { return last_url; }
};

EtcdClient::EtcdClient(EtcdConfig cfg) : impl_(std::make_unique<Impl>())
{
    Impl& d = *impl_;
    if (cfg.endpoints.empty())
        throw std::invalid_argument("no etcd endpoint given");
    bool any_tls = false;
    for (const auto& url : cfg.endpoints) {
        d.endpoints.push_back(parse_etcd_endpoint(url));
        any_tls |= d.endpoints.back().tls;
    }
    if (any_tls)
        d.tls = make_tls_context(cfg.tls);
    else if (!cfg.tls.cacert.empty() || !cfg.tls.cert.empty() || !cfg.tls.key.empty())
        throw std::invalid_argument("TLS files given for http:// members: use https:// URLs");
    d.cfg = std::move(cfg);
}

EtcdClient::~EtcdClient() = default;
EtcdClient::EtcdClient(EtcdClient&&) noexcept = default;
EtcdClient& EtcdClient::operator=(EtcdClient&&) noexcept = default;

const std::string& EtcdClient::endpoint() const
{
    return impl_->last_url;
}

int64_t EtcdClient::put(const std::string& key, const std::string& value)
{
    return header_revision(impl_->call("/v3/kv/put", {{"key", b64_encode(key)}, {"value", b64_encode(value)}}));
}

namespace {
EtcdRange range_of(const json& j)
{
    EtcdRange r;
    r.header_revision = header_revision(j);
    if (auto kvs = j.find("kvs"); kvs != j.end() && kvs->is_array())
        for (const auto& kv : *kvs)
            r.kvs.push_back(kv_of(kv));
    return r;
}
}  // namespace

EtcdRange EtcdClient::get(const std::string& key)
{
    return range_of(impl_->call("/v3/kv/range", {{"key", b64_encode(key)}}));
}

EtcdRange EtcdClient::get_prefix(const std::string& prefix)
{
    return range_of(impl_->call("/v3/kv/range", {{"key", b64_encode(prefix)}, {"range_end", b64_encode(prefix_end(prefix))}}));
}

int64_t EtcdClient::del(const std::string& key)
{
    return header_revision(impl_->call("/v3/kv/deleterange", {{"key", b64_encode(key)}}));
}

void EtcdClient::compact(int64_t revision)
{
    impl_->call("/v3/kv/compaction", {{"revision", revision}, {"physical", true}});
}

void EtcdClient::watch(const std::string& key, int64_t start_revision,
                       const std::function<bool(const EtcdWatchEvent&)>& on_event, const std::atomic<bool>& stop)
{
    Impl& d = *impl_;
    int64_t next = start_revision;  // where a watch on another member resumes
    bool done = false;
    for (;;) {
        // One member's stream at a time; when it breaks, the next member from `next` on.
        // The stream takes the kept connection (a client does one thing at a time); the next
        // request after it connects again.
        d.with_member([&](EtcdConnection& c) {
            const json create = {{"create_request", {{"key", b64_encode(key)}, {"start_revision", next}}}};
            JsonObjectSplitter split;
            std::string error_body;
            const unsigned status = c.post_stream("/v3/watch", create.dump(), [&](const std::string& data) {
                bool more = true;
                split.feed(data, [&](const std::string& text) {
                    if (!more)
                        return;
                    json j = parse_json(text, d.last_url);
                    if (j.contains("error"))
                        throw_etcd_error(j, d.last_url + ": watch");
                    const json& res = j.contains("result") ? j["result"] : j;
                    if (const int64_t compacted = i64(res, "compact_revision"); compacted > 0)
                        throw EtcdError(Kind::Compacted,
                                        fmt::format("{}: revision {} of {} was compacted (history kept from {})",
                                                    d.last_url, next, key, compacted),
                                        compacted);
                    if (res.value("canceled", false)) {
                        const std::string reason = str(res, "cancel_reason");
                        const std::string what = fmt::format("{}: etcd canceled the watch: {}", d.last_url,
                                                             reason.empty() ? "no reason given" : reason);
                        // A member losing its leader cancels its watches: the next one serves it.
                        if (reason.empty() || reason.find("leader") != std::string::npos)
                            throw MemberUnavailable(what);
                        throw EtcdError(Kind::Http, what);
                    }
                    if (auto evs = res.find("events"); evs != res.end() && evs->is_array())
                        for (const auto& ev : *evs) {
                            EtcdWatchEvent e{str(ev, "type") == "DELETE" ? EtcdWatchEvent::Type::Delete
                                                                         : EtcdWatchEvent::Type::Put,
                                             kv_of(ev.value("kv", json::object()))};
                            next = std::max(next, e.kv.mod_revision + 1);
                            if (more && !on_event(e)) {
                                more = false;
                                done = true;
                            }
                        }
                });
                return more;
            }, stop, error_body);
            if (status != 200) {
                json err = json::parse(error_body, nullptr, false);
                if (err.is_discarded() || !err.is_object())
                    throw EtcdError(Kind::Http, fmt::format("{}: watch: HTTP {}: {:.200}", d.last_url, status, error_body));
                throw_etcd_error(err, fmt::format("{}: watch: HTTP {}", d.last_url, status));
            }
            done = true;  // on_event said stop, or `stop` was set
            return 0;
        });
        if (done || stop.load())
            return;
    }
}

}  // namespace xdpctl::fleet
