#include "metrics/proto.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "metrics/family.h"

namespace vnet::metrics {
namespace {

// The protobuf wire format, as much of it as exposition.proto needs: a field is a tag (its
// number and wire type) and a varint, a little-endian double, or a length and bytes.
enum WireType { kVarint = 0, kFixed64 = 1, kLen = 2 };

// The values of exposition.proto's MetricType.
int TypeOf(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return 0;
    case prometheus::MetricType::Gauge: return 1;
    case prometheus::MetricType::Summary: return 2;
    case prometheus::MetricType::Untyped: return 3;
    case prometheus::MetricType::Histogram: return 4;
  }
  return 3;
}

// Each encoder writes at `p`, into room the caller made, and returns the end: a histogram's
// fields are made in a buffer on the stack, not appended to a string one by one (the appends
// were 14% of a native scrape of 1,000 vNICs' per-queue histograms).
constexpr size_t kMaxVarint = 10, kMaxField = 1 + kMaxVarint;  // tags here are one byte

char* PutVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* PutTag(char* p, int field, WireType type) { return PutVarint(p, static_cast<uint64_t>(field) << 3 | type); }

char* PutUint(char* p, int field, uint64_t v) { return PutVarint(PutTag(p, field, kVarint), v); }

char* PutSint(char* p, int field, int64_t v) {  // zigzag: small negative numbers stay short
  return PutUint(p, field, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

char* PutDouble(char* p, int field, double v) {
  p = PutTag(p, field, kFixed64);
  std::memcpy(p, &v, 8);  // x86 and the wire are both little-endian
  return p + 8;
}

void Varint(std::string& out, uint64_t v) {
  char b[kMaxVarint];
  out.append(b, PutVarint(b, v) - b);
}

void Uint(std::string& out, int field, uint64_t v) {
  char b[kMaxField + kMaxVarint];
  out.append(b, PutUint(b, field, v) - b);
}

void Double(std::string& out, int field, double v) {
  char b[kMaxField];
  out.append(b, PutDouble(b, field, v) - b);
}

void Tag(std::string& out, int field, WireType type) {
  char b[kMaxVarint];
  out.append(b, PutTag(b, field, type) - b);
}

// The encoded size of a one-byte-tag field of bytes `s`.
size_t Size(std::string_view s) {
  char b[kMaxVarint];
  return 1 + (PutVarint(b, s.size()) - b) + s.size();
}

void Bytes(std::string& out, int field, std::string_view s) {
  Tag(out, field, kLen);
  Varint(out, s.size());
  out += s;
}

// Field numbers of exposition.proto.
namespace family { enum { kName = 1, kHelp = 2, kType = 3, kMetric = 4 }; }
namespace metric { enum { kLabel = 1, kGauge = 2, kCounter = 3, kSummary = 4, kUntyped = 5, kHistogram = 7 }; }
namespace histogram {
enum { kCount = 1, kSum = 2, kBucket = 3, kSchema = 5, kZeroThreshold = 6, kZeroCount = 7, kSpan = 12, kDelta = 13 };
}

}  // namespace

const char* const kProtoContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

ProtoWriter::ProtoWriter(std::string& out, size_t chunk, std::function<bool(std::string&)> flush)
    : out_(out), chunk_(chunk), flush_(std::move(flush)) {}

void ProtoWriter::End() {
  if (!open_) return;
  open_ = false;
  if (stopped_) return;
  Varint(out_, family_.size());
  out_ += family_;
  if (out_.size() >= chunk_) stopped_ = !flush_(out_);
}

bool ProtoWriter::Finish() {
  End();
  if (!stopped_) stopped_ = !flush_(out_);
  return !stopped_;
}

void ProtoWriter::Family(const std::string& name, const std::string& help, prometheus::MetricType type) {
  End();
  open_ = true;
  type_ = type;
  family_.clear();
  Bytes(family_, family::kName, name);
  if (!help.empty()) Bytes(family_, family::kHelp, help);
  Uint(family_, family::kType, TypeOf(type));
}

void ProtoWriter::Labels(std::span<const Label> labels) {
  metric_.clear();
  for (const auto& [k, v] : labels) {
    const std::string_view value = IsValidUtf8(v) ? v : std::string_view(valid_ = ValidUtf8(v));
    // The pair's length is known beforehand: it goes straight into metric_, not through a buffer.
    char b[kMaxField + kMaxVarint];
    char* p = PutTag(b, metric::kLabel, kLen);
    p = PutVarint(p, Size(k) + Size(value));
    metric_.append(b, p - b);
    Bytes(metric_, 1, k);
    Bytes(metric_, 2, value);
  }
}

void ProtoWriter::Metric() { Bytes(family_, family::kMetric, metric_); }

void ProtoWriter::Value(std::span<const Label> labels, double value) {
  if (stopped_) return;
  Labels(labels);
  // The Counter or Gauge message: its one double field, a tag and 8 bytes.
  constexpr uint64_t kDoubleField = 1 + 8;
  char b[2 * kMaxField];
  const int field = type_ == prometheus::MetricType::Gauge ? metric::kGauge : metric::kCounter;
  char* p = PutDouble(PutVarint(PutTag(b, field, kLen), kDoubleField), 1, value);
  metric_.append(b, p - b);
  Metric();
}

// Native, schema 0: slot 0 (at most 2^HIST_SLOT0_EXP s, which includes 0) is the zero bucket,
// slot i > 0 the bucket of index i + HIST_SLOT0_EXP. The zero bucket's width also marks the
// histogram as native while it is still empty. The last slot (above 32 s, unbounded) is counted
// in the 64 s bucket. Runs of empty buckets are left out (a span per run of non-empty ones).
void ProtoWriter::Histogram(std::span<const Label> labels, const hist& h, int, int) {
  if (stopped_) return;
  Labels(labels);
  // Room for the five fields, a span per slot at most (a tag, a length, two fields) and a
  // delta per slot.
  char value[5 * kMaxField + HIST_SLOTS * (2 + 2 * (kMaxField + kMaxVarint)) + HIST_SLOTS * (kMaxField + kMaxVarint)];
  char deltas[HIST_SLOTS * (kMaxField + kMaxVarint)];
  char *p = value, *d = deltas;
  uint64_t count = h.slots[0], previous = 0;
  int end = -1, offset = 0, length = 0;  // end: the slot after the last span, -1 before the first
  auto put_span = [&] {
    char span[2 * (kMaxField + kMaxVarint)];
    char* e = PutUint(PutSint(span, 1, offset), 2, length);
    p = PutVarint(PutTag(p, histogram::kSpan, kLen), e - span);
    p = std::copy(span, e, p);
  };
  for (int i = 1; i < HIST_SLOTS; i++) {
    const uint64_t c = h.slots[i];
    count += c;
    if (c == 0) continue;
    if (i != end) {  // a span starts: the previous one ends
      if (end >= 0) put_span();
      offset = end < 0 ? i + HIST_SLOT0_EXP : i - end;
      length = 0;
    }
    length++;
    d = PutSint(d, histogram::kDelta, static_cast<int64_t>(c - previous));
    previous = c;
    end = i + 1;
  }
  if (end >= 0) put_span();
  p = PutUint(p, histogram::kCount, count);
  p = PutDouble(p, histogram::kSum, static_cast<double>(h.sum_ns) / 1e9);
  p = PutSint(p, histogram::kSchema, 0);
  p = PutDouble(p, histogram::kZeroThreshold, std::ldexp(1.0, HIST_SLOT0_EXP));
  p = PutUint(p, histogram::kZeroCount, h.slots[0]);
  p = std::copy(deltas, d, p);
  Bytes(metric_, metric::kHistogram, std::string_view(value, p - value));
  Metric();
}

void ProtoWriter::Write(const prometheus::MetricFamily& f) {
  Family(f.name, f.help, f.type);
  std::vector<Label> labels;
  std::string part;
  for (const auto& m : f.metric) {
    if (stopped_) return;
    labels.clear();
    for (const auto& l : m.label) labels.emplace_back(l.name, l.value);
    Labels(labels);
    value_.clear();
    switch (f.type) {
      case prometheus::MetricType::Counter: Double(value_, 1, m.counter.value); break;
      case prometheus::MetricType::Gauge: Double(value_, 1, m.gauge.value); break;
      case prometheus::MetricType::Untyped: Double(value_, 1, m.untyped.value); break;
      case prometheus::MetricType::Summary:
        Uint(value_, 1, m.summary.sample_count);
        Double(value_, 2, m.summary.sample_sum);
        for (const auto& q : m.summary.quantile) {
          part.clear();
          Double(part, 1, q.quantile);
          Double(part, 2, q.value);
          Bytes(value_, 3, part);
        }
        break;
      case prometheus::MetricType::Histogram:
        Uint(value_, histogram::kCount, m.histogram.sample_count);
        Double(value_, histogram::kSum, m.histogram.sample_sum);
        for (const auto& b : m.histogram.bucket) {
          part.clear();
          Uint(part, 1, b.cumulative_count);
          Double(part, 2, b.upper_bound);
          Bytes(value_, histogram::kBucket, part);
        }
        break;
    }
    const int field = f.type == prometheus::MetricType::Counter   ? metric::kCounter
                      : f.type == prometheus::MetricType::Gauge   ? metric::kGauge
                      : f.type == prometheus::MetricType::Summary ? metric::kSummary
                      : f.type == prometheus::MetricType::Histogram ? metric::kHistogram
                                                                    : metric::kUntyped;
    Bytes(metric_, field, value_);
    Metric();
  }
}

}  // namespace vnet::metrics
