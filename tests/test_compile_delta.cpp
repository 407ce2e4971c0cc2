// A compile patched where rules changed (compile_delta.h) against a whole compile of the same
// policy with the same ranks: every table cell's row (the rules a packet with that value may
// match) must be the same, every address the same row, and random packets must get the
// reference classifier's verdicts; over chains of commits, each patching the last, with and
// without align_classes between them, and through the cache's bytes (compile_cache.h).
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include <unistd.h>

#include "policy/compile_cache.h"
#include "policy/compile_delta.h"
#include "policy/compiled_policy.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"
#include "policy_gen.h"

using namespace xdpctl::policy;
using xdpctl::test::diff_seeds;
using xdpctl::test::Gen;
using xdpctl::test::gen_ifindex;
using xdpctl::test::layout_of;

namespace {

// The generator's rules that a patch takes (no set, no interface), ids from `first_id`.
std::vector<Rule> patchable_rules(Gen& g, int n, uint32_t first_id)
{
    std::vector<Rule> out;
    for (Rule r : g.policy(n, 0).rules)
        if (patchable_rule(r)) {
            r.id = first_id + uint32_t(out.size());
            out.push_back(r);
        }
    return out;
}

// What a commit keeps of its compile, straight or (`bytes`) through the cache's bytes, at any
// size.
CompileCache cache_of(const CompiledPolicy& c, bool bytes = false)
{
    if (bytes) {
        std::optional<CompileCache> read = decode_compile_cache(encode_compile_cache(c, nullptr, 1));
        EXPECT_TRUE(read || (!c.dir[0].n_rules && !c.dir[1].n_rules));
        return read ? std::move(*read) : CompileCache{};
    }
    CompileCache out;
    for (int d = 0; d < 2; d++)
        if (c.dir[d].n_rules && c.dir[d].patchable)
            out.dir[d] = CachedDirection{c.dir[d].match_prints, c.dir[d]};
    return out;
}

RankHints hints_of(const CompiledPolicy& c)
{
    RankHints h;
    for (int d = 0; d < 2; d++) {
        h.dir[d].words = c.dir[d].words;
        for (const RuleRecord& r : c.dir[d].ranked)
            h.dir[d].ids.push_back(r.id);
    }
    return h;
}


std::vector<uint64_t> row(const CompiledDirection& c, Field f, uint32_t cls)
{
    return c.rows.row(c.row_base[f] + cls);
}

// An address just inside the start and the end of `p`.
std::array<uint8_t, 16> edge(const Prefix& p, bool end)
{
    std::array<uint8_t, 16> a = p.addr;
    if (end)
        for (int bit = p.len; bit < (p.family == Family::v4 ? 32 : 128); bit++)
            a[size_t(bit / 8)] |= uint8_t(0x80 >> (bit % 8));
    return a;
}

// Every cell of every table gives the same row in `got` as in `want`.
void same_rows(const CompiledDirection& got, const CompiledDirection& want, const std::string& where)
{
    ASSERT_EQ(got.n_rules, want.n_rules) << where;
    ASSERT_EQ(got.words, want.words) << where;
    ASSERT_EQ(got.rank_of, want.rank_of) << where;
    if (!want.n_rules)
        return;
    // Each pair of classes compared once (the L4 table has 131,072 cells).
    std::set<std::tuple<int, uint32_t, uint32_t>> compared;
    auto same = [&](Field f, uint32_t g, uint32_t w) {
        return !compared.insert({f, g, w}).second || row(got, f, g) == row(want, f, w);
    };
    auto table = [&](Field f, const std::vector<uint16_t>& g, const std::vector<uint16_t>& w, const char* name) {
        ASSERT_EQ(g.size(), w.size()) << where << name;
        for (size_t i = 0; i < w.size(); i++)
            ASSERT_TRUE(same(f, g[i], w[i])) << where << " " << name << " entry " << i;
    };
    table(kFieldSport, got.sport, want.sport, "sport");
    table(kFieldDport, got.dport, want.dport, "dport");
    table(kFieldL4, got.l4, want.l4, "l4");
    table(kFieldVlan, got.vlan, want.vlan, "vlan");
    table(kFieldIif, got.iif, want.iif, "iif");
    auto one = [&](Field f, uint32_t g, uint32_t w, const char* name) {
        ASSERT_EQ(row(got, f, g), row(want, f, w)) << where << " " << name;
    };
    one(kFieldSrc, got.src_nonip_class, want.src_nonip_class, "src non-IP");
    one(kFieldDst, got.dst_nonip_class, want.dst_nonip_class, "dst non-IP");
    one(kFieldSport, got.sport_none_class, want.sport_none_class, "no sport");
    one(kFieldDport, got.dport_none_class, want.dport_none_class, "no dport");
    one(kFieldL4, got.l4_nonip_class, want.l4_nonip_class, "l4 non-IP");
    one(kFieldIif, got.iif_other_class, want.iif_other_class, "other iif");
    const std::tuple<Field, Family, const AddrClassTable*, const AddrClassTable*> addr[] = {
        {kFieldSrc, Family::v4, &got.src_v4, &want.src_v4},
        {kFieldSrc, Family::v6, &got.src_v6, &want.src_v6},
        {kFieldDst, Family::v4, &got.dst_v4, &want.dst_v4},
        {kFieldDst, Family::v6, &got.dst_v6, &want.dst_v6}};
    for (const auto& [f, fam, g, w] : addr) {
        // A whole compile has an entry for each prefix a rule names, no other: so must a patch.
        std::vector<Prefix> gp, wp;
        for (const auto& e : g->entries)
            gp.push_back(e.prefix);
        for (const auto& e : w->entries)
            wp.push_back(e.prefix);
        ASSERT_EQ(gp, wp) << where << " entries of field " << f;
        // Split by sets: the same sets, and each node's class under every membership mask.
        ASSERT_EQ(g->sets, w->sets) << where << " sets of field " << f;
        const uint32_t masks = 1u << w->sets.size();
        auto cls = [&](const AddrClassTable* t, uint32_t found, uint32_t m) {
            return t->split() ? t->node_class.at(size_t(found) << t->sets.size() | m) : found;
        };
        for (const auto& e : w->entries)
            for (bool end : {false, true})
                for (uint32_t m = 0; m < masks; m++) {
                    const auto a = edge(e.prefix, end);
                    ASSERT_TRUE(same(f, cls(g, g->lookup(fam, a), m), cls(w, w->lookup(fam, a), m)))
                        << where << " field " << f << " " << format_prefix(e.prefix) << " mask " << m;
                }
        for (uint32_t m = 0; m < masks; m++)
            one(f, cls(g, g->default_class, m), cls(w, w->default_class, m), "default");
        if (w->split()) {  // numbered as a whole compile numbers them
            ASSERT_EQ(g->node_class.size(), w->node_class.size()) << where << " field " << f;
            for (size_t i = 0; i < g->entries.size(); i++)
                ASSERT_EQ(g->entries[i].cls, w->entries[i].cls) << where << " field " << f << " entry " << i;
        }
    }
    // The rows are compact: every class is named by some table.
    for (int f = 0; f < kFieldCount; f++)
        ASSERT_LE(got.n_classes[f], want.n_classes[f] + 0u) << where << " field " << f << " has classes no table names";
}

// `p` compiled patching `last` (its cache straight or, `bytes`, through the cache's bytes),
// checked against a whole compile with the same ranks, cell by cell in both directions.
CompiledPolicy patched_as_whole(const Policy& p, const CompiledPolicy& last, bool bytes, uint32_t max_split_sets,
                                const std::string& where)
{
    const RankHints hints = hints_of(last);
    CompileCache cache = cache_of(last, bytes);
    CompiledPolicy got = compile_policy(
        p, gen_ifindex, {.max_split_sets = max_split_sets, .rank_hints = hints.dir, .cache = &cache, .prints = true});
    const CompiledPolicy want =
        compile_policy(p, gen_ifindex, {.max_split_sets = max_split_sets, .rank_hints = hints.dir});
    for (int d = 0; d < 2; d++) {
        same_rows(got.dir[d], want.dir[d], where + " dir " + std::to_string(d));
        if (::testing::Test::HasFatalFailure())
            break;
    }
    return got;
}

// Changes a policy as commits do: rules deleted, added (anywhere in evaluation order, or
// last), changed in place under their id.
void change(Policy& p, Gen& g, uint32_t& next_id, int n)
{
    for (int i = 0; i < n; i++) {
        const uint64_t op = g.u(3);
        if (op == 0 && p.rules.size() > 1) {
            p.rules.erase(p.rules.begin() + ptrdiff_t(g.u(p.rules.size())));
        } else if (op == 1) {
            Rule r = patchable_rules(g, 4, next_id).front();
            next_id++;
            r.priority = g.coin(50) ? 100000 : uint32_t(g.u(20));
            p.rules.push_back(r);
        } else {
            Rule& r = p.rules[g.u(p.rules.size())];
            const Rule other = patchable_rules(g, 4, r.id).front();
            r.src = other.src, r.dst = other.dst, r.sport = other.sport, r.dport = other.dport;
            r.proto = other.proto, r.tcp_flags = other.tcp_flags, r.fragment = other.fragment, r.vlan = other.vlan;
        }
    }
}

void agree_with_reference(const Policy& p, const CompiledPolicy& c, Gen& g, const std::string& where, int packets)
{
    for (int i = 0; i < packets; i++) {
        uint32_t ifindex = 0;
        const PacketKey k = g.packet(&ifindex);
        const Verdict want = classify(p, k);
        const Verdict got = classify_compiled(c, k, ifindex, &p.sets);
        ASSERT_EQ(got.rule_id, want.rule_id) << where << " packet " << i;
        ASSERT_EQ(got.action, want.action) << where << " packet " << i;
        ASSERT_EQ(got.counted, want.counted) << where << " packet " << i;
    }
}

}  // namespace

// Chains of commits on random policies: each compile patches the one before (aligned to the
// one before that, as a commit aligns to the spare generation, every other seed), and must
// give every cell the row a whole compile gives it.
TEST(CompileDelta, PatchedCompilesHaveTheWholeCompilesRows)
{
    size_t patched = 0, directions = 0;
    for (uint64_t seed = 1; seed <= diff_seeds(24); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p;
        p.rules = patchable_rules(g, int(20 + g.u(seed % 3 ? 150 : 1200)), 1);
        uint32_t next_id = 500000;
        CompiledPolicy last = compile_policy(p, gen_ifindex, {.prints = true});
        CompiledPolicy before_last = last;
        for (int round = 0; round < 6; round++) {
            change(p, g, next_id, 1 + int(g.u(seed % 4 == 0 ? 12 : 3)));
            const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round);
            // Aligned rows are in another order than what they point at: every other seed's
            // chain goes through the bytes.
            const CompiledPolicy got = patched_as_whole(p, last, seed % 4 < 2, 0, where);
            if (HasFatalFailure())
                return;
            for (int d = 0; d < 2; d++) {
                patched += got.dir[d].patched;
                directions += got.dir[d].n_rules > 0;
            }
            agree_with_reference(p, got, g, where, 300);
            if (HasFatalFailure())
                return;
            before_last = std::move(last);
            last = got;
            if (seed % 2)
                for (int d = 0; d < 2; d++)
                    align_classes(last.dir[d], layout_of(before_last.dir[d]));
        }
    }
    // Most commits change few ranks and keep the rows' size: patched, not compiled whole.
    EXPECT_GT(patched, directions * 3 / 4) << patched << " of " << directions << " directions patched";
}

// A large policy through the cache's bytes, as commits keep it: a rule added, one deleted, one
// changed, each patched (not compiled whole), with the whole compile's rows.
TEST(CompileDelta, ThroughTheCachesBytes)
{
    Gen g(77);
    g.make_pools();
    Policy p;
    p.rules = patchable_rules(g, 3000, 1);
    ASSERT_GE(p.rules.size(), 2 * kCachedRulesMin);
    for (Rule& r : p.rules)
        r.dir = Direction::ingress;
    CompiledPolicy last = compile_policy(p, gen_ifindex, {.prints = true});
    uint32_t next_id = 900000;
    const std::string path = "/tmp/xdpctl-test-compiled-" + std::to_string(getpid());
    for (int round = 0; round < 4; round++) {
        write_compile_cache(encode_compile_cache(last), path);
        std::optional<CompileCache> cache = read_compile_cache(0, path);
        ASSERT_TRUE(cache && cache->dir[0]) << "round " << round;
        EXPECT_FALSE(cache->dir[1]);  // no rules there
        change(p, g, next_id, 1);
        const RankHints hints = hints_of(last);
        CompiledPolicy got = compile_policy(p, gen_ifindex, {.rank_hints = hints.dir, .cache = &*cache, .prints = true});
        const CompiledPolicy want = compile_policy(p, gen_ifindex, {.rank_hints = hints.dir});
        EXPECT_TRUE(got.dir[0].patched) << "round " << round;
        same_rows(got.dir[0], want.dir[0], "round " + std::to_string(round));
        if (HasFatalFailure())
            break;
        last = std::move(got);
    }
    unlink(path.c_str());
}

// A cache cut short, with a byte changed, of another layout or of a policy with a set is not
// used; a commit that changes many ranks compiles whole.
TEST(CompileDelta, ACacheNotWholeOrTooFarIsNotPatched)
{
    Gen g(5);
    g.make_pools();
    Policy p;
    p.rules = patchable_rules(g, 2600, 1);
    for (Rule& r : p.rules)
        r.dir = Direction::ingress;
    const CompiledPolicy c = compile_policy(p, gen_ifindex, {.prints = true});
    const std::string bytes = encode_compile_cache(c);
    ASSERT_FALSE(bytes.empty());
    ASSERT_TRUE(decode_compile_cache(bytes));
    EXPECT_FALSE(decode_compile_cache(bytes.substr(0, bytes.size() - 1)));
    for (size_t at : {size_t(0), size_t(20), bytes.size() / 2, bytes.size() - 1}) {
        std::string bad = bytes;
        bad[at] ^= 1;
        EXPECT_FALSE(decode_compile_cache(bad)) << "byte " << at;
    }
    // Without prints (not asked for) or with a rule naming a set: nothing kept.
    EXPECT_EQ(encode_compile_cache(compile_policy(p, gen_ifindex)), "");
    Policy with_set = p;
    PrefixSet& set = with_set.sets["s"];
    set.name = "s";
    set.entries = {{parse_prefix("10.0.0.0/8"), false}};
    with_set.rules[0].src.kind = AddrMatch::Kind::set;
    with_set.rules[0].src.set = "s";
    EXPECT_EQ(encode_compile_cache(compile_policy(with_set, gen_ifindex, {.prints = true})), "");

    // 40 rules changed: past kMaxPatchedRanks, compiled whole, with the same rows.
    CompileCache cache = cache_of(c);
    const RankHints hints = hints_of(c);
    Policy many = p;
    uint32_t next_id = 800000;
    for (int i = 0; i < 40; i++)
        many.rules.erase(many.rules.begin() + ptrdiff_t(g.u(many.rules.size())));
    CompiledPolicy got = compile_policy(many, gen_ifindex, {.rank_hints = hints.dir, .cache = &cache});
    EXPECT_FALSE(got.dir[0].patched);
    same_rows(got.dir[0], compile_policy(many, gen_ifindex, {.rank_hints = hints.dir}).dir[0], "40 deleted");
    // 2 changed: patched.
    cache = cache_of(c);
    Policy few = p;
    change(few, g, next_id, 2);
    got = compile_policy(few, gen_ifindex, {.rank_hints = hints.dir, .cache = &cache});
    EXPECT_TRUE(got.dir[0].patched);
    same_rows(got.dir[0], compile_policy(few, gen_ifindex, {.rank_hints = hints.dir}).dir[0], "2 changed");
}

// Fields split by the sets their rules name (AddrClassTable::split): rules naming sets added,
// deleted and changed, sets' members changed between commits (a split field's classes do not
// depend on them), chains of patched compiles against whole ones, the same rows under every
// membership mask and the reference's verdicts; through the cache's bytes every other seed.
// A commit that names a set no rule named (or names one no more) is compiled whole.
TEST(CompileDelta, FieldsSplitBySetsArePatched)
{
    size_t patched = 0, directions = 0, set_rules_patched = 0, resplit = 0;
    for (uint64_t seed = 300; seed < 300 + diff_seeds(24); seed++) {
        Gen g(seed);
        g.make_pools();
        const int n_sets = int(1 + g.u(3));
        Policy p = g.policy(int(30 + g.u(seed % 3 ? 120 : 900)), n_sets);
        std::erase_if(p.rules, [](const Rule& r) { return !patchable_rule(r); });
        // Every other seed: every set named by two rules in each direction, which stay (the
        // fields split the same way throughout); else sets come to be named and named no more.
        for (int d = 0; d < (seed % 4 < 2 ? 2 : 0); d++)
            for (int s = 0; s < n_sets; s++)
                for (int i = 0; i < 2; i++) {
                    Rule r;
                    r.id = 700000 + uint32_t(d * 100 + s * 10 + i);
                    r.dir = d ? Direction::egress : Direction::ingress;
                    r.priority = uint32_t(g.u(20));
                    r.src.kind = AddrMatch::Kind::set;
                    r.src.set = "s" + std::to_string(s);
                    r.proto = 6;
                    r.dport = {uint16_t(1000 + s), uint16_t(1000 + s)};
                    p.rules.push_back(r);
                }
        uint32_t next_id = 500000;
        CompiledPolicy last = compile_policy(p, gen_ifindex, {.max_split_sets = kMaxSplitSets, .prints = true});
        for (int round = 0; round < 6; round++) {
            // Rules of the generator's (naming sets or not) added, deleted, changed in place.
            const int n = 1 + int(g.u(3));
            bool set_rule = false;
            for (int i = 0; i < n; i++) {
                const uint64_t op = g.u(3);
                Rule other = g.policy(1, n_sets).rules[0];
                if (!patchable_rule(other))
                    continue;
                set_rule = set_rule || other.src.kind == AddrMatch::Kind::set || other.dst.kind == AddrMatch::Kind::set;
                if (op == 0 && p.rules.size() > 40) {
                    const size_t at = g.u(p.rules.size());
                    if (p.rules[at].id < 700000)
                        p.rules.erase(p.rules.begin() + ptrdiff_t(at));
                } else if (op == 1) {
                    other.id = next_id++;
                    p.rules.push_back(other);
                } else {
                    Rule& r = p.rules[g.u(p.rules.size())];
                    if (r.id >= 700000)
                        continue;
                    r.src = other.src, r.dst = other.dst, r.sport = other.sport, r.dport = other.dport;
                    r.proto = other.proto, r.tcp_flags = other.tcp_flags, r.fragment = other.fragment;
                    r.vlan = other.vlan;
                }
            }
            // A set's members changed: no class changes with them.
            PrefixSet& set = p.sets.at("s" + std::to_string(g.u(uint64_t(n_sets))));
            const Prefix add = g.pick(g.coin(60) ? Family::v4 : Family::v6);
            if (std::none_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; })) {
                set.entries.push_back({add, g.coin(25)});
                set.normalize();
            }
            const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round);
            const CompiledPolicy got = patched_as_whole(p, last, seed % 2, kMaxSplitSets, where);
            if (HasFatalFailure())
                return;
            for (int d = 0; d < 2; d++) {
                patched += got.dir[d].patched;
                set_rules_patched += got.dir[d].patched && set_rule;
                directions += got.dir[d].n_rules > 0;
                // Split by other sets than the compile patched (a set named first, or no more).
                if (got.dir[d].patched)
                    for (auto [now, was] : {std::pair{&got.dir[d].src_v4, &last.dir[d].src_v4},
                                            std::pair{&got.dir[d].dst_v4, &last.dir[d].dst_v4}})
                        resplit += now->sets != was->sets;
            }
            agree_with_reference(p, got, g, where, 300);
            if (HasFatalFailure())
                return;
            last = got;
        }
    }
    EXPECT_GT(patched, directions / 2) << patched << " of " << directions << " directions patched";
    EXPECT_GT(set_rules_patched, 10u) << "commits changing rules that name sets, patched";
    EXPECT_GT(resplit, 3u) << "patched commits that split a field by other sets";

    // A set named for the first time (the rule that puts a set in use), and named no more:
    // patched, the same rows as the whole compile.
    Gen g(9);
    g.make_pools();
    Policy p = g.policy(200, 2);
    std::erase_if(p.rules, [](const Rule& r) { return !patchable_rule(r) || r.src.kind == AddrMatch::Kind::set ||
                                                      r.dst.kind == AddrMatch::Kind::set; });
    for (Rule& r : p.rules)
        r.dir = Direction::ingress;
    Policy named = p;
    Rule r;
    r.id = 900001;
    r.src.kind = AddrMatch::Kind::set;
    r.src.set = "s1";
    named.rules.push_back(r);
    for (auto [from, to] : {std::pair{&p, &named}, std::pair{&named, &p}}) {
        const CompiledPolicy before = compile_policy(*from, gen_ifindex, {.max_split_sets = kMaxSplitSets, .prints = true});
        CompileCache cache = cache_of(before);
        const RankHints hints = hints_of(before);
        const CompiledPolicy got =
            compile_policy(*to, gen_ifindex, {.max_split_sets = kMaxSplitSets, .rank_hints = hints.dir, .cache = &cache});
        EXPECT_TRUE(got.dir[0].patched);
        EXPECT_EQ(got.dir[0].src_v4.split(), to == &named);
        same_rows(got.dir[0], compile_policy(*to, gen_ifindex, {.max_split_sets = kMaxSplitSets, .rank_hints = hints.dir}).dir[0],
                  from == &p ? "a set named first" : "a set named no more");
    }
}
