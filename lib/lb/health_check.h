// Backend health checks (issue 14 item 5; docs/load-balancing.md, "Health checks"), as
// keepalived does them for IPVS: what a check is (TCP connect, or HTTP GET of a path with an
// expected status), how it is written on the command line and in `lb` file lines, and the
// rise/fall state machine xdpd runs for each backend. xdpd does the probing
// (lib/service/health_checker.h); a change of state goes through LbMaps::set_down.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xdpctl::lb {

struct CheckSpec {
    enum class Type : uint8_t { none = 0, tcp = 1, http = 2 };
    Type type = Type::tcp;
    uint16_t port = 0;               // 0: the VIP's port
    std::string path = "/";          // http: what is asked for
    uint16_t expect = 200;           // http: the status that means healthy
    std::chrono::milliseconds interval{2000};
    std::chrono::milliseconds timeout{1000};
    uint32_t rise = 2;               // passes in a row that bring a down backend back
    uint32_t fall = 3;               // failures in a row that take an up backend out
    bool operator==(const CheckSpec&) const = default;
};

inline constexpr size_t kCheckPathMax = 127;  // bytes of an http path (the map's field)
inline constexpr uint32_t kCheckCountMax = 100;  // rise and fall
inline constexpr std::chrono::milliseconds kCheckIntervalMin{50}, kCheckIntervalMax{3600 * 1000};

// The `--check` value: "tcp", "http:PATH[:STATUS]" (PATH starts with '/', STATUS 100-599,
// default 200) or "none" (a backend not checked although its VIP has a check). Usage error
// naming the value otherwise.
CheckSpec parse_check_type(const std::string& text);
// "500ms", "2s", "1.5s": a usage error naming `what` and the value otherwise.
std::chrono::milliseconds parse_check_duration(const std::string& text, const char* what);
std::string format_check_duration(std::chrono::milliseconds d);

// What the command-line options of a check hold before they are put together.
struct CheckOptions {
    std::string check, interval, timeout;
    int64_t rise = -1, fall = -1, port = -1;  // -1: not given
    bool any_given() const;
};
// The check the options describe (none when --check was not given); a usage error when a
// check option comes without --check, or a value is out of range.
std::optional<CheckSpec> check_from_options(const CheckOptions& o);
// Checks a spec read from elsewhere (state directory, maps) as check_from_options does.
void validate_check(const CheckSpec& c);
// The options that give `c` back, every one written out: " --check http:/h:200
// --check-interval 200ms --check-timeout 100ms --rise 2 --fall 3" (leading space).
std::string format_check_options(const CheckSpec& c);
// "tcp", "http:/healthz:200", "none" (as --check reads it).
std::string format_check_type(const CheckSpec& c);

// The check a backend gets: its own, else its VIP's; none for "--check none" or neither.
std::optional<CheckSpec> effective_check(const std::optional<CheckSpec>& vip,
                                         const std::optional<CheckSpec>& backend);

// One backend's rise/fall counting. A backend starts in the state it has in the maps (up
// unless a check took it out before) and changes only after `rise` passes or `fall`
// failures in a row.
class HealthMachine {
public:
    explicit HealthMachine(bool up = true) : up_(up) {}
    // Counts one result; true when the state changed (up() is the new state).
    bool record(bool passed, uint32_t rise, uint32_t fall);
    bool up() const { return up_; }
    uint32_t ok_run() const { return ok_run_; }
    uint32_t fail_run() const { return fail_run_; }

private:
    bool up_;
    uint32_t ok_run_ = 0, fail_run_ = 0;
};

}  // namespace xdpctl::lb
