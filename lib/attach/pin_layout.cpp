#include "attach/pin_layout.h"

#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "util/error.h"
#include "attach/iface_pins.h"

namespace fs = std::filesystem;

namespace xdpctl {

namespace {
std::string root()
{
    return kPinRoot;
}
}  // namespace

std::string netns_pin_dir(const NetnsId& id)
{
    return root() + "/ns/" + id.key();
}

std::string iface_pin_dir(const NetnsId& id, const std::string& ifname)
{
    return netns_pin_dir(id) + "/if/" + ifname;
}

std::string decap_pin_dir(const NetnsId& id, const std::string& ifname)
{
    return netns_pin_dir(id) + "/decap/" + ifname;
}

std::string legacy_iface_pin_dir(const IfaceRef& ref)
{
    if (ref.netns.empty())
        return root() + "/if/" + ref.ifname;
    return root() + "/netns/" + ref.netns + "/if/" + ref.ifname;
}

std::string legacy_decap_pin_dir(const IfaceRef& ref)
{
    return root() + "/decap/" + (ref.netns.empty() ? "-" : ref.netns) + "/" + ref.ifname;
}

void record_netns_name(const NetnsId& id, const std::string& netns_arg)
{
    const std::string name = netns_arg.empty() ? current_netns_name() : netns_arg;
    const std::string dir = netns_pin_dir(id) + "/name";
    if (recorded_netns_name(id) == name)
        return;
    remove_pin_tree(dir);
    if (!name.empty())
        make_pin_dir(dir + "/" + name);
}

std::string recorded_netns_name(const NetnsId& id)
{
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(netns_pin_dir(id) + "/name", ec))
        return e.path().filename().string();
    return "";
}

namespace {
std::string legacy_dir(const IfaceRef& ref, const std::string& kind)
{
    return kind == "decap" ? legacy_decap_pin_dir(ref) : legacy_iface_pin_dir(ref);
}

// A namespace that no longer exists, named as it was (`-n NAME`): IFNAME's directory under
// a namespace recorded with that name; "" when none.
std::string find_by_recorded_name(const IfaceRef& ref, const std::string& kind)
{
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root() + "/ns", ec)) {
        auto id = parse_netns_key(e.path().filename().string());
        const std::string dir = e.path().string() + "/" + kind + "/" + ref.ifname;
        if (id && recorded_netns_name(*id) == ref.netns && path_exists(dir))
            return dir;
    }
    return "";
}
}  // namespace

PinSite locate_pins(const IfaceRef& ref, const std::string& kind)
{
    PinSite site;
    const std::string legacy = legacy_dir(ref, kind);
    if (ref.netns.empty() || netns_exists(ref.netns)) {
        site.where = ref.netns.empty() ? NetnsLocation{true, "", ""} : netns_by_name(ref.netns);
        NetnsScope ns(*site.where);
        site.dir = netns_pin_dir(current_netns_id()) + "/" + kind + "/" + ref.ifname;
    } else {
        site.dir = find_by_recorded_name(ref, kind);
    }
    if (!path_exists(site.dir) && path_exists(legacy))
        site.dir = legacy;
    if (site.dir.empty())
        site.dir = legacy;
    return site;
}

bool adopt_legacy_pins(const std::string& legacy, const std::string& dir,
                       const std::function<bool(const std::string&)>& ours)
{
    if (!path_exists(legacy) || path_exists(dir) || !ours(legacy))
        return false;
    make_pin_dir(fs::path(dir).parent_path().string());
    // bpffs renames directories with their pins: the pinned links and maps are unchanged.
    if (rename(legacy.c_str(), dir.c_str()) != 0)
        fail("cannot move the pins {} to {}: {}", legacy, dir, errno_str(errno));
    remove_empty_pin_parents(legacy);
    return true;
}

void remove_empty_pin_parents(const std::string& dir)
{
    // rmdir leaves any parent that still holds another interface or the shared maps. A
    // namespace's directory left with only its name record goes with the record.
    fs::path p = fs::path(dir).parent_path();
    for (; p.string().size() >= root().size(); p = p.parent_path()) {
        if (p.parent_path() == fs::path(root() + "/ns")) {
            std::error_code ec;
            size_t n = 0;
            for (auto it = fs::directory_iterator(p, ec); !ec && it != fs::directory_iterator(); ++it)
                n += it->path().filename() != "name";
            if (n == 0)
                remove_pin_tree((p / "name").string());
        }
        if (rmdir(p.c_str()) != 0)
            break;
    }
}

IfaceRef PinnedIface::ref() const
{
    if (where)
        return {where->here ? "" : where->name, ifname};
    return {recorded_name.empty() ? legacy_netns : recorded_name, ifname};
}

std::string PinnedIface::display() const
{
    IfaceRef r = ref();
    if (r.netns.empty() && netns_id && !(where && where->here))
        return ifname + "@netns:" + std::to_string(netns_id->ino);
    return r.display();
}

namespace {
// Every directory of `kind` ("if", "decap") under the namespaces' directories and the
// previous release's places.
std::vector<PinnedIface> pinned_dirs(const std::string& kind)
{
    std::vector<PinnedIface> out;
    std::error_code ec;
    auto scan = [&](const fs::path& dir, const PinnedIface& proto) {
        std::error_code ec2;
        for (const auto& e : fs::directory_iterator(dir, ec2))
            if (e.is_directory()) {
                PinnedIface p = proto;
                p.ifname = e.path().filename().string();
                p.dir = e.path().string();
                out.push_back(std::move(p));
            }
    };
    for (const auto& e : fs::directory_iterator(root() + "/ns", ec)) {
        PinnedIface p;
        p.netns_id = parse_netns_key(e.path().filename().string());
        if (!p.netns_id)
            continue;
        p.where = find_netns(*p.netns_id);
        p.recorded_name = recorded_netns_name(*p.netns_id);
        scan(e.path() / kind, p);
    }
    // The previous release's: without -n, made in whichever namespace xdpctl ran in (taken
    // to be this one; the link checks tell otherwise); with -n, in the named one.
    // if/IFNAME and netns/NS/if/IFNAME; decap/-/IFNAME and decap/NS/IFNAME.
    const bool decap = kind == "decap";
    PinnedIface here;
    here.where = NetnsLocation{true, "", ""};
    scan(decap ? root() + "/decap/-" : root() + "/if", here);
    for (const auto& ns : fs::directory_iterator(root() + (decap ? "/decap" : "/netns"), ec)) {
        PinnedIface p;
        p.legacy_netns = ns.path().filename().string();
        if (decap && p.legacy_netns == "-")
            continue;
        p.where = netns_by_name(p.legacy_netns);
        scan(decap ? ns.path() : ns.path() / "if", p);
    }
    std::sort(out.begin(), out.end(), [](const PinnedIface& a, const PinnedIface& b) {
        return std::make_pair(a.display(), a.dir) < std::make_pair(b.display(), b.dir);
    });
    return out;
}
}  // namespace

std::vector<PinnedIface> pinned_ifaces()
{
    return pinned_dirs("if");
}

std::vector<PinnedIface> pinned_decaps()
{
    return pinned_dirs("decap");
}

}  // namespace xdpctl
