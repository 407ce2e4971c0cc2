// One fleet revision applied the way an operator applies a file: `xdpctl apply FILE`, run
// as a child of xdpd. The same code path as the command, writer lock (/run/xdpctl.lock,
// --wait) and state-directory record included; apply checks the whole file (the checks of
// `apply --dry-run`) before it changes anything, so a refused revision changes nothing.
// A child also keeps a 10,000-rule parse out of the daemon's memory at rest.
#pragma once

#include <string>

namespace xdpctl::fleet {

struct ApplyOutcome {
    enum class Kind { applied, refused, failed } kind;  // refused: the file's fault (exit 2)
    // xdpctl's message, the file named as `source`; with `applied`, its warnings (the state
    // directory not updated: the policy is in force all the same).
    std::string error;
};

// The xdpctl next to this executable (build tree: ctl/xdpctl next to ctl/xdpd/; installed:
// bin/ next to sbin/), else the one on $PATH.
std::string find_xdpctl_binary();

// Writes `text` to a private temporary file, runs `XDPCTL --state-dir STATE_DIR --wait 10
// apply FILE` and reports. `source` ("config@REV") replaces the temporary file's name in
// the error text.
ApplyOutcome apply_config_text(const std::string& xdpctl_bin, const std::string& state_dir,
                               const std::string& text, const std::string& source);

}  // namespace xdpctl::fleet
