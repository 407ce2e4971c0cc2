#include "metrics/exposition.h"

#include <cmath>

#include <fmt/format.h>

namespace xdpctl::metrics {

namespace {
// Appends v escaped: most values need none, and are appended whole.
void append_escaped(std::string& out, std::string_view v, bool quote)
{
    if (v.find_first_of(quote ? "\\\n\"" : "\\\n") == std::string_view::npos) {
        out += v;
        return;
    }
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
}
}  // namespace

std::string escape_label_value(std::string_view v)
{
    std::string s;
    append_escaped(s, v, true);
    return s;
}

std::string escape_help(std::string_view v)
{
    std::string s;
    append_escaped(s, v, false);
    return s;
}

std::string Exposition::format_labels(const Labels& labels)
{
    std::string out;
    if (labels.empty())
        return out;
    out += '{';
    for (size_t i = 0; i < labels.size(); i++) {
        if (i)
            out += ',';
        out += labels[i].first;
        out += "=\"";
        append_escaped(out, labels[i].second, true);
        out += '"';
    }
    out += '}';
    return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help)
{
    name_ = name;
    header_ = fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

void Exposition::begin_sample(std::string_view formatted_labels)
{
    if (!header_.empty()) {
        out_ += header_;
        header_.clear();
    }
    out_ += name_;
    out_ += formatted_labels;
    out_ += ' ';
}

void Exposition::sample_uint(std::string_view formatted_labels, uint64_t value)
{
    begin_sample(formatted_labels);
    const fmt::format_int digits(value);
    out_.append(digits.data(), digits.size());
    out_ += '\n';
}

void Exposition::sample_uint(const Labels& labels, uint64_t value)
{
    sample_uint(std::string_view(format_labels(labels)), value);
}

void Exposition::sample(const Labels& labels, double value)
{
    begin_sample(std::string_view(format_labels(labels)));
    if (std::isnan(value))
        out_ += "NaN\n";
    else if (std::isinf(value))
        out_ += value > 0 ? "+Inf\n" : "-Inf\n";
    else
        fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

}  // namespace xdpctl::metrics
