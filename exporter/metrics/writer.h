// Where a scrape's metrics go. Collectors with big maps write each series straight to the
// writer as they walk what they read, without a prometheus::MetricFamily of every series: the
// text exposition is then written to the client as it is made (TextWriter). FamilyWriter builds
// MetricFamily values instead, for tests and for prometheus-cpp's Collectable.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" {
#include <linux/types.h>

#include "bpf/hist.h"
}

namespace vnet::metrics {

using Label = std::pair<std::string_view, std::string_view>;

class Writer {
 public:
  virtual ~Writer() = default;
  // Starts a family: the series written next are its own.
  virtual void Family(const std::string& name, const std::string& help, prometheus::MetricType type) = 0;
  // A series of a counter or gauge family.
  virtual void Value(std::span<const Label> labels, double value) = 0;
  // A series of a histogram family from the kernel's log2 histogram (bpf/hist.h: slot i counts
  // the samples of at most 2^(i-20) seconds): classic buckets for slots first..last, the samples
  // of the other slots counted in the buckets above them and in +Inf.
  virtual void Histogram(std::span<const Label> labels, const hist& h, int first, int last) = 0;
  // A family built whole (collectors with a few series).
  virtual void Write(const prometheus::MetricFamily& family) = 0;
  // After the last family: false when what was written could not all be delivered.
  virtual bool Finish() { return true; }
};

// What a collector read, ready to be written: it runs after the collector's lock is released
// (in the HTTP thread), so it holds its own copy of what it writes.
using Emit = std::function<void(Writer&)>;

// A histogram family of kernel histograms built whole (collectors with a few series), so that
// each writer writes them its own way.
struct HistogramFamily {
  std::string name, help;
  int first = 0, last = 0;  // the classic buckets' slots
  std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, hist>> series;  // labels, histogram

  void WriteTo(Writer& w) const;
};

// Emit of families built whole.
inline Emit EmitFamilies(std::vector<prometheus::MetricFamily> families) {
  return [families = std::move(families)](Writer& w) {
    for (const auto& f : families) w.Write(f);
  };
}

class FamilyWriter : public Writer {
 public:
  void Family(const std::string& name, const std::string& help, prometheus::MetricType type) override;
  void Value(std::span<const Label> labels, double value) override;
  void Histogram(std::span<const Label> labels, const hist& h, int first, int last) override;
  void Write(const prometheus::MetricFamily& family) override { families_.push_back(family); }

  std::vector<prometheus::MetricFamily>& families() { return families_; }

 private:
  prometheus::ClientMetric& Add(std::span<const Label> labels);

  std::vector<prometheus::MetricFamily> families_;
};

// The families `emit` writes.
inline std::vector<prometheus::MetricFamily> Collected(const Emit& emit) {
  FamilyWriter w;
  emit(w);
  return std::move(w.families());
}

}  // namespace vnet::metrics
