#include "app/app.h"

#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "app/capabilities.h"
#include "app/options.h"
#include "app/reload.h"
#include "collectors/registry.h"
#include "config/error.h"
#include "io/file.h"
#include "http/server.h"
#include "log/log.h"
#include "net/link_watcher.h"
#include "version.h"

namespace vnet::app {
namespace {

using log::Level;
using log::Log;

// libbpf explains refused programs at length; that is only wanted when debugging, since a
// refused alternative is expected on older kernels and reported once by the exporter itself.
int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (log::GetLevel() != Level::kDebug || level == LIBBPF_DEBUG) return 0;
  return std::vfprintf(stderr, fmt, args);
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

Level ParseLevel(const std::string& s) {
  if (s == "debug") return Level::kDebug;
  if (s == "warn") return Level::kWarn;
  if (s == "error") return Level::kError;
  return Level::kInfo;
}

// The capabilities some collectors can do without, at a cost the operator must hear of once.
void WarnMissingCapabilities(Capabilities effective) {
  static constexpr struct {
    int bit;
    const char* name;
    const char* loss;
  } kOptional[] = {
      {CAP_SYS_ADMIN, "CAP_SYS_ADMIN",
       "collectors drops, tap and upcall cannot enter other network namespaces (setns): their devices there "
       "are labelled by ifindex, not by name"},
      {CAP_SYSLOG, "CAP_SYSLOG",
       "collector drops cannot read kernel addresses in /proc/kallsyms: its location label is \"unknown\""},
  };
  for (const auto& c : kOptional) {
    if (!(effective >> c.bit & 1)) Log(Level::kWarn, std::string("without ") + c.name + ": " + c.loss);
  }
}

}  // namespace

std::string LandingPage(const collectors::ExporterCollector& exporter, const std::string& telemetry_path) {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html><head><title>vnet_exporter</title></head><body>\n"
     << "<h1>vnet_exporter " << kVersion << "</h1>\n"
     << "<p><a href=\"" << Escape(telemetry_path) << "\">Metrics</a></p>\n"
     << "<h2>Probes</h2>\n<table border=\"1\" cellpadding=\"4\">\n"
     << "<tr><th>collector</th><th>probe</th><th>attach type</th><th>state</th></tr>\n";
  for (const auto& c : exporter.collectors()) {
    for (const auto& p : c->Probes()) {
      os << "<tr><td>" << Escape(c->Name()) << "</td><td>" << Escape(p.probe) << "</td><td>"
         << Escape(p.attach_type) << "</td><td>"
         << (p.attached  ? "attached"
             : p.waiting ? "waiting: " + Escape(p.error)
                         : "not attached: " + Escape(p.error))
         << "</td></tr>\n";
    }
  }
  os << "</table>\n</body></html>\n";
  return os.str();
}

int Main(int argc, char** argv) {
  // Each thread that builds a scrape would otherwise keep a malloc arena the size of the largest
  // scrape it built: memory must not multiply with HTTP workers and collector threads.
  mallopt(M_ARENA_MAX, 2);
  Options opts;
  try {
    opts = ParseOptions(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "vnet_exporter: " << e.what() << "\n\n" << Usage();
    return 2;
  }
  if (opts.help) {
    std::cout << Usage();
    return 0;
  }
  if (opts.version) {
    std::cout << "vnet_exporter " << kVersion << "\n";
    return 0;
  }
  log::SetLevel(ParseLevel(opts.log_level));
  libbpf_set_print(LibbpfPrint);

  config::Config cfg;
  std::string config_text;  // as read: a reload compares the file with it
  try {
    if (opts.config_file.empty()) {
      cfg = collectors::ParseConfig(std::string(config::DefaultText()), "<built-in config>");
    } else {
      config_text = io::ReadFile(opts.config_file, 1 << 20);
      cfg = collectors::ParseConfig(config_text, opts.config_file);
    }
  } catch (const std::exception& e) {  // config::Error, io::FileError
    Log(Level::kError, std::string("configuration: ") + e.what());
    return 1;
  }
  http::WebConfig web;
  if (!opts.web_config_file.empty()) {
    try {
      web = http::LoadWebConfig(opts.web_config_file);
    } catch (const config::Error& e) {
      Log(Level::kError, std::string("web configuration: ") + e.what());
      return 1;
    }
  }
  if (!opts.btf_path.empty()) cfg.btf_path = opts.btf_path;

  // Signals go to a thread of their own, started before any other so that every thread blocks
  // them: SIGTERM and SIGINT end the exporter at any moment (during start-up at once: nothing is
  // served yet, and the kernel frees what was loaded); SIGHUP must never kill it.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // Static: the thread outlives Main's frame when Main returns on an error. Once serving, the
  // signals are handed to the main thread, which holds the capabilities a reload may need
  // (reading a key file); this thread keeps none.
  static std::mutex signals_mu;
  static std::condition_variable signals_cv;
  static std::deque<int> signals;
  static std::atomic<bool> serving = false;
  std::thread([sigs] {
    try {
      KeepOnly(0);  // it only waits for signals
    } catch (const std::exception&) {
    }
    for (;;) {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (!serving) {
        if (sig == SIGHUP) {
          Log(Level::kInfo, "SIGHUP during start-up ignored: nothing to reload yet");
          continue;
        }
        Log(Level::kInfo, std::string("shutting down on ") + strsignal(sig) + " during start-up");
        std::_Exit(0);
      }
      std::lock_guard lock(signals_mu);
      signals.push_back(sig);
      signals_cv.notify_one();
    }
  }).detach();

  // The HTTP gate may hold up to 1024 waiting connections beside the maps' and files'
  // descriptors; the usual soft limit (1024) would refuse them early.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 65536);
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  // The address is bound before anything is attached: one that cannot be served on is said first.
  std::optional<http::Listener> listener;
  if (!opts.config_check) {
    try {
      listener.emplace(opts.listen_address);
    } catch (const std::exception& e) {
      Log(Level::kError, e.what());
      return 1;
    }
  }

  // The one thing no collector can do without; anything short of it is reported per probe.
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, nullptr) != 1) {
    Log(Level::kError, "cannot load BPF programs: run as root, or with CAP_BPF and CAP_PERFMON");
    return 1;
  }

  net::SystemLinks links;
  collectors::ExporterCollector exporter(collectors::MakeCollectors(cfg, links));
  bool all_attached = true;  // or waiting for their module
  for (const auto& c : exporter.collectors()) {
    for (const auto& p : c->Probes()) {
      all_attached = all_attached && (p.attached || p.waiting);
      if (p.attached) {
        Log(Level::kInfo, "collector " + c->Name() + ": " + p.probe + " attached (" + p.attach_type + ")");
      } else if (p.waiting) {
        Log(Level::kInfo, "collector " + c->Name() + ": " + p.probe + " waits: " + p.error);
      } else {
        Log(Level::kWarn, "collector " + c->Name() + ": " + p.probe + " not attached: " + p.error);
      }
    }
  }
  // From here on only what scrapes and late attaches need; the threads made below inherit it.
  if (!opts.config_check && opts.capabilities_keep != "all") {
    try {
      KeepOnly(ParseCapabilities(opts.capabilities_keep));
    } catch (const std::exception& e) {
      Log(Level::kError, std::string("cannot drop capabilities: ") + e.what());
      return 1;
    }
    Log(Level::kInfo, "capabilities kept: " + CapabilityNames(EffectiveCapabilities()));
  }
  WarnMissingCapabilities(EffectiveCapabilities());
  if (opts.config_check) {
    std::cout << (all_attached ? "configuration valid, all probes attached (or waiting for their module)\n"
                               : "configuration valid, some probes did not attach (see above)\n");
    return all_attached ? 0 : 1;
  }

  try {
    net::LinkWatcher watcher([&](uint32_t ifindex, const std::string& name, bool deleted) {
      for (const auto& c : exporter.collectors()) c->OnLink(ifindex, name, deleted);
    });
    Reloader reloader(opts.config_file, config_text, opts.web_config_file);
    http::Server server(std::move(*listener), opts.telemetry_path,
                        [&](std::chrono::milliseconds budget) {
                          return [collectors = exporter.Scrape(budget),
                                  reload = metrics::EmitFamilies(reloader.Collect())](metrics::Writer& w) {
                            collectors(w);
                            reload(w);
                          };
                        },
                        [&] { return LandingPage(exporter, opts.telemetry_path); }, http::Limits{}, std::move(web));
    server.HandleReload([&] { return reloader.Reload(server); });
    // Before the line that says it serves: a SIGHUP sent on reading it is a reload, not ignored.
    serving = true;
    Log(Level::kInfo, "listening on " + opts.listen_address + " (port " + std::to_string(server.port()) + ")");
    int sig = 0;
    for (;;) {
      std::unique_lock lock(signals_mu);
      signals_cv.wait(lock, [] { return !signals.empty(); });
      sig = signals.front();
      signals.pop_front();
      lock.unlock();
      if (sig != SIGHUP) break;
      Log(Level::kInfo, "SIGHUP: reloading the configuration");
      reloader.Reload(server);
    }
    Log(Level::kInfo, std::string("shutting down on ") + strsignal(sig));
    // Scrapes in progress get a few seconds to finish: Prometheus keeps what it already has.
    if (!server.Stop(std::chrono::seconds(5))) {
      Log(Level::kWarn, "a scrape was still running 5 s after the signal: exiting without it");
      std::_Exit(0);
    }
  } catch (const std::exception& e) {
    Log(Level::kError, e.what());
    return 1;
  }
  return 0;
}

}  // namespace vnet::app
