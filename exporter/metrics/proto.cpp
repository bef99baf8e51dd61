#include "metrics/proto.h"

#include <cmath>
#include <vector>

#include "metrics/exposition.pb.h"
#include "metrics/family.h"

namespace vnet::metrics {
namespace {

exposition::MetricType TypeOf(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return exposition::COUNTER;
    case prometheus::MetricType::Gauge: return exposition::GAUGE;
    case prometheus::MetricType::Summary: return exposition::SUMMARY;
    case prometheus::MetricType::Histogram: return exposition::HISTOGRAM;
    case prometheus::MetricType::Untyped: break;
  }
  return exposition::UNTYPED;
}

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

template <class L>
void SetLabels(exposition::Metric& m, const L& labels) {
  for (const auto& [k, v] : labels) {
    auto* l = m.add_label();
    l->set_name(std::string(k));
    l->set_value(IsValidUtf8(v) ? std::string(v) : ValidUtf8(v));
  }
}

}  // namespace

const char* const kProtoContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

ProtoWriter::ProtoWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush)
    : out_(out), chunk_(chunk), flush_(std::move(flush)) {}

ProtoWriter::~ProtoWriter() = default;

void ProtoWriter::End() {
  if (!family_) return;
  if (!stopped_) {
    AppendVarint(out_, family_->ByteSizeLong());
    family_->AppendToString(&out_);
    if (out_.size() >= chunk_) stopped_ = !flush_(out_);
  }
  family_.reset();
}

bool ProtoWriter::Finish() {
  End();
  if (!stopped_) stopped_ = !flush_(out_);
  return !stopped_;
}

void ProtoWriter::Family(const std::string& name, const std::string& help, prometheus::MetricType type) {
  End();
  family_ = std::make_unique<exposition::MetricFamily>();
  family_->set_name(name);
  family_->set_help(help);
  family_->set_type(TypeOf(type));
}

void ProtoWriter::Value(std::span<const Label> labels, double value) {
  if (stopped_) return;
  auto* m = family_->add_metric();
  SetLabels(*m, labels);
  if (family_->type() == exposition::GAUGE) {
    m->mutable_gauge()->set_value(value);
  } else {
    m->mutable_counter()->set_value(value);
  }
}

// Native, schema 0: slot 0 (at most 2^HIST_SLOT0_EXP s, which includes 0) is the zero bucket,
// slot i > 0 the bucket of index i + HIST_SLOT0_EXP. The zero bucket's width also marks the
// histogram as native while it is still empty. The last slot (above 32 s, unbounded) is counted
// in the 64 s bucket. Runs of empty buckets are left out (a span per run of non-empty ones).
void ProtoWriter::Histogram(std::span<const Label> labels, const hist& h, int, int) {
  if (stopped_) return;
  auto* m = family_->add_metric();
  SetLabels(*m, labels);
  auto* n = m->mutable_histogram();
  n->set_schema(0);
  n->set_zero_threshold(std::ldexp(1.0, HIST_SLOT0_EXP));
  n->set_zero_count(h.slots[0]);
  uint64_t count = h.slots[0], previous = 0;
  int end = 1;  // the slot after the last span
  exposition::BucketSpan* span = nullptr;
  for (int i = 1; i < HIST_SLOTS; i++) {
    const uint64_t c = h.slots[i];
    count += c;
    if (c == 0) continue;
    if (!span || i != end) {
      span = n->add_positive_span();
      span->set_offset(n->positive_span_size() == 1 ? i + HIST_SLOT0_EXP : i - end);
      span->set_length(0);
    }
    span->set_length(span->length() + 1);
    n->add_positive_delta(static_cast<int64_t>(c - previous));
    previous = c;
    end = i + 1;
  }
  n->set_sample_count(count);
  n->set_sample_sum(static_cast<double>(h.sum_ns) / 1e9);
}

void ProtoWriter::Write(const prometheus::MetricFamily& f) {
  Family(f.name, f.help, f.type);
  if (stopped_) return;
  for (const auto& pm : f.metric) {
    auto* m = family_->add_metric();
    std::vector<std::pair<const std::string&, const std::string&>> labels;
    for (const auto& l : pm.label) labels.emplace_back(l.name, l.value);
    SetLabels(*m, labels);
    switch (f.type) {
      case prometheus::MetricType::Counter: m->mutable_counter()->set_value(pm.counter.value); break;
      case prometheus::MetricType::Gauge: m->mutable_gauge()->set_value(pm.gauge.value); break;
      case prometheus::MetricType::Untyped: m->mutable_untyped()->set_value(pm.untyped.value); break;
      case prometheus::MetricType::Summary: {
        auto* s = m->mutable_summary();
        s->set_sample_count(pm.summary.sample_count);
        s->set_sample_sum(pm.summary.sample_sum);
        for (const auto& q : pm.summary.quantile) {
          auto* o = s->add_quantile();
          o->set_quantile(q.quantile);
          o->set_value(q.value);
        }
        break;
      }
      case prometheus::MetricType::Histogram: {
        auto* h = m->mutable_histogram();
        h->set_sample_count(pm.histogram.sample_count);
        h->set_sample_sum(pm.histogram.sample_sum);
        for (const auto& b : pm.histogram.bucket) {
          auto* o = h->add_bucket();
          o->set_cumulative_count(b.cumulative_count);
          o->set_upper_bound(b.upper_bound);
        }
        break;
      }
    }
  }
}

}  // namespace vnet::metrics
