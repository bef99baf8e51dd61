// Small builders for prometheus::MetricFamily values emitted at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace vnet::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

inline prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

inline prometheus::ClientMetric& Add(prometheus::MetricFamily& f, const Labels& labels) {
  prometheus::ClientMetric& m = f.metric.emplace_back();
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

inline void AddCounter(prometheus::MetricFamily& f, const Labels& labels, double v) { Add(f, labels).counter.value = v; }

inline void AddGauge(prometheus::MetricFamily& f, const Labels& labels, double v) { Add(f, labels).gauge.value = v; }

}  // namespace vnet::metrics
