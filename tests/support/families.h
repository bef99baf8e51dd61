// A collector's series read back for the tests' assertions.
#pragma once

#include <prometheus/metric_family.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace vnet::testing {

using Labels = std::map<std::string, std::string>;

struct Hist {
  double count = 0, sum = 0;
  std::map<double, double> buckets;  // le -> cumulative count
  // The cumulative count at `bound`: 0 when there is no series yet, -1 when no bucket has that bound.
  double Le(double bound) const {
    for (const auto& [le, c] : buckets) {
      if (std::fabs(le - bound) < bound * 1e-9) return c;
    }
    return buckets.empty() ? 0 : -1;
  }
};

// The histogram of `family` whose labels are exactly `want` (empty: no such series).
inline Hist HistogramOf(const std::vector<prometheus::MetricFamily>& families, const std::string& family,
                        const Labels& want) {
  Hist h;
  for (const auto& f : families) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      Labels l;
      for (const auto& lp : m.label) l[lp.name] = lp.value;
      if (l != want) continue;
      h.count = static_cast<double>(m.histogram.sample_count);
      h.sum = m.histogram.sample_sum;
      for (const auto& b : m.histogram.bucket) h.buckets[b.upper_bound] = static_cast<double>(b.cumulative_count);
    }
  }
  return h;
}

}  // namespace vnet::testing
