// The parser and the counters, end to end: frames from the packet builder run through
// BPF_PROG_TEST_RUN on the XDP program and on both TC programs, and each case states the
// verdict and exactly which counter slots move. Every other slot must stay still, and each
// slot that moves must add exactly one packet and the frame's length in bytes.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ostream>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "stats/counters.h"
#include "packet_builder.h"
#include "require_root.h"

using namespace xdpctl::test;

namespace {

// Short names for the counter slots, so a case reads like the counters it moves.
namespace c {
constexpr int ipv4 = XDPCTL_CNT_L3_IPV4, ipv6 = XDPCTL_CNT_L3_IPV6, arp = XDPCTL_CNT_L3_ARP,
              l3_other = XDPCTL_CNT_L3_OTHER;
constexpr int tcp = XDPCTL_CNT_L4_TCP, udp = XDPCTL_CNT_L4_UDP, icmp = XDPCTL_CNT_L4_ICMP,
              icmpv6 = XDPCTL_CNT_L4_ICMPV6, fragment = XDPCTL_CNT_L4_FRAGMENT,
              l4_other = XDPCTL_CNT_L4_OTHER;
constexpr int vlan_truncated = XDPCTL_CNT_BAD_VLAN_TRUNCATED,
              vlan_too_many = XDPCTL_CNT_BAD_VLAN_TOO_MANY,
              ipv4_truncated = XDPCTL_CNT_BAD_IPV4_TRUNCATED, ipv4_hdr = XDPCTL_CNT_BAD_IPV4_HDR,
              ipv4_length = XDPCTL_CNT_BAD_IPV4_LENGTH,
              ipv6_truncated = XDPCTL_CNT_BAD_IPV6_TRUNCATED, ipv6_hdr = XDPCTL_CNT_BAD_IPV6_HDR,
              ipv6_length = XDPCTL_CNT_BAD_IPV6_LENGTH,
              ext_truncated = XDPCTL_CNT_BAD_EXT_TRUNCATED, ext_chain = XDPCTL_CNT_BAD_EXT_CHAIN,
              l4_truncated = XDPCTL_CNT_BAD_L4_TRUNCATED, tcp_hdr = XDPCTL_CNT_BAD_TCP_HDR;
}  // namespace c

constexpr uint16_t kEthHlen = 14;
constexpr uint8_t kProtoGre = 47, kProtoEsp = 50, kProtoNoNext = 59;


// Loaded once per malformed action: the verifier pass is what costs, not the runs.
const ParserPrograms& programs(uint32_t malformed_action)
{
    static std::unique_ptr<ParserPrograms> loaded[2];
    auto& p = loaded[malformed_action == XDPCTL_MALFORMED_DROP];
    if (!p)
        p = std::make_unique<ParserPrograms>(malformed_action);
    return *p;
}

bool is_malformed_reason(int slot) { return slot >= XDPCTL_CNT_BAD_FIRST; }

// Frames BPF_PROG_TEST_RUN refuses with EINVAL before the program runs (kernel 6.18):
// - any frame shorter than an Ethernet header, XDP and skb alike (bpf_test_init() checks
//   ETH_HLEN), so "eth_truncated" cannot be produced through a test run;
// - on skb programs (TC), an untagged frame whose EtherType is IPv4 or IPv6 but that is
//   shorter than the fixed IPv4 (20) or IPv6 (40) header: the skb test run reads the
//   addresses from it. Behind a VLAN tag the skb's protocol is the tag's, and it runs.
// The tests assert these refusals, so a kernel that starts running such frames shows up.
bool kernel_refuses(int hook, const std::vector<uint8_t>& f)
{
    if (f.size() < kEthHlen)
        return true;
    if (hook == XDPCTL_HOOK_XDP || hook == kXdpCountProgram)
        return false;
    const uint16_t type = uint16_t(f[12] << 8 | f[13]);
    return (type == 0x0800 && f.size() < kEthHlen + 20u) || (type == 0x86dd && f.size() < kEthHlen + 40u);
}

// All slots that moved, as "group.name=packets/bytes": one string to compare, and a
// readable diff when it differs.
std::string describe(const xdpctl::HookCounters& h)
{
    std::string s;
    for (int i = 0; i < XDPCTL_CNT_MAX; i++)
        if (h[i].packets || h[i].bytes)
            s += fmt::format("{}.{}={}p/{}B ", xdpctl::counter_group(i), xdpctl::counter_name(i),
                             h[i].packets, h[i].bytes);
    return s.empty() ? "(none)" : s;
}

// What a frame should add: one packet and its length on each of `slots` and on the verdict.
xdpctl::HookCounters expected_delta(const std::vector<int>& slots, Verdict v, size_t frame_len)
{
    xdpctl::HookCounters h{};
    auto add = [&](int slot) {
        h[slot].packets += 1;
        h[slot].bytes += frame_len;
    };
    for (int s : slots)
        add(s);
    add(v == Verdict::pass ? XDPCTL_CNT_VERDICT_PASS : XDPCTL_CNT_VERDICT_DROP);
    return h;
}

// The verdict under a malformed action: only a frame with a malformed reason can be dropped.
Verdict verdict_under(uint32_t action, const std::vector<int>& slots, Verdict when_passing)
{
    bool bad = false;
    for (int s : slots)
        bad |= is_malformed_reason(s);
    return bad && action == XDPCTL_MALFORMED_DROP ? Verdict::drop : when_passing;
}

const char* action_name(uint32_t action)
{
    return action == XDPCTL_MALFORMED_DROP ? "drop_malformed" : "pass_malformed";
}

// ---- the table ---------------------------------------------------------------------------

struct ParserCase {
    std::string name;  // the description, also the test name
    std::vector<uint8_t> frame;
    Verdict verdict;         // under the default action (malformed frames pass)
    std::vector<int> slots;  // the L3, L4 and malformed slots that move; the verdict's is implied
};

// gtest prints a failing test's parameter: the name, not the bytes of the struct.
void PrintTo(const ParserCase& c, std::ostream* os) { *os << c.name; }

PacketBuilder B() { return PacketBuilder(); }

// IPv6 with `n` extension headers of one kind, then UDP.
std::vector<uint8_t> ipv6_ext_chain(Ext kind, int n, size_t len)
{
    PacketBuilder b;
    b.ipv6();
    for (int i = 0; i < n; i++)
        b.ext(kind, len);
    return b.udp().payload(8).build();
}

std::vector<ParserCase> parser_cases()
{
    using V = Verdict;
    std::vector<ParserCase> t = {
        // ---- Ethernet and VLAN tags
        {"eth_ipv4_tcp", B().ipv4().tcp().payload(6).build(), V::pass, {c::ipv4, c::tcp}},
        {"vlan_ipv4_tcp", B().vlan(100).ipv4().tcp().payload(6).build(), V::pass, {c::ipv4, c::tcp}},
        {"vlan_8021ad_only_ipv4_tcp", B().vlan(100, kTpid8021AD).ipv4().tcp().build(), V::pass,
         {c::ipv4, c::tcp}},
        {"qinq_ipv4_udp", B().qinq(10, 20).ipv4().udp().payload(8).build(), V::pass, {c::ipv4, c::udp}},
        {"qinq_ipv6_tcp", B().qinq(10, 20).ipv6().tcp().build(), V::pass, {c::ipv6, c::tcp}},
        {"double_8021q_ipv4_udp", B().vlan(10).vlan(20).ipv4().udp().build(), V::pass,
         {c::ipv4, c::udp}},
        {"three_tags_too_many", B().qinq(10, 20).vlan(30).ipv4().udp().build(), V::pass,
         {c::l3_other, c::vlan_too_many}},
        {"three_8021ad_tags_too_many",
         B().vlan(1, kTpid8021AD).vlan(2, kTpid8021AD).vlan(3, kTpid8021AD).ipv4().udp().build(),
         V::pass, {c::l3_other, c::vlan_too_many}},
        // The third tag is only announced by the second tag's EtherType: still too many.
        {"third_tag_announced_only", B().qinq(10, 20).ethertype(kTpid8021Q).build(), V::pass,
         {c::l3_other, c::vlan_too_many}},
        {"vlan_tag_cut", B().vlan(10).ipv4().udp().truncate(kEthHlen + 3).build(), V::pass,
         {c::l3_other, c::vlan_truncated}},
        {"arp", B().arp_request().pad_to(60).build(), V::pass, {c::arp}},
        {"vlan_arp", B().vlan(5).arp_request().build(), V::pass, {c::arp}},
        {"qinq_arp", B().qinq(5, 6).arp_request().build(), V::pass, {c::arp}},
        {"unknown_ethertype", B().ethertype(0x88b5).payload(46).build(), V::pass, {c::l3_other}},
        {"lldp_ethertype", B().ethertype(0x88cc).payload(46).build(), V::pass, {c::l3_other}},
        {"vlan_unknown_ethertype", B().vlan(7).ethertype(0x88b6).payload(42).build(), V::pass,
         {c::l3_other}},
        {"bare_ethernet_header", B().ethertype(0x88b5).build(), V::pass, {c::l3_other}},

        // ---- IPv4
        {"ipv4_udp", B().ipv4().udp().payload(18).build(), V::pass, {c::ipv4, c::udp}},
        {"ipv4_icmp_echo", B().ipv4().icmp_echo().payload(56).build(), V::pass, {c::ipv4, c::icmp}},
        {"ipv4_gre", B().ipv4({.protocol = kProtoGre}).payload(24).build(), V::pass,
         {c::ipv4, c::l4_other}},
        {"ipv4_esp", B().ipv4({.protocol = kProtoEsp}).payload(24).build(), V::pass,
         {c::ipv4, c::l4_other}},
        {"ipv4_options_4_tcp", B().ipv4({.options_len = 4}).tcp().build(), V::pass, {c::ipv4, c::tcp}},
        {"ipv4_options_40_udp", B().ipv4({.options_len = 40}).udp().build(), V::pass,
         {c::ipv4, c::udp}},
        {"ipv4_tcp_options_40", B().ipv4().tcp({.options_len = 40}).build(), V::pass, {c::ipv4, c::tcp}},
        {"ipv4_first_fragment_udp", B().ipv4({.more_fragments = true}).udp().payload(32).build(),
         V::pass, {c::ipv4, c::udp}},
        {"ipv4_first_fragment_tcp", B().ipv4({.more_fragments = true}).tcp().payload(32).build(),
         V::pass, {c::ipv4, c::tcp}},
        {"ipv4_middle_fragment",
         B().ipv4({.frag_offset = 4, .more_fragments = true, .protocol = 17}).payload(32).build(),
         V::pass, {c::ipv4, c::fragment}},
        {"ipv4_last_fragment", B().ipv4({.frag_offset = 185, .protocol = 6}).payload(20).build(),
         V::pass, {c::ipv4, c::fragment}},
        // A later fragment has no L4 header, so a few bytes are not "L4 truncated".
        {"ipv4_later_fragment_1_byte", B().ipv4({.frag_offset = 1, .protocol = 6}).payload(1).build(),
         V::pass, {c::ipv4, c::fragment}},
        {"ipv4_options_later_fragment",
         B().ipv4({.options_len = 8, .frag_offset = 3, .protocol = 1}).payload(8).build(), V::pass,
         {c::ipv4, c::fragment}},
        {"ipv4_ethernet_padding_tcp", B().ipv4().tcp().pad_to(60).build(), V::pass, {c::ipv4, c::tcp}},
        {"ipv4_ethernet_padding_udp", B().ipv4().udp().pad_to(60).build(), V::pass, {c::ipv4, c::udp}},
        {"ipv4_ihl_4", B().ipv4().ihl(4).tcp().build(), V::pass, {c::ipv4, c::ipv4_hdr}},
        {"ipv4_ihl_0", B().ipv4().ihl(0).udp().build(), V::pass, {c::ipv4, c::ipv4_hdr}},
        {"ipv4_ihl_15_beyond_frame", B().ipv4().ihl(15).tcp().build(), V::pass,
         {c::ipv4, c::ipv4_truncated}},
        {"ipv4_version_6", B().ipv4().ip_version(6).tcp().build(), V::pass, {c::ipv4, c::ipv4_hdr}},
        {"ipv4_version_0", B().ipv4().ip_version(0).udp().build(), V::pass, {c::ipv4, c::ipv4_hdr}},
        {"ipv4_header_cut", B().ipv4().udp().truncate(kEthHlen + 19).build(), V::pass,
         {c::ipv4, c::ipv4_truncated}},
        {"ipv4_options_cut", B().ipv4({.options_len = 8}).udp().truncate(kEthHlen + 24, true).build(),
         V::pass, {c::ipv4, c::ipv4_truncated}},
        {"ipv4_total_length_beyond_frame", B().ipv4().tcp().ipv4_total_length(41).build(), V::pass,
         {c::ipv4, c::ipv4_length}},
        {"ipv4_total_length_below_ihl", B().ipv4().udp().ipv4_total_length(19).build(), V::pass,
         {c::ipv4, c::ipv4_length}},
        {"ipv4_total_length_below_options",
         B().ipv4({.options_len = 4}).udp().ipv4_total_length(20).build(), V::pass,
         {c::ipv4, c::ipv4_length}},
        {"ipv4_total_length_short_of_frame", B().ipv4().udp().payload(8).ipv4_total_length(28).build(),
         V::pass, {c::ipv4, c::udp}},

        // ---- L4 headers behind IPv4
        {"ipv4_tcp_doff_4", B().ipv4().tcp().tcp_doff(4).build(), V::pass,
         {c::ipv4, c::tcp, c::tcp_hdr}},
        {"ipv4_tcp_doff_0", B().ipv4().tcp().tcp_doff(0).payload(8).build(), V::pass,
         {c::ipv4, c::tcp, c::tcp_hdr}},
        {"ipv4_tcp_doff_beyond_frame", B().ipv4().tcp().payload(8).tcp_doff(8).build(), V::pass,
         {c::ipv4, c::tcp, c::tcp_hdr}},
        {"ipv4_tcp_doff_to_frame_end", B().ipv4().tcp().payload(8).tcp_doff(7).build(), V::pass,
         {c::ipv4, c::tcp}},
        {"ipv4_tcp_cut", B().ipv4({.protocol = 6}).payload(19).build(), V::pass,
         {c::ipv4, c::tcp, c::l4_truncated}},
        {"ipv4_tcp_no_header", B().ipv4({.protocol = 6}).build(), V::pass,
         {c::ipv4, c::tcp, c::l4_truncated}},
        {"ipv4_udp_cut", B().ipv4({.protocol = 17}).payload(7).build(), V::pass,
         {c::ipv4, c::udp, c::l4_truncated}},
        {"ipv4_icmp_cut", B().ipv4({.protocol = 1}).payload(4).build(), V::pass,
         {c::ipv4, c::icmp, c::l4_truncated}},
        // The L4 header ends where the IP packet ends, not where the frame does: bytes of
        // Ethernet padding are no header.
        {"ipv4_udp_header_in_padding", B().ipv4({.protocol = 17}).pad_to(60).build(), V::pass,
         {c::ipv4, c::udp, c::l4_truncated}},
        {"ipv4_tcp_options_in_padding", B().ipv4().tcp().tcp_doff(6).pad_to(60).build(), V::pass,
         {c::ipv4, c::tcp, c::tcp_hdr}},
        // Not zeros this time: a whole UDP header after the packet's end is still no header.
        {"ipv4_udp_header_after_packet_end", B().ipv4().udp().payload(8).ipv4_total_length(20).build(),
         V::pass, {c::ipv4, c::udp, c::l4_truncated}},
        {"ipv4_tcp_header_ends_after_packet_end", B().ipv4().tcp().ipv4_total_length(39).build(),
         V::pass, {c::ipv4, c::tcp, c::l4_truncated}},

        // ---- IPv6
        {"ipv6_udp", B().ipv6().udp().payload(8).build(), V::pass, {c::ipv6, c::udp}},
        {"ipv6_tcp", B().ipv6().tcp({.flags = tcp_flags::syn | tcp_flags::ack}).build(), V::pass,
         {c::ipv6, c::tcp}},
        {"ipv6_icmpv6_echo", B().ipv6().icmpv6_echo().payload(56).build(), V::pass,
         {c::ipv6, c::icmpv6}},
        {"ipv6_no_next_header", B().ipv6({.next_header = kProtoNoNext}).build(), V::pass,
         {c::ipv6, c::l4_other}},
        {"ipv6_esp", B().ipv6({.next_header = kProtoEsp}).payload(24).build(), V::pass,
         {c::ipv6, c::l4_other}},
        {"ipv6_gre", B().ipv6({.next_header = kProtoGre}).payload(24).build(), V::pass,
         {c::ipv6, c::l4_other}},
        {"ipv6_ethernet_padding", B().ipv6().udp().pad_to(80).build(), V::pass, {c::ipv6, c::udp}},
        {"ipv6_version_4", B().ipv6().ip_version(4).udp().build(), V::pass, {c::ipv6, c::ipv6_hdr}},
        {"ipv6_header_cut", B().ipv6().udp().truncate(kEthHlen + 39).build(), V::pass,
         {c::ipv6, c::ipv6_truncated}},
        {"ipv6_payload_length_beyond_frame", B().ipv6().udp().ipv6_payload_length(9).build(), V::pass,
         {c::ipv6, c::ipv6_length}},
        {"ipv6_payload_length_short_of_frame", B().ipv6().udp().payload(8).ipv6_payload_length(8).build(),
         V::pass, {c::ipv6, c::udp}},
        {"ipv6_tcp_doff_4", B().ipv6().tcp().tcp_doff(4).build(), V::pass,
         {c::ipv6, c::tcp, c::tcp_hdr}},
        {"ipv6_tcp_doff_beyond_frame", B().ipv6().tcp().tcp_doff(15).build(), V::pass,
         {c::ipv6, c::tcp, c::tcp_hdr}},
        {"ipv6_udp_cut", B().ipv6({.next_header = 17}).payload(4).build(), V::pass,
         {c::ipv6, c::udp, c::l4_truncated}},
        {"ipv6_icmpv6_cut", B().ipv6({.next_header = 58}).payload(7).build(), V::pass,
         {c::ipv6, c::icmpv6, c::l4_truncated}},
        {"ipv6_udp_header_in_padding", B().ipv6({.next_header = 17}).pad_to(64).build(), V::pass,
         {c::ipv6, c::udp, c::l4_truncated}},
        {"ipv6_ext_header_in_padding", B().ipv6({.next_header = 60}).pad_to(64).build(), V::pass,
         {c::ipv6, c::ext_truncated}},
        // A whole destination options header (next: none) after the packet's end.
        {"ipv6_ext_header_after_packet_end",
         B().ipv6({.next_header = 60}).payload({kProtoNoNext, 0, 1, 4, 0, 0, 0, 0}).ipv6_payload_length(0).build(),
         V::pass, {c::ipv6, c::ext_truncated}},
        {"ipv6_ext_header_ends_after_packet_end",
         B().ipv6().ext(Ext::dstopts, 16).udp().ipv6_payload_length(8).build(), V::pass,
         {c::ipv6, c::ext_truncated}},
        {"ipv6_udp_header_after_packet_end", B().ipv6().ext(Ext::routing).udp().ipv6_payload_length(8).build(),
         V::pass, {c::ipv6, c::udp, c::l4_truncated}},
        {"ipv6_tcp_options_after_packet_end", B().ipv6().tcp({.options_len = 8}).ipv6_payload_length(24).build(),
         V::pass, {c::ipv6, c::tcp, c::tcp_hdr}},

        // ---- IPv6 extension headers
        {"ipv6_mixed_6_ext_tcp",
         B().ipv6()
             .ext(Ext::hop_by_hop)
             .ext(Ext::routing, 24)
             .ext_fragment(0, true)
             .ext(Ext::ah, 16)
             .ext(Ext::dstopts, 16)
             .ext(Ext::dstopts)
             .tcp()
             .build(),
         V::pass, {c::ipv6, c::tcp}},
        {"ipv6_8_ext_max", ipv6_ext_chain(Ext::dstopts, 8, 8), V::pass, {c::ipv6, c::udp}},
        {"ipv6_9_ext_chain_too_long", ipv6_ext_chain(Ext::dstopts, 9, 8), V::pass,
         {c::ipv6, c::ext_chain}},
        {"ipv6_9_mixed_ext_chain_too_long",
         B().ipv6()
             .ext(Ext::hop_by_hop)
             .ext(Ext::routing)
             .ext_fragment(0, false)
             .ext(Ext::ah)
             .ext(Ext::dstopts)
             .ext(Ext::routing)
             .ext(Ext::ah)
             .ext_fragment(0, false)
             .ext(Ext::dstopts)
             .udp()
             .build(),
         V::pass, {c::ipv6, c::ext_chain}},
        {"ipv6_hop_by_hop_16_udp", B().ipv6().ext(Ext::hop_by_hop, 16).udp().build(), V::pass,
         {c::ipv6, c::udp}},
        {"ipv6_dstopts_256_udp", B().ipv6().ext(Ext::dstopts, 256).udp().build(), V::pass,
         {c::ipv6, c::udp}},
        {"ipv6_ah_24_tcp", B().ipv6().ext(Ext::ah, 24).tcp().build(), V::pass, {c::ipv6, c::tcp}},
        {"ipv6_ext_announced_only", B().ipv6({.next_header = 0}).payload(4).build(), V::pass,
         {c::ipv6, c::ext_truncated}},
        // 8 bytes present, hdrlen 1 claims 16.
        {"ipv6_ext_length_beyond_frame",
         B().ipv6({.next_header = 60}).payload({17, 1, 1, 4, 0, 0, 0, 0}).build(), V::pass,
         {c::ipv6, c::ext_truncated}},
        {"ipv6_first_fragment_udp", B().ipv6().ext_fragment(0, true).udp().payload(16).build(), V::pass,
         {c::ipv6, c::udp}},
        {"ipv6_first_fragment_after_hop_by_hop_tcp",
         B().ipv6().ext(Ext::hop_by_hop).ext_fragment(0, true).tcp().build(), V::pass,
         {c::ipv6, c::tcp}},
        {"ipv6_middle_fragment", B().ipv6().ext_fragment(100, true).udp().build(), V::pass,
         {c::ipv6, c::fragment}},
        {"ipv6_last_fragment", B().ipv6().ext_fragment(100, false).tcp().build(), V::pass,
         {c::ipv6, c::fragment}},
        {"ipv6_later_fragment_empty", B().ipv6().ext_fragment(1, false).build(), V::pass,
         {c::ipv6, c::fragment}},
        // Headers after a later fragment's header are data of the fragmented packet.
        {"ipv6_later_fragment_then_ext", B().ipv6().ext_fragment(2, true).ext(Ext::dstopts).build(),
         V::pass, {c::ipv6, c::fragment}},
        {"ipv6_later_fragment_after_routing",
         B().ipv6().ext(Ext::hop_by_hop).ext(Ext::routing).ext_fragment(7, true).payload(16).build(),
         V::pass, {c::ipv6, c::fragment}},
        {"ipv6_later_fragment_8th_ext",
         [] {
             PacketBuilder b;
             b.ipv6();
             for (int i = 0; i < 7; i++)
                 b.ext(Ext::dstopts);
             return b.ext_fragment(9, false).payload(8).build();
         }(),
         V::pass, {c::ipv6, c::fragment}},
        {"ipv6_later_fragment_9th_ext",
         [] {
             PacketBuilder b;
             b.ipv6();
             for (int i = 0; i < 8; i++)
                 b.ext(Ext::dstopts);
             return b.ext_fragment(9, false).payload(8).build();
         }(),
         V::pass, {c::ipv6, c::ext_chain}},
        {"qinq_ipv6_2_ext_udp",
         B().qinq(100, 200).ipv6().ext(Ext::hop_by_hop).ext(Ext::routing, 24).udp().payload(8).build(),
         V::pass, {c::ipv6, c::udp}},
    };

    // 1, 2 and 6 headers of each kind in a row; the sizes are each kind's smallest but one.
    const std::pair<Ext, const char*> kinds[] = {{Ext::hop_by_hop, "hop_by_hop"},
                                                 {Ext::routing, "routing"},
                                                 {Ext::dstopts, "dstopts"},
                                                 {Ext::fragment, "atomic_fragment"},
                                                 {Ext::ah, "ah"}};
    for (auto [kind, name] : kinds) {
        for (int n : {1, 2, 6}) {
            size_t len = kind == Ext::ah ? 16 : 8;
            t.push_back({fmt::format("ipv6_{}x_{}_udp", n, name), ipv6_ext_chain(kind, n, len), V::pass,
                         {c::ipv6, c::udp}});
        }
    }
    return t;
}

class ParserTable
    : public ::testing::TestWithParam<std::tuple<ParserCase, int /*hook*/, uint32_t /*action*/>> {
protected:
    void SetUp() override { XDPCTL_REQUIRE_ROOT(); }
};

TEST_P(ParserTable, CountsAndVerdict)
{
    const auto& [tc, hook, action] = GetParam();
    const Verdict verdict = verdict_under(action, tc.slots, tc.verdict);

    const auto out = programs(action).run(hook, tc.frame);

    if (kernel_refuses(hook, tc.frame)) {
        EXPECT_EQ(out.run.err, -EINVAL) << "the kernel now runs this frame: give it an expectation";
        EXPECT_EQ(describe(out.delta), "(none)");
        return;
    }
    ASSERT_EQ(out.run.err, 0) << "BPF_PROG_TEST_RUN refused a " << tc.frame.size() << "-byte frame";
    EXPECT_EQ(out.run.retval, verdict_retval(hook, verdict));
    EXPECT_EQ(describe(out.delta), describe(expected_delta(tc.slots, verdict, tc.frame.size())));
}

// The hooks' programs, and the XDP hook's parse-and-count program beside them.
constexpr int kHooks[] = {XDPCTL_HOOK_XDP, XDPCTL_HOOK_TC_INGRESS, XDPCTL_HOOK_TC_EGRESS, kXdpCountProgram};

std::string program_name(int hook)
{
    return std::string(hook == kXdpCountProgram ? "xdp_count" : xdpctl::hook_name(hook));
}

std::string param_name(const ::testing::TestParamInfo<ParserTable::ParamType>& info)
{
    const auto& [tc, hook, action] = info.param;
    return fmt::format("{}_{}_{}", tc.name, program_name(hook), action_name(action));
}

INSTANTIATE_TEST_SUITE_P(Frames, ParserTable,
                         ::testing::Combine(::testing::ValuesIn(parser_cases()), ::testing::ValuesIn(kHooks),
                                            ::testing::Values(uint32_t(XDPCTL_MALFORMED_PASS),
                                                              uint32_t(XDPCTL_MALFORMED_DROP))),
                         param_name);

// ---- truncation at every offset ----------------------------------------------------------

// Ascending boundaries: a frame cut to n bytes moves the slots of the first entry with
// n < end (plus its verdict's), when the kernel runs it at all.
using Slots = std::vector<int>;
using Boundaries = std::vector<std::pair<size_t, Slots>>;

struct TruncationScenario {
    std::string name;
    PacketBuilder packet;
    // true: the IP length fields describe the cut frame (a short packet sent as such), so
    // the parser reaches the headers past L3. false: they describe the whole packet (a
    // frame cut in flight), so every cut past the IP header is an IP length fault.
    bool fit_lengths;
    Boundaries (*boundaries)(const Frame& f);
};

// Below ETH_HLEN the kernel refuses every run (see kernel_refuses()); the entry only
// keeps the boundaries complete.
const Slots kRefused{};

std::vector<TruncationScenario> truncation_scenarios()
{
    const auto tcp4 = B().ipv4({.options_len = 4}).tcp({.flags = tcp_flags::ack, .options_len = 8}).payload(4);
    const auto udp6 = B().ipv6().ext(Ext::hop_by_hop, 16).ext(Ext::dstopts).udp().payload(6);
    const auto qinq = B().qinq(100, 200).ipv4().udp().payload(6).pad_to(64);
    return {
        {"tcp_ipv4_cut_in_flight", tcp4, false,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {f.l3_off + 24, {c::ipv4, c::ipv4_truncated}},
                     {f.l3_end, {c::ipv4, c::ipv4_length}},
                     {f.bytes.size() + 1, {c::ipv4, c::tcp}}};
         }},
        {"tcp_ipv4_short_packet", tcp4, true,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {f.l3_off + 24, {c::ipv4, c::ipv4_truncated}},
                     {*f.l4_off + 20, {c::ipv4, c::tcp, c::l4_truncated}},
                     {*f.l4_off + 28, {c::ipv4, c::tcp, c::tcp_hdr}},
                     {f.bytes.size() + 1, {c::ipv4, c::tcp}}};
         }},
        {"udp_ipv6_2ext_cut_in_flight", udp6, false,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {f.l3_off + 40, {c::ipv6, c::ipv6_truncated}},
                     {f.l3_end, {c::ipv6, c::ipv6_length}},
                     {f.bytes.size() + 1, {c::ipv6, c::udp}}};
         }},
        {"udp_ipv6_2ext_short_packet", udp6, true,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {f.l3_off + 40, {c::ipv6, c::ipv6_truncated}},
                     {f.ext_offs.at(0) + 16, {c::ipv6, c::ext_truncated}},
                     {f.ext_offs.at(1) + 8, {c::ipv6, c::ext_truncated}},
                     {*f.l4_off + 8, {c::ipv6, c::udp, c::l4_truncated}},
                     {f.bytes.size() + 1, {c::ipv6, c::udp}}};
         }},
        // Padded to 64 bytes: a cut inside the padding leaves a whole packet.
        {"qinq_ipv4_udp_cut_in_flight", qinq, false,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {kEthHlen + 8, {c::l3_other, c::vlan_truncated}},
                     {f.l3_off + 20, {c::ipv4, c::ipv4_truncated}},
                     {f.l3_end, {c::ipv4, c::ipv4_length}},
                     {f.bytes.size() + 1, {c::ipv4, c::udp}}};
         }},
        {"qinq_ipv4_udp_short_packet", qinq, true,
         [](const Frame& f) -> Boundaries {
             return {{kEthHlen, kRefused},
                     {kEthHlen + 8, {c::l3_other, c::vlan_truncated}},
                     {f.l3_off + 20, {c::ipv4, c::ipv4_truncated}},
                     {*f.l4_off + 8, {c::ipv4, c::udp, c::l4_truncated}},
                     {f.bytes.size() + 1, {c::ipv4, c::udp}}};
         }},
    };
}

void PrintTo(const TruncationScenario& s, std::ostream* os) { *os << s.name; }

const Slots& expect_at(const Boundaries& b, size_t n)
{
    for (const auto& [end, slots] : b)
        if (n < end)
            return slots;
    throw std::logic_error("boundaries do not cover the whole frame");
}

class Truncation : public ::testing::TestWithParam<std::tuple<TruncationScenario, int /*hook*/>> {
protected:
    void SetUp() override { XDPCTL_REQUIRE_ROOT(); }
};

TEST_P(Truncation, EveryOffset)
{
    const auto& [sc, hook] = GetParam();
    const Frame full = sc.packet.build_frame();
    const Boundaries bounds = sc.boundaries(full);

    // n == size is the whole frame: the anchor that the boundaries end in a valid packet.
    for (size_t n = 0; n <= full.bytes.size(); n++) {
        const auto frame = PacketBuilder(sc.packet).truncate(n, sc.fit_lengths).build();
        ASSERT_EQ(frame.size(), n);
        const Slots& slots = expect_at(bounds, n);

        for (uint32_t action : {uint32_t(XDPCTL_MALFORMED_PASS), uint32_t(XDPCTL_MALFORMED_DROP)}) {
            SCOPED_TRACE(fmt::format("cut at {} of {} bytes, {}", n, full.bytes.size(), action_name(action)));
            const auto out = programs(action).run(hook, frame);
            if (kernel_refuses(hook, frame)) {
                EXPECT_EQ(out.run.err, -EINVAL);
                EXPECT_EQ(describe(out.delta), "(none)");
                continue;
            }
            const Verdict v = verdict_under(action, slots, Verdict::pass);
            ASSERT_EQ(out.run.err, 0);
            EXPECT_EQ(out.run.retval, verdict_retval(hook, v));
            EXPECT_EQ(describe(out.delta), describe(expected_delta(slots, v, n)));
        }
    }
}

std::string truncation_name(const ::testing::TestParamInfo<Truncation::ParamType>& info)
{
    return fmt::format("{}_{}", std::get<0>(info.param).name, program_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Frames, Truncation,
                         ::testing::Combine(::testing::ValuesIn(truncation_scenarios()),
                                            ::testing::ValuesIn(kHooks)),
                         truncation_name);

// The builder's own arithmetic, checked against numbers worked out by hand, so a builder
// bug cannot make the table above agree with a parser bug.
TEST(PacketBuilder, FillsLengthsAndChecksums)
{
    const Frame f = B().vlan(42).ipv4().udp(1000, 2000).payload(4).build_frame();
    const auto& b = f.bytes;
    ASSERT_EQ(b.size(), 14u + 4 + 20 + 8 + 4);
    EXPECT_EQ(f.l3_off, 18u);
    EXPECT_EQ(b[12] << 8 | b[13], 0x8100);
    EXPECT_EQ((b[14] << 8 | b[15]) & 0xfff, 42);
    EXPECT_EQ(b[16] << 8 | b[17], 0x0800);
    EXPECT_EQ(b[18], 0x45);
    EXPECT_EQ(b[20] << 8 | b[21], 32);  // total length
    EXPECT_EQ(b[27], 17);               // protocol
    EXPECT_EQ(inet_checksum(&b[18], 20), 0) << "IPv4 header checksum";
    EXPECT_EQ(b[42] << 8 | b[43], 12);  // UDP length
    // UDP checksum with the pseudo header: sums to zero when correct.
    std::vector<uint8_t> ph(b.begin() + 30, b.begin() + 38);  // saddr, daddr
    ph.insert(ph.end(), {0, 17, 0, 12});
    uint32_t acc = 0;
    for (size_t i = 0; i < ph.size(); i += 2)
        acc += ph[i] << 8 | ph[i + 1];
    EXPECT_EQ(inet_checksum(&b[38], 12, acc), 0) << "UDP checksum";

    const Frame g = B().ipv6().ext(Ext::hop_by_hop, 16).ext(Ext::ah, 12).ext_fragment(5, true).tcp().build_frame();
    const auto& h = g.bytes;
    EXPECT_EQ(h[14] >> 4, 6);
    EXPECT_EQ(h[18] << 8 | h[19], 16 + 12 + 8 + 20);  // payload length
    EXPECT_EQ(h[20], 0);                              // next: hop-by-hop
    ASSERT_EQ(g.ext_offs.size(), 3u);
    EXPECT_EQ(h[g.ext_offs[0]], 51);      // next: AH
    EXPECT_EQ(h[g.ext_offs[0] + 1], 1);   // (16 / 8) - 1
    EXPECT_EQ(h[g.ext_offs[1]], 44);      // next: fragment
    EXPECT_EQ(h[g.ext_offs[1] + 1], 1);   // (12 / 4) - 2
    EXPECT_EQ(h[g.ext_offs[2]], 6);       // next: TCP
    EXPECT_EQ(h[g.ext_offs[2] + 2] << 8 | h[g.ext_offs[2] + 3], 5 << 3 | 1);
    EXPECT_EQ(h[*g.l4_off + 12] >> 4, 5);  // doff

    const auto cut = B().ipv4().tcp().payload(10).truncate(40, true).build();
    EXPECT_EQ(cut.size(), 40u);
    EXPECT_EQ(cut[16] << 8 | cut[17], 26) << "fit_lengths: total length of the cut packet";
    EXPECT_EQ(inet_checksum(&cut[14], 20), 0);
}

}  // namespace
