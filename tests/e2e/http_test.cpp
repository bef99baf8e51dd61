// The exporter's HTTP front with its real collectors: bound to 127.0.0.1:0, scraped, and the
// exposition checked by promtool.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "../support/http.h"
#include "../support/netns.h"
#include "app/app.h"
#include "collectors/registry.h"
#include "kernel/drop_reasons.h"
#include "http/server.h"

namespace vnet::testing {
namespace {

TEST(HttpTest, ScrapePassesPromtoolAndLandingPageShowsProbes) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  config::Config cfg = collectors::ParseConfig(std::string(config::DefaultText()), "default");
  net::SystemLinks links;
  collectors::ExporterCollector exporter(collectors::MakeCollectors(cfg, links));
  http::Server server("127.0.0.1:0", "/metrics", exporter, [&] { return app::LandingPage(exporter, "/metrics"); });
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
  http::Server server("127.0.0.1:0", "/metrics", exporter, [] { return std::string("landing"); });
  HttpResponse get = HttpGet(server.port(), "/metrics");
  EXPECT_EQ(get.status, 200);
  HttpResponse head = HttpRequest(server.port(), "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_NE(head.headers.find("Content-Length: " + std::to_string(get.body.size())), std::string::npos) << head.headers;
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

TEST(HttpTest, BadListenAddressIsRefused) {
  collectors::ExporterCollector exporter({});
  EXPECT_THROW(http::Server("127.0.0.1", "/metrics", exporter, [] { return ""; }), std::invalid_argument);
  EXPECT_THROW(http::Server(":99999", "/metrics", exporter, [] { return ""; }), std::invalid_argument);
}

}  // namespace
}  // namespace vnet::testing
