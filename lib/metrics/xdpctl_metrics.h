// One Prometheus scrape of xdpctl's state (docs/service.md has the metric list). Each part is
// read by the library code its command uses, so a scrape and the command agree:
//   interfaces  pinned_ifaces() + take_snapshot()          = `xdpctl stats --all --json`
//   rules       policy::read_rule_listing()                 = `xdpctl rule list --json`
//   lb          lb::LbMaps vips/backends/counters/stats()   = `xdpctl lb list --json`
//   programs    collect_status() run_cnt/run_time_ns        = `xdpctl status --json`
#pragma once

#include <string>
#include <vector>

namespace xdpctl::metrics {

struct Scrape {
    std::string text;                 // the exposition (exposition.h)
    std::vector<std::string> errors;  // a part that could not be read: "part: message"
};

// Reads everything and formats it. A part that fails is left out, with
// xdpctl_scrape_part_ok{part} 0 and its error in `errors`; the others are still served.
Scrape scrape_metrics();

}  // namespace xdpctl::metrics
