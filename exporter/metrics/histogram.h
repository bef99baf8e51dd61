// Prometheus histograms from the kernel's log2 histograms (bpf/hist.h): slot i counts the
// samples of at most 2^(i-20) seconds, so a slot's index is its `le` bound.
#pragma once

#include <cmath>
#include <limits>

#include "metrics/family.h"

extern "C" {
#include <linux/types.h>

#include "bpf/hist.h"
}

namespace vnet::metrics {

// The `le` bound of slot i, in seconds.
inline double SlotBound(int i) { return std::ldexp(1.0, i + HIST_SLOT0_EXP); }

// `m` becomes `h` with buckets for slots first..last; samples of the other slots are counted in
// the buckets above them and in +Inf.
inline void SetHistogram(prometheus::ClientMetric& m, const hist& h, int first, int last) {
  uint64_t cumulative = 0;
  for (int i = 0; i < HIST_SLOTS; i++) {
    cumulative += h.slots[i];
    if (i >= first && i <= last) m.histogram.bucket.push_back({cumulative, SlotBound(i)});
  }
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
}

}  // namespace vnet::metrics
