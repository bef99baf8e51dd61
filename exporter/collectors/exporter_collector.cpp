#include "collectors/exporter_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf_version.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "log/log.h"
#include "metrics/family.h"
#include "version.h"

namespace vnet::collectors {

using prometheus::MetricType;

ExporterCollector::ExporterCollector(std::vector<std::unique_ptr<Collector>> collectors, std::string bpf_stats_sysctl)
    : collectors_(std::move(collectors)), bpf_stats_sysctl_(std::move(bpf_stats_sysctl)) {}

ExporterCollector::~ExporterCollector() {
  std::unique_lock lock(mu_);
  finished_.wait(lock, [this] { return running_ == 0; });
}

// Once per distinct error, not at every scrape of a daemon that stays away.
void ExporterCollector::Record(const std::string& collector, const std::string& error) const {
  std::lock_guard lock(mu_);
  if (error.empty()) {
    if (errors_.erase(collector)) log::Log(log::Level::kInfo, "collector " + collector + ": recovered");
    return;
  }
  auto& last = errors_[collector];
  if (last != error) log::Log(log::Level::kError, "collector " + collector + ": " + error);
  last = error;
}

metrics::Emit ExporterCollector::Scrape(std::chrono::milliseconds budget) const {
  // Collectors run side by side, each in a thread of its own: a scrape takes as long as its
  // slowest source, not their sum, and never longer than `budget`. Each collector guards its
  // own state, so concurrent scrapes wait only for the sources they share.
  struct Outcome {
    bool done = false;
    metrics::Emit emit;
    std::string error;
    double seconds = 0;
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Outcome> outcomes;
  };
  auto shared = std::make_shared<Shared>();
  shared->outcomes.resize(collectors_.size());
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < collectors_.size(); ++i) {
    {
      std::lock_guard lock(mu_);
      ++running_;
    }
    std::thread([this, shared, i, start] {
      Outcome o;
      try {
        o.emit = collectors_[i]->Scrape();
      } catch (const std::exception& e) {
        o.error = e.what();
      }
      o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      o.done = true;
      {
        std::lock_guard lock(shared->mu);
        shared->outcomes[i] = std::move(o);
      }
      shared->cv.notify_all();
      std::lock_guard lock(mu_);
      if (--running_ == 0) finished_.notify_all();
    }).detach();
  }
  std::vector<Outcome> outcomes;
  {
    std::unique_lock lock(shared->mu);
    shared->cv.wait_until(lock, start + budget, [&] {
      return std::all_of(shared->outcomes.begin(), shared->outcomes.end(), [](const Outcome& o) { return o.done; });
    });
    outcomes = std::move(shared->outcomes);  // what finishes later is not this scrape's
    shared->outcomes.assign(collectors_.size(), {});
  }

  std::vector<metrics::Emit> emits;
  std::vector<prometheus::MetricFamily> out;
  auto duration = metrics::Family("vnet_exporter_collector_scrape_duration_seconds",
                                  "Time a collector took to read its maps and build its metrics.", MetricType::Gauge);
  auto success = metrics::Family("vnet_exporter_collector_success",
                                 "1 when the collector's last scrape succeeded.", MetricType::Gauge);
  std::vector<const Collector*> finished;  // the self-metrics below may wait for a late one's lock
  for (size_t i = 0; i < collectors_.size(); ++i) {
    const std::string& name = collectors_[i]->Name();
    Outcome& o = outcomes[i];
    if (o.done) finished.push_back(collectors_[i].get());
    if (!o.done) {
      o.error = "did not finish within the scrape's " + std::to_string(budget.count()) + " ms (left out)";
      o.seconds = std::chrono::duration<double>(budget).count();
    }
    Record(name, o.error);
    if (o.emit) emits.push_back(std::move(o.emit));
    metrics::AddGauge(duration, {{"collector", name}}, o.seconds);
    metrics::AddGauge(success, {{"collector", name}}, o.error.empty() ? 1 : 0);
  }
  out.push_back(std::move(duration));
  out.push_back(std::move(success));

  auto build = metrics::Family("vnet_exporter_build_info", "Version of the exporter and of the libbpf it was built with.",
                               MetricType::Gauge);
  metrics::AddGauge(build,
                    {{"version", kVersion},
                     {"libbpf", std::to_string(LIBBPF_MAJOR_VERSION) + "." + std::to_string(LIBBPF_MINOR_VERSION)}},
                    1);
  out.push_back(std::move(build));

  auto attached = metrics::Family("vnet_exporter_probe_attached",
                                  "1 when the probe is attached, 0 when its hook is missing or was refused.",
                                  MetricType::Gauge);
  auto waiting = metrics::Family("vnet_exporter_probe_waiting",
                                 "1 when the probe waits for its kernel module (openvswitch) to be loaded; it "
                                 "attaches when the module appears.",
                                 MetricType::Gauge);
  auto entries = metrics::Family("vnet_exporter_map_entries", "Entries in a BPF map at the last scrape.", MetricType::Gauge);
  auto capacity = metrics::Family("vnet_exporter_map_capacity", "Maximum entries of a BPF map.", MetricType::Gauge);
  auto failures = metrics::Family("vnet_exporter_map_update_failures_total",
                                  "Inserts a BPF map refused because it was full: events not counted.",
                                  MetricType::Counter);
  auto evictions = metrics::Family("vnet_exporter_map_evictions_total",
                                   "Entries removed from a BPF map before they were complete (timed out or replaced).",
                                   MetricType::Counter);
  for (const Collector* c : finished) {
    for (const auto& p : c->Probes()) {
      metrics::AddGauge(attached, {{"collector", c->Name()}, {"probe", p.probe}, {"attach_type", p.attach_type}},
                        p.attached ? 1 : 0);
      metrics::AddGauge(waiting, {{"collector", c->Name()}, {"probe", p.probe}}, p.waiting ? 1 : 0);
    }
    for (const auto& m : c->Maps()) {
      metrics::Labels l{{"collector", c->Name()}, {"map", m.map}};
      metrics::AddGauge(entries, l, static_cast<double>(m.entries));
      metrics::AddGauge(capacity, l, static_cast<double>(m.capacity));
      metrics::AddCounter(failures, l, static_cast<double>(m.update_failures));
      metrics::AddCounter(evictions, l, static_cast<double>(m.evictions));
    }
  }
  for (auto* f : {&attached, &waiting, &entries, &capacity, &failures, &evictions}) out.push_back(std::move(*f));

  // Run counts and times exist only while kernel.bpf_stats_enabled=1 (it costs a clock read
  // per program run, so it is the operator's choice).
  std::ifstream sysctl(bpf_stats_sysctl_);
  int enabled = 0;
  if (sysctl >> enabled && enabled == 1) {
    auto runs = metrics::Family("vnet_exporter_bpf_program_runs_total",
                                "Times a BPF program ran (kernel.bpf_stats_enabled=1).", MetricType::Counter);
    auto time = metrics::Family("vnet_exporter_bpf_program_run_seconds_total",
                                "Time spent running a BPF program (kernel.bpf_stats_enabled=1).", MetricType::Counter);
    for (const Collector* c : finished) {
      for (const auto& p : c->Programs()) {
        struct bpf_prog_info info = {};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(p.fd, &info, &len) != 0) continue;
        metrics::Labels l{{"collector", c->Name()}, {"program", p.name}};
        metrics::AddCounter(runs, l, static_cast<double>(info.run_cnt));
        metrics::AddCounter(time, l, static_cast<double>(info.run_time_ns) / 1e9);
      }
    }
    out.push_back(std::move(runs));
    out.push_back(std::move(time));
  }
  emits.push_back(metrics::EmitFamilies(std::move(out)));
  return [emits = std::move(emits)](metrics::Writer& w) {
    for (const auto& emit : emits) emit(w);
  };
}

}  // namespace vnet::collectors
