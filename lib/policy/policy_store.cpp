#include "policy/policy_store.h"

#include <fcntl.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_set>

#include <bpf/bpf.h>

#include "attach/datapath_paths.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "attach/loaded_abi.h"
#include "attach/loader.h"
#include "policy/commit_trace.h"
#include "policy/compiled_policy.h"
#include "policy/iif_resolve.h"
#include "policy/policy_binary.h"
#include "policy/grace_keeper.h"
#include "policy/policy_maps.h"
#include "trace/log_state.h"
#include "util/background_free.h"
#include "util/heap_pages.h"
#include "policy/policy_paths.h"
#include "policy/stored_image.h"
#include "policy/rule_parse.h"
#include "policy/set_tables.h"
#include "state/state_record.h"
#include "util/system_checks.h"
#include "util/task_pool.h"

namespace xdpctl::policy {

namespace {

UniqueFd open_shared(const char* name)
{
    UniqueFd fd = open_pinned(shared_maps_dir() + "/" + name);
    if (!fd)
        fail("the shared map {} is missing under {}", name, shared_maps_dir());
    return fd;
}

// Gives the rules without an id (0) the next free ids (docs/cli.md, "rule add").
void assign_rule_ids(Policy& p)
{
    // Ids count up from the largest in use; once that is 4294967295 (an --id given), the
    // lowest free ones: ids never run out while fewer than 2^32-1 rules exist.
    uint32_t max_id = 0;
    for (const auto& r : p.rules)
        max_id = std::max(max_id, r.id);
    // The set of ids in use only when the lowest free ones are needed: hashing 10,000 ids
    // took ~0.4 ms of every commit.
    std::unordered_set<uint32_t> used;
    uint32_t low = 0;
    for (auto& r : p.rules)
        if (r.id == 0) {
            if (max_id < UINT32_MAX) {
                r.id = ++max_id;
                continue;
            }
            if (used.empty())
                for (const auto& x : p.rules)
                    used.insert(x.id);
            while (used.count(++low))
                ;
            r.id = low;
        }
}

// What the compiler puts in the iif table for each --iif rule: its interface's key.
RuleIfindexResolver match_keys(const Policy& p, const IifIndexes& resolved)
{
    return [keys = iif_match_keys(p, resolved)](const Rule& r) {
        auto it = keys.find(r.id);
        return it == keys.end() ? 0u : it->second;
    };
}

// Address class entries from which a commit gives the compiler's freed memory back before
// it builds the address tables (a set of ~100,000 prefixes and up).
constexpr size_t kTrimBeforeTablesEntries = 100000;
// A stored policy up to this size (~80,000 rules without sets) is a small one.
constexpr size_t kSmallImageBytes = size_t(4) << 20;

// Deletes generation `gen`'s image chunks from `from` on.
void clear_chunks(int src_fd, uint32_t gen, uint32_t from)
{
    for (uint32_t c = from; c < XDPCTL_SRC_MAX_CHUNKS; c++) {
        uint32_t key = stored_image_key(gen, c);
        if (bpf_map_delete_elem(src_fd, &key) != 0)
            break;  // chunks are written from 0 up: the first gap is the end
    }
}

size_t address_entries(const CompiledPolicy& c)
{
    size_t n = 0;
    for (const CompiledDirection& d : c.dir)
        n += d.src_v4.entries.size() + d.src_v6.entries.size() + d.dst_v4.entries.size() + d.dst_v6.entries.size();
    return n;
}

}  // namespace

PolicyStore::PolicyStore(Access access, bool settle_now)
{
    // Before the lock file: without privileges, say that rather than "Permission denied".
    require_privileges();
    // One policy command at a time: two commits would fill the same spare generation, and
    // a read-change-commit must not lose another's change. The lock goes with the process.
    if (access == Access::write)
        lock_.emplace();
    // Loading the XDP object to create the maps costs a verification (~0.1 s): only when
    // they are not there yet. A map of an older layout fails below, or in PolicyMaps.
    if (!path_exists(shared_maps_dir() + "/xdpctl_pctl") || !path_exists(shared_maps_dir() + "/xdpctl_psrc") ||
        !path_exists(shared_maps_dir() + "/xdpctl_prows_small") || !path_exists(shared_maps_dir() + "/xdpctl_pl1")) {
        if (!lock_)
            lock_.emplace();  // creating them is a write: two would pin the same names
        ensure_shared_maps();
    } else {
        require_bpffs();
    }
    // The wait first: opening and mapping the rest of the maps goes on beside it.
    if (access == Access::write && settle_now)
        settling_ = run_beside([dir = shared_maps_dir()] { settle_pinned(dir); });
    src_ = open_shared("xdpctl_psrc");
    maps_ = std::make_unique<PolicyMaps>(PolicyMaps::open_pinned(shared_maps_dir()));
}

PolicyStore::~PolicyStore() = default;

uint64_t PolicyStore::commits() const
{
    return maps_->commits();
}

namespace {
constexpr const char* kCommitTimeMap = "xdpctl_pcommit";
}

uint64_t PolicyStore::last_commit_unix_ns() const
{
    UniqueFd fd = open_pinned(shared_maps_dir() + "/" + kCommitTimeMap);
    xdpctl_pol_commit_rec rec{};
    __u32 key = 0;
    if (!fd || bpf_map_lookup_elem(fd.get(), &key, &rec) != 0)
        return 0;
    return rec.unix_ns;
}

void PolicyStore::record_commit_time()
{
    // Made by the first commit that records a time (the writer lock is held): the programs
    // do not have this map, so the load that pins the others does not make it. The policy is
    // in force by now: a failure here is reported, not the commit's.
    const std::string path = shared_maps_dir() + "/" + kCommitTimeMap;
    try {
        UniqueFd fd = open_pinned(path);
        if (!fd) {
            fd = UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, kCommitTimeMap, sizeof(__u32),
                                         sizeof(xdpctl_pol_commit_rec), 1, nullptr));
            if (!fd)
                fail("cannot create it: {}", errno_str(errno));
            pin_fd(fd.get(), path);
        }
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        xdpctl_pol_commit_rec rec{maps_->commits(), uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec)};
        __u32 key = 0;
        if (bpf_map_update_elem(fd.get(), &key, &rec, BPF_ANY) != 0)
            fail("cannot write it: {}", errno_str(errno));
    } catch (const Error& e) {
        fmt::print(stderr, "xdpctl: warning: the commit time was not recorded in {}: {}\n", path, e.what());
    }
}

uint32_t PolicyStore::maps_id() const
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    return bpf_map_get_info_by_fd(src_.get(), &info, &len) == 0 ? info.id : 0;
}

std::string PolicyStore::read_stored(uint32_t gen) const
{
    return read_stored_image(src_.get(), gen);
}

void PolicyStore::write_stored(uint32_t gen, const ImagePieces& image)
{
    // The chunks this generation holds (the image of two commits ago) are overwritten, and
    // one that holds these bytes already is left as it is: a rule command's image has its
    // sets' bytes where that one had them (~6 MiB at 1M prefixes), and reading a chunk back
    // costs much less than storing it (a new element each: with a 1M-prefix set, the largest
    // part of a `rule add`'s CPU in a profile, ~25%, with deleting them first).
    // Nothing reads this generation before the flip; the chunks past the image go after.
    clear_set_changes(src_.get(), gen);
    const uint32_t index = stored_image_key(gen, kSetIndexChunk);
    bpf_map_delete_elem(src_.get(), &index);
    std::vector<uint8_t> chunk(XDPCTL_SRC_CHUNK_BYTES), held(XDPCTL_SRC_CHUNK_BYTES);
    check_stored_size(image.size());
    uint64_t len = image.size();
    size_t pos = 0;
    uint32_t c = 0;
    for (; c == 0 || pos < image.size(); c++) {
        if (c >= XDPCTL_SRC_MAX_CHUNKS / 2)
            fail("the stored policy is over {} MiB: too large to store",
                 XDPCTL_SRC_MAX_CHUNKS / 2 * XDPCTL_SRC_CHUNK_BYTES >> 20);
        std::fill(chunk.begin(), chunk.end(), 0);
        size_t off = 0;
        if (c == 0) {
            std::memcpy(chunk.data(), &len, sizeof(len));
            off = sizeof(len);
        }
        size_t n = std::min(image.size() - pos, chunk.size() - off);
        image.copy(pos, reinterpret_cast<char*>(chunk.data() + off), n);
        pos += n;
        uint32_t key = stored_image_key(gen, c);
        if (bpf_map_lookup_elem(src_.get(), &key, held.data()) == 0 && held == chunk)
            continue;
        if (bpf_map_update_elem(src_.get(), &key, chunk.data(), BPF_ANY) != 0)
            fail("cannot store the policy: {}", errno_str(errno));
    }
    clear_chunks(src_.get(), gen, c);
}

void PolicyStore::clear_stored(uint32_t gen)
{
    clear_set_changes(src_.get(), gen);
    const uint32_t index = stored_image_key(gen, kSetIndexChunk);
    bpf_map_delete_elem(src_.get(), &index);
    clear_chunks(src_.get(), gen, 0);
}

Policy PolicyStore::current(IifIndexes* resolved) const
{
    return read_current(resolved, false);
}

Policy PolicyStore::current_rules() const
{
    return read_current(nullptr, true);
}

Policy PolicyStore::current_as_stored(std::map<std::string, std::string>& pending) const
{
    pending.clear();
    return read_current(nullptr, true, &pending);
}

Policy PolicyStore::read_current(IifIndexes* resolved, bool leave_sets, std::map<std::string, std::string>* pending) const
{
    if (!maps_->installed())
        return Policy{};
    CommitTrace trace;  // XDPCTL_TRACE_COMMIT: reading the policy back, before a commit
    // A small policy's image (~50 bytes a rule, a 1M-prefix set's ~6 MiB): it and what the
    // command builds from it come from a heap in huge pages (heap_pages.h). So does a rule
    // command's with large sets: it leaves them undecoded (their bytes, one block), and builds
    // what it builds from the rules (~3,000 faults of a 4 KiB page at 10,000 rules). A
    // commit touches ~20 times the image's bytes of it (~11 MiB at 10,000 rules): that much
    // is faulted in beside the decode.
    sets_read_ = {};
    read_gen_ = maps_->active_gen();
    // The ranks in force, beside the decode and what follows it (the check, the commit's
    // first steps), which the compile waits for: started once the heap is set up (before,
    // its allocations would race heap_in_huge_pages' growing of the heap). Only a writer
    // (holding the lock) commits.
    bool ranks_started = false;
    auto start_ranks = [&] {
        if (in_force_read_.valid())
            in_force_read_.wait();
        // And what the last commit kept of its compile, which a large policy's patches: one
        // thread beside the decode, not two (two cores: each would slow the decode).
        if (lock_)
            in_force_read_ = run_beside([this] {
                InForce out{{}, read_compile_cache(maps_id())};
                if (out.compiled && out.compiled->commits == maps_->commits())
                    out.ranks = std::move(out.compiled->ranks);  // kept by the commit in force
                else
                    out.ranks = maps_->active_ranks();
                return out;
            });
        ranks_started = true;
    };
    Policy p = read_stored_policy(src_.get(), read_gen_, maps_->commits(), "the stored policy", resolved,
                                  [&](uint64_t len) {
                                      if (len <= kSmallImageBytes || leave_sets)
                                          heap_in_huge_pages(len * 20);
                                      // A small policy's anchor lists' element is read
                                      // into memory of the heap faulted in meanwhile (2 MiB
                                      // pages): later, it lay where the compile had left
                                      // 4 KiB pages (~400 faults, 3-7 ms of the maps'
                                      // writing). Not beside a large set: held at the
                                      // heap's start, it cost the set's first use ~15 ms.
                                      if (lock_ && len <= kSmallImageBytes)
                                          maps_->reserve_anchor_buffer();
                                      start_ranks();
                                  },
                                  &sets_read_, leave_sets, pending);
    trace.mark("read: image, decode");
    if (!ranks_started)
        start_ranks();
    return p;
}

bool PolicyStore::resolve_pending()
{
    IifIndexes stored;
    Policy p = current(&stored);
    IifIndexes now = resolve_iifs(p);
    for (const auto& [id, ifindex] : now) {
        auto it = stored.find(id);
        if (it == stored.end() || it->second != ifindex) {
            commit(std::move(p));
            return true;
        }
    }
    return false;
}

bool PolicyStore::refresh_iif_keys()
{
    Policy p = current();
    if (std::none_of(p.rules.begin(), p.rules.end(), [](const Rule& r) { return !r.iif.empty(); }))
        return false;
    commit(std::move(p));
    return true;
}

void PolicyStore::complete(Policy& next, const std::function<bool(const PrefixSet&)>& as_read)
{
    assign_rule_ids(next);
    for (auto& [_, s] : next.sets)
        if (!(as_read && as_read(s)))
            s.normalize();
    check_policy(next, as_read);
}

void PolicyStore::check_stored_size(size_t image_bytes)
{
    constexpr size_t room = size_t(XDPCTL_SRC_MAX_CHUNKS / 2) * XDPCTL_SRC_CHUNK_BYTES - sizeof(uint64_t);
    if (image_bytes > room)
        fail_usage("the policy is {} MiB stored: over the {} MiB xdpctl can store",
                   image_bytes >> 20, room >> 20);
}

Policy PolicyStore::check(Policy next) const
{
    complete(next);
    const IifIndexes resolved = resolve_iifs(next);  // as commit resolves them
    prepare_commit(compile_policy(next, match_keys(next, resolved)), table_layout(oldest_loaded_abi()));
    check_stored_size(encode_policy(next, resolved).size());
    return next;
}

Policy PolicyStore::check_portable(Policy next)
{
    complete(next);
    // Every --iif name as one not found (key 0): which ones exist is each host's to say.
    prepare_commit(compile_policy(next, RuleIfindexResolver([](const Rule&) { return 0u; })), TableLayout::sparse16);
    check_stored_size(encode_policy(next).size());
    return next;
}

Policy PolicyStore::commit(Policy next)
{
    CommitTrace trace;
    // commit_sets_as_read: the print of a set as current() read it, its entries unchanged
    // (the count a guard: the caller vouches for the rest); 0 for any other.
    auto index_as_read = [this](const PrefixSet& set) -> const StoredSetIndex* {
        if (!sets_as_read_)
            return nullptr;
        auto it = sets_read_.sets.find(set.name);
        return it != sets_read_.sets.end() && it->second.at.count == set.size() ? &it->second : nullptr;
    };
    // A set changed in place since the commit read, left undecoded as its bytes with the
    // changes spliced in (current_rules): its print as read, 0 for any other.
    auto spliced_print = [this](const PrefixSet& set) -> uint64_t {
        if (!sets_as_read_ || !set.undecoded)
            return 0;
        auto it = sets_read_.spliced.find(set.name);
        return it != sets_read_.spliced.end() ? it->second : 0;
    };
    // A set left undecoded (current_rules) is one as read; any other use of one (a plain
    // commit of such a policy) decodes it: everything below computes from entries then.
    for (auto& [_, set] : next.sets)
        if (set.undecoded && !index_as_read(set) && !spliced_print(set))
            decode_entries(set);
    // Entries left in the generation this commit overwrites (a policy read before a commit
    // of this process flipped) are read before it is written (ImageBytes).
    const uint32_t target_gen = maps_->active_gen() ^ 1;
    for (auto& [_, set] : next.sets)
        if (set.undecoded && set.undecoded->image->lazy_generation() == target_gen)
            set.undecoded->image->bytes(0, set.undecoded->image->size());
    auto print_as_read = [&](const PrefixSet& set) -> uint64_t {
        const StoredSetIndex* s = index_as_read(set);
        return s ? s->print : spliced_print(set);
    };
    complete(next, [&](const PrefixSet& set) { return print_as_read(set) != 0; });
    trace.mark("check");
    // Each --iif name in its own rule's namespace (the ids are assigned by now).
    const IifIndexes resolved = resolve_iifs(next);

    // The last commit left waiting out the packets still on the generation before it (an
    // RCU grace period, 5-20 ms here) to this one. It must be over before anything of that
    // generation is rewritten and before a counter slot that commit freed is handed out
    // again; everything up to there (compile, the address tables, the stored policy) reads
    // and writes nothing packets use, so it runs while the kernel waits.
    Task<void> settled =
        settling_.valid() ? std::move(settling_) : run_beside([this] { maps_->settle(); });
    std::optional<CompiledPolicy> compiled;
    std::map<std::string, uint64_t> set_prints;
    PreparedCommit prepared;
    SlotOf slot_of;
    // The text first, into the generation about to become active (the datapath never reads
    // it): a kill before the flip leaves the old policy whole, and after it the new text is
    // already there. The empty policy is stored as no text, so that the last unload can take
    // the shared maps away and leave bpffs as it found it.
    const bool empty = next.rules.empty() && next.sets.empty() && next.default_action == ActionKind::pass;
    const uint32_t new_gen = maps_->active_gen() ^ 1;
    const uint32_t abi = oldest_loaded_abi();
    const bool sparse_tables = abi >= 2;
    // Sets in tables of their own (set_tables.h) once every loaded program reads them.
    const bool split_sets = abi >= 3 && maps_->can_split();
    // A first or last rule on a set alone decided beside the walk, once every loaded program
    // reads it.
    const bool edge_sets = abi >= 5 && split_sets;
    // The image is encoded and stored in a thread of its own beside the compiler: it needs
    // nothing compiled, and with a 1M-prefix set it is ~6 MiB to encode and write (~25 ms).
    // If compiling fails, what it wrote is in the generation not in force, which nothing
    // reads until a commit makes it active (and rewrites it first).
    // Then, in the same thread, the counter slots the active generation gives its rules
    // (~1 ms of reading rule records at 10,000 rules): nothing compiled needs them either.
    // What the attached programs must cover now (datapath_paths.h), read beside the compile:
    // nothing changes it before this commit's flip (the writer lock).
    Task<DatapathPaths> in_force_paths = run_beside([] { return paths_in_force(); });
    std::vector<ImageSet> set_places;  // where the image puts the sets (stored_set_index)
    Task<void> kept;  // the compile written for the next commit (compile_cache.h)
    Task<SlotOf> stored = run_beside([&] {
        if (empty)
            clear_stored(new_gen);
        else if (sets_as_read_ && sets_read_.image_current && read_gen_ == maps_->active_gen()) {
            // A set as read is copied from the image in force (the index says where), not
            // encoded again: that generation is not written before the flip. One left
            // undecoded is stored from the bytes read, not copied into the new image first.
            write_stored(new_gen, encode_policy(next, resolved, &set_places,
                                                {.stored = [&](const PrefixSet& s) -> const ImageSet* {
                                                     const StoredSetIndex* i = index_as_read(s);
                                                     return i ? &i->at : nullptr;
                                                 },
                                                 .copy = [&](size_t offset, char* out, size_t n) {
                                                     copy_stored_bytes(src_.get(), read_gen_, offset, out, n);
                                                 }}));
        } else
            write_stored(new_gen, ImagePieces(encode_policy(next, resolved, &set_places)));
        return seed_slots_ ? *seed_slots_ : maps_->active_slots();
    });
    try {
        const RuleIfindexResolver keys = match_keys(next, resolved);
        // What the generation to be filled holds (its rows record: ~0.6 ms of mapping and
        // reading it at 10,000 rules), beside the compile, which does not need it.
        HeldTables held_tables;
        ClassLayout held_classes[XDPCTL_POL_DIRS];
        Task<void> held = run_beside([&] { maps_->held(held_tables, held_classes); });
        // The sets' prints (what finds their tables) beside the compile, which does not read them.
        Task<std::map<std::string, uint64_t>> prints;
        if (split_sets)
            prints = run_beside([&] {
                std::map<std::string, uint64_t> out;
                for (const auto& [name, set] : next.sets) {
                    const uint64_t known = print_as_read(set);
                    out[name] = known ? known : set_print(set);
                }
                return out;
            });
        // The ranks the generation in force gives its rules, which the compile keeps where
        // it can (rank_gaps.h: a rule inserted among others then moves few ranks).
        // (Read beside the decode of the image in force when this store read it.)
        RankHints ranks;
        std::optional<CompileCache> cache;
        if (in_force_read_.valid()) {
            InForce read = in_force_read_.get();
            if (read_gen_ == maps_->active_gen()) {
                ranks = std::move(read.ranks);
                cache = std::move(read.compiled);
            } else {
                ranks = maps_->active_ranks();
            }
        } else {
            ranks = maps_->active_ranks();
        }
        in_force_read_ = {};
        trace.mark("ranks in force");
        // The compile the last commit kept: patched where the rules changed (compile_delta.h).
        // A large policy's compile is kept in turn for the next commit.
        const bool keep_compile = next.rules.size() >= kCachedRulesMin;
        // complete() checked `next` above.
        compiled = compile_policy(next, keys,
                                  {.max_split_sets = split_sets ? kMaxSplitSets : 0,
                                   .checked = true,
                                   .rank_hints = ranks.dir,
                                   .cache = cache ? &*cache : nullptr,
                                   .prints = keep_compile,
                                   .edge_sets = edge_sets});
        cache.reset();
        last_patched_ = compiled->dir[0].patched || compiled->dir[1].patched;
        trace.mark(last_patched_ ? "compile (patched)" : "compile");
        // The sets' own tables: found by their entries' print, built only for a set that
        // changed (or is new). Too few slots: the sets are merged into the classes.
        PreparedCommit placed;
        if (split_sets)
            set_prints = prints.get();
        if (split_sets && !maps_->place_sets(*compiled, next.sets, placed, sparse_tables, set_prints)) {
            compiled = compile_policy(next, keys, {.checked = true, .rank_hints = ranks.dir});
            trace.mark("compile without set tables");
        }
        trace.mark("set tables");
        // Class ids as the generation to be filled has them, and the tables it holds already
        // (classes unchanged): left in place, not built (row_prints.h).
        held.get();
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
            align_classes(compiled->dir[d], held_classes[d]);
        trace.mark("class ids");
        // The address tables as kept for the next commit, before they are taken.
        CacheAddresses kept_addresses;
        if (keep_compile)
            kept_addresses = cache_addresses(*compiled);
        // With a big set, what the compiler freed goes back first: its table is built in
        // its map, all of it mapped (resident in this process) meanwhile. A small policy's
        // tables would only fault the same memory in again.
        const bool big = address_entries(*compiled) > kTrimBeforeTablesEntries;
        if (big)
            malloc_trim(0);
        // The rows' prints (what the commit compares with the spare generation's record)
        // beside the address tables: both read the aligned rows, neither changes them, and
        // done here they are off the path after the grace period.
        std::vector<RowPrint> row_prints[XDPCTL_POL_DIRS];
        Task<void> printed = run_beside([&] {
            for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
                if (compiled->dir[d].n_rules)
                    row_prints[d] = compiled->dir[d].rows.prints();
        });
        // The anchor lists (the same rows read again, ~1 ms at 10,000 rules) likewise, in
        // a thread of their own: the prints alone take longer than the tables a rule keeps.
        Task<DirAnchorLists> anchored =
            run_beside([&] { return maps_->prepare_anchors(*compiled); });
        try {
            prepared = take_address_tables(*compiled, table_layout(abi), &held_tables);
            prepared.set_slot = std::move(placed.set_slot);
        } catch (...) {
            printed.wait();
            anchored.wait();
            throw;
        }
        printed.get();
        prepared.anchors = anchored.get();
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
            prepared.row_prints[d] = std::move(row_prints[d]);
        if (big)
            malloc_trim(0);  // what the builder freed goes back before the maps are filled
        trace.mark("address tables");
        // The compile kept for the next commit while this one writes its maps (the threads
        // above would share the cores with it); joined before the compile is freed.
        if (keep_compile)
            kept = run_beside([this, &compiled, addresses = std::move(kept_addresses), commits = maps_->commits() + 1] {
                write_compile_cache(encode_compile_cache(*compiled, &addresses, kCachedRulesMin, commits, maps_id(),
                                                         compile_cache_bytes()));
            });
        // Counter slots: a rule keeps its slot (and counters) for as long as it exists.
        slot_of = stored.get();
        trace.mark("store");
    } catch (...) {
        if (stored.valid())
            stored.wait();
        settled.wait();
        throw;
    }
    // The slots of new rules are chosen while the kernel waits; they are cleared after it
    // (packets of the generation before may still count into a slot the last commit freed).
    std::vector<bool> used(XDPCTL_POL_COUNTER_SLOTS), live(XDPCTL_POL_COUNTER_SLOTS);
    std::vector<uint32_t> fresh;
    for (const auto& [_, slot] : slot_of)
        used[slot] = true;
    // The slots of the rules that stay, marked by slot (a set of their ids cost ~0.3 ms of
    // allocations at 10,000 rules).
    for (const auto& r : next.rules)
        if (auto it = slot_of.find(r.id); it != slot_of.end())
            live[it->second] = true;
    // Slots of rules this commit deletes are taken last: packets still count into them
    // until the flip.
    std::vector<uint32_t> freed_slots;
    for (auto it = slot_of.begin(); it != slot_of.end();)
        if (!live[it->second]) {
            freed_slots.push_back(it->second);
            it = slot_of.erase(it);
        } else {
            ++it;
        }
    uint32_t free_slot = 0;
    for (const auto& r : next.rules) {
        if (slot_of.count(r.id))
            continue;
        while (free_slot < XDPCTL_POL_COUNTER_SLOTS && used[free_slot])
            free_slot++;
        if (free_slot >= XDPCTL_POL_COUNTER_SLOTS && !freed_slots.empty()) {
            for (uint32_t s : freed_slots)
                used[s] = false;
            freed_slots.clear();
            free_slot = 0;
            while (free_slot < XDPCTL_POL_COUNTER_SLOTS && used[free_slot])
                free_slot++;
        }
        if (free_slot >= XDPCTL_POL_COUNTER_SLOTS)
            fail_usage("the rule counter table is full ({} rules)", XDPCTL_POL_COUNTER_SLOTS);
        slot_of[r.id] = free_slot;
        used[free_slot] = true;
        fresh.push_back(free_slot);
    }

    trace.mark("counter slots");
    settled.get();
    trace.mark("grace period wait");
    for (uint32_t slot : fresh) {
        maps_->reset_rule_counters(slot);  // a deleted rule's counts are not inherited
        trace::reset_log_state(slot);
    }
    trace.mark("counter resets");
    // A shape the attached programs have no path for: they are reloaded first with the
    // paths of both generations (datapath_paths.h), then with the new one's.
    const PathsChange paths(in_force_paths.get(), [&](DatapathPaths& p) { p.dir = compiled_paths(*compiled); });
    trace.mark("program reloads");
    maps_->commit(*compiled, std::move(prepared), slot_of);
    if (exits_after_commit_ && grace_keeper_wanted())
        maps_->settle_after_exit();  // the grace period starts at the flip
    record_commit_time();
    // What a later `set add` needs to change a set in place (set_in_place.cpp), tagged with
    // the commit count the flip gave.
    if (split_sets && !empty)
        write_set_index(src_.get(), new_gen,
                        {maps_->commits(), maps_->commits(), stored_set_index(next, std::move(set_places), set_prints),
                         !sets_as_read_ || sets_read_.exact_sums});
    trace.mark("maps");
    paths.finish();
    if (kept.valid())
        kept.get();
    free_in_background(std::move(compiled), std::move(slot_of));
    if (empty)
        clear_stored(new_gen ^ 1);
    trace.mark("after the flip");  // programs shrunk to the new paths, the empty policy's text cleared
    trace.maps(maps_->last_commit_times());
    state::policy_committed(next);  // the state directory, for `xdpctl restore`
    return next;
}

namespace {

// Sets `field` to `value` for the life of the guard and back to what it was after, also
// when the commit throws: a commit option that holds for one call only.
template <typename T>
class ScopedOption {
public:
    ScopedOption(T& field, T value) : field_(field), was_(field) { field_ = value; }
    ~ScopedOption() { field_ = was_; }
    ScopedOption(const ScopedOption&) = delete;
    ScopedOption& operator=(const ScopedOption&) = delete;

private:
    T& field_;
    T was_;
};

}  // namespace

Policy PolicyStore::commit_sets_as_read(Policy p)
{
    const ScopedOption<bool> as_read(sets_as_read_, true);
    return commit(std::move(p));
}

Policy PolicyStore::commit_in_slots(Policy p, const std::unordered_map<uint32_t, uint32_t>& slots)
{
    const ScopedOption<const std::unordered_map<uint32_t, uint32_t>*> seeded(seed_slots_, &slots);
    return commit(std::move(p));
}

std::map<uint32_t, RuleCounters> PolicyStore::counters() const
{
    std::map<uint32_t, RuleCounters> out;
    std::vector<xdpctl_rule_ctr> all = maps_->read_all_rule_counters();
    const trace::LogStates logs = trace::read_log_states();
    for (const auto& [id, slot] : maps_->active_slots()) {
        const xdpctl_rule_ctr& c = slot < all.size() ? all[slot] : xdpctl_rule_ctr{};
        const trace::LogCounts l = slot < logs.by_slot.size() ? logs.by_slot[slot] : trace::LogCounts{};
        out[id] = {c.packets, c.bytes, c.last_hit_ns, l.sent, l.not_sent};
    }
    return out;
}

}  // namespace xdpctl::policy
