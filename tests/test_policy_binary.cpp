// The stored policy image (lib/policy/policy_binary.h): every policy the generator makes
// comes back equal, with all fields and sets; a damaged image is refused, never half read.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "policy/policy_binary.h"
#include "policy/rule_parse.h"
#include "policy_gen.h"

using namespace xdpctl;
using namespace xdpctl::policy;

TEST(PolicyBinary, RandomPoliciesRoundTrip)
{
    for (uint64_t seed = 1; seed <= 200; seed++) {
        test::Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(g.u(60)), int(g.u(5)));
        p.default_action = seed % 2 ? ActionKind::drop : ActionKind::pass;
        uint32_t id = 1;
        for (auto& r : p.rules)
            r.id = id++ * 7;
        const std::string image = encode_policy(p);
        ASSERT_TRUE(is_policy_image(image));
        const Policy q = decode_policy(image, "image");
        ASSERT_EQ(q, p) << "seed " << seed;
        // the same as text: what export prints does not change through the image
        ASSERT_EQ(format_policy(q), format_policy(p)) << "seed " << seed;
    }
}

// Every field a policy of the release before could hold, as a rule file.
constexpr const char* kEveryField = "default drop\n"
                                    "set bl 198.18.0.0/15 !198.18.7.0/24 2001:2::/48\n"
                                    "rule --id 9 --priority 3 --dir egress --src @bl --dst 2001:2::1/128 "
                                    "--proto tcp --sport 1-2 --dport 80 --vlan 12 --iif veth0 "
                                    "--tcp-flags syn,!ack --action rate-limit 100 --burst 7\n"
                                    "rule --id 10 --fragment --action count\n";

TEST(PolicyBinary, EveryFieldKept)
{
    Policy p = parse_policy_text(kEveryField, "t");
    EXPECT_EQ(decode_policy(encode_policy(p), "image"), p);
    EXPECT_EQ(decode_policy(encode_policy(Policy{}), "image"), Policy{});
}

TEST(PolicyBinary, IifNamespacePendingAndResolvedIndexesKept)
{
    Policy p = parse_policy_text("rule --id 3 --iif veth0 --iif-netns blue --iif-pending --action drop\n"
                                 "rule --id 4 --iif veth0 --action count\n"
                                 "rule --id 5 --action pass\n",
                                 "t");
    IifIndexes resolved, back;
    resolved[3] = 0;
    resolved[4] = 17;
    EXPECT_EQ(decode_policy(encode_policy(p, resolved), "image", &back), p);
    EXPECT_EQ(back, resolved);
}

// An image as the release before this one stored it (magic XDPCTLP1, no --iif namespace,
// pending flag or resolved index): kEveryField, bytes from that release.
TEST(PolicyBinary, PreviousReleaseImageStillLoads)
{
    const std::string hex =
        "58445043544c503100010000000200626c03000000040fc61200008418c612070006302001000200000000"
        "000000000000000002000000090000000300000001020200626c010680200100020000000000000000000000"
        "0101060100020050005000010c000500766574683012020003640000000000000007000000000000000a0000"
        "00e803000000000000000000ffff0000ffff00000000000000010200000000000000000000000000000000";
    std::string image;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        image.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
    ASSERT_TRUE(is_policy_image(image));
    const Policy want = parse_policy_text(kEveryField, "t");
    IifIndexes resolved;
    EXPECT_EQ(decode_policy(image, "image", &resolved), want);
    EXPECT_TRUE(resolved.empty());
    // Cut short, it is refused like a current image.
    EXPECT_THROW(decode_policy(std::string_view(image).substr(0, image.size() - 1), "image"), Error);
}

TEST(PolicyBinary, DamagedImagesAreRefused)
{
    test::Gen g(7);
    g.make_pools();
    const std::string image = encode_policy(g.policy(30, 3));
    // Every cut is refused with an error, none crashes or returns a partial policy.
    for (size_t n = 0; n < image.size(); n++)
        EXPECT_THROW(decode_policy(std::string_view(image).substr(0, n), "image"), Error) << "cut at " << n;
    EXPECT_THROW(decode_policy(image + "x", "image"), Error);
    EXPECT_FALSE(is_policy_image("default drop\n"));
    EXPECT_THROW(decode_policy("default drop\n", "image"), Error);
}

// A random policy of up to 40 rules and 1-4 sets, the sets normalized as they are stored.
static Policy random_policy_with_sets(uint64_t seed)
{
    test::Gen g(seed);
    g.make_pools();
    Policy p = g.policy(int(g.u(40)), 1 + int(g.u(4)));
    for (auto& [_, s] : p.sets)
        s.normalize();
    return p;
}

// A rule command stores an image whose sets it left undecoded as pieces (ImagePieces): the
// sets' bytes where they were read, the rest encoded. Byte for byte the image the decoded
// policy encodes to, read from any offset, and the sets' places the same.
TEST(PolicyBinary, PiecesOfAnImageWithUndecodedSetsAreItsBytes)
{
    int held = 0, encoded = 0;  // sets of each kind over all seeds
    for (uint64_t seed = 1; seed <= 40; seed++) {
        Policy p = random_policy_with_sets(seed);
        std::vector<ImageSet> where;
        const auto stored = std::make_shared<const std::string>(encode_policy(p, {}, &where));
        std::map<std::string, ImageSet> at;
        for (const ImageSet& s : where)
            at[s.name] = s;
        Policy read = decode_policy_leaving_sets(stored, "image", nullptr, [&](const std::string& name) {
            return name.back() % 2 ? nullptr : &at.at(name);  // s0, s2, s4 left undecoded, s1, s3 decoded
        });
        read.rules.push_back(p.rules.empty() ? Rule{} : p.rules.front());
        read.rules.back().id = 999999;
        Policy decoded = read;
        for (auto& [_, s] : decoded.sets) {
            (s.undecoded ? held : encoded)++;
            if (s.undecoded)
                decode_entries(s);
        }
        std::vector<ImageSet> where_pieces, where_whole;
        const ImagePieces pieces = encode_policy(read, {}, &where_pieces,
                                                  {.stored = [](const PrefixSet&) -> const ImageSet* { return nullptr; }, .copy = {}});
        const std::string whole = encode_policy(decoded, {}, &where_whole);
        ASSERT_EQ(pieces.size(), whole.size()) << "seed " << seed;
        EXPECT_EQ(pieces.joined(), whole) << "seed " << seed;
        for (size_t pos : {size_t(0), whole.size() / 3, whole.size() / 2, whole.size() - 1}) {
            const size_t n = std::min<size_t>(97, whole.size() - pos);
            std::string part(n, '\0');
            pieces.copy(pos, part.data(), n);
            EXPECT_EQ(part, whole.substr(pos, n)) << "seed " << seed << " at " << pos;
        }
        ASSERT_EQ(where_pieces.size(), where_whole.size());
        for (size_t i = 0; i < where_whole.size(); i++) {
            EXPECT_EQ(where_pieces[i].offset, where_whole[i].offset);
            EXPECT_EQ(where_pieces[i].bytes, where_whole[i].bytes);
            EXPECT_EQ(where_pieces[i].v4_count, where_whole[i].v4_count);
        }
        std::string past(1, '\0');
        EXPECT_THROW(pieces.copy(whole.size(), past.data(), 1), Error);
    }
    EXPECT_GT(held, 10);
    EXPECT_GT(encoded, 10);
}

// A rule command reads the stored image but for the entries of the sets it leaves undecoded
// (ImageBytes): those chunks stay in the store until something needs them. Chunks wholly
// inside such a set are not read by the read, nor by the decode, nor by storing the new image
// (its copy reads them without keeping them); bytes() reads them, and what every path gives
// is the image's bytes.
TEST(PolicyBinary, SetBytesLeftInTheStoreAreReadOnlyWhenNeeded)
{
    int left_unread = 0;  // chunks not read before bytes() over all seeds
    for (uint64_t seed = 1; seed <= 40; seed++) {
        Policy p = random_policy_with_sets(seed);
        std::vector<ImageSet> where;
        const std::string whole = encode_policy(p, {}, &where);
        // Stored as xdpctl_psrc holds it: the length, then the image, in chunks (of 16 bytes:
        // the generator's sets are small).
        constexpr uint32_t kChunk = 16;
        std::string stored(sizeof(uint64_t), '\0');
        const uint64_t len = whole.size();
        std::memcpy(stored.data(), &len, sizeof len);
        stored += whole;
        std::vector<int> reads((stored.size() + kChunk - 1) / kChunk);
        auto read = [&](uint32_t c, char* out) {
            if (c >= reads.size())
                fail("chunk {} is missing", c);
            reads[c]++;
            std::memset(out, 0, kChunk);
            std::memcpy(out, stored.data() + size_t(c) * kChunk, std::min<size_t>(kChunk, stored.size() - c * kChunk));
        };
        std::map<std::string, ImageSet> at;
        std::vector<std::pair<size_t, size_t>> holes;
        for (const ImageSet& s : where)
            if (s.name.back() % 2 == 0) {  // s0, s2, s4 left undecoded
                at[s.name] = s;
                holes.emplace_back(s.offset, s.bytes);
            }
        auto inside = [&](uint32_t c) {
            const size_t from = std::max<size_t>(size_t(c) * kChunk, 8) - 8, to = std::min<size_t>((c + 1) * kChunk, stored.size()) - 8;
            return std::any_of(holes.begin(), holes.end(), [&](const auto& h) { return h.first <= from && to <= h.first + h.second; });
        };
        const auto image = std::make_shared<const ImageBytes>(whole.size(), kChunk, holes, read, 1);
        Policy got = decode_policy_leaving_sets(image, "image", nullptr, [&](const std::string& name) -> const ImageSet* {
            auto it = at.find(name);
            return it == at.end() ? nullptr : &it->second;
        });
        // Read by the decode: every chunk but those wholly inside a set left undecoded (a set
        // decoded may read a little past its end, into the next one's).
        bool unread = false;
        for (uint32_t c = 0; c < reads.size(); c++) {
            if (!inside(c))
                EXPECT_EQ(reads[c], 1) << "seed " << seed << " chunk " << c;
            else if (reads[c] == 0)
                unread = true, left_unread++;
        }
        std::vector<ImageSet> where_pieces;
        const ImagePieces pieces =
            encode_policy(got, {}, &where_pieces, {.stored = [](const PrefixSet&) -> const ImageSet* { return nullptr; }, .copy = {}});
        ASSERT_EQ(pieces.joined(), whole) << "seed " << seed;
        for (uint32_t c = 0; c < reads.size(); c++)
            EXPECT_LE(reads[c], 1) << "seed " << seed << " chunk " << c << ": read twice";
        // The copy kept nothing of what it read.
        EXPECT_EQ(image->lazy_generation(), unread ? std::optional<uint32_t>(1) : std::nullopt) << "seed " << seed;
        // Everything that needs the entries reads them: the policy is the one stored.
        for (auto& [_, s] : got.sets)
            decode_entries(s);
        EXPECT_EQ(got, p) << "seed " << seed;
        EXPECT_EQ(std::string(image->bytes(0, whole.size()), whole.size()), whole);
        EXPECT_EQ(image->lazy_generation(), std::nullopt);
        EXPECT_THROW(image->bytes(whole.size(), 1), Error);
    }
    EXPECT_GT(left_unread, 40);
}
