// The Prometheus text exposition format 0.0.4: metric families with # HELP and # TYPE, then
// their samples. Only what xdpd needs: counters and gauges with labels, integer or float
// values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace xdpctl::metrics {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

class Exposition {
public:
    // Starts a family: its samples follow until the next family. `type` "counter" or "gauge".
    // A family without samples is left out (Prometheus reads a HELP with no samples, but a
    // family whose source is absent says more by not being there).
    void family(std::string_view name, std::string_view type, std::string_view help);
    // Any unsigned integer: the maps' __u64 is not uint64_t's type everywhere.
    template <typename T>
        requires std::is_unsigned_v<T>
    void sample(const Labels& labels, T value)
    {
        sample_uint(labels, uint64_t(value));
    }
    void sample(const Labels& labels, double value);
    // With labels formatted once by format_labels(), for the samples of several families
    // (a rule's packets and bytes): thousands of them in a scrape.
    static std::string format_labels(const Labels& labels);
    template <typename T>
        requires std::is_unsigned_v<T>
    void sample_formatted(std::string_view formatted_labels, T value)
    {
        sample_uint(formatted_labels, uint64_t(value));
    }

    // The text so far (the pending family's header is dropped if it had no sample).
    const std::string& text() const { return out_; }

    static constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

private:
    void begin_sample(std::string_view formatted_labels);
    void sample_uint(const Labels& labels, uint64_t value);
    void sample_uint(std::string_view formatted_labels, uint64_t value);

    std::string out_;
    std::string name_;
    std::string header_;  // the current family's HELP/TYPE, written with its first sample
};

// Label values escape \, " and newline; HELP text escapes \ and newline.
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);

}  // namespace xdpctl::metrics
