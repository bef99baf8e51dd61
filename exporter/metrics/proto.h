// The Prometheus protobuf exposition (delimited MetricFamily messages of exposition.proto, which
// the tests decode with Debian's protobuf library), which Prometheus asks for when its native
// histograms are on. Encoded here, field by field: a message object per series (and per label)
// made a scrape of a full drops map three times slower than its text. The kernel's histograms are written as
// native histograms of schema 0: their slots are exactly its buckets (bpf/hist.h), so a
// histogram is one series of at most 27 buckets instead of a series per classic bucket.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <string>

#include "metrics/writer.h"

namespace vnet::metrics {

// The media type of the answer.
extern const char* const kProtoContentType;

// Writes to `out` as TextWriter does (`flush` between families: a family is one message).
class ProtoWriter : public Writer {
 public:
  ProtoWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush);

  void Family(const std::string& name, const std::string& help, prometheus::MetricType type) override;
  void Value(std::span<const Label> labels, double value) override;
  void Histogram(std::span<const Label> labels, const hist& h, int first, int last) override;
  void Write(const prometheus::MetricFamily& family) override;

  // Writes the last family and flushes; false when the client went away.
  bool Finish() override;

 private:
  void End();  // writes the family being built, if any
  void Labels(std::span<const Label> labels);  // starts a series: metric_ holds its labels
  void Metric();  // adds metric_ to the family

  std::string& out_;
  size_t chunk_;
  std::function<bool(std::string&)> flush_;
  bool stopped_ = false;
  bool open_ = false;
  prometheus::MetricType type_ = prometheus::MetricType::Untyped;
  // The encoded family, series and value (a message's length comes before it), and a label
  // value made valid UTF-8.
  std::string family_, metric_, value_, valid_;
};

}  // namespace vnet::metrics
