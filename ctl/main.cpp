// xdpctl: attach xdpctl's XDP/TC programs, read their counters. Exit codes: 0 success,
// 1 runtime error, 2 usage error (docs/cli.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "attach/iface_ref.h"
#include "util/libbpf_log.h"
#include "state/state_record.h"
#include "util/writer_lock.h"

using namespace xdpctl;

namespace xdpctl::ctl {
void print_json(const GlobalOptions& g, const nlohmann::json& j)
{
    fmt::print("{}\n", g.pretty ? j.dump(2) : j.dump());
    std::fflush(stdout);
}

CLI::Validator interval_seconds()
{
    CLI::Validator finite(
        [](std::string& v) -> std::string {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            return end != v.c_str() && *end == 0 && std::isfinite(d) ? "" : "not a finite number";
        },
        "", "finite");
    return finite & CLI::Range(0.05, 3600.0);
}

IfaceRef iface_arg(const GlobalOptions& g, const std::string& name)
{
    validate_ifname(name);
    if (!g.netns.empty())
        validate_netns_name(g.netns);
    return IfaceRef{g.netns, name};
}
}  // namespace xdpctl::ctl

namespace {
// A commit in force whose state could not be recorded (said on stderr): not a success.
int final_code(int rc)
{
    return rc == 0 && state::record_failed() ? static_cast<int>(ExitCode::runtime) : rc;
}
}  // namespace

namespace xdpctl::ctl {
void exit_done()
{
    int rc = final_code(0);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        fmt::print(stderr, "xdpctl: cannot write the output: {}\n", std::strerror(errno));
        rc = static_cast<int>(ExitCode::runtime);
    }
    std::fflush(stderr);
    std::_Exit(rc);
}
}  // namespace xdpctl::ctl

namespace {
// Runs a command, turning its error into the message and exit code of docs/cli.md.
int guarded(const std::function<int()>& fn)
{
    try {
        return final_code(fn());
    } catch (const Error& e) {
        fmt::print(stderr, "xdpctl: {}\n", e.what());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        fmt::print(stderr, "xdpctl: {}\n", e.what());
        return static_cast<int>(ExitCode::runtime);
    }
}
// --wait S: seconds, finite, 0 (one try) to 3600.
std::string check_wait(const std::string& v)
{
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != 0 || !std::isfinite(d) || d < 0 || d > 3600)
        return fmt::format("'{}': expected seconds from 0 to 3600", v);
    return "";
}

// The command line a writer shows to those waiting for the lock (writer_lock.h).
std::string command_line(int argc, char** argv)
{
    std::string s = "xdpctl";
    for (int i = 1; i < argc && s.size() < 512; i++)
        s += std::string(" ") + argv[i];
    return s.size() > 512 ? s.substr(0, 509) + "..." : s;
}

// -n NAME, checked for every command (a name with '/' or '..' would leave /run/netns).
void check_netns(const ctl::GlobalOptions& g)
{
    if (!g.netns.empty())
        validate_netns_name(g.netns);
}

// Below a command that requires a subcommand (`rule`, `lb vip`, ...), the next word must
// name one: CLI11 alone says only "A subcommand is required" for `rule foo`.
int check_subcommands(CLI::App* cmd, int argc, char** argv, int from)
{
    std::string path = cmd->get_name();
    for (int i = from; i < argc && cmd->get_require_subcommand_min() > 0; i++) {
        std::string a = argv[i];
        if (a == "-n" || a == "--netns" || a == "--wait" || a == "--state-dir") {
            i++;
            continue;
        }
        if (a.rfind("-", 0) == 0)
            continue;
        auto subs = cmd->get_subcommands([&](CLI::App* sc) { return sc->get_name() == a; });
        if (subs.empty()) {
            std::string names;
            for (CLI::App* sc : cmd->get_subcommands({}))
                names += (names.empty() ? "" : ", ") + sc->get_name();
            fmt::print(stderr, "xdpctl: unknown subcommand '{}' of '{}' (expected {})\n", a, path,
                       names);
            return static_cast<int>(ExitCode::usage);
        }
        cmd = subs[0];
        path += " " + a;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    ctl::GlobalOptions g;
    double wait_s = default_writer_wait_s;
    set_writer_command(command_line(argc, argv));
    std::string state_dir = state::default_state_dir();

    // The options before the command word, for `rule add` (which CLI11 never sees) and for
    // naming a mistyped command below. `rule add` takes the rule grammar of rule files, which
    // CLI11 does not know: it runs before the command table is built (building CLI11's
    // options of every command was ~0.4 ms of its start).
    int command_at = argc;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-n" || a == "--netns") {  // takes a value
            if (++i < argc)
                g.netns = argv[i];
            continue;
        }
        if (a == "--wait" || a.rfind("--wait=", 0) == 0) {  // for `rule add`, unseen by CLI11
            std::string v;
            if (a != "--wait")
                v = a.substr(7);
            else if (++i < argc)
                v = argv[i];
            else
                continue;  // CLI11 says what is missing
            if (std::string err = check_wait(v); !err.empty()) {
                fmt::print(stderr, "xdpctl: --wait {}\n", err);
                return static_cast<int>(ExitCode::usage);
            }
            wait_s = std::strtod(v.c_str(), nullptr);
            set_writer_wait(wait_s);
            continue;
        }
        if (a == "--state-dir" || a.rfind("--state-dir=", 0) == 0) {  // for `rule add` too
            if (a != "--state-dir")
                state_dir = a.substr(12);
            else if (++i < argc)
                state_dir = argv[i];
            continue;
        }
        if (a == "-p" || a == "--pretty") {
            g.pretty = true;
            continue;
        }
        if (a.rfind("-", 0) == 0)
            continue;
        command_at = i;
        break;
    }
    if (command_at + 1 < argc && std::string(argv[command_at]) == "rule" &&
        std::string(argv[command_at + 1]) == "add") {
        std::vector<std::string> args(argv + command_at + 2, argv + argc);
        bool help = std::any_of(args.begin(), args.end(),
                                [](const std::string& s) { return s == "-h" || s == "--help"; });
        if (!help) {
            state::set_state_dir(state_dir);
            libbpf_log_start();
            return guarded([&] {
                check_netns(g);
                ctl::rule_add(g, args);
                return 0;
            });
        }
    }

    CLI::App app{"xdpctl: XDP/TC packet filtering, counting and load balancing"};
    app.name("xdpctl");
    app.require_subcommand(1);
    app.fallthrough();  // -n/--netns may also follow the subcommand

    app.add_option("-n,--netns", g.netns,
                   "Work on interfaces in this network namespace (as 'ip -n'); pins stay in the "
                   "host's bpffs");

    app.add_flag("-p,--pretty", g.pretty, "Indented JSON output (implies --json)");
    app.add_option("--wait", wait_s,
                   "A command that changes state waits at most S seconds for another one to "
                   "finish (0: not at all), then fails with exit code 75")
        ->check(CLI::Validator(
            [](std::string& v) { return check_wait(v); }, "SECONDS", "seconds"))
        ->capture_default_str();
    app.add_option("--state-dir", state_dir,
                   "Where every commit is also recorded for 'xdpctl restore' (default: "
                   "$XDPCTL_STATE_DIR, else /var/lib/xdpctl)");

    ctl::Runner run;
    ctl::add_load_command(app, g, run);
    ctl::add_unload_command(app, g, run);
    ctl::add_status_command(app, g, run);
    ctl::add_stats_command(app, g, run);
    ctl::add_version_command(app, g, run);
    ctl::add_rule_command(app, g, run);
    ctl::add_set_command(app, g, run);
    ctl::add_policy_commands(app, g, run);
    ctl::add_explain_command(app, g, run);
    ctl::add_lb_command(app, g, run);
    ctl::add_restore_command(app, g, run);
    ctl::add_fleet_command(app, g, run);
    ctl::add_trace_command(app, g, run);

    // CLI11 would only say "a subcommand is required" for a mistyped one: name it.
    if (command_at < argc) {
        const std::string a = argv[command_at];
        auto subs = app.get_subcommands([&](CLI::App* sc) { return sc->get_name() == a; });
        if (subs.empty()) {
            fmt::print(stderr, "xdpctl: unknown command '{}' (see 'xdpctl --help')\n", a);
            return static_cast<int>(ExitCode::usage);
        }
        if (int rc = check_subcommands(subs[0], argc, argv, command_at + 1))
            return rc;
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return static_cast<int>(ExitCode::usage);
    }

    set_writer_wait(wait_s);
    state::set_state_dir(state_dir);
    libbpf_log_start();
    return guarded([&] {
        check_netns(g);
        return run();
    });
}
