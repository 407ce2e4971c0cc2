// Fleets (issue 15), the client side: the etcd client against a real 3-member cluster with
// TLS client certificates (tests/etcd_cluster.h), and `xdpctl fleet push|status`.
#include <gtest/gtest.h>

#include "etcd_cluster.h"

namespace xdpctl::test {
namespace {

TEST(EtcdCluster, StartsWithLeaderAndServes)
{
    EtcdCluster c;
    EXPECT_GE(c.leader(), 0);
    c.etcdctl({"put", "k", "v"});
    EXPECT_EQ(c.etcdctl({"get", "--print-value-only", "k"}), "v\n");
}

}  // namespace
}  // namespace xdpctl::test
