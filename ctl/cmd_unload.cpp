#include <fmt/core.h>

#include "command.h"
#include "error.h"
#include "loader.h"

namespace xdpctl::ctl {

void add_unload_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    struct Opts {
        std::string iface;
        bool all = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("unload", "Remove exactly what xdpctl attached and pinned");
    auto* iface = cmd->add_option("iface", o->iface, "Interface name");
    auto* all = cmd->add_flag("--all", o->all, "Every interface, and all of /sys/fs/bpf/xdpctl");
    iface->excludes(all);

    cmd->callback([&g, &run, o] {
        run = [&g, o] {
            if (o->all) {
                auto gone = unload_all();
                for (const auto& i : gone)
                    fmt::print("unloaded from {}\n", i.display());
                if (gone.empty())
                    fmt::print("nothing was loaded\n");
                return 0;
            }
            if (o->iface.empty())
                fail_usage("unload: name an interface or give --all");
            IfaceRef ref = iface_arg(g, o->iface);
            unload(ref);
            fmt::print("unloaded from {}\n", ref.display());
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
