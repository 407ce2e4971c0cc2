// A policy compiled for the datapath: every match field becomes a small class id through
// one table lookup, each class carries a bitmap over the rules in evaluation order, and
// the first rule whose bit survives the AND of all fields decides (Aggregated Bit Vector
// search, Baboescu and Varghese 2001). Work per packet: one lookup per field, then the AND
// of a few aggregate words and of the words they point at: it depends on how many rules
// overlap at the packet, not on how many rules there are. docs/filtering.md has the math.
//
// This is the userspace form; the loader copies it into BPF maps and the BPF classifier
// walks the same tables. classify_compiled() walks them in C++ for the tests.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/rank_gaps.h"
#include "policy/reference_classifier.h"
#include "policy/rule.h"

namespace xdpctl::policy {

struct CompileCache;  // compile_cache.h

// The fields, in the order their rows are ANDed.
enum Field : int { kFieldSrc = 0, kFieldDst, kFieldSport, kFieldDport, kFieldL4, kFieldVlan, kFieldIif, kFieldCount };

// Where a rule is anchored: the first of these fields in which it names a value.
inline constexpr Field kAnchorOrder[] = {kFieldSrc, kFieldDst, kFieldDport, kFieldSport, kFieldVlan, kFieldIif, kFieldL4};

// Special keys in the direct-indexed tables (sizes from the ABI header).
inline constexpr uint32_t kVlanUntagged = XDPCTL_POL_VLAN_ENTRIES - 1;  // the last entry
inline constexpr uint32_t kIifTableSize = XDPCTL_POL_IIF_ENTRIES;        // ifindex >= this: the "other" class
inline constexpr uint32_t kL4TableSize = XDPCTL_POL_L4_ENTRIES;          // (later_fragment, proto, tcp flags)

inline uint32_t l4_index(bool later_fragment, uint8_t proto, uint8_t tcp_flags)
{
    return (uint32_t(later_fragment) << 16) | (uint32_t(proto) << 8) | tcp_flags;
}

// An address table: longest prefix match over `entries` gives the class; addresses no
// entry covers get `default_class`.
struct AddrClassTable {
    struct Entry {
        Prefix prefix;
        uint32_t cls;
    };
    std::vector<Entry> entries;
    uint32_t default_class = 0;
    // Split by sets (CompileOptions::max_split_sets; docs/prefix-sets.md, "A set's own
    // table"): the field's rules name the sets in `sets`, each looked up in a table of its
    // own, so `entries` hold the rules' own prefixes only and give a node, not a class
    // (default_class is node 0: no rule prefix covers the address). The class of an address
    // is node_class[node << sets.size() | mask], bit s of the mask set when the address is a
    // member of sets[s]. A rule commit then compiles nodes and this array, however many
    // prefixes the sets hold. Empty `sets`: the sets are merged in and entries give the class.
    std::vector<std::string> sets;
    std::vector<uint32_t> node_class;
    bool split() const { return !sets.empty(); }

    // The class of an address by a plain scan (tests; the datapath uses the prefix table):
    // its node when split.
    uint32_t lookup(Family f, const std::array<uint8_t, 16>& a) const;
    // The class, also when split (its sets' members from `sets_of`, which must hold them).
    uint32_t classify(Family f, const std::array<uint8_t, 16>& a, const std::map<std::string, PrefixSet>* sets_of) const;
};

struct RuleRecord {
    uint32_t id = 0;
    ActionKind action = ActionKind::pass;
    uint64_t rate_pps = 0, burst = 0;
    uint32_t log_rate = 0;  // Rule::log_rate
};

// A direction's rows, row_words() words each once written out (agg_words aggregate words,
// agg_words anchor words, `words` words of rule bits), kept compact: every row of a field
// holds the rules that name no value in that field (its base), and the rules that name one
// are few per row (a /32's rule, a port's rules). So a row is its field's base plus its own
// extra ranks, sorted, or, when there are more than `words` of them, a dense bitmap of
// them. At 10,000 rules the rows written out are ~24 MiB, the compact form well under
// 1 MiB: the compiler neither fills nor hashes tens of MiB of fresh memory, and the commit
// writes each row once, straight into the map (write_row).
// What tells written-out rows apart (RowTable::prints): rows of equal bytes have equal
// prints; rows of different bytes have equal prints with a chance of about 2^-128. `own`
// is the part of the row's own ranks alone (not its field's base): what keeps naming a class
// when a rule that names nothing in the field joins every row of it (align_classes()).
struct RowPrint {
    uint64_t a = 0, b = 0, own = 0;
    bool operator==(const RowPrint&) const = default;
};
// The `own` of a row no class table points at (RowTable::Row::unused): not 0, the own of a
// field's class with no rule of its own (the addresses no rule names, the ports none names),
// which a room row would otherwise look like to align_classes(): that class then took
// whichever such row came first, and a new one each time a class was gone, its id changing
// in every entry that names it (a 10 MiB source table rewritten for one rule).
inline constexpr uint64_t kUnusedRowOwn = 0x6a09e667f3bcc909ull;

struct RowTable {
    struct Row {
        uint32_t field = 0;
        uint32_t len = 0;  // extra ranks (sparse); 0 with dense
        uint64_t off = 0;  // into `ranks`, or (dense) into `dense`
        bool dense = false;
        bool unused = false;  // no class table points here (room; align_classes): the base
    };
    uint32_t words = 0, agg_words = 0;
    std::vector<Row> rows;
    std::vector<uint32_t> ranks;
    std::vector<uint64_t> dense;  // `words` words per dense row
    // Per field: the row with no extra rule, written out (row_words() words), and the rules
    // anchored at the field (`words` words; compiled_policy.h, CompiledDirection::rows).
    std::vector<uint64_t> base[kFieldCount];
    std::vector<uint64_t> anchored[kFieldCount];

    uint32_t row_words() const { return 2 * agg_words + words; }
    size_t count() const { return rows.size(); }
    // Row r written out into `out` (row_words() words).
    void write_row(size_t r, uint64_t* out) const;
    // Row r written out (tests, classify_compiled).
    std::vector<uint64_t> row(size_t r) const;
    // Every row's print, from its compact form (its field's base and its extra ranks), in
    // O(extra ranks) a row: a commit tells which rows of the spare generation differ without
    // reading ~24 MiB of them at 10,000 rules (policy_maps.cpp).
    std::vector<RowPrint> prints() const;
    // The lowest rank in row r, or UINT32_MAX when it holds no rule.
    uint32_t first_rank(size_t r) const;
    // Every row's field has a base, and its extras lie within the arrays.
    bool well_formed() const;
};

struct CompiledDirection {
    // Ranks: the rules' and the free ones between them (rank_gaps.h), the highest + 1; a free
    // rank's record has id 0 and no row holds its bit. 0: no rules.
    uint32_t n_rules = 0;
    uint32_t words = 0;      // 64-bit words per bitmap: at least ceil(n_rules / 64)
    uint32_t agg_words = 0;  // aggregate words: ceil(words / 64)
    uint32_t row_words() const { return 2 * agg_words + words; }

    // Per field, the class tables. Class ids index `rows` after adding row_base[field].
    AddrClassTable src_v4, src_v6, dst_v4, dst_v6;
    uint32_t src_nonip_class = 0, dst_nonip_class = 0;
    std::vector<uint16_t> sport, dport;  // 65536 each
    uint32_t sport_none_class = 0, dport_none_class = 0;  // no ports in the packet
    std::vector<uint16_t> l4;            // kL4TableSize
    uint32_t l4_nonip_class = 0;
    std::vector<uint16_t> vlan;          // 4097
    std::vector<uint16_t> iif;           // kIifTableSize
    uint32_t iif_other_class = 0;
    std::map<std::string, uint32_t> iif_index;  // NAME or NAME@NETNS -> the ifindex the table was built with

    uint32_t row_base[kFieldCount] = {};
    uint32_t n_classes[kFieldCount] = {};
    // All rows: row r (rows.row(r), written out) is agg_words aggregate words, then agg_words anchor
    // words, then `words` words of rule bits (bit i of word w: the rule at rank w*64+i).
    //
    // Anchors: every rule is anchored at one field (kAnchorOrder: the first where it names a
    // value; a rule that names none, at L4, where it is in every row). Bit i of a row's anchor
    // words is set when word i holds a rule anchored at this row's field. A rule that matches
    // a packet is in its anchor field's row for that packet, so the words worth ANDing are the
    // AND of the seven rows' aggregates and the OR of their anchors: rules that match almost
    // everything in one field (no port, any source) no longer make every word a candidate.
    RowTable rows;

    std::vector<RuleRecord> ranked;  // rank -> rule (id 0: a free rank)
    std::vector<uint32_t> rank_of;   // the direction's rules in evaluation order -> rank

    // The edge rule (abi: XDPCTL_POL_DECIDE_EDGE; CompileOptions::edge_sets): the direction's
    // last rule in evaluation order, or else its first, on one set in one address field alone
    // (shapes.h: edge_rule_field), decided beside the walk by the set's own table: first, a
    // member before the walk; last, after it, when no ranked rule decided. Not among `ranked`
    // and in no row: not in rank_of either.
    struct Edge {
        RuleRecord rec;
        std::string set;
        Field field = kFieldSrc;
        bool first = false;
    };
    std::optional<Edge> edge;

    // The rules again for the straight-line path (policy/shapes.h), when the direction
    // is small enough; the tables above are built all the same.
    std::optional<std::vector<xdpctl_pol_small_rule>> small;
    // The rules again for the anchor lists (policy/shapes.h: anchor_rules), by rank, when
    // every rule can be compared so; the lists follow from the rows once the classes are aligned.
    std::optional<std::vector<xdpctl_pol_small_rule>> anchor_rules;
    // kFieldSrc or kFieldDst when the direction is decided by that address's class alone
    // (policy/shapes.h), else -1.
    int decide_field = -1;

    // Per rank, the match print of its rule (compile_delta.h; 0 at a free rank), when the
    // compile was asked for them (CompileOptions::prints) or patched a cached compile.
    std::vector<uint64_t> match_prints;
    bool patchable = false;  // no rule names an interface, sets only in split fields (compile_delta.h)
    bool patched = false;    // compiled by patching a cached compile
};

struct CompiledPolicy {
    CompiledDirection dir[2];  // Direction::ingress, Direction::egress
    ActionKind default_action = ActionKind::pass;
};

// The rows of one direction a generation holds, per field in class order (class id =
// index), as prints (RowTable::prints): what align_classes() keeps ids to.
struct ClassLayout {
    bool valid = false;
    uint32_t words = 0, agg_words = 0, n_rules = 0;
    std::vector<RowPrint> field[kFieldCount];
    // The rule id at each rank (n_rules of them), when known: a class is then named by the
    // ranks its rules had there, so a rule inserted among others (which moves every later
    // rank) renames no class. Empty: rules the held policy had are taken to keep their ranks
    // (rules added last).
    std::vector<uint32_t> ids;
};

// Renumbers c's classes so that a class whose row `held` holds keeps the id it has there; the
// other classes take the ids of classes gone, then ids past the field's (rows no table points
// at are the field's base). Classifies as before. Class ids are given in sweep order, so a new
// prefix or port moved every later class and every later field's rows; aligned, a commit into
// the generation `held` describes writes the rows that changed. Leaves c as it is when the
// ids would spread too far (many classes gone) or past a limit. With nothing to align to
// (`held` not valid, or of other rows), a large policy's fields get room for more classes.
void align_classes(CompiledDirection& c, const ClassLayout& held);

// iif names are resolved through `ifindex_of` (0: unknown, the rule never matches).
// The rule gives the name and its namespace (Rule::iif_netns); interface indexes are per
// namespace, so one name can stand for different indexes in two rules.
using RuleIfindexResolver = std::function<uint32_t(const Rule&)>;
struct CompileOptions {
    // An address field whose rules name 1 to this many distinct sets is split by them
    // (AddrClassTable::split): its table holds the rules' prefixes only. 0: every set is
    // merged into its fields' classes (what the datapath reads today).
    uint32_t max_split_sets = 0;
    // Nor when (rule prefixes + 1) << sets would pass this (the datapath's node array).
    size_t max_node_classes = XDPCTL_POL_NODE_CLASSES;
    // The caller has checked the policy (check_policy, as a commit's PolicyStore::complete
    // does): not again (~0.15 ms at 10,000 rules).
    bool checked = false;
    // Per direction, the ranks the generation in force gives its rules (rank_gaps.h): kept
    // where they can be. nullptr: ranks given afresh.
    const RankHint* rank_hints = nullptr;
    // A compile to patch where the rules changed (compile_delta.h, compile_cache.h), taken
    // (moved from, not copied: ~1 MiB at 10,000 rules); with `prints`, the match prints are
    // given (CompiledDirection::match_prints) for the next.
    CompileCache* cache = nullptr;
    bool prints = false;
    // A direction's last (or else first) rule on one set alone becomes its edge rule
    // (CompiledDirection::edge) when the maps hold sets' own tables and every loaded program
    // reads edges, and at least `edge_min_rules` rules stay ranked: fewer compile whole in
    // about a millisecond, and a policy of the set alone keeps the one-field path.
    bool edge_sets = false;
    size_t edge_min_rules = 1000;
};
// Fields split by more sets than this would have 2^sets classes a rule prefix.
inline constexpr uint32_t kMaxSplitSets = 4;

CompiledPolicy compile_policy(const Policy& p, const RuleIfindexResolver& ifindex_of, CompileOptions opts = {});
// By name alone (every rule's name in one namespace): the tests' resolvers.
using IfindexResolver = uint32_t (*)(const std::string&);
CompiledPolicy compile_policy(const Policy& p, IfindexResolver ifindex_of, CompileOptions opts = {});

// Walks the compiled tables as the BPF classifier does (for tests). `ifindex` is the
// packet's ingress interface index. `sets_of`: the policy's sets, needed when an address
// table is split by sets.
Verdict classify_compiled(const CompiledPolicy& c, const PacketKey& k, uint32_t ifindex,
                          const std::map<std::string, PrefixSet>* sets_of = nullptr);

}  // namespace xdpctl::policy
