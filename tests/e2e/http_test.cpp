// The exporter's HTTP front with its real collectors: bound to 127.0.0.1:0, scraped, and the
// exposition checked by promtool.
#include <gtest/gtest.h>

#include <poll.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <tuple>

#include "../support/certs.h"
#include "../support/fixtures.h"
#include "../support/http.h"
#include "../support/netns.h"
#include "app/app.h"
#include "collectors/registry.h"
#include "kernel/drop_reasons.h"
#include "metrics/exposition.pb.h"
#include "metrics/text.h"
#include "config/error.h"
#include "http/server.h"
#include "http/web_config.h"

namespace vnet::testing {
namespace {

TEST(ExpositionTest, ScrapePassesPromtoolAndLandingPageShowsProbes) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  config::Config cfg = collectors::ParseConfig(std::string(config::DefaultText()), "default");
  net::SystemLinks links;
  collectors::ExporterCollector exporter(collectors::MakeCollectors(cfg, links));
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [&] { return app::LandingPage(exporter, "/metrics"); });
  ASSERT_NE(server.port(), 0);

  // One known drop so that vnet_drops_total has samples.
  Netns ns(Prefix() + "-http");
  SendUdp(ns, "127.0.0.1", 9, 3);
  // And drops on a device whose name is not UTF-8 (anyone may name devices in a namespace of
  // their own): one such label used to make Prometheus reject the whole scrape.
  const std::string bad_name = "t\xFF";
  Tap tap(&ns, bad_name);  // never read: its ring fills
  ns.Sh("ip link set " + bad_name + " txqueuelen 2 up && ip addr add 198.51.100.1/24 dev " + bad_name +
        " && ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev " + bad_name + " nud permanent");
  SendUdp(ns, "198.51.100.2", 9, 2 + 4);

  // Kernels before 5.17 give no reason.
  bool has_reason = kernel::DropReasons("/sys/kernel/btf/vmlinux", "/sys/kernel/btf").tracepoint_has_reason();
  std::string drops = "vnet_drops_total{device=\"lo\",netns=\"" + ns.name() + "\",reason=\"" +
                      (has_reason ? "NO_SOCKET" : "NOT_SPECIFIED") +
                      "\",location=\"__udp4_lib_rcv\",protocol=\"udp\"} 3\n";
  const std::string full_ring = "vnet_drops_total{device=\"t\xEF\xBF\xBD\",netns=\"" + ns.name() + "\",reason=\"" +
                                (has_reason ? "FULL_RING" : "NOT_SPECIFIED") +
                                "\",location=\"tun_net_xmit\",protocol=\"udp\"} 4\n";
  HttpResponse metrics;
  ASSERT_TRUE(WaitFor([&] {
    metrics = HttpGet(server.port(), "/metrics");
    return metrics.body.find(drops) != std::string::npos && metrics.body.find(full_ring) != std::string::npos;
  })) << metrics.body;
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << metrics.headers;
  for (const char* line : {"vnet_exporter_build_info{version=\"", "vnet_exporter_collector_success{collector=\"drops\"} 1\n",
                           "vnet_exporter_probe_attached{collector=\"drops\",probe=\"skb:kfree_skb\",attach_type=\"tp_btf\"} 1\n",
                           "vnet_exporter_map_capacity{collector=\"drops\",map=\"drops\"} 16384\n",
                           "vnet_exporter_map_update_failures_total{collector=\"drops\",map=\"drops\"} 0\n",
                           "vnet_exporter_collector_scrape_duration_seconds{collector=\"drops\"} "}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line;
  }

  std::string file = "/tmp/" + Prefix() + "-metrics.txt";
  std::ofstream(file) << metrics.body;
  std::string lint = Sh("promtool check metrics < " + file + "; echo rc=$?");
  std::remove(file.c_str());
  EXPECT_EQ(lint, "rc=0\n") << lint;

  HttpResponse landing = HttpGet(server.port(), "/");
  EXPECT_EQ(landing.status, 200);
  EXPECT_NE(landing.body.find("<a href=\"/metrics\">"), std::string::npos);
  EXPECT_NE(landing.body.find("<td>drops</td><td>skb:kfree_skb</td><td>tp_btf</td><td>attached</td>"),
            std::string::npos)
      << landing.body;
  EXPECT_EQ(HttpGet(server.port(), "/nope").status, 404);
}

// Only GET and HEAD of the exact paths; HEAD without a body.
TEST(HttpTest, MethodsAndPaths) {
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); });
  HttpResponse get = HttpGet(server.port(), "/metrics");
  EXPECT_EQ(get.status, 200);
  HttpResponse head = HttpRequest(server.port(), "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers, get.headers);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    HttpResponse r = HttpRequest(server.port(), method, "/metrics");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_NE(r.headers.find("Allow: GET, HEAD"), std::string::npos) << method;
    EXPECT_EQ(r.body.find("vnet_exporter"), std::string::npos) << method;
  }
  for (const char* path : {"/metricsX", "/metrics/foo", "/metrics/", "/x/metrics"}) {
    HttpResponse r = HttpGet(server.port(), path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body.find("vnet_exporter"), std::string::npos) << path;
  }
  EXPECT_EQ(HttpGet(server.port(), "/").body, "landing");
  EXPECT_EQ(HttpRequest(server.port(), "POST", "/").status, 405);
}

// A connection to the server on 127.0.0.1 that has sent `sent` and nothing more.
int Connect(uint16_t port, const std::string& sent = "") {
  int s = ConnectLoopback(port);
  if (!sent.empty()) {
    EXPECT_EQ(send(s, sent.data(), sent.size(), MSG_NOSIGNAL), static_cast<ssize_t>(sent.size()));
  }
  return s;
}

// True when the server has closed `s` (after answering or not); never blocks.
bool ClosedByServer(int s) {
  pollfd p{s, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) == 1;
}

// What the server answers on `s`, up to its close (or 10 s).
std::string Answer(int s) {
  timeval timeout{10, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = read(s, buf, sizeof(buf))) > 0;) raw.append(buf, n);
  return raw;
}

// Idle clients (connected, never asking) and slowloris clients (a header line now and then, never
// the end of the head) from the scraper's own address: scrapes are answered while they are all
// still there, and one address holds at most 64 waiting connections (the oldest go first).
TEST(HttpTest, IdleAndSlowClientsDoNotDelayScrapes) {
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); });
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(Connect(server.port()));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(HttpGet(server.port(), "/metrics").status, 200);
  for (int s : idle) EXPECT_FALSE(ClosedByServer(s)) << "the scrape waited for idle clients to time out";

  std::vector<int> slow;
  for (int i = 0; i < 300; ++i) slow.push_back(Connect(server.port(), "GET /metrics HTTP/1.1\r\n"));
  std::atomic<bool> done = false;
  std::thread drip([&] {
    while (!done) {
      for (int s : slow) (void)!send(s, "X-a: b\r\n", 8, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(HttpGet(server.port(), "/metrics").status, 200) << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  done = true;
  drip.join();
  // 20 idle and 300 slow from 127.0.0.1, at most 64 waiting: the 256 oldest were told 503 and
  // closed (the idle ones first), and the first scrape made room by closing one more.
  for (int s : idle) EXPECT_TRUE(ClosedByServer(s));
  int closed = 0;
  for (int s : slow) closed += ClosedByServer(s);
  EXPECT_EQ(closed, 300 - 64 + 1);
  EXPECT_NE(Answer(slow.front()).find("HTTP/1.1 503 "), std::string::npos);
  EXPECT_FALSE(ClosedByServer(slow.back()));
  for (int s : idle) close(s);
  for (int s : slow) close(s);
}

TEST(HttpTest, AHeadThatNeverEndsTimesOut) {
  collectors::ExporterCollector exporter({});
  http::Limits limits;
  limits.request_timeout = std::chrono::milliseconds(300);
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string(); }, limits);
  int s = Connect(server.port(), "GET /metrics HTTP/1.1\r\nX-a: b\r\n");
  EXPECT_EQ(Answer(s).substr(0, 13), "HTTP/1.1 408 ");
  close(s);
}

TEST(HttpTest, MalformedAndOversizedRequestsAreRefused) {
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string(); });
  for (const std::string request :
       {"GARBAGE\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost\r\n\r\n", "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n", "GET /met rics HTTP/1.1\r\n\r\n", "\r\n\r\n"}) {
    int s = Connect(server.port(), request);
    EXPECT_EQ(Answer(s).substr(0, 13), "HTTP/1.1 400 ") << request;
    close(s);
  }
  int s = Connect(server.port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_EQ(Answer(s).substr(0, 13), "HTTP/1.1 431 ");
  close(s);
  // Headers of any case, a query: still the telemetry path.
  s = Connect(server.port(), "GET /metrics?x=1 HTTP/1.1\r\nhOsT: a\r\nAccept:  */*  \r\n\r\n");
  EXPECT_EQ(Answer(s).substr(0, 13), "HTTP/1.1 200 ");
  close(s);
}

// Prometheus says how long it waits (X-Prometheus-Scrape-Timeout-Seconds): the scrape gets that
// less half a second to answer in; 10 s when it does not say.
TEST(HttpTest, TheScrapersTimeoutIsTheScrapesBudget) {
  std::atomic<long> budget = 0;
  http::Server server("127.0.0.1:0", "/metrics", [&](std::chrono::milliseconds b) {
    budget = b.count();
    return metrics::EmitFamilies({});
  }, [] { return std::string(); });
  for (auto [header, expected] : {std::pair{"X-Prometheus-Scrape-Timeout-Seconds: 3.5\r\n", 3000L},
                                  std::pair{"", 10000L}, std::pair{"x-prometheus-scrape-timeout-seconds: nan\r\n", 10000L},
                                  std::pair{"X-Prometheus-Scrape-Timeout-Seconds: 0.1\r\n", 100L}}) {
    int s = Connect(server.port(), std::string("GET /metrics HTTP/1.1\r\n") + header + "\r\n");
    EXPECT_EQ(Answer(s).substr(0, 13), "HTTP/1.1 200 ") << header;
    EXPECT_EQ(budget, expected) << header;
    close(s);
  }
}

std::string Gunzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  int rc;
  do {
    out.resize(out.size() + (1 << 20));
    z.next_out = reinterpret_cast<Bytef*>(out.data() + z.total_out);
    z.avail_out = 1 << 20;
    rc = inflate(&z, Z_FINISH);
  } while (rc == Z_BUF_ERROR && z.avail_out == 0);
  EXPECT_EQ(rc, Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

// The body of a chunked answer, or "<malformed>" when its framing is wrong or it has no end.
std::string Dechunk(const std::string& body) {
  std::string out;
  size_t at = 0;
  while (true) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string::npos) return "<malformed>";
    const size_t size = std::stoul(body.substr(at, eol - at), nullptr, 16);
    at = eol + 2;
    if (size == 0) return body.substr(at) == "\r\n" ? out : "<malformed>";
    if (body.compare(at + size, 2, "\r\n") != 0) return "<malformed>";
    out.append(body, at, size);
    at += size + 2;
  }
}

// The text goes out as it is written, in 64 KiB pieces: chunked to HTTP/1.1 clients, ending with
// the connection for HTTP/1.0 ones; gzip when the client takes it (Prometheus does).
TEST(HttpTest, ScrapesAreStreamedAndGzippedWhenTheClientTakesIt) {
  struct Many : prometheus::Collectable {
    std::vector<prometheus::MetricFamily> Collect() const override {
      prometheus::MetricFamily f{"many", "many series", prometheus::MetricType::Counter, {}};
      for (int i = 0; i < 50000; i++) {
        auto& m = f.metric.emplace_back();
        m.label = {{"device", "vnet" + std::to_string(i)}};
        m.counter.value = i;
      }
      return {f};
    }
  } many;
  std::string plain;
  metrics::WriteText(plain, many.Collect());
  ASSERT_GT(plain.size(), 10u << 16);
  http::Server server("127.0.0.1:0", "/metrics", [&](auto) { return metrics::EmitFamilies(many.Collect()); }, [] { return std::string(); });
  for (const char* version : {"HTTP/1.1", "HTTP/1.0"}) {
    for (auto [accept, gzipped] : {std::pair{"gzip", true}, std::pair{"deflate, gzip;q=0.5", true},
                                   std::pair{"gzip;q=0", false}, std::pair{"identity", false}, std::pair{"", false}}) {
      int s = Connect(server.port(), std::string("GET /metrics ") + version + "\r\n" +
                                         (*accept ? std::string("Accept-Encoding: ") + accept + "\r\n" : "") + "\r\n");
      const std::string raw = Answer(s);
      close(s);
      const auto end = raw.find("\r\n\r\n");
      ASSERT_NE(end, std::string::npos) << accept;
      const std::string head = raw.substr(0, end);
      std::string body = raw.substr(end + 4);
      const bool chunked = std::string(version) == "HTTP/1.1";
      EXPECT_EQ(head.find("Transfer-Encoding: chunked") != std::string::npos, chunked) << head;
      EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
      EXPECT_EQ(head.find("Content-Encoding: gzip") != std::string::npos, gzipped) << accept << "\n" << head;
      if (chunked) body = Dechunk(body);
      // Not EXPECT_EQ: gtest's diff of two megabytes of text takes minutes.
      EXPECT_TRUE((gzipped ? Gunzip(body) : body) == plain) << version << " " << accept << ": " << body.size() << " bytes";
    }
  }
}

// A client that resets the connection while a gzipped answer is being written: the thread that
// compresses and sends fails, the writing stops, and the server answers the next scrape whole.
// (Were the writer left waiting for that thread, the next scrapes would still be answered by
// other workers, but the server's end would wait for it forever: the test would time out.)
TEST(HttpTest, AClientGoneDuringAGzippedScrapeEndsItsAnswerOnly) {
  prometheus::MetricFamily f{"many", "many series", prometheus::MetricType::Counter, {}};
  for (int i = 0; i < 200000; i++) {
    auto& m = f.metric.emplace_back();
    m.label = {{"device", "vnet" + std::to_string(i)}, {"queue", std::to_string(i * 7919 % 1000)}};
    m.counter.value = i * 31;
  }
  std::string plain;
  metrics::WriteText(plain, {f});
  {
    http::Server server("127.0.0.1:0", "/metrics", [&](auto) { return metrics::EmitFamilies({f}); },
                        [] { return std::string(); });
    for (int round = 0; round < 3; round++) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int small = 1024;  // the answer cannot wait in the client's buffer
      setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(server.port());
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      const std::string request = "GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n";
      ASSERT_EQ(send(s, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
      char head[512];
      ASSERT_GT(read(s, head, sizeof(head)), 0);
      linger reset{1, 0};  // close with a reset: the server's next send fails
      setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      close(s);
      int next = Connect(server.port(), "GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
      const std::string raw = Answer(next);
      close(next);
      const auto end = raw.find("\r\n\r\n");
      ASSERT_NE(end, std::string::npos);
      EXPECT_TRUE(Gunzip(Dechunk(raw.substr(end + 4))) == plain) << "round " << round;
    }
  }  // the server's end waits for every answer in progress
}

// The protobuf exposition goes to a client that prefers it (Prometheus with native histograms
// on asks for it first), text to every other; gzip either way.
TEST(HttpTest, ProtobufWhenTheScraperPrefersItTextOtherwise) {
  auto emit = [](std::chrono::milliseconds) {
    return [](metrics::Writer& w) {
      w.Family("lat_seconds", "latency", prometheus::MetricType::Histogram);
      hist h{};
      h.slots[5] = 7;
      const metrics::Label dev[] = {{"device", "vnet0"}};
      w.Histogram(dev, h, 0, 22);
    };
  };
  http::Server server("127.0.0.1:0", "/metrics", emit, [] { return std::string(); });
  const std::string prometheus_native =
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
      "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  const std::string prometheus_classic =
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  for (auto [accept, protobuf] :
       {std::pair{prometheus_native, true}, std::pair{prometheus_classic, false}, std::pair{std::string(), false},
        std::pair{std::string("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                              "encoding=delimited;q=0.2,text/plain;q=0.5"), false},
        std::pair{std::string("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                              "encoding=text"), false}}) {
    for (bool gzip : {false, true}) {
      int s = Connect(server.port(), "GET /metrics HTTP/1.0\r\n" +
                                         (accept.empty() ? "" : "Accept: " + accept + "\r\n") +
                                         (gzip ? "Accept-Encoding: gzip\r\n" : "") + "\r\n");
      const std::string raw = Answer(s);
      close(s);
      const auto end = raw.find("\r\n\r\n");
      ASSERT_NE(end, std::string::npos) << accept;
      const std::string head = raw.substr(0, end);
      const std::string body = gzip ? Gunzip(raw.substr(end + 4)) : raw.substr(end + 4);
      EXPECT_NE(head.find("Vary: Accept, Accept-Encoding"), std::string::npos) << head;
      if (protobuf) {
        EXPECT_NE(head.find("Content-Type: application/vnd.google.protobuf; "
                            "proto=io.prometheus.client.MetricFamily; encoding=delimited\r\n"),
                  std::string::npos)
            << head;
        ASSERT_GT(body.size(), 1u);
        ASSERT_EQ(static_cast<unsigned char>(body[0]), body.size() - 1) << "one message, its length first";
        exposition::MetricFamily f;
        ASSERT_TRUE(f.ParseFromString(body.substr(1)));
        EXPECT_EQ(f.name(), "lat_seconds");
        EXPECT_EQ(f.metric(0).histogram().sample_count(), 7u);
        EXPECT_EQ(f.metric(0).histogram().positive_span(0).offset(), 5 - 20);
      } else {
        EXPECT_NE(head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << accept << "\n" << head;
        EXPECT_NE(body.find("lat_seconds_bucket{device=\"vnet0\",le=\"3.0517578125e-05\"} 7\n"), std::string::npos)
            << body;
      }
    }
  }
}

// A scrape that is being answered when the exporter is told to stop is answered in full.
TEST(HttpTest, StopLetsAScrapeInProgressFinish) {
  struct Slow : prometheus::Collectable {
    std::atomic<bool> entered = false;
    std::chrono::milliseconds delay;
    explicit Slow(std::chrono::milliseconds d) : delay(d) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
      const_cast<std::atomic<bool>&>(entered) = true;
      std::this_thread::sleep_for(delay);
      prometheus::MetricFamily f{"slow_done", "", prometheus::MetricType::Gauge, {}};
      f.metric.emplace_back().gauge.value = 1;
      return {f};
    }
  };
  for (auto [delay, grace, finished] : {std::tuple{400, 5000, true}, std::tuple{1500, 100, false}}) {
    Slow slow{std::chrono::milliseconds(delay)};
    http::Server server("127.0.0.1:0", "/metrics", [&](auto) { return metrics::EmitFamilies(slow.Collect()); }, [] { return std::string(); });
    const uint16_t port = server.port();
    HttpResponse r;
    std::thread scrape([&] { r = HttpGet(port, "/metrics"); });
    ASSERT_TRUE(WaitFor([&] { return slow.entered.load(); }));
    EXPECT_EQ(server.Stop(std::chrono::milliseconds(grace)), finished) << delay;
    EXPECT_THROW(HttpGet(port, "/metrics"), std::runtime_error) << "still accepting after Stop";
    scrape.join();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "# TYPE slow_done gauge\nslow_done 1\n");
  }
}

std::string BasicHeader(const std::string& user_password) {
  std::string out(4 * ((user_password.size() + 2) / 3) + 1, '\0');
  out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(user_password.data()),
                             static_cast<int>(user_password.size())));
  return "Authorization: Basic " + out + "\r\n";
}

// --web.config.file: basic_auth_users with bcrypt hashes, and headers on every answer.
TEST(WebConfigTest, BasicAuthUsersAndHeaders) {
  TempDir dir;
  const std::string file = dir.Write("web.yml", "basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") +
                                                    "\n  other: " + Bcrypt("x") +
                                                    "\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n");
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); }, {},
                      http::LoadWebConfig(file));
  auto get = [&](const std::string& path, const std::string& auth) {
    int s = Connect(server.port(), "GET " + path + " HTTP/1.1\r\n" + auth + "\r\n");
    std::string raw = Answer(s);
    close(s);
    return raw;
  };
  for (const std::string& auth : {std::string(), BasicHeader("prometheus:wrong"), BasicHeader("nobody:s3cret"),
                                  BasicHeader("prometheus"), std::string("Authorization: Basic !!!!\r\n"),
                                  std::string("Authorization: Bearer s3cret\r\n")}) {
    for (const char* path : {"/metrics", "/"}) {
      const std::string raw = get(path, auth);
      EXPECT_EQ(raw.substr(0, 13), "HTTP/1.1 401 ") << path << " " << auth;
      EXPECT_NE(raw.find("WWW-Authenticate: Basic\r\n"), std::string::npos) << raw;
      EXPECT_NE(raw.find("X-Frame-Options: deny\r\n"), std::string::npos) << raw;
      EXPECT_EQ(raw.find("vnet_exporter"), std::string::npos) << raw;
    }
  }
  for (int i = 0; i < 2; ++i) {  // the second time from the cache of passed checks
    const std::string raw = get("/metrics", BasicHeader("prometheus:s3cret"));
    EXPECT_EQ(raw.substr(0, 13), "HTTP/1.1 200 ") << raw;
    EXPECT_NE(raw.find("X-Frame-Options: deny\r\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("vnet_exporter_build_info"), std::string::npos);
  }
  EXPECT_EQ(get("/", BasicHeader("other:x")).substr(0, 13), "HTTP/1.1 200 ");
}

TEST(WebConfigTest, BadFilesAreRefusedWithFileLineAndKey) {
  TempDir dir;
  for (auto [text, error] : std::vector<std::pair<std::string, std::string>>{
           {"basic_auth_users:\n  prometheus: secret\n", ":2: basic_auth_users.prometheus: expected a bcrypt hash ($2y$...)"},
           {"basic_auth_users:\n  prometheus: $1$abc$def\n", ":2: basic_auth_users.prometheus: expected a bcrypt hash"},
           {"basic_auth_user: {}\n", ":1: basic_auth_user: unknown key"},
           {"http_server_config:\n  headers:\n    Content-Type: text/html\n",
            ":3: http_server_config.headers.Content-Type: set by the exporter itself"},
           {"http_server_config:\n  headers:\n    \"Bad Name\": x\n", ":3: http_server_config.headers.Bad Name: not a header name"},
           {"tls_server_config:\n  cert_file: a.crt\n", ":2: tls_server_config: cert_file and key_file are both required"},
           {"basic_auth_users: [a]\n", ":1: basic_auth_users: expected a mapping"},
       }) {
    const std::string file = dir.Write("web.yml", text);
    try {
      http::LoadWebConfig(file);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const config::Error& e) {
      EXPECT_NE(std::string(e.what()).find(file + error), std::string::npos) << e.what();
    }
  }
}

// tls_server_config: TLS with client certificates (mutual TLS) and basic auth over it, tried
// with curl: 200 with a trusted client certificate and the password, 401 without the password,
// no answer at all (a failed handshake) without a certificate, with one nobody signed, or in
// plain HTTP.
TEST(TlsTest, ClientCertificatesAndBasicAuthOverTls) {
  TestCerts certs;
  const std::string file = certs.dir().Write(
      "web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"  // relative to the file
                 "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
                 "basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") + "\n");
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); }, {},
                      http::LoadWebConfig(file));
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/metrics";
  auto curl = [&](const std::string& args) {
    return Sh("curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert " + certs.Path("ca.pem") + " " + args +
              " " + url + "; echo \" rc=$?\"");
  };
  const std::string client = "--cert " + certs.Path("client.pem") + " --key " + certs.Path("client.key");
  const std::string rogue = "--cert " + certs.Path("rogue.pem") + " --key " + certs.Path("rogue.key");
  EXPECT_EQ(curl(client + " -u prometheus:s3cret"), "200 rc=0\n");
  EXPECT_EQ(curl(client), "401 rc=0\n");
  EXPECT_EQ(curl(client + " -u prometheus:wrong"), "401 rc=0\n");
  for (const std::string& refused : {std::string("-u prometheus:s3cret"), rogue + " -u prometheus:s3cret"}) {
    const std::string out = curl(refused);
    EXPECT_EQ(out.substr(0, 4), "000 ") << refused;
    EXPECT_NE(out, "000 rc=0\n") << refused;
  }
  const std::string plain = Sh("curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1:" +
                               std::to_string(server.port()) + "/metrics; echo \" rc=$?\"");
  EXPECT_EQ(plain.substr(0, 4), "000 ") << plain;
  // The body over TLS is the exposition.
  EXPECT_NE(Sh("curl -s --max-time 10 --cacert " + certs.Path("ca.pem") + " " + client + " -u prometheus:s3cret " + url)
                .find("vnet_exporter_build_info"),
            std::string::npos);
}

// min_version, cipher_suites and a server without client certificates.
TEST(TlsTest, VersionsAndCipherSuites) {
  TestCerts certs;
  const std::string file = certs.dir().Write(
      "web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS13\n");
  collectors::ExporterCollector exporter({});
  http::Server server("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); }, {},
                      http::LoadWebConfig(file));
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/metrics";
  const std::string curl = "curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert " + certs.Path("ca.pem");
  EXPECT_EQ(Sh(curl + " " + url + "; echo \" rc=$?\""), "200 rc=0\n");
  EXPECT_EQ(Sh(curl + " --tls-max 1.2 " + url + " || true").substr(0, 3), "000");

  const std::string file12 = certs.dir().Write(
      "web12.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  max_version: TLS12\n"
                   "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n");
  http::Server server12("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return std::string("landing"); }, {},
                        http::LoadWebConfig(file12));
  const std::string url12 = "https://127.0.0.1:" + std::to_string(server12.port()) + "/metrics";
  EXPECT_EQ(Sh(curl + " --ciphers ECDHE-ECDSA-AES256-GCM-SHA384 " + url12 + "; echo \" rc=$?\""), "200 rc=0\n");
  EXPECT_EQ(Sh(curl + " --ciphers ECDHE-ECDSA-AES128-GCM-SHA256 " + url12 + " || true").substr(0, 3), "000");
}

TEST(TlsTest, BadTlsConfigurationsAreRefusedWithFileLineAndKey) {
  TestCerts certs;
  // A FIFO must be refused, not waited on: start-up and reloads read these files.
  ASSERT_EQ(mkfifo(certs.Path("fifo.pem").c_str(), 0600), 0);
  for (auto [text, error] : std::vector<std::pair<std::string, std::string>>{
           {"tls_server_config:\n  cert_file: fifo.pem\n  key_file: server.key\n",
            ":2: tls_server_config: cert_file " + certs.Path("fifo.pem")},
           {"tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
            ":2: tls_server_config: cert_file " + certs.Path("server.key") + ": no PEM certificate"},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n",
            ":2: tls_server_config: key_file " + certs.Path("server.pem") + ": no PEM private key"},
           {"tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n",
            ":2: tls_server_config: cert_file " + certs.Path("missing.pem") + ": "},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: client.key\n",
            ":2: tls_server_config: key_file " + certs.Path("client.key")},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS14\n",
            ":4: tls_server_config.min_version: expected TLS10, TLS11, TLS12 or TLS13"},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  cipher_suites: [TLS_NOPE]\n",
            ":4: tls_server_config.cipher_suites: unknown cipher suite TLS_NOPE"},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            ":4: tls_server_config.client_auth_type: verifying client certificates needs client_ca_file"},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: Always\n",
            ":4: tls_server_config.client_auth_type: expected NoClientCert"},
           {"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  curve_preferences: [P999]\n",
            ":4: tls_server_config.curve_preferences: unknown curve P999"},
       }) {
    const std::string file = certs.dir().Write("web.yml", text);
    try {
      http::LoadWebConfig(file);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const config::Error& e) {
      EXPECT_NE(std::string(e.what()).find(file + error), std::string::npos) << e.what();
    }
  }
}

TEST(HttpTest, BadListenAddressIsRefused) {
  collectors::ExporterCollector exporter({});
  EXPECT_THROW(http::Server("127.0.0.1", "/metrics", Scrape(exporter), [] { return ""; }), std::invalid_argument);
  EXPECT_THROW(http::Server(":99999", "/metrics", Scrape(exporter), [] { return ""; }), std::invalid_argument);
  http::Server first("127.0.0.1:0", "/metrics", Scrape(exporter), [] { return ""; });
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    http::Listener second(taken);
    ADD_FAILURE() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + taken + ": Address already in use");
  }
}

}  // namespace
}  // namespace vnet::testing
