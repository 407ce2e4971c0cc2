#include "stats/counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "util/error.h"

namespace xdpctl {

namespace {
constexpr std::array<std::string_view, XDPCTL_CNT_MAX> kNames = [] {
    std::array<std::string_view, XDPCTL_CNT_MAX> n{};
    n[XDPCTL_CNT_L3_IPV4] = "ipv4";
    n[XDPCTL_CNT_L3_IPV6] = "ipv6";
    n[XDPCTL_CNT_L3_ARP] = "arp";
    n[XDPCTL_CNT_L3_OTHER] = "other";
    n[XDPCTL_CNT_L4_TCP] = "tcp";
    n[XDPCTL_CNT_L4_UDP] = "udp";
    n[XDPCTL_CNT_L4_ICMP] = "icmp";
    n[XDPCTL_CNT_L4_ICMPV6] = "icmpv6";
    n[XDPCTL_CNT_L4_FRAGMENT] = "fragment";
    n[XDPCTL_CNT_L4_OTHER] = "other";
    n[XDPCTL_CNT_VERDICT_PASS] = "pass";
    n[XDPCTL_CNT_VERDICT_DROP] = "drop";
    n[XDPCTL_CNT_BAD_ETH_TRUNCATED] = "eth_truncated";
    n[XDPCTL_CNT_BAD_VLAN_TRUNCATED] = "vlan_truncated";
    n[XDPCTL_CNT_BAD_VLAN_TOO_MANY] = "vlan_too_many";
    n[XDPCTL_CNT_BAD_IPV4_TRUNCATED] = "ipv4_truncated";
    n[XDPCTL_CNT_BAD_IPV4_HDR] = "ipv4_bad_header";
    n[XDPCTL_CNT_BAD_IPV4_LENGTH] = "ipv4_bad_length";
    n[XDPCTL_CNT_BAD_IPV6_TRUNCATED] = "ipv6_truncated";
    n[XDPCTL_CNT_BAD_IPV6_HDR] = "ipv6_bad_header";
    n[XDPCTL_CNT_BAD_IPV6_LENGTH] = "ipv6_bad_length";
    n[XDPCTL_CNT_BAD_EXT_TRUNCATED] = "ipv6_ext_truncated";
    n[XDPCTL_CNT_BAD_EXT_CHAIN] = "ipv6_ext_chain_too_long";
    n[XDPCTL_CNT_BAD_L4_TRUNCATED] = "l4_truncated";
    n[XDPCTL_CNT_BAD_TCP_HDR] = "tcp_bad_header";
    return n;
}();
}  // namespace

std::string_view counter_name(int idx)
{
    return idx >= 0 && idx < XDPCTL_CNT_MAX ? kNames[idx] : "?";
}

std::string_view counter_group(int idx)
{
    if (idx < XDPCTL_CNT_L4_FIRST)
        return "l3";
    if (idx < XDPCTL_CNT_VERDICT_FIRST)
        return "l4";
    if (idx < XDPCTL_CNT_BAD_FIRST)
        return "verdict";
    return "malformed";
}

std::string_view hook_name(int hook)
{
    switch (hook) {
    case XDPCTL_HOOK_XDP:
        return "xdp";
    case XDPCTL_HOOK_TC_INGRESS:
        return "tc_ingress";
    case XDPCTL_HOOK_TC_EGRESS:
        return "tc_egress";
    default:
        return "?";
    }
}

int possible_cpus()
{
    static const int n = [] {
        int c = libbpf_num_possible_cpus();
        if (c <= 0)
            fail("cannot count the possible CPUs: {}", errno_str(c));
        return c;
    }();
    return n;
}

std::vector<HookCounters> read_hook_counters_per_cpu(int stats_map_fd, int hook)
{
    std::vector<xdpctl_hook_stats> raw(possible_cpus());
    __u32 key = static_cast<__u32>(hook);
    if (int err = bpf_map_lookup_elem(stats_map_fd, &key, raw.data()); err)
        fail("cannot read the stats map: {}", errno_str(err));
    std::vector<HookCounters> out(raw.size());
    for (size_t cpu = 0; cpu < raw.size(); cpu++)
        for (int i = 0; i < XDPCTL_CNT_MAX; i++)
            out[cpu][i] = raw[cpu].ctr[i];
    return out;
}

HookCounters read_hook_counters(int stats_map_fd, int hook)
{
    HookCounters sum{};
    for (const auto& cpu : read_hook_counters_per_cpu(stats_map_fd, hook))
        for (int i = 0; i < XDPCTL_CNT_MAX; i++) {
            sum[i].packets += cpu[i].packets;
            sum[i].bytes += cpu[i].bytes;
        }
    return sum;
}

}  // namespace xdpctl
