// The Prometheus text exposition format (0.0.4). Ours rather than prometheus-cpp's
// TextSerializer: that one formats every number through an ostream, which made a scrape of
// 1,000 vNICs' histograms (27 MB of text) take 320-420 ms to write alone.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "metrics/writer.h"

namespace vnet::metrics {

// Writes to `out`, handing `out` to `flush` each time it holds `chunk` bytes or more (between
// series) and at Finish(); `flush` takes what it wants and clears `out`, or returns false to
// stop (the client went away: what is written next is dropped). A scrape's text then never has
// to be whole in memory: 27 MB for 1,000 vNICs' histograms. Label values are made valid UTF-8
// and escaped; metric and label names are written as given (ours are fixed in the code).
class TextWriter : public Writer {
 public:
  TextWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush);

  void Family(const std::string& name, const std::string& help, prometheus::MetricType type) override;
  void Value(std::span<const Label> labels, double value) override;
  void Histogram(std::span<const Label> labels, const hist& h, int first, int last) override;
  void Write(const prometheus::MetricFamily& family) override;

  // Flushes what is left; false when the client went away.
  bool Finish() override;

 private:
  bool Next();  // before a series: flushes a full chunk; false once stopped
  void Labels(std::span<const Label> labels);
  template <class V>
  void Sample(const char* suffix, V value, const char* extra_name = nullptr, double extra = 0);
  // One `_bucket` line: `bound` is the text of its `le` value followed by `"} `.
  void Bucket(const std::string& bound, uint64_t cumulative);

  std::string& out_;
  size_t chunk_;
  std::function<bool(std::string&)> flush_;
  bool stopped_ = false;
  std::string name_;    // of the family being written
  std::string labels_;  // the series' escaped `a="x",b="y"`, written into each of its lines
  std::string prefix_;  // `name_bucket{labels,le="`
  std::vector<std::pair<double, std::string>> bounds_;  // of Write()'s histograms: a bound, its text
};

// Writes `families` to `out` as TextWriter does.
void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families, size_t chunk,
               const std::function<bool(std::string&)>& flush);

// All of it appended to `out`.
void WriteText(std::string& out, const std::vector<prometheus::MetricFamily>& families);

}  // namespace vnet::metrics
