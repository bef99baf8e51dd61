#include "metrics/writer.h"

#include "metrics/family.h"
#include "metrics/histogram.h"

namespace vnet::metrics {

void FamilyWriter::Family(const std::string& name, const std::string& help, prometheus::MetricType type) {
  families_.push_back(metrics::Family(name, help, type));
}

prometheus::ClientMetric& FamilyWriter::Add(std::span<const Label> labels) {
  prometheus::ClientMetric& m = families_.back().metric.emplace_back();
  for (const auto& [k, v] : labels) m.label.push_back({std::string(k), ValidUtf8(std::string(v))});
  return m;
}

void FamilyWriter::Value(std::span<const Label> labels, double value) {
  auto& m = Add(labels);
  if (families_.back().type == prometheus::MetricType::Gauge) {
    m.gauge.value = value;
  } else {
    m.counter.value = value;
  }
}

void FamilyWriter::Histogram(std::span<const Label> labels, const hist& h, int first, int last) {
  SetHistogram(Add(labels), h, first, last);
}

void HistogramFamily::WriteTo(Writer& w) const {
  w.Family(name, help, prometheus::MetricType::Histogram);
  std::vector<Label> labels;
  for (const auto& [l, h] : series) {
    labels.assign(l.begin(), l.end());
    w.Histogram(labels, h, first, last);
  }
}

}  // namespace vnet::metrics
