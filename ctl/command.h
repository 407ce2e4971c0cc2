// The command table of xdpctl: each subcommand registers its options on CLI11 and
// returns what to run once the command line parsed.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "attach/iface_ref.h"
#include "lb/lb_config.h"
#include "policy/rule.h"

namespace xdpctl::ctl {

struct GlobalOptions {
    std::string netns;  // -n/--netns, as `ip -n`
    bool pretty = false;  // -p/--pretty: indented JSON (and JSON output itself)
};

// One JSON document on a line (or indented with --pretty), flushed for pipes.
void print_json(const GlobalOptions& g, const nlohmann::json& j);

using Runner = std::function<int()>;  // returns the exit code

// Each adds its subcommand to `app`; `run` is set when that subcommand is chosen.
void add_load_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_unload_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_status_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_stats_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_version_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_rule_command(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_set_command(CLI::App& app, const GlobalOptions& g, Runner& run);
// policy default, apply, export
void add_policy_commands(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_explain_command(CLI::App& app, const GlobalOptions& g, Runner& run);
// lb vip|backend|list|trace
void add_lb_command(CLI::App& app, const GlobalOptions& g, Runner& run);
// trace: decision events of --log rules (docs/service.md)
void add_trace_command(CLI::App& app, const GlobalOptions& g, Runner& run);
// restore: everything the state directory records (docs/service.md)
void add_restore_command(CLI::App& app, const GlobalOptions& g, Runner& run);

// An apply file's `lb ...` line (the words after `lb`) into `config`: the options of
// `lb vip add` and `lb backend add`. Throws a usage error naming the token. Without
// `lookup_macs` a backend without --mac keeps a zero MAC rather than this host's neighbour
// table's (`fleet push`: each host looks it up in its own).
void parse_lb_statement(const GlobalOptions& g, const std::vector<std::string>& args,
                        lb::LbConfig& config, bool lookup_macs = true);

// An apply file (the format `export` prints), filter and `lb` lines, read whole before
// anything changes: a usage error naming FILE:LINE and the token otherwise.
struct ApplyFile {
    policy::Policy policy;
    lb::LbConfig lb;
};
ApplyFile parse_apply_text(const GlobalOptions& g, const std::string& text, const std::string& file,
                           bool lookup_macs = true);
// Rules `next` adds or changes against `cur` must be able to match (their addresses share a
// family) and, with `check_iifs`, name interfaces that exist (or say --iif-pending). A usage
// error naming the file and the rule.
void check_new_rules(const policy::Policy& cur, const policy::Policy& next, const std::string& file,
                     bool check_iifs = true);
// fleet push|status (docs/fleet.md)
void add_fleet_command(CLI::App& app, const GlobalOptions& g, Runner& run);

// `rule add ARGS...`: the rule options go to the rule-file parser as they are.
void rule_add(const GlobalOptions& g, const std::vector<std::string>& args);

// Ends a command that has done all it does and written its output, with the exit code
// guarded() would give it, without running destructors: the kernel takes back the
// mappings, memory and descriptors of a commit (~0.8 ms of a `rule add` at 10,000 rules to
// undo by hand where a page table change goes through the hypervisor, a PVM guest; calls
// cheap, no microcode). Only where no destructor has work left (an LbStore's has).
[[noreturn]] void exit_done();

// --interval S: a finite number of seconds, 0.05-3600 (CLI::Range alone lets nan through).
CLI::Validator interval_seconds();

// The interface named on the command line, validated, in the -n namespace.
IfaceRef iface_arg(const GlobalOptions& g, const std::string& name);

}  // namespace xdpctl::ctl
