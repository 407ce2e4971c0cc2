#include <sys/utsname.h>

#include <bpf/libbpf.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "command.h"

#ifndef XDPCTL_VERSION
#define XDPCTL_VERSION "unknown"
#endif

namespace xdpctl::ctl {

void add_version_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("version", "Print the versions of xdpctl, libbpf and the kernel");
    cmd->add_flag("-j,--json", *json, "JSON output");
    cmd->callback([&g, &run, json] {
        run = [&g, json] {
            utsname u{};
            uname(&u);
            std::string libbpf = fmt::format("{}.{}", libbpf_major_version(), libbpf_minor_version());
            if (*json || g.pretty)
                print_json(g, nlohmann::json{
                                  {"xdpctl", XDPCTL_VERSION}, {"libbpf", libbpf}, {"kernel", u.release}});
            else
                fmt::print("xdpctl {}\nlibbpf {}\nkernel {}\n", XDPCTL_VERSION, libbpf, u.release);
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
