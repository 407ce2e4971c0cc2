#include "lb/health_check.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "util/error.h"

namespace xdpctl::lb {

CheckSpec parse_check_type(const std::string& text)
{
    CheckSpec c;
    if (text == "tcp")
        return c;
    if (text == "none") {
        c.type = CheckSpec::Type::none;
        return c;
    }
    if (text.rfind("http:", 0) != 0)
        fail_usage("--check '{}': expected tcp, http:/PATH[:STATUS] or none", text);
    c.type = CheckSpec::Type::http;
    std::string rest = text.substr(5);
    // A status is the last ':' field when it is all digits (a path may hold ':' too).
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos && colon + 1 < rest.size() &&
        rest.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        const std::string status = rest.substr(colon + 1);
        const unsigned long v = status.size() <= 3 ? std::stoul(status) : 0;
        if (v < 100 || v > 599)
            fail_usage("--check '{}': HTTP status '{}' is not 100-599", text, status);
        c.expect = uint16_t(v);
        rest.resize(colon);
    }
    if (rest.empty() || rest[0] != '/')
        fail_usage("--check '{}': the HTTP path must start with '/'", text);
    if (rest.size() > kCheckPathMax)
        fail_usage("--check '{}': the HTTP path is longer than {} bytes", text, kCheckPathMax);
    for (unsigned char ch : rest)
        if (ch <= ' ' || ch >= 0x7f)
            fail_usage("--check '{}': the HTTP path holds a space or control character (write it "
                       "%-encoded)", text);
    c.path = rest;
    return c;
}

std::chrono::milliseconds parse_check_duration(const std::string& text, const char* what)
{
    double scale = 0;
    std::string num;
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "ms") == 0) {
        scale = 1;
        num = text.substr(0, text.size() - 2);
    } else if (text.size() > 1 && text.back() == 's') {
        scale = 1000;
        num = text.substr(0, text.size() - 1);
    }
    double v = -1;
    if (scale > 0 && !num.empty() && num.find_first_not_of("0123456789.") == std::string::npos) {
        try {
            size_t used = 0;
            v = std::stod(num, &used);
            if (used != num.size())
                v = -1;
        } catch (const std::exception&) {
            v = -1;
        }
    }
    const double ms = v * scale;
    // The upper bound keeps the conversion defined; the range itself is validate_check's.
    if (v < 0 || ms != std::floor(ms) || ms > 1e12)
        fail_usage("{} '{}': expected a duration such as 500ms or 2s (whole milliseconds)", what, text);
    return std::chrono::milliseconds(int64_t(ms));
}

std::string format_check_duration(std::chrono::milliseconds d)
{
    if (d.count() % 1000 == 0)
        return fmt::format("{}s", d.count() / 1000);
    return fmt::format("{}ms", d.count());
}

bool CheckOptions::any_given() const
{
    return !check.empty() || !interval.empty() || !timeout.empty() || rise >= 0 || fall >= 0 || port >= 0;
}

void validate_check(const CheckSpec& c)
{
    if (c.interval < kCheckIntervalMin || c.interval > kCheckIntervalMax)
        fail_usage("--check-interval {}: expected {} to {}", format_check_duration(c.interval),
                   format_check_duration(kCheckIntervalMin), format_check_duration(kCheckIntervalMax));
    // A probe still running when the next is due would overlap it.
    if (c.timeout.count() <= 0 || c.timeout > c.interval)
        fail_usage("--check-timeout {}: expected more than 0 and at most the interval ({})",
                   format_check_duration(c.timeout), format_check_duration(c.interval));
    if (c.rise < 1 || c.rise > kCheckCountMax)
        fail_usage("--rise {}: expected 1-{}", c.rise, kCheckCountMax);
    if (c.fall < 1 || c.fall > kCheckCountMax)
        fail_usage("--fall {}: expected 1-{}", c.fall, kCheckCountMax);
}

std::optional<CheckSpec> check_from_options(const CheckOptions& o)
{
    if (o.check.empty()) {
        if (o.any_given())
            fail_usage("--check-interval, --check-timeout, --check-port, --rise and --fall need --check");
        return std::nullopt;
    }
    CheckSpec c = parse_check_type(o.check);
    if (c.type == CheckSpec::Type::none) {
        if (!o.interval.empty() || !o.timeout.empty() || o.rise >= 0 || o.fall >= 0 || o.port >= 0)
            fail_usage("--check none takes no other check option");
        return c;
    }
    if (!o.interval.empty())
        c.interval = parse_check_duration(o.interval, "--check-interval");
    if (!o.timeout.empty())
        c.timeout = parse_check_duration(o.timeout, "--check-timeout");
    if (o.rise >= 0)
        c.rise = uint32_t(std::min<int64_t>(o.rise, UINT32_MAX));
    if (o.fall >= 0)
        c.fall = uint32_t(std::min<int64_t>(o.fall, UINT32_MAX));
    if (o.port >= 0) {
        if (o.port < 1 || o.port > 65535)
            fail_usage("--check-port {}: expected 1-65535", o.port);
        c.port = uint16_t(o.port);
    }
    validate_check(c);
    return c;
}

std::string format_check_type(const CheckSpec& c)
{
    switch (c.type) {
    case CheckSpec::Type::none:
        return "none";
    case CheckSpec::Type::tcp:
        return "tcp";
    case CheckSpec::Type::http:
        break;
    }
    return fmt::format("http:{}:{}", c.path, c.expect);
}

std::string format_check_options(const CheckSpec& c)
{
    if (c.type == CheckSpec::Type::none)
        return " --check none";
    std::string s = " --check " + format_check_type(c);
    if (c.port)
        s += fmt::format(" --check-port {}", c.port);
    return s + fmt::format(" --check-interval {} --check-timeout {} --rise {} --fall {}",
                           format_check_duration(c.interval), format_check_duration(c.timeout), c.rise,
                           c.fall);
}

std::optional<CheckSpec> effective_check(const std::optional<CheckSpec>& vip,
                                         const std::optional<CheckSpec>& backend)
{
    const std::optional<CheckSpec>& c = backend ? backend : vip;
    if (c && c->type == CheckSpec::Type::none)
        return std::nullopt;
    return c;
}

bool HealthMachine::record(bool passed, uint32_t rise, uint32_t fall)
{
    if (passed) {
        fail_run_ = 0;
        ok_run_++;
        if (!up_ && ok_run_ >= rise) {
            up_ = true;
            return true;
        }
    } else {
        ok_run_ = 0;
        fail_run_++;
        if (up_ && fail_run_ >= fall) {
            up_ = false;
            return true;
        }
    }
    return false;
}

}  // namespace xdpctl::lb
