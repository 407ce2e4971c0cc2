#include "metrics/exposition.h"

#include <cmath>

#include <fmt/format.h>

namespace xdpctl::metrics {

namespace {
std::string escape(std::string_view v, bool quote)
{
    std::string s;
    s.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            s += "\\\\";
        else if (c == '\n')
            s += "\\n";
        else if (c == '"' && quote)
            s += "\\\"";
        else
            s += c;
    }
    return s;
}
}  // namespace

std::string escape_label_value(std::string_view v)
{
    return escape(v, true);
}

std::string escape_help(std::string_view v)
{
    return escape(v, false);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help)
{
    name_ = name;
    header_ = fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

void Exposition::begin_sample(const Labels& labels)
{
    if (!header_.empty()) {
        out_ += header_;
        header_.clear();
    }
    out_ += name_;
    if (!labels.empty()) {
        out_ += '{';
        for (size_t i = 0; i < labels.size(); i++) {
            if (i)
                out_ += ',';
            out_ += labels[i].first;
            out_ += "=\"";
            out_ += escape_label_value(labels[i].second);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
}

void Exposition::sample_uint(const Labels& labels, uint64_t value)
{
    begin_sample(labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

void Exposition::sample(const Labels& labels, double value)
{
    begin_sample(labels);
    if (std::isnan(value))
        out_ += "NaN\n";
    else if (std::isinf(value))
        out_ += value > 0 ? "+Inf\n" : "-Inf\n";
    else
        fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

}  // namespace xdpctl::metrics
