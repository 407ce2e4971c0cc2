// The set journal of the state directory (issue 14: "a 1M-prefix set must not make each
// commit slow"): `set add`/`set del` append a record to set.KEY.log instead of rewriting
// set.KEY; a load replays the records the manifest counts; a record torn by a kill is never
// read; past 1/8 of the base the base is rewritten and the journal dropped. The rules'
// journal (issue 12: `rule add` at 10,000 rules) the same for policy.GEN and `rule add`/`rule
// del`. StateDir is driven directly in a temporary directory (no BPF, no root).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dir_listing.h"
#include "policy/policy_binary.h"
#include "policy/rule_parse.h"
#include "policy/set_splice.h"
#include "policy/set_tables.h"
#include "state/durable_file.h"
#include "state/rules_journal.h"
#include "state/set_journal.h"
#include "state/state_dir.h"

namespace xdpctl::test {
namespace {

namespace fs = std::filesystem;
using policy::Policy;
using policy::PrefixSet;

// `n` distinct /32s in 10.0.0.0/8, normalized, as a stored set is.
PrefixSet hosts(uint32_t n)
{
    PrefixSet s;
    s.name = "big";
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t a = 0x0a000000u + i * 13;
        s.entries.push_back({policy::parse_prefix(fmt::format("{}.{}.{}.{}/32", a >> 24, (a >> 16) & 255,
                                                              (a >> 8) & 255, a & 255)),
                             false});
    }
    s.normalize();
    return s;
}

Policy with_set(PrefixSet s)
{
    Policy p;
    p.sets[s.name] = std::move(s);
    return p;
}

// `s` with `cidr` added ("!" for an exception) or, with `del`, removed.
PrefixSet changed(PrefixSet s, const std::string& cidr, bool del = false)
{
    const bool ex = cidr[0] == '!';
    const policy::SetEntry e{policy::parse_prefix(ex ? cidr.substr(1) : cidr), ex};
    if (del)
        s.entries.erase(std::find(s.entries.begin(), s.entries.end(), e));
    else
        s.entries.push_back(e);
    s.normalize();
    return s;
}

class StateJournalTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/xdpctl-test-journal-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = std::string(tmpl) + "/state";
    }
    void TearDown() override
    {
        std::error_code ec;
        fs::remove_all(fs::path(dir_).parent_path(), ec);
    }

    std::vector<std::string> files(const std::string& prefix) const { return files_starting(dir_, prefix); }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    ino_t inode(const std::string& name) const
    {
        struct stat st {};
        EXPECT_EQ(::stat(path(name).c_str(), &st), 0) << name;
        return st.st_ino;
    }
    // Replaces `name` with `text` (a manifest or journal as a kill or a damaged disk left it).
    void write(const std::string& name, const std::string& text) const
    {
        std::ofstream(path(name), std::ios::binary | std::ios::trunc) << text;
    }
    // Loading fails with a message that holds `says` (the file it names).
    void expect_refused(const std::string& says) const
    {
        try {
            loaded();
            ADD_FAILURE() << "loaded where it should say: " << says;
        } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
        }
    }
    // Recording `p`, which leaves the data file `base` (inode `ino`) and its journal as they
    // are, touches neither.
    void expect_untouched_by(const Policy& p, const std::string& base, ino_t ino) const
    {
        const auto log_size = fs::file_size(path(base + ".log"));
        state::StateDir(dir_).save_policy(p);
        EXPECT_EQ(inode(base), ino);
        EXPECT_EQ(fs::file_size(path(base + ".log")), log_size);
        EXPECT_EQ(loaded(), p);
    }
    // The manifest's format: 2 while it names a journal, so that an xdpctl reading only
    // format 1 refuses it rather than restore the base files without their journals.
    std::string format() const
    {
        return nlohmann::json::parse(*state::read_file_if_exists(path("manifest"))).value("format", "");
    }
    Policy loaded() const
    {
        auto s = state::StateDir(dir_).load();
        if (!s)
            throw std::runtime_error("nothing recorded");
        return s->policy;
    }

    std::string dir_;
};

TEST_F(StateJournalTest, SetAddAndDelAppendToTheJournalAndLoadReplaysThem)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(10000);
    d.save_policy(with_set(s0));
    const auto base = files("set.");
    ASSERT_EQ(base.size(), 1u);
    const ino_t ino = inode(base[0]);
    const auto base_size = fs::file_size(path(base[0]));

    const PrefixSet s1 = changed(s0, "198.19.7.0/24");
    d.save_policy(with_set(s1), &s0);
    EXPECT_EQ(files("set."), (std::vector<std::string>{base[0], base[0] + ".log"}));
    EXPECT_EQ(inode(base[0]), ino);  // the base is not rewritten
    EXPECT_EQ(fs::file_size(path(base[0])), base_size);
    EXPECT_LT(fs::file_size(path(base[0] + ".log")), 64u);
    EXPECT_EQ(loaded(), with_set(s1));

    // An exception, then a removal of an entry the base holds: the last op on each wins.
    const PrefixSet s2 = changed(s1, "!198.19.7.128/25");
    d.save_policy(with_set(s2), &s1);
    const PrefixSet s3 = changed(s2, "10.0.0.13/32", true);
    d.save_policy(with_set(s3), &s2);
    const PrefixSet s4 = changed(s3, "198.19.7.0/24", true);
    d.save_policy(with_set(s4), &s3);
    EXPECT_EQ(inode(base[0]), ino);
    EXPECT_EQ(loaded(), with_set(s4));

    // A commit that leaves the set alone (a rule) touches neither file.
    Policy rules = with_set(s4);
    rules.rules.push_back(policy::parse_rule({"--id", "1", "--src", "@big", "--action", "drop"}));
    expect_untouched_by(rules, base[0], ino);
}

TEST_F(StateJournalTest, ARecordTornByAKillIsNotReadAndTheNextAppendCutsItOff)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(5000), s1 = changed(s0, "198.19.1.0/24"), s2 = changed(s1, "198.19.2.0/24");
    d.save_policy(with_set(s0));
    d.save_policy(with_set(s1), &s0);  // the journal holds one record already
    const std::string log = files("set.")[1];
    ASSERT_EQ(log.substr(log.size() - 4), ".log");
    const std::string manifest_before = *state::read_file_if_exists(path("manifest"));
    const auto before_len = fs::file_size(path(log));
    d.save_policy(with_set(s2), &s1);
    const std::string manifest_after = *state::read_file_if_exists(path("manifest"));
    const auto after_len = fs::file_size(path(log));
    const std::string log_after = *state::read_file_if_exists(path(log));
    ASSERT_GT(after_len, before_len);
    EXPECT_EQ(loaded(), with_set(s2));

    // A kill during the append, at every byte of the record: the manifest still names the
    // generation before, whose bytes are whole.
    for (auto cut = before_len; cut < after_len; cut++) {
        write("manifest", manifest_before);
        fs::resize_file(path(log), cut);
        ASSERT_EQ(loaded(), with_set(s1)) << "cut at " << cut;
    }
    // A journal cut short under what its manifest counts (a damaged disk, never a kill:
    // the record is fdatasynced before the manifest is renamed) is refused by name.
    write("manifest", manifest_after);
    fs::resize_file(path(log), after_len - 1);
    expect_refused(log + " is cut short");
    // A flipped byte inside a counted record: refused by name too.
    std::string bytes = log_after;
    bytes[before_len + 20] ^= 1;
    write(log, bytes);
    expect_refused(log + " is damaged");

    // The torn tail of a killed writer left past the manifest's count: the next append
    // writes over it.
    write("manifest", manifest_before);
    write(log, log_after.substr(0, before_len) + std::string("XSJ1\x07garbage", 12));
    d.save_policy(with_set(s2), &s1);
    EXPECT_EQ(fs::file_size(path(log)), after_len);
    EXPECT_EQ(loaded(), with_set(s2));
}

TEST_F(StateJournalTest, PastAnEighthOfTheBaseTheBaseIsRewrittenAndTheJournalDropped)
{
    state::StateDir d(dir_);
    PrefixSet s = hosts(100);  // ~1 KiB: 1/8 of it is a few records
    d.save_policy(with_set(s));
    const std::string base = files("set.")[0];
    int journaled = 0;
    for (int i = 0; files("set.")[0] == base && i < 20; i++) {
        PrefixSet next = changed(s, fmt::format("198.19.{}.0/24", i));
        d.save_policy(with_set(next), &s);
        s = std::move(next);
        journaled += files("set.").size() == 2;
        ASSERT_EQ(loaded(), with_set(s)) << "after add " << i;
    }
    EXPECT_GT(journaled, 0);
    const auto now = files("set.");
    ASSERT_EQ(now.size(), 1u) << "a new base without a journal";
    EXPECT_NE(now[0], base);
    EXPECT_EQ(loaded(), with_set(s));
}

TEST_F(StateJournalTest, AJournalShorterThanCountedIsRefusedAndTheNextChangeRewritesTheBase)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(1000), s1 = changed(s0, "198.19.1.0/24"), s2 = changed(s1, "198.19.2.0/24");
    d.save_policy(with_set(s0));
    d.save_policy(with_set(s1), &s0);
    const auto named = files("set.");
    ASSERT_EQ(named.size(), 2u);
    fs::resize_file(path(named[1]), 0);  // damaged: what its manifest counts is gone
    EXPECT_THROW(loaded(), std::exception);
    // Appending after the hole would count zeros as records: the set is written whole.
    d.save_policy(with_set(s2), &s1);
    ASSERT_EQ(files("set.").size(), 1u);
    EXPECT_NE(files("set.")[0], named[0]);
    EXPECT_EQ(loaded(), with_set(s2));
}

// The sum of the entries' prints (set_tables.h): what a change in place knows of the set.
uint64_t print_sum(const PrefixSet& s)
{
    uint64_t sum = 0;
    for (const policy::SetEntry& e : s.entries)
        sum += policy::set_entry_print(e);
    return sum;
}

// `set add` in place (PolicyStore::change_set_in_place) gives the state directory the sums of
// the set's prints before and after the change, not the set: the record goes to the set's
// journal when the sum before is the recorded set's, and the key after is the set's (a commit
// that leaves the set as it is then touches nothing). Any other sum, or none, records nothing.
TEST_F(StateJournalTest, AChangeInPlaceIsAppendedByItsPrintSums)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(5000), s1 = changed(s0, "198.19.7.1/32");
    d.save_policy(with_set(s0));
    const auto base = files("set.");
    ASSERT_EQ(base.size(), 1u);
    const ino_t ino = inode(base[0]);
    state::SetChange change;
    change.added.push_back({policy::parse_prefix("198.19.7.1/32"), false});
    EXPECT_FALSE(d.append_set_change(with_set(s0), "big", change)) << "appended with no sums";
    change.print_sums = {print_sum(s0) + 1, print_sum(s1) + 1};
    EXPECT_FALSE(d.append_set_change(with_set(s0), "big", change)) << "appended to a set of another sum";
    EXPECT_EQ(files("set."), base);
    change.print_sums = {print_sum(s0), print_sum(s1)};
    ASSERT_TRUE(d.append_set_change(with_set(s0), "big", change));
    EXPECT_EQ(files("set."), (std::vector<std::string>{base[0], base[0] + ".log"}));
    EXPECT_EQ(inode(base[0]), ino);
    EXPECT_EQ(loaded(), with_set(s1));
    expect_untouched_by(with_set(s1), base[0], ino);
}

// A set an older xdpctl recorded under its key (16 hex digits: the entries folded in order,
// not their prints summed) loads, its journal checked by that key; a wrong one is refused. The
// next change records the set under a key of today's kind.
TEST_F(StateJournalTest, ASetRecordedUnderAnOlderKeyLoadsAndIsRecordedAnew)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(1000), s1 = changed(s0, "198.19.1.0/24"), s2 = changed(s1, "198.19.2.0/24");
    d.save_policy(with_set(s0));
    d.save_policy(with_set(s1), &s0);
    auto folded = [](const PrefixSet& s) {  // the older key, as it was made
        uint64_t h = state::checksum64(s.name), n = 0;
        for (const policy::SetEntry& e : s.entries) {
            const uint64_t head = uint64_t(e.prefix.family) | uint64_t(e.prefix.len) << 8 | uint64_t(e.except) << 16;
            uint64_t a = 0;
            std::memcpy(&a, e.prefix.addr.data(), 4);
            h = state::fold64(h, head | a << 32);
            n++;
        }
        return fmt::format("{:016x}", state::mix64(h, n));
    };
    nlohmann::json m = nlohmann::json::parse(*state::read_file_if_exists(path("manifest")));
    ASSERT_TRUE(m["sets"][0]["key"].get<std::string>().starts_with("s"));
    m["sets"][0]["key"] = folded(s0);
    write("manifest", m.dump());
    expect_refused("is not the one");
    m["sets"][0]["key"] = folded(s1);
    write("manifest", m.dump());
    EXPECT_EQ(loaded(), with_set(s1));
    d.save_policy(with_set(s2), &s1);
    EXPECT_EQ(loaded(), with_set(s2));
    m = nlohmann::json::parse(*state::read_file_if_exists(path("manifest")));
    EXPECT_TRUE(m["sets"][0]["key"].get<std::string>().starts_with("s"));
}

TEST_F(StateJournalTest, ASetTheDirectoryDidNotRecordIsWrittenWhole)
{
    state::StateDir d(dir_);
    const PrefixSet s0 = hosts(1000), other = changed(s0, "198.19.9.0/24"), s1 = changed(s0, "198.19.1.0/24");
    d.save_policy(with_set(s0));
    // The command's "before" is not what the directory holds (a change made with no state
    // directory): a journal record on top of the wrong base would give a third set.
    d.save_policy(with_set(s1), &other);
    ASSERT_EQ(files("set.").size(), 1u);
    EXPECT_EQ(loaded(), with_set(s1));
}

// `n` rules with ids 1..n (an udp port each), default drop.
Policy rules(uint32_t n)
{
    Policy p;
    p.default_action = policy::ActionKind::drop;
    for (uint32_t i = 1; i <= n; i++)
        p.rules.push_back(policy::parse_rule({"--id", std::to_string(i), "--proto", "udp", "--dport",
                                              std::to_string(1000 + i), "--action", "pass"}));
    return p;
}

// `p` with a rule of id `id` added at the end, and the splice saying so.
std::pair<Policy, state::RulesSplice> rule_added(const Policy& p, uint32_t id)
{
    Policy next = p;
    next.rules.push_back(policy::parse_rule({"--id", std::to_string(id), "--src", "198.19.7.0/24", "--action", "drop"}));
    return {next, {state::rules_key(p), p.rules.size(), p.rules.size(), 0, 1}};
}

// `p` without the rule at index `at`.
std::pair<Policy, state::RulesSplice> rule_deleted(const Policy& p, size_t at)
{
    Policy next = p;
    next.rules.erase(next.rules.begin() + long(at));
    return {next, {state::rules_key(p), p.rules.size(), at, 1, 0}};
}

TEST_F(StateJournalTest, RuleAddAndDelAppendToTheRulesJournalAndLoadReplaysThem)
{
    state::StateDir d(dir_);
    const Policy p0 = rules(1000);
    d.save_policy(p0);
    const auto base = files("policy.");
    ASSERT_EQ(base.size(), 1u);
    const ino_t ino = inode(base[0]);

    EXPECT_EQ(format(), "xdpctl-state 1");
    auto [p1, add] = rule_added(p0, 5000);
    d.save_policy(p1, nullptr, &add);
    EXPECT_EQ(format(), "xdpctl-state 2");
    EXPECT_EQ(files("policy."), (std::vector<std::string>{base[0], base[0] + ".log"}));
    EXPECT_EQ(inode(base[0]), ino);  // the rules file is not rewritten
    EXPECT_LT(fs::file_size(path(base[0] + ".log")), 128u);
    EXPECT_EQ(loaded(), p1);

    // A rule deleted from the middle, then one from the end, and the default changed with it:
    // each record puts its rules in their place.
    auto [p2, del] = rule_deleted(p1, 500);
    d.save_policy(p2, nullptr, &del);
    auto [p3, del_last] = rule_deleted(p2, p2.rules.size() - 1);
    p3.default_action = policy::ActionKind::pass;
    d.save_policy(p3, nullptr, &del_last);
    EXPECT_EQ(inode(base[0]), ino);
    EXPECT_EQ(loaded(), p3);

    // A commit that leaves the rules alone (a set) touches neither file.
    Policy with = p3;
    with.sets["big"] = hosts(10);
    expect_untouched_by(with, base[0], ino);
}

TEST_F(StateJournalTest, ARulesRecordTornByAKillIsNotReadAndADamagedOneIsRefused)
{
    state::StateDir d(dir_);
    const Policy p0 = rules(500);
    d.save_policy(p0);
    auto [p1, a1] = rule_added(p0, 900);
    d.save_policy(p1, nullptr, &a1);
    const std::string log = files("policy.")[1];
    ASSERT_EQ(log.substr(log.size() - 4), ".log");
    const std::string manifest_before = *state::read_file_if_exists(path("manifest"));
    const auto before_len = fs::file_size(path(log));
    auto [p2, a2] = rule_added(p1, 901);
    d.save_policy(p2, nullptr, &a2);
    const std::string manifest_after = *state::read_file_if_exists(path("manifest"));
    const std::string log_after = *state::read_file_if_exists(path(log));
    ASSERT_GT(log_after.size(), before_len);
    EXPECT_EQ(loaded(), p2);

    for (auto cut = before_len; cut < log_after.size(); cut++) {
        write("manifest", manifest_before);
        fs::resize_file(path(log), cut);
        ASSERT_EQ(loaded(), p1) << "cut at " << cut;
    }
    // A flipped byte inside a counted record: refused, naming the journal.
    write("manifest", manifest_after);
    std::string bytes = log_after;
    bytes[before_len + 30] ^= 1;
    write(log, bytes);
    expect_refused(log + " is damaged");
    // The torn tail of a killed writer past the manifest's count: the next append writes
    // over it.
    write("manifest", manifest_before);
    write(log, log_after.substr(0, before_len) + std::string("XRJ1\x07garbage", 12));
    d.save_policy(p2, nullptr, &a2);
    EXPECT_EQ(*state::read_file_if_exists(path(log)), log_after);
    EXPECT_EQ(loaded(), p2);
}

TEST_F(StateJournalTest, RulesPastAnEighthOrNotRecordedAreWrittenWhole)
{
    state::StateDir d(dir_);
    Policy p = rules(20);  // ~1 KiB: 1/8 of it is a record or two
    d.save_policy(p);
    const std::string base = files("policy.")[0];
    int journaled = 0;
    for (uint32_t i = 0; files("policy.")[0] == base && i < 20; i++) {
        auto [next, add] = rule_added(p, 100 + i);
        d.save_policy(next, nullptr, &add);
        p = std::move(next);
        journaled += files("policy.").size() == 2;
        ASSERT_EQ(loaded(), p) << "after add " << i;
    }
    EXPECT_GT(journaled, 0);
    ASSERT_EQ(files("policy.").size(), 1u) << "a new rules file without a journal";
    EXPECT_NE(files("policy.")[0], base);
    EXPECT_EQ(format(), "xdpctl-state 1");

    // A change of rules the directory does not hold (one made with no state directory): a
    // record on top of the wrong rules would give a third policy.
    const auto recorded = files("policy.");
    Policy unrecorded = p;
    unrecorded.rules.pop_back();
    auto [next, add] = rule_added(unrecorded, 7000);
    d.save_policy(next, nullptr, &add);
    ASSERT_EQ(files("policy.").size(), 1u);
    EXPECT_NE(files("policy."), recorded);
    EXPECT_EQ(loaded(), next);
}

TEST(RulesJournal, ReplayAppliesWholeRecordsInOrderAndStopsAtATornOne)
{
    const Policy p0 = rules(30);
    auto [p1, add] = rule_added(p0, 77);
    auto [p2, del] = rule_deleted(p1, 3);
    const std::string r1 = state::encode_rules_record(1, add, p1), r2 = state::encode_rules_record(2, del, p2);
    Policy p = p0;
    EXPECT_EQ(state::replay_rules_journal(p, r1 + r2, "j"), r1.size() + r2.size());
    EXPECT_EQ(p, p2);
    for (size_t cut = 0; cut < r2.size(); cut++) {
        Policy t = p0;
        EXPECT_EQ(state::replay_rules_journal(t, r1 + r2.substr(0, cut), "j"), r1.size());
        EXPECT_EQ(t, p1) << "cut at " << cut;
    }
    // The key tells the rules apart by any field, and by their order.
    Policy q = p2;
    EXPECT_EQ(state::rules_key(q), state::rules_key(p2));
    q.rules[5].dport.hi++;
    EXPECT_NE(state::rules_key(q), state::rules_key(p2));
    q = p2;
    std::swap(q.rules[1], q.rules[2]);
    EXPECT_NE(state::rules_key(q), state::rules_key(p2));
    q = p2;
    q.rules[0].iif_netns = "lab";
    EXPECT_NE(state::rules_key(q), state::rules_key(p2));
}

TEST(SetJournal, ReplayAppliesWholeRecordsInOrderAndStopsAtATornOne)
{
    const PrefixSet s0 = hosts(50), s1 = changed(s0, "198.19.1.0/24"), s2 = changed(s1, "10.0.0.0/32", true);
    const std::string r1 = state::encode_journal_record(1, state::diff_sets(s0, s1));
    const std::string r2 = state::encode_journal_record(2, state::diff_sets(s1, s2));
    EXPECT_EQ(state::diff_sets(s0, s1).added.size(), 1u);
    EXPECT_EQ(state::diff_sets(s1, s2).removed.size(), 1u);
    PrefixSet s = s0;
    EXPECT_EQ(state::replay_journal(s, r1 + r2), r1.size() + r2.size());
    EXPECT_EQ(s, s2);
    for (size_t cut = 0; cut < r2.size(); cut++) {
        PrefixSet t = s0;
        EXPECT_EQ(state::replay_journal(t, r1 + r2.substr(0, cut)), r1.size());
        EXPECT_EQ(t, s1) << "cut at " << cut;
    }
}

// splice_set_changes (how a rule command reads a set changed in place since the last commit)
// against replay_journal on random sets and IPv4 ops: the spliced bytes,
// read whole and streamed, must decode to what the replay gives, with its count and print.
// Large bases put splices in several of the result's chunks and at their edges. An IPv6 op
// (never made in place) is refused.
TEST(SetJournal, ChangesSplicedIntoStoredBytesGiveWhatTheReplayGives)
{
    std::mt19937_64 rng(6174);
    auto entry = [&](bool v6) {
        policy::SetEntry e;
        e.prefix.family = v6 ? policy::Family::v6 : policy::Family::v4;
        e.prefix.len = uint8_t(v6 ? 48 + rng() % 81 : 16 + rng() % 17);
        for (size_t b = 0; b < (v6 ? 16u : 4u); b++)
            e.prefix.addr[b] = uint8_t(rng() % 4 == 0 ? 0 : b < 2 ? 10 + rng() % 3 : rng());
        e.except = rng() % 5 == 0;
        return e;
    };
    for (int round = 0; round < 120; round++) {
        PrefixSet base;
        base.name = "s";
        const int n = round % 10 == 9 ? 40000 : int(rng() % 60);
        for (int i = 0; i < n; i++)
            base.entries.push_back(entry(rng() % 4 == 0));
        base.normalize();
        // The bytes a stored image holds for it (policy_binary.h), after 3 bytes of something else.
        auto bytes = std::make_shared<std::string>("abc");
        uint32_t v4 = 0;
        uint64_t sum = 0;
        for (const policy::SetEntry& e : base.entries) {
            bytes->push_back(char(uint8_t(e.prefix.family) | (e.except ? 0x80 : 0)));
            bytes->push_back(char(e.prefix.len));
            bytes->append(reinterpret_cast<const char*>(e.prefix.addr.data()), e.prefix.family == policy::Family::v4 ? 4 : 16);
            v4 += e.prefix.family == policy::Family::v4;
            sum += policy::set_entry_print(e);
        }
        const policy::UndecodedEntries u{std::make_shared<const policy::ImageBytes>(bytes), 3, bytes->size() - 3,
                                         uint32_t(base.entries.size()), v4, sum};
        std::vector<std::pair<policy::SetEntry, bool>> ops;
        for (int i = int(rng() % 12); i > 0; i--) {
            const bool member = rng() % 2;
            if (v4 && rng() % 3 == 0)
                ops.emplace_back(base.entries[rng() % v4], member);
            else
                ops.emplace_back(entry(false), member);
            if (rng() % 6 == 0)
                ops.emplace_back(ops.back().first, !ops.back().second);  // again: the last wins
        }
        PrefixSet want = base;
        for (const auto& [e, m] : ops) {
            state::SetChange one;
            (m ? one.added : one.removed).push_back(e);
            const bool is = std::find(want.entries.begin(), want.entries.end(), e) != want.entries.end();
            if (m != is) {
                ASSERT_EQ(state::replay_journal(want, state::encode_journal_record(1, one)), state::encode_journal_record(1, one).size());
            }
        }
        std::optional<policy::UndecodedEntries> spliced = policy::splice_set_changes(u, ops, sum);
        ASSERT_TRUE(spliced) << "round " << round;
        EXPECT_EQ(spliced->count, want.entries.size()) << "round " << round;
        EXPECT_EQ(policy::set_print_of_sum(sum), policy::set_print(want)) << "round " << round;
        EXPECT_EQ(spliced->print_sum, sum) << "round " << round;
        PrefixSet got;
        got.name = "s";
        got.undecoded = *spliced;
        std::vector<policy::SetEntry> streamed;
        policy::visit_undecoded_streamed(*spliced, [&](policy::Family f, uint8_t len, bool except, const uint8_t* addr) {
            policy::SetEntry e;
            e.prefix.family = f;
            e.prefix.len = len;
            e.except = except;
            std::memcpy(e.prefix.addr.data(), addr, f == policy::Family::v4 ? 4 : 16);
            streamed.push_back(e);
        });
        ASSERT_EQ(streamed, want.entries) << "round " << round << ": streamed";
        policy::decode_entries(got);
        ASSERT_EQ(got.entries, want.entries) << "round " << round << ": whole";
    }
    PrefixSet one;
    one.entries.push_back(entry(false));
    uint64_t sum = 0;
    EXPECT_FALSE(policy::splice_set_changes({std::make_shared<const policy::ImageBytes>(std::make_shared<std::string>()), 0, 0, 0, 0, 0},
                                            {{entry(true), true}}, sum))
        << "an IPv6 op spliced";
}

}  // namespace
}  // namespace xdpctl::test
