#include "metrics/text.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "metrics/family.h"
#include "metrics/histogram.h"

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
    out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr - buf);
  }
}

void Number(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr - buf);
}

// Bytes that a label value (kLabel) or HELP text (kHelp) cannot hold as they are: those to
// escape, and all of 0x80 and above (UTF-8 to check).
enum : uint8_t { kHelp = 1, kLabel = 2 };
constexpr std::array<uint8_t, 256> kSpecial = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0x80; c < 256; c++) t[c] = kHelp | kLabel;
  t['\\'] = t['\n'] = kHelp | kLabel;
  t['"'] = kLabel;
  return t;
}();

// Whether `s` is ASCII with nothing to escape, as almost every label value is. A table look-up
// per byte: find_first_of() calls memchr for every byte (14% of a scrape of a full drops map),
// and comparing each byte with the four cases was still 6%.
bool Plain(std::string_view s, uint8_t kind) {
  for (const char c : s) {
    if (kSpecial[static_cast<unsigned char>(c)] & kind) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also the double quote.
void Escaped(std::string& out, std::string_view s, bool quote) {
  if (Plain(s, quote ? kLabel : kHelp)) {
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

// The `le` text of every slot's bound and of +Inf, each followed by `"} `: formatted once, not
// on each of the 288,000 bucket lines of 1,000 vNICs' histograms.
const std::array<std::string, HIST_SLOTS + 1>& SlotBounds() {
  static const auto bounds = [] {
    std::array<std::string, HIST_SLOTS + 1> out;
    for (int i = 0; i <= HIST_SLOTS; i++) {
      Number(out[i], i < HIST_SLOTS ? SlotBound(i) : std::numeric_limits<double>::infinity());
      out[i] += "\"} ";
    }
    return out;
  }();
  return bounds;
}

}  // namespace

TextWriter::TextWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush)
    : out_(out), chunk_(chunk), flush_(std::move(flush)) {}

bool TextWriter::Next() {
  if (!stopped_ && out_.size() >= chunk_) stopped_ = !flush_(out_);
  return !stopped_;
}

bool TextWriter::Finish() {
  if (!stopped_) stopped_ = !flush_(out_);
  return !stopped_;
}

void TextWriter::Family(const std::string& name, const std::string& help, prometheus::MetricType type) {
  if (!Next()) return;
  // A family without series keeps its TYPE line, as with prometheus-cpp: it says the metric
  // exists here, only nothing was counted yet.
  if (!help.empty()) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    Escaped(out_, help, false);
    out_ += '\n';
  }
  out_ += "# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += TypeName(type);
  out_ += '\n';
  name_ = name;
}

void TextWriter::Labels(std::span<const Label> labels) {
  labels_.clear();
  // The common case, values with nothing to escape, copied into place at once: appending the
  // pieces one by one was 12% of a scrape of a full drops map.
  size_t size = 0;
  bool plain = true;
  for (const auto& [k, v] : labels) {
    size += k.size() + v.size() + 4;  // ,k="v"
    plain = plain && Plain(v, kLabel);
  }
  if (plain && size > 0) {
    labels_.resize(size);
    char* p = labels_.data();
    for (const auto& [k, v] : labels) {
      *p++ = ',';
      p = std::copy(k.begin(), k.end(), p);
      *p++ = '=';
      *p++ = '"';
      p = std::copy(v.begin(), v.end(), p);
      *p++ = '"';
    }
    labels_.erase(0, 1);  // the first comma
    return;
  }
  for (const auto& [k, v] : labels) {
    if (!labels_.empty()) labels_ += ',';
    labels_ += k;
    labels_ += "=\"";
    if (IsValidUtf8(v)) {
      Escaped(labels_, v, true);
    } else {
      Escaped(labels_, ValidUtf8(v), true);
    }
    labels_ += '"';
  }
}

// name`suffix`{labels[,extra_name="extra"]} value
template <class V>
void TextWriter::Sample(const char* suffix, V value, const char* extra_name, double extra) {
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

void TextWriter::Bucket(const std::string& bound, uint64_t cumulative) {
  out_ += prefix_;
  out_ += bound;
  Number(out_, cumulative);
  out_ += '\n';
}

void TextWriter::Value(std::span<const Label> labels, double value) {
  if (!Next()) return;
  Labels(labels);
  Sample("", value);
}

void TextWriter::Histogram(std::span<const Label> labels, const hist& h, int first, int last) {
  if (!Next()) return;
  Labels(labels);
  prefix_.assign(name_).append("_bucket{").append(labels_);
  if (!labels_.empty()) prefix_ += ',';
  prefix_ += "le=\"";
  const auto& bounds = SlotBounds();
  uint64_t cumulative = 0;
  for (int i = 0; i < HIST_SLOTS; i++) {
    cumulative += h.slots[i];
    if (i >= first && i <= last) Bucket(bounds[i], cumulative);
  }
  Bucket(bounds[HIST_SLOTS], cumulative);
  Sample("_sum", static_cast<double>(h.sum_ns) / 1e9);
  Sample("_count", cumulative);
}

void TextWriter::Write(const prometheus::MetricFamily& f) {
  using prometheus::MetricType;
  Family(f.name, f.help, f.type);
  std::vector<Label> labels;
  for (const auto& m : f.metric) {
    if (!Next()) return;
    labels.clear();
    for (const auto& l : m.label) labels.emplace_back(l.name, l.value);
    Labels(labels);
    switch (f.type) {
      case MetricType::Counter: Sample("", m.counter.value); break;
      case MetricType::Gauge: Sample("", m.gauge.value); break;
      case MetricType::Untyped: Sample("", m.untyped.value); break;
      case MetricType::Summary:
        for (const auto& q : m.summary.quantile) Sample("", q.value, "quantile", q.quantile);
        Sample("_sum", m.summary.sample_sum);
        Sample("_count", m.summary.sample_count);
        break;
      case MetricType::Histogram: {
        prefix_.assign(name_).append("_bucket{").append(labels_);
        if (!labels_.empty()) prefix_ += ',';
        prefix_ += "le=\"";
        const auto& buckets = m.histogram.bucket;
        if (bounds_.size() < buckets.size()) bounds_.resize(buckets.size(), {std::nan(""), ""});
        for (size_t i = 0; i < buckets.size(); i++) {
          auto& [bound, text] = bounds_[i];
          if (!(bound == buckets[i].upper_bound)) {  // the bounds are mostly those of the last series
            bound = buckets[i].upper_bound;
            text.clear();
            Number(text, bound);
            text += "\"} ";
          }
          Bucket(text, buckets[i].cumulative_count);
        }
        Sample("_sum", m.histogram.sample_sum);
        Sample("_count", m.histogram.sample_count);
        break;
      }
    }
  }
}

void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families, size_t chunk,
               const std::function<bool(std::string&)>& flush) {
  TextWriter w(out, chunk, flush);
  for (const auto& f : families) w.Write(f);
  w.Finish();
}

void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families) {
  WriteText(out, families, SIZE_MAX, [](std::string&) { return true; });
}

}  // namespace vnet::metrics
