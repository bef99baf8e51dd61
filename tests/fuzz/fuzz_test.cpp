// Bounded, seeded fuzzing of everything others write: the configurations, libvirt's domain XML
// and pid files, what processes write into /proc, /proc/kallsyms, OVSDB and ovs-vswitchd replies
// (parsed, and framed over a real unix socket) and HTTP requests (parsed, and sent to a real
// server). Each target mutates real samples a few thousand times with a fixed seed, within a
// time box, and asserts what the exporter promises: no crash, only the documented refusal, and
// the rest of the output unchanged.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "../support/fixtures.h"
#include "../support/http.h"
#include "../support/samples.h"
#include "collectors/ovs_collector.h"
#include "collectors/registry.h"
#include "config/config.h"
#include "config/error.h"
#include "http/request.h"
#include "http/server.h"
#include "http/web_config.h"
#include "identity/libvirt.h"
#include "identity/ovsdb.h"
#include "identity/vm_threads.h"
#include "kernel/kallsyms.h"
#include "net/jsonrpc.h"

namespace vnet::testing {
namespace {

constexpr int kInputs = 10000;
constexpr auto kTimeBox = std::chrono::seconds(40);  // per target; the inputs usually end first

// Pieces that take parsers down unusual paths: structure openers, escapes, huge numbers,
// invalid UTF-8, NUL, entity declarations, YAML tags and anchors.
const char* const kTokens[] = {"{",       "}",     "[",     "]",          "\"",        "'",     ":",    ",",
                               "\\u0000", "\\",    "<",     ">",          "</",        "/>",    "&amp;", "&#0;",
                               "<!ENTITY", "<!DOCTYPE x [", "]]>", "1e309",  "-1",    "18446744073709551616",
                               "\xff",    "\xc3",  "\0",    "\r\n",       "\n  ",      "? ",    "- ",   "!!binary ",
                               "&a ",     "*a",    "---\n", "%YAML 1.2\n", "HTTP/1.1", " \t",   "%00",  "total:"};

// An input that makes a parser take memory without end fails its test with std::bad_alloc
// instead of taking the machine's (a config once did: YAML::LoadAll on ",").
const bool kMemoryBounded = [] {
  rlimit limit{4ull << 30, 4ull << 30};
  return setrlimit(RLIMIT_AS, &limit) == 0;
}();

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  std::string operator()(const std::string& seed) {
    std::string s = seed;
    for (int n = 1 + Below(8); n > 0; --n) {
      const size_t at = s.empty() ? 0 : Below(s.size() + 1);
      switch (Below(6)) {
        case 0:
          if (!s.empty()) s[Below(s.size())] = static_cast<char>(rng_());
          break;
        case 1:
          for (int i = 1 + Below(8); i > 0; --i) s.insert(s.begin() + at, static_cast<char>(rng_()));
          break;
        case 2:
          s.erase(at, Below(64));
          break;
        case 3: {  // a copy of a piece elsewhere: deeper nesting, repeated keys
          const size_t from = s.empty() ? 0 : Below(s.size());
          const std::string piece = s.substr(from, Below(256));
          for (int i = 1 + Below(4); i > 0; --i) s.insert(std::min(at, s.size()), piece);
          break;
        }
        case 4: {
          const char* token = kTokens[Below(std::size(kTokens))];
          s.insert(at, std::string(token, token[0] ? std::strlen(token) : 1));
          break;
        }
        case 5:
          s.resize(at);
          break;
      }
    }
    if (s.size() > (64 << 10)) s.resize(64 << 10);
    return s;
  }

 private:
  size_t Below(size_t n) { return n ? rng_() % n : 0; }
  std::mt19937 rng_;
};

// Runs `one` on kInputs mutations of `seeds` (fixed seed), stopping at the time box.
template <class F>
void Fuzz(const std::vector<std::string>& seeds, F one) {
  Mutator mutate(20261127);
  const auto end = std::chrono::steady_clock::now() + kTimeBox;
  int done = 0;
  for (; done < kInputs && std::chrono::steady_clock::now() < end; ++done) {
    const std::string input = mutate(seeds[done % seeds.size()]);
    SCOPED_TRACE(::testing::Message() << "input " << done << ": "
                                      << ::testing::PrintToString(input.substr(0, 400)));
    one(input);
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("  %d inputs\n", done);
}

// A configuration is valid or refused with config::Error (file, line, key); nothing else escapes.
TEST(Fuzz, Config) {
  ASSERT_TRUE(kMemoryBounded);
  std::ifstream in(VNET_SOURCE_DIR "/config/vnet_exporter.yaml");
  std::stringstream shipped;
  shipped << in.rdbuf();
  Fuzz({shipped.str(), "collectors:\n  drops: {max_entries: 64}\n  tap:\n    bucket_min: 1us\n",
        "devices:\n  include: ['^vnet']\n  grace_period: 5m\nbpf:\n  disabled_attach_types: [fentry]\n"},
       [](const std::string& text) {
         try {
           collectors::ParseConfig(text, "fuzz.yaml");
         } catch (const config::Error&) {
         } catch (const std::exception& e) {
           ADD_FAILURE() << "not a config::Error: " << e.what();
         }
       });
}

TEST(Fuzz, WebConfig) {
  TempDir dir;
  Fuzz({"basic_auth_users:\n  prometheus: $2b$04$WZ5YO2SnwV0b9uuPzkcScewThO6KfceJnaz1apzWXHp/9hNEySX9u\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"},
       [&](const std::string& text) {
         const std::string file = dir.Write("web.yml", text);
         try {
           http::LoadWebConfig(file);
         } catch (const config::Error&) {
         } catch (const std::exception& e) {
           ADD_FAILURE() << "not a config::Error: " << e.what();
         }
       });
}

// A broken domain file costs its own interfaces only: the good file beside it is still read.
TEST(Fuzz, LibvirtDomainXml) {
  TempDir dir;
  dir.Write("good.xml", std::string(kDomstatus));
  Fuzz({kDomstatus}, [&](const std::string& xml) {
    dir.Write("fuzz.xml", xml);
    std::map<std::string, identity::VmInterface> out;
    identity::Libvirt(dir.path().string(), 1 << 20).Read(out);  // fresh: no cache by mtime
    ASSERT_TRUE(out.count("vnet3") && out.at("vnet3").vm_name == "web1");
  });
}

// What processes write into /proc (their command line, thread names) and pid files in libvirt's
// directory: another process's odd files never hide a VM, and a name is never endless.
TEST(Fuzz, ProcFilesOfVms) {
  using namespace std::string_literals;
  TempDir proc, libvirt;
  proc.Write("100/comm", "qemu-system-x86\n");
  proc.Write("100/cmdline", "qemu\0-name\0guest=web1,debug-threads=on\0"s);
  proc.Write("100/stat", "100 (qemu-system-x86) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 2 0 4242 0 0\n");
  proc.Write("100/task/100/comm", "qemu-system-x86\n");
  proc.Write("100/task/101/comm", "CPU 0/KVM\n");
  const std::string cmdline = "qemu\0-name\0guest=vm,,x,debug-threads=on\0-m\0512\0"s;
  const std::string stat = "200 (qemu-system-x86) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 2 0 77 0 0\n";
  Fuzz({cmdline, stat, "CPU 1/KVM\n", "200\n"}, [&](const std::string& text) {
    proc.Write("200/comm", "qemu-system-x86\n");
    proc.Write("200/cmdline", text);
    proc.Write("200/stat", text);
    proc.Write("200/task/201/comm", text);
    libvirt.Write("x.pid", text);
    auto scan = identity::VmThreads(proc.path().string(), libvirt.path().string()).Scan();
    ASSERT_TRUE(scan.processes.count(100) && scan.processes.at(100).vm_name == "web1");
    ASSERT_TRUE(scan.threads.count(101) && scan.threads.at(101).kind == SCHED_VCPU);
    for (const auto& [pid, p] : scan.processes) ASSERT_LE(p.vm_name.size(), 256u);
  });
}

// /proc/kallsyms (the drops collector's function names): a line of another form is skipped,
// never thrown on, and a name is one of the file's words of at most 512 bytes.
TEST(Fuzz, Kallsyms) {
  TempDir dir;
  const std::string seed =
      "ffffffff81000000 T _stext\nffffffff81100000 T __udp4_lib_rcv\nffffffff81100900 d some_data\n"
      "ffffffffc0001000 t tun_net_xmit\t[tun]\nffffffffc0000000 t tun_get_user\t[tun]\n";
  Fuzz({seed}, [&](const std::string& text) {
    kernel::Kallsyms k(dir.Write("kallsyms", text), (dir.path() / "modules").string());
    const std::vector<uint64_t> addrs = {0xffffffff81100010, 0xffffffffc0001234, 0x1000};
    k.Resolve(addrs);
    for (uint64_t a : addrs) {
      const std::string& name = k.Name(a);
      ASSERT_LE(name.size(), 512u);
      ASSERT_TRUE(name == "unknown" || text.find(name) != std::string::npos) << name;
    }
  });
}

TEST(Fuzz, OvsdbTables) {
  Fuzz({kOvsdbTables}, [](const std::string& text) {
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded()) return;
    try {
      identity::ParseOvsdbTables(json);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a reply of the wrong shape must give no rows, not throw: " << e.what();
    }
  });
}

TEST(Fuzz, OvsUnixctlReplies) {
  Fuzz({kDpctlShow, kUpcallShow, kCoverageShow}, [](const std::string& text) {
    auto dps = collectors::ParseDpctlShow(text);
    collectors::ParseUpcallShow(text, dps);
    collectors::ParseCoverageShow(text);
  });
}

// Replies framed over a real unix socket: a JSON-RPC call returns or throws JsonRpcError.
TEST(Fuzz, JsonRpcFraming) {
  TempDir dir;
  const std::string path = (dir.path() / "rpc.sock").string();
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  listen(listener, 8);
  std::string reply;  // what the peer sends next, then it closes
  std::mutex mu;
  std::thread peer([&] {
    for (int c; (c = accept(listener, nullptr, nullptr)) >= 0; close(c)) {
      char buf[4096];
      (void)!recv(c, buf, sizeof(buf), 0);
      std::lock_guard lock(mu);
      (void)!send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
  });
  const std::string seed = R"({"id":0,"error":null,"result":)" + nlohmann::json(std::string(kDpctlShow)).dump() + "}";
  const std::string ovsdb = R"({"id":0,"error":null,"result":)" + std::string(kOvsdbTables) + "}";
  Fuzz({seed, ovsdb}, [&](const std::string& bytes) {
    {
      std::lock_guard lock(mu);
      reply = bytes;
    }
    try {
      net::JsonRpcCall(path, "dpctl/show", nlohmann::json::array(), std::chrono::seconds(2), 1 << 20);
    } catch (const net::JsonRpcError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JsonRpcError: " << e.what();
    }
  });
  shutdown(listener, SHUT_RDWR);
  peer.join();
  close(listener);
}

TEST(Fuzz, HttpRequestHeads) {
  Fuzz({"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\nX-Prometheus-Scrape-Timeout-Seconds: 10",
        "HEAD / HTTP/1.0\r\nUser-Agent: curl/7.88.1"},
       [](const std::string& head) { http::ParseRequest(head); });
}

// Whatever bytes a client sends, the server answers or closes, and the next scrape is the same.
TEST(Fuzz, HttpServer) {
  auto scrape = [](std::chrono::milliseconds) {
    prometheus::MetricFamily f{"fuzz_value", "help", prometheus::MetricType::Gauge, {}};
    f.metric.emplace_back().gauge.value = 42;
    return metrics::EmitFamilies({f});
  };
  http::Limits limits;
  limits.request_timeout = std::chrono::milliseconds(200);
  http::Server server("127.0.0.1:0", "/metrics", scrape, [] { return std::string("landing"); }, limits);
  const std::string expected = HttpGet(server.port(), "/metrics").body;
  Fuzz({"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD / HTTP/1.0\r\n\r\n",
        "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"},
       [&](const std::string& bytes) {
         int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         a.sin_port = htons(server.port());
         a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
         ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
         (void)!send(s, bytes.data(), bytes.size(), MSG_NOSIGNAL);
         shutdown(s, SHUT_WR);  // an unfinished head then ends at once, not at the head timeout
         timeval timeout{5, 0};
         setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
         char buf[4096];
         ssize_t n;
         while ((n = read(s, buf, sizeof(buf))) > 0) {
         }
         const bool timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
         close(s);
         ASSERT_FALSE(timed_out) << "neither answered nor closed within 5 s";
       });
  EXPECT_EQ(HttpGet(server.port(), "/metrics").body, expected);
}

}  // namespace
}  // namespace vnet::testing
