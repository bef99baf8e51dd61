#include "metrics/text.h"

#include <charconv>
#include <cmath>

namespace vnet::metrics {
namespace {

// Shortest text that reads back as the same double; Prometheus' spellings of the special values.
void Number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
  }
}

void Number(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

// HELP text escapes backslash and newline; label values also the double quote.
void Escaped(std::string& out, const std::string& s, bool quote) {
  if (s.find_first_of(quote ? "\\\n\"" : "\\\n") == std::string::npos) {
    out += s;  // the common case
    return;
  }
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

const char* TypeName(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Summary: return "summary";
    case prometheus::MetricType::Histogram: return "histogram";
    case prometheus::MetricType::Untyped: break;
  }
  return "untyped";
}

// Writes the samples of one family; `labels` is the series' escaped `a="x",b="y"` (possibly
// empty), written once and copied into every sample's line.
class Lines {
 public:
  Lines(std::string& out, const std::string& name) : out_(out), name_(name) {}

  void Series(const prometheus::ClientMetric& m) {
    labels_.clear();
    for (const auto& l : m.label) {
      if (!labels_.empty()) labels_ += ',';
      labels_ += l.name;
      labels_ += "=\"";
      Escaped(labels_, l.value, true);
      labels_ += '"';
    }
  }

  // Every bucket of the series. The bounds are the same from one series to the next: each is
  // formatted once, not on each of the 288,000 lines of 1,000 vNICs' histograms.
  void Buckets(const std::vector<prometheus::ClientMetric::Bucket>& buckets) {
    prefix_.assign(name_).append("_bucket{").append(labels_);
    if (!labels_.empty()) prefix_ += ',';
    prefix_ += "le=\"";
    if (bounds_.size() < buckets.size()) bounds_.resize(buckets.size(), {std::nan(""), ""});
    for (size_t i = 0; i < buckets.size(); i++) {
      auto& [bound, text] = bounds_[i];
      if (!(bound == buckets[i].upper_bound)) {
        bound = buckets[i].upper_bound;
        text.clear();
        Number(text, bound);
        text += "\"} ";
      }
      out_ += prefix_;
      out_ += text;
      Number(out_, buckets[i].cumulative_count);
      out_ += '\n';
    }
  }

  // name`suffix`{labels[,extra_name="extra"]} value
  template <class V>
  void Sample(const char* suffix, V value, const char* extra_name = nullptr, double extra = 0) {
    out_ += name_;
    out_ += suffix;
    if (!labels_.empty() || extra_name) {
      out_ += '{';
      out_ += labels_;
      if (extra_name) {
        if (!labels_.empty()) out_ += ',';
        out_ += extra_name;
        out_ += "=\"";
        Number(out_, extra);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    Number(out_, value);
    out_ += '\n';
  }

 private:
  std::string& out_;
  const std::string& name_;
  std::string labels_;
  std::string prefix_;
  std::vector<std::pair<double, std::string>> bounds_;  // bound, its text and `"} `
};

}  // namespace

void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families, size_t chunk,
               const std::function<bool(std::string&)>& flush) {
  using prometheus::MetricType;
  for (const auto& f : families) {
    // A family without series keeps its TYPE line, as with prometheus-cpp: it says the metric
    // exists here, only nothing was counted yet.
    if (!f.help.empty()) {
      out += "# HELP ";
      out += f.name;
      out += ' ';
      Escaped(out, f.help, false);
      out += '\n';
    }
    out += "# TYPE ";
    out += f.name;
    out += ' ';
    out += TypeName(f.type);
    out += '\n';
    Lines lines(out, f.name);
    for (const auto& m : f.metric) {
      if (out.size() >= chunk && !flush(out)) return;
      lines.Series(m);
      switch (f.type) {
        case MetricType::Counter: lines.Sample("", m.counter.value); break;
        case MetricType::Gauge: lines.Sample("", m.gauge.value); break;
        case MetricType::Untyped: lines.Sample("", m.untyped.value); break;
        case MetricType::Summary:
          for (const auto& q : m.summary.quantile) lines.Sample("", q.value, "quantile", q.quantile);
          lines.Sample("_sum", m.summary.sample_sum);
          lines.Sample("_count", m.summary.sample_count);
          break;
        case MetricType::Histogram:
          lines.Buckets(m.histogram.bucket);
          lines.Sample("_sum", m.histogram.sample_sum);
          lines.Sample("_count", m.histogram.sample_count);
          break;
      }
    }
  }
  flush(out);
}

void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families) {
  WriteText(out, families, SIZE_MAX, [](std::string&) { return true; });
}

}  // namespace vnet::metrics
