// The Prometheus protobuf exposition (delimited MetricFamily messages, exposition.proto), which
// Prometheus asks for when its native histograms are on. The kernel's histograms are written as
// native histograms of schema 0: their slots are exactly its buckets (bpf/hist.h), so a
// histogram is one series of at most 27 buckets instead of a series per classic bucket.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "metrics/writer.h"

namespace vnet::exposition {
class MetricFamily;
}

namespace vnet::metrics {

// The media type of the answer.
extern const char* const kProtoContentType;

// Writes to `out` as TextWriter does (`flush` between families: a family is one message).
class ProtoWriter : public Writer {
 public:
  ProtoWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush);
  ~ProtoWriter() override;

  void Family(const std::string& name, const std::string& help, prometheus::MetricType type) override;
  void Value(std::span<const Label> labels, double value) override;
  void Histogram(std::span<const Label> labels, const hist& h, int first, int last) override;
  void Write(const prometheus::MetricFamily& family) override;

  // Writes the last family and flushes; false when the client went away.
  bool Finish();

 private:
  void End();  // writes the family being built, if any

  std::string& out_;
  size_t chunk_;
  std::function<bool(std::string&)> flush_;
  bool stopped_ = false;
  std::unique_ptr<exposition::MetricFamily> family_;
};

}  // namespace vnet::metrics
