// Small builders for prometheus::MetricFamily values emitted at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <string_view>
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

// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD. Label values come from
// device, VM and OVS names that others choose; one invalid byte makes Prometheus reject the
// whole scrape.
std::string ValidUtf8(std::string_view s);
bool IsValidUtf8(std::string_view s);

inline prometheus::ClientMetric& Add(prometheus::MetricFamily& f, const Labels& labels) {
  prometheus::ClientMetric& m = f.metric.emplace_back();
  m.label.reserve(labels.size());
  for (const auto& [k, v] : labels) m.label.push_back({k, ValidUtf8(v)});
  return m;
}

inline void AddCounter(prometheus::MetricFamily& f, const Labels& labels, double v) { Add(f, labels).counter.value = v; }

// The families in a vector, moved: `return {a, b};` would copy every series (28% of a scrape of
// a full drops map).
template <class... F>
std::vector<prometheus::MetricFamily> Families(F&&... families) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(sizeof...(families));
  (out.push_back(std::forward<F>(families)), ...);
  return out;
}

inline void AddGauge(prometheus::MetricFamily& f, const Labels& labels, double v) { Add(f, labels).gauge.value = v; }

}  // namespace vnet::metrics
