#include "fleet/etcd_client.h"

namespace xdpctl::fleet {

EtcdError::EtcdError(Kind k, const std::string& what, int64_t compact_revision)
    : std::runtime_error(what), kind_(k), compact_revision_(compact_revision)
{
}

struct EtcdClient::Impl {
    EtcdConfig cfg;
    std::string endpoint;
};

EtcdClient::EtcdClient(EtcdConfig cfg) : impl_(std::make_unique<Impl>(Impl{std::move(cfg), ""})) {}
EtcdClient::~EtcdClient() = default;
EtcdClient::EtcdClient(EtcdClient&&) noexcept = default;
EtcdClient& EtcdClient::operator=(EtcdClient&&) noexcept = default;

namespace {
[[noreturn]] void not_yet()
{
    throw EtcdError(EtcdError::Kind::Unreachable, "etcd client: not implemented yet");
}
}  // namespace

int64_t EtcdClient::put(const std::string&, const std::string&) { not_yet(); }
EtcdRange EtcdClient::get(const std::string&) { not_yet(); }
EtcdRange EtcdClient::get_prefix(const std::string&) { not_yet(); }
const std::string& EtcdClient::endpoint() const { return impl_->endpoint; }
void EtcdClient::watch(const std::string&, int64_t, const std::function<bool(const EtcdWatchEvent&)>&,
                       const std::atomic<bool>&)
{
    not_yet();
}
int64_t EtcdClient::del(const std::string&) { not_yet(); }
void EtcdClient::compact(int64_t) { not_yet(); }

}  // namespace xdpctl::fleet
