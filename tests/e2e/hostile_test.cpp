// Hostile input against the real nicsyncd: malformed credentials in Vault, keys under a mapping
// set that are not GSTINs, Vault answers that are truncated or not JSON, broken configuration
// files, malformed / oversized / slow / unauthorised API requests, and a state directory that
// is full or read-only. Each must give a clear error, leave the daemon running (or refuse to
// start, naming the cause) and leak no secret.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "testing/world.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::DaemonConfig;
using testing::eventually;
using testing::files_containing;
using testing::read_all;
using testing::World;
using testing::world_gstin;

/// Which of `needles` occur in `text` (by their first characters, so a report never shows one).
std::vector<std::string> found_in(const std::string& text, const std::vector<std::string>& needles) {
  std::vector<std::string> hits;
  for (const auto& s : needles) {
    if (text.find(s) != std::string::npos) hits.push_back(s.substr(0, 12) + "…");
  }
  return hits;
}

std::string state_of(Daemon& d, const std::string& gstin, const std::string& dest = "cleartax") {
  auto p = d.pair_status(gstin, dest);
  return p ? std::string(p->at("state").as_string()) : std::string("(no pair)");
}

std::string error_message_of(Daemon& d, const std::string& gstin, const std::string& dest = "cleartax") {
  auto p = d.pair_status(gstin, dest);
  if (!p || p->at("last_error").is_null()) return {};
  return std::string(p->at("last_error").as_object().at("message").as_string());
}

/// The value of an unlabelled metric in Prometheus text, or nothing.
std::optional<double> metric(Daemon& d, const std::string& name) {
  auto r = d.request("GET", "/metrics");
  if (!r || r->status != 200) return std::nullopt;
  std::istringstream lines(r->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(name + " ")) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

/// Writes `data_json` (any JSON object, non-string values included) as a new version of
/// secret/<key> through the test Vault's real HTTP API with its root token; returns the status.
int vault_write_json(World& world, const std::string& key, const std::string& data_json) {
  boost::asio::io_context io;
  http::Client client(io.get_executor());
  http::Request r;
  r.method = "POST";
  r.url = world.vault_address() + "/v1/secret/data/" + key;
  r.headers = {{"X-Vault-Token", "root-token-for-tests"}, {"Content-Type", "application/json"}};
  r.body = "{\"data\":" + data_json + "}";
  r.timeout = 10s;
  auto resp = testing::run_for(io, client.request(std::move(r)), 15s);
  return resp ? resp->status : 0;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string json_string(std::string_view s) { return boost::json::serialize(boost::json::value(s)); }

/// A raw TCP connection to 127.0.0.1 for requests no HTTP client would send.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot connect to the daemon's API");
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// False once the peer has closed (EPIPE / ECONNRESET).
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Reads until the peer closes the connection or `timeout` passes; `closed` says which.
  struct Received {
    std::string data;
    bool closed = false;
  };
  Received read_until_closed(std::chrono::milliseconds timeout) {
    Received r;
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return r;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        r.closed = true;
        return r;
      }
      r.data.append(buf, static_cast<std::size_t>(n));
    }
  }
  /// Reads one response (status line, headers, Content-Length body), or what came before the
  /// peer closed or `timeout` passed.
  std::string read_response(std::chrono::milliseconds timeout = 10s) {
    std::string& data = pending_;  // bytes of a pipelined next response stay for the next call
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto end = data.find("\r\n\r\n"); end != std::string::npos) {
        std::size_t length = 0;
        std::string lower = data.substr(0, end);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (auto cl = lower.find("content-length:"); cl != std::string::npos) {
          length = std::stoul(lower.substr(cl + 15));
        }
        if (data.size() >= end + 4 + length) {
          std::string one = data.substr(0, end + 4 + length);
          data.erase(0, one.size());
          return one;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::exchange(data, {});
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::exchange(data, {});
      data.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string pending_;
};

/// The status code of a raw response ("HTTP/1.1 400 ..." → 400), 0 if there was none.
int status_of(const std::string& response) {
  if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

/// One raw request on a fresh connection; the response (possibly empty if the daemon closed).
std::string raw_exchange(std::uint16_t port, std::string_view request) {
  RawConnection c(port);
  c.send(request);
  return c.read_response();
}

class HostileE2E : public ::testing::Test {
 protected:
  void SetUp() override { world_.seed_cleartax_secret(); }

  bool delivered(const std::string& gstin, const std::string& password, std::chrono::milliseconds timeout = 20s) {
    return eventually(
        [&] {
          auto s = world_.stored(gstin);
          return s && s->password == password;
        },
        timeout);
  }
  /// No planted value in the daemon's output, its log file or its state directory.
  void expect_not_leaked(Daemon& d, const std::vector<std::string>& planted) {
    EXPECT_EQ(found_in(d.process().output(), planted), std::vector<std::string>{});
    EXPECT_EQ(files_containing(dir_.path().string(), planted), std::vector<std::string>{});
  }

  World world_;
  testing::TempDir dir_;
};

// ------------------------------------------------------------------------------------------------
// Malformed credentials in Vault
// ------------------------------------------------------------------------------------------------

TEST_F(HostileE2E, MalformedSecretsAreParkedWithAClearMessageAndAFixedVersionIsDelivered) {
  struct Case {
    std::string what;
    std::string data;                  // JSON object written through the HTTP API ("" = kv_put below)
    std::vector<std::string> expect;   // in the pair's last_error.message
    std::vector<std::string> planted;  // values that must never show up anywhere
  };
  const std::string big(1u << 20, 'Q');
  std::vector<Case> cases = {
      {"missing username",
       R"({"password":"Pw-missing-user-4c1e"})",
       {"no field \"username\"", "add it"},
       {"Pw-missing-user-4c1e"}},
      {"missing password", R"({"username":"API_NOPASS"})", {"no field \"password\"", "add it"}, {}},
      {"username is a number",
       R"({"username":73190458216643,"password":"Pw-num-user-91d2"})",
       {"\"username\"", "a number, not a string"},
       {"73190458216643", "Pw-num-user-91d2"}},
      {"password is an object",
       R"({"username":"API_OBJ","password":{"value":"Pw-in-object-5a7b"}})",
       {"\"password\"", "an object, not a string"},
       {"Pw-in-object-5a7b"}},
      {"password is null", R"({"username":"API_NULL","password":null})", {"\"password\"", "null, not a string"}, {}},
      {"password is an array",
       R"({"username":"API_ARR","password":["Pw-in-array-e3f0"]})",
       {"\"password\"", "an array, not a string"},
       {"Pw-in-array-e3f0"}},
      {"empty username",
       R"({"username":"","password":"Pw-empty-user-77aa"})",
       {"\"username\" is empty"},
       {"Pw-empty-user-77aa"}},
      {"empty password", R"({"username":"API_EMPTY","password":""})", {"\"password\" is empty"}, {}},
      {"1 MiB password",
       "{\"username\":\"API_BIG\",\"password\":" + json_string(big) + "}",
       {"\"password\" is 1048576 bytes long"},
       {big.substr(0, 4096)}},
      {"control character",
       R"({"username":"API_CTL","password":"Pw-line\nbreak-2b9c"})",
       {"\"password\" contains a control character"},
       {"Pw-line\nbreak-2b9c", "break-2b9c"}},
      // Vault (Go) turns bytes that are not UTF-8 into U+FFFD; a lone surrogate too.
      {"lone surrogate",
       R"({"username":"API_SUR","password":"Pw-\udc80-surrogate-0d4e"})",
       {"\"password\"", "U+FFFD"},
       {"-surrogate-0d4e"}},
      {"invalid UTF-8", "", {"\"password\"", "U+FFFD"}, {"-latin1-8f21"}},
  };
  const std::size_t n = cases.size();
  std::vector<std::string> gstins;
  for (std::size_t i = 0; i < n + 2; ++i) gstins.push_back(world_gstin(100 + static_cast<int>(i)));
  const std::string& healthy = gstins[n];
  const std::string& extra_keys = gstins[n + 1];
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].data.empty()) {
      // Raw bytes through the data plane: the test Vault answers them the way Vault does.
      world_.call([&] {
        world_.vault().kv_put("secret", "nic/" + gstins[i],
                              {{"username", "API_LATIN"}, {"password", "Pw-\xe9-latin1-8f21"}});
      });
    } else {
      ASSERT_EQ(vault_write_json(world_, "nic/" + gstins[i], cases[i].data), 200) << cases[i].what;
    }
  }
  world_.put_credential(healthy, "API_HEALTHY", "Pw-healthy-1");
  ASSERT_EQ(vault_write_json(world_, "nic/" + extra_keys,
                             R"({"username":"API_EXTRA","password":"Pw-extra-1","note":"rotated by job 7",)"
                             R"("n":5,"nested":{"a":[1,2]},"flag":true,"nothing":null})"),
            200);

  Daemon d(world_, dir_, {.gstins = gstins});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(healthy, "Pw-healthy-1")) << d.process().output();
  ASSERT_TRUE(delivered(extra_keys, "Pw-extra-1")) << d.process().output();  // extra keys are fine
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = cases[i];
    ASSERT_TRUE(eventually([&] { return state_of(d, gstins[i]) == "parked"; }, 20s))
        << c.what << ": " << state_of(d, gstins[i]) << "\n"
        << d.process().output().substr(0, 20000);
    const std::string msg = error_message_of(d, gstins[i]);
    EXPECT_NE(msg.find("secret/nic/" + gstins[i]), std::string::npos) << c.what << ": " << msg;
    for (const auto& e : c.expect) EXPECT_NE(msg.find(e), std::string::npos) << c.what << ": " << msg;
    EXPECT_FALSE(world_.stored(gstins[i]).has_value()) << c.what;
  }
  EXPECT_EQ(d.request("GET", "/healthz")->status, 200);
  EXPECT_EQ(state_of(d, healthy), "in_sync");
  EXPECT_EQ(state_of(d, extra_keys), "in_sync");

  std::vector<std::string> planted;
  for (const auto& c : cases) planted.insert(planted.end(), c.planted.begin(), c.planted.end());
  auto status = d.request("GET", "/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(found_in(status->body, planted), std::vector<std::string>{});
  auto history = d.request("GET", "/v1/history?gstin=" + gstins[0]);
  ASSERT_TRUE(history);
  EXPECT_EQ(found_in(history->body, planted), std::vector<std::string>{});

  // A corrected version brings every pair back; the healthy ones were never touched again.
  for (std::size_t i = 0; i < n; ++i) world_.put_credential(gstins[i], "API_FIXED", "Pw-fixed-" + std::to_string(i));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(delivered(gstins[i], "Pw-fixed-" + std::to_string(i))) << cases[i].what << "\n" << d.process().output();
  }
  ASSERT_TRUE(eventually(
      [&] {
        for (std::size_t i = 0; i < n; ++i) {
          if (state_of(d, gstins[i]) != "in_sync") return false;
        }
        return true;
      },
      10s));
  EXPECT_EQ(world_.stored(healthy)->stores, 1u);
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
  expect_not_leaked(d, planted);
}

// ------------------------------------------------------------------------------------------------
// Keys under a mapping set that are not GSTINs
// ------------------------------------------------------------------------------------------------

std::vector<std::string> status_warnings(Daemon& d) {
  std::vector<std::string> out;
  auto st = d.get_json("/v1/status");
  if (!st) return out;
  for (const auto& w : st->at("warnings").as_array()) out.emplace_back(w.as_string());
  return out;
}

std::string warning_about(Daemon& d, const std::string& needle) {
  for (const auto& w : status_warnings(d)) {
    if (w.find(needle) != std::string::npos) return w;
  }
  return {};
}

TEST_F(HostileE2E, KeysUnderAMappingSetThatAreNotGstinsAreReportedNotFatal) {
  const std::string good = world_gstin(300);
  const std::string lower = "27aapfu0939f1zv";         // the right GSTIN in the wrong case
  const std::string wrong_check = "27AAPFU0939F1ZO";   // check character should be V
  const std::string sandbox_only = "29AAFCD5862R000";  // a sandbox GSTIN: no check character
  for (const auto& k : {good, lower, wrong_check, sandbox_only}) {
    world_.put_credential(k, "API_SET", "Pw-set-" + k);
  }
  world_.put_credential("archive/" + good, "API_OLD", "Pw-archived");  // a sub-folder: not a key

  Daemon strict(world_, dir_, {.mapping_set = true});
  strict.start();
  ASSERT_TRUE(strict.wait_started()) << strict.process().output();
  ASSERT_TRUE(delivered(good, "Pw-set-" + good)) << strict.process().output();
  ASSERT_TRUE(eventually([&] { return strict.readyz() == 200; }, 20s)) << strict.process().output();
  // Each bad key: a log line and a warning in /v1/status that says what is wrong and what to do.
  std::string w;
  ASSERT_TRUE(eventually([&] { return !(w = warning_about(strict, wrong_check)).empty(); }, 10s))
      << join_lines(status_warnings(strict));
  EXPECT_NE(w.find("expected 'V'"), std::string::npos) << w;
  EXPECT_NE(w.find("rename or move it"), std::string::npos) << w;
  w = warning_about(strict, "\"" + lower + "\"");
  EXPECT_NE(w.find("upper-case"), std::string::npos) << w;
  w = warning_about(strict, sandbox_only);
  EXPECT_NE(w.find("gstin_validation = \"sandbox\""), std::string::npos) << w;
  EXPECT_TRUE(warning_about(strict, "archive").empty());
  EXPECT_EQ(status_warnings(strict).size(), 3u) << join_lines(status_warnings(strict));
  EXPECT_EQ(metric(strict, "nicsync_warnings"), 3.0);
  for (const auto& k : {lower, wrong_check, sandbox_only}) {
    EXPECT_TRUE(strict.wait_for_log(k, 1s)) << k;
    EXPECT_FALSE(world_.stored(k).has_value()) << k;
    EXPECT_EQ(state_of(strict, k), "(no pair)") << k;
  }
  testing::Process status({.argv = {testing::built_program("nicsyncd"), "status", "--url", strict.url("")}});
  ASSERT_EQ(status.wait(20s), 0) << status.output();
  EXPECT_NE(status.output().find("warning: mapping set secret/nic/: key \"" + wrong_check), std::string::npos)
      << status.output();
  strict.signal(SIGTERM);
  ASSERT_EQ(strict.process().wait(20s), 0) << strict.process().output();

  // gstin_validation = "sandbox" takes the sandbox GSTIN; the lower-case key stays out.
  testing::TempDir other;
  DaemonConfig cfg{.mapping_set = true};
  cfg.top_level = "gstin_validation = \"sandbox\"\n";
  Daemon sandbox(world_, other, cfg);
  sandbox.start();
  ASSERT_TRUE(sandbox.wait_started()) << sandbox.process().output();
  ASSERT_TRUE(delivered(sandbox_only, "Pw-set-" + sandbox_only)) << sandbox.process().output();
  ASSERT_TRUE(eventually([&] { return !warning_about(sandbox, "\"" + lower + "\"").empty(); }, 10s))
      << join_lines(status_warnings(sandbox));
  EXPECT_FALSE(world_.stored(lower).has_value());
  sandbox.signal(SIGTERM);
  EXPECT_EQ(sandbox.process().wait(20s), 0) << sandbox.process().output();
}

// ------------------------------------------------------------------------------------------------
// Vault answers that are not JSON, truncated, or of the wrong shape
// ------------------------------------------------------------------------------------------------

TEST_F(HostileE2E, GarbageFromVaultLeavesTheDaemonRunningAndIsReported) {
  const std::string g = world_gstin(400), other = world_gstin(401);
  world_.put_credential(g, "API_GARBAGE", "Pw-garbage-1");
  world_.put_credential(other, "API_OTHER", "Pw-other-1");
  // At boot a proxy in front of Vault answers the metadata reads of one key with a login page.
  world_.call([&] {
    world_.vault().fail_next({.kind = fakes::FaultSpec::Kind::status,
                              .count = 1000000,
                              .status = 200,
                              .body = "<html><body>Please sign in to the proxy</body></html>",
                              .path_prefix = "secret/metadata/nic/" + g});
  });
  Daemon d(world_, dir_, {.gstins = {g, other}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(other, "Pw-other-1")) << d.process().output();  // the other key is unaffected
  auto r = d.request("GET", "/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("secret/nic/" + g), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("is not valid JSON"), std::string::npos) << r->body;
  EXPECT_NE(warning_about(d, "Vault: cannot read secret/nic/" + g), "");
  world_.call([&] { world_.vault().clear_faults(); });
  ASSERT_TRUE(delivered(g, "Pw-garbage-1")) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();
  ASSERT_TRUE(eventually([&] { return status_warnings(d).empty(); }, 10s)) << join_lines(status_warnings(d));

  // Once running: the data read answers with JSON of the wrong shape, then with a body cut
  // short. The pair retries, showing why; the other pair and the API are unaffected.
  const std::vector<std::pair<fakes::FaultSpec, std::string>> faults = {
      {{.kind = fakes::FaultSpec::Kind::status,
        .count = 1000000,
        .status = 200,
        .body = R"({"data":{"data":["Pw-in-wrong-shape-77c1"],"metadata":{"version":2}}})",
        .path_prefix = "secret/data/nic/" + g},
       "data.data"},
      {{.kind = fakes::FaultSpec::Kind::truncate,
        .count = 1000000,
        .truncate_at = 25,
        .path_prefix = "secret/data/nic/" + g},
       "transfer closed"},
  };
  int version = 1;
  for (const auto& [fault, expected] : faults) {
    world_.call([&, f = fault] { world_.vault().fail_next(f); });
    ++version;
    world_.put_credential(g, "API_GARBAGE", "Pw-garbage-" + std::to_string(version));
    ASSERT_TRUE(eventually([&] { return state_of(d, g) == "retrying"; }, 20s)) << state_of(d, g) << "\n"
                                                                               << d.process().output();
    const std::string msg = error_message_of(d, g);
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Pw-"), std::string::npos) << msg;
    EXPECT_EQ(d.request("GET", "/healthz")->status, 200);
    EXPECT_EQ(state_of(d, other), "in_sync");
    world_.call([&] { world_.vault().clear_faults(); });
    ASSERT_TRUE(delivered(g, "Pw-garbage-" + std::to_string(version))) << d.process().output();
    ASSERT_TRUE(eventually([&] { return state_of(d, g) == "in_sync"; }, 10s));
  }
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
  expect_not_leaked(d, {"Pw-in-wrong-shape-77c1"});
}

// ------------------------------------------------------------------------------------------------
// Broken configuration files: `nicsyncd check` exits 3 and names file, line and key
// ------------------------------------------------------------------------------------------------

struct CheckResult {
  int code;
  std::string output;
};

CheckResult check_config(const std::string& path, std::vector<std::string> env = {}) {
  testing::Process p({.argv = {testing::built_program("nicsyncd"), "check", "--config", path},
                      .env = std::move(env),
                      .unset_env = {"VAULT_TOKEN", "VAULT_ADDR", "VAULT_CACERT", "CREDENTIALS_DIRECTORY"}});
  auto code = p.wait(20s);
  return {code.value_or(-1), p.output()};
}

TEST_F(HostileE2E, CheckRejectsEmptyBinaryHugeDeepAndDanglingConfigs) {
  const std::string vault_ok =
      "[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"token_file\"\ntoken_file = \"" +
      dir_.file("vault-token") + "\"\n";
  testing::write_file(dir_.file("vault-token"), "hvs.not-a-real-token\n");
  struct Case {
    std::string what, text, expected;
  };
  std::string binary =
      "\x7f"
      "ELF\x02\x01\x01";
  // The rest of an ELF header's identification (9 zero bytes), then e_type ET_DYN and e_machine
  // x86-64: 13 bytes (a length of 16 read past the literal, which ASan reports).
  constexpr char kElfRest[] = "\0\0\0\0\0\0\0\0\0\x03\0>\0";
  binary.append(kElfRest, sizeof kElfRest - 1);
  const std::vector<Case> cases = {
      {"empty", "", "[vault]"},
      {"binary", binary, "not a text file"},
      {"10,000 nested arrays", "a = " + std::string(10000, '[') + std::string(10000, ']') + "\n",
       "bad.toml:1:261: not valid TOML"},
      {"10,000 nested inline tables",
       "a = " +
           [] {
             std::string t;
             for (int i = 0; i < 10000; ++i) t += "{b=";
             return t + "1" + std::string(10000, '}');
           }() +
           "\n",
       "not valid TOML"},
      // toml++ recurses once per table level: these overflowed the stack before.
      {"100,000 dotted key parts",
       [] {
         std::string t = "a";
         for (int i = 0; i < 100000; ++i) t += ".a";
         return t + " = 1\n";
       }(),
       "bad.toml:1: more than 1000 dotted key parts"},
      {"table header 100,000 deep",
       "# a comment. with dots...\n[" +
           [] {
             std::string t = "a";
             for (int i = 0; i < 100000; ++i) t += ".a";
             return t;
           }() +
           "]\n",
       "bad.toml:2: more than 1000 dotted key parts"},
      {"missing Vault token file",
       "[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"token_file\"\ntoken_file = \"" +
           dir_.file("no-such-token") + "\"\n",
       "bad.toml:5: vault.auth.token_file: " + dir_.file("no-such-token") + " does not exist"},
      {"token_file with method token",
       "[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"token\"\ntoken_file = \"/x\"\n",
       "bad.toml:5: vault.auth.token_file: is only read with method = \"token_file\""},
      {"missing AppRole files",
       "[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"approle\"\nrole_id_file = \"" +
           dir_.file("no-role") + "\"\nsecret_id_file = \"" + dir_.file("no-secret") + "\"\n",
       "bad.toml:6: vault.auth.secret_id_file: " + dir_.file("no-secret") + " does not exist"},
      {"missing Vault CA", vault_ok + "[vault.tls]\nca_file = \"" + dir_.file("no-ca.pem") + "\"\n",
       "bad.toml:7: vault.tls.ca_file: " + dir_.file("no-ca.pem") + " does not exist"},
      {"missing Vault client key",
       vault_ok + "[vault.tls]\nclient_cert = \"" + dir_.file("vault-token") + "\"\nclient_key = \"" +
           dir_.file("no-key.pem") + "\"\n",
       "bad.toml:8: vault.tls.client_key: " + dir_.file("no-key.pem") + " does not exist"},
      {"missing API TLS files",
       vault_ok + "[api]\nlisten = \"127.0.0.1:0\"\ntls_cert_file = \"" + dir_.file("no-cert.pem") +
           "\"\ntls_key_file = \"" + dir_.path().string() + "\"\n",
       "bad.toml:8: api.tls_cert_file: " + dir_.file("no-cert.pem") + " does not exist"},
      {"API key is a directory",
       vault_ok + "[api]\nlisten = \"127.0.0.1:0\"\ntls_cert_file = \"" + dir_.file("vault-token") +
           "\"\ntls_key_file = \"" + dir_.path().string() + "\"\n",
       "bad.toml:9: api.tls_key_file: " + dir_.path().string() + " is a directory"},
      {"missing API token file", vault_ok + "[api]\ntoken_file = \"" + dir_.file("no-api-token") + "\"\n",
       "bad.toml:7: api.token_file: cannot read " + dir_.file("no-api-token")},
      {"endless API token file", vault_ok + "[api]\ntoken_file = \"/dev/zero\"\n",
       "bad.toml:7: api.token_file: /dev/zero is larger than 4 KiB"},
  };
  const std::string path = dir_.file("bad.toml");
  for (const auto& c : cases) {
    testing::write_file(path, c.text);
    auto r = check_config(path);
    EXPECT_EQ(r.code, 3) << c.what << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.what << "\n" << r.output;
  }
  // Not a file at all, or a file without end: refused at once instead of read into memory.
  auto dir = check_config(dir_.path().string());
  EXPECT_EQ(dir.code, 3) << dir.output;
  EXPECT_NE(dir.output.find("is a directory"), std::string::npos) << dir.output;
  auto zero = check_config("/dev/zero");
  EXPECT_EQ(zero.code, 3) << zero.output;
  EXPECT_NE(zero.output.find("larger than 4 MiB"), std::string::npos) << zero.output;
  // A relative AppRole path lives under $CREDENTIALS_DIRECTORY, which only systemd sets: checked
  // when it is set, left alone when it is not.
  testing::write_file(path,
                      "[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"approle\"\n"
                      "role_id_file = \"role-id\"\nsecret_id_file = \"secret-id\"\n");
  EXPECT_EQ(check_config(path).code, 0) << check_config(path).output;
  testing::write_file(dir_.file("role-id"), "role\n");
  auto creds = check_config(path, {"CREDENTIALS_DIRECTORY=" + dir_.path().string()});
  EXPECT_EQ(creds.code, 3) << creds.output;
  EXPECT_NE(creds.output.find("bad.toml:6: vault.auth.secret_id_file: " + dir_.file("secret-id") + " does not exist"),
            std::string::npos)
      << creds.output;
}

// ------------------------------------------------------------------------------------------------
// API requests that are malformed, oversized, slow or unauthorised
// ------------------------------------------------------------------------------------------------

TEST_F(HostileE2E, ApiAnswersMalformedOversizedSlowAndUnauthorisedRequestsAndStaysHealthy) {
  const std::string g = world_gstin(200);
  world_.put_credential(g, "API_API", "Pw-api-1");
  Daemon d(world_, dir_, {.gstins = {g}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();
  const std::uint16_t port = d.port();

  // Slow headers (one line every 300 ms, forever): the daemon ends it after its 5 s header
  // timeout. Runs beside the other checks.
  std::atomic<bool> slow_closed{false};
  std::chrono::milliseconds slow_took{0};
  std::thread slowloris([&] {
    RawConnection c(port);
    const auto start = std::chrono::steady_clock::now();
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 60; ++i) {
      auto r = c.read_until_closed(300ms);
      if (r.closed || !c.send("X-Slow: " + std::to_string(i) + "\r\n")) {
        slow_closed = true;
        break;
      }
    }
    slow_took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  });

  const std::string wrong_token = "wrong-token-PLANTED-3c9d1e";
  struct Case {
    std::string what, request;
    int status;
  };
  const std::string huge_header(16 << 10, 'h');
  const std::string nested(60000, '[');
  auto post_sync = [&](const std::string& body, const std::string& token) {
    return "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  const std::vector<Case> cases = {
      {"garbage request line", "GARBAGE\r\n\r\n", 400},
      {"binary (a TLS hello on the plain port)", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
      {"bad Content-Length", "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
      {"header line without colon", "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"header too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + huge_header + "\r\n\r\n", 431},
      {"announced body too large", "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n", 413},
      {"chunked body too large",
       "POST /v1/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
           [] {
             std::string chunks;
             for (int i = 0; i < 20; ++i) chunks += "1000\r\n" + std::string(4096, 'x') + "\r\n";
             return chunks + "0\r\n\r\n";
           }(),
       413},
      {"unknown path", "GET /v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
      {"history with a bad GSTIN", "GET /v1/history?gstin=%00%ff HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"history with a bad limit", "GET /v1/history?limit=1e99 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"history with a negative limit", "GET /v1/history?limit=-1 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"history with a huge limit", "GET /v1/history?limit=99999999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n", 200},
      {"sync without a token", "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 401},
      {"sync with a wrong token", post_sync("{}", wrong_token), 401},
      {"sync with a Basic credential",
       "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + wrong_token + "\r\nContent-Length: 0\r\n\r\n",
       401},
      {"sync body not JSON", post_sync("{gstins: all}", "trigger-token-5d1c"), 400},
      {"sync body nested 60,000 deep", post_sync(nested, "trigger-token-5d1c"), 400},
      {"sync body of the wrong shape", post_sync(R"({"gstins":"all"})", "trigger-token-5d1c"), 400},
      {"sync body with a bad GSTIN", post_sync(R"({"gstins":["27aapfu0939f1zv"]})", "trigger-token-5d1c"), 400},
      {"sync body with a wrong type", post_sync(R"({"force":"yes"})", "trigger-token-5d1c"), 400},
      {"sync body with an unknown field", post_sync(R"({"everything":true})", "trigger-token-5d1c"), 400},
  };
  for (const auto& c : cases) {
    const std::string response = raw_exchange(port, c.request);
    EXPECT_EQ(status_of(response), c.status) << c.what << "\n" << response.substr(0, 300);
    EXPECT_EQ(response.find(wrong_token), std::string::npos) << c.what;
  }
  // A well-formed request still works on a connection that follows a bad one, and pipelined
  // requests are answered in order.
  {
    RawConnection c(port);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(c.read_response()), 200);
    EXPECT_EQ(status_of(c.read_response()), 200);
  }
  // More connections than the API takes (256), all silent: it still answers, recycling the
  // longest-idle ones instead of refusing newcomers until the idle ones time out.
  {
    std::vector<std::unique_ptr<RawConnection>> idle;
    for (int i = 0; i < 300; ++i) idle.push_back(std::make_unique<RawConnection>(port));
    auto r = d.request("GET", "/healthz");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->status, 200);
  }

  slowloris.join();
  EXPECT_TRUE(slow_closed) << "a request whose headers never end was not cut off";
  EXPECT_GE(slow_took, 4s);
  EXPECT_LE(slow_took, 10s);

  EXPECT_TRUE(d.process().running());
  EXPECT_EQ(d.request("GET", "/healthz")->status, 200);
  EXPECT_EQ(d.readyz(), 200);
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
  expect_not_leaked(d, {wrong_token});
}

TEST_F(HostileE2E, ClientCommandsSayWhenTheUrlIsNotNicsyncd) {
  // Whatever answers at --url (here the test Vault, faulted into a proxy's login page or JSON of
  // another shape) gets a message and exit code 1, not an abort.
  testing::write_file(dir_.file("token"), "trigger-token-5d1c\n");
  const std::vector<std::vector<std::string>> commands = {
      {"status", "--url", world_.vault_address()},
      {"history", world_gstin(700), "--url", world_.vault_address()},
      {"sync", "--url", world_.vault_address(), "--token-file", dir_.file("token")},
  };
  for (const std::string body : {"<html><body>Please sign in</body></html>", R"({"items":"none","errors":7})"}) {
    for (const auto& args : commands) {
      world_.call([&] {
        world_.vault().clear_faults();
        world_.vault().fail_next({.kind = fakes::FaultSpec::Kind::status, .count = 10, .status = 200, .body = body});
      });
      std::vector<std::string> argv = {testing::built_program("nicsyncd")};
      argv.insert(argv.end(), args.begin(), args.end());
      testing::Process p({.argv = argv});
      EXPECT_EQ(p.wait(20s), 1) << args[0] << " " << body << "\n" << p.output();
      EXPECT_NE(p.output().find("is the URL that of nicsyncd's API?"), std::string::npos)
          << args[0] << " " << body << "\n"
          << p.output();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// A state directory that is full or read-only
// ------------------------------------------------------------------------------------------------

/// Sets the soft RLIMIT_FSIZE of a running process (what `prlimit --pid P --fsize=N` does): every
/// write that would grow a file past `bytes` fails with EFBIG, as on a full disk.
void limit_file_size(pid_t pid, rlim_t bytes) {
  rlimit old{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_FSIZE, nullptr, &old), 0);
  const rlimit next{bytes, old.rlim_max};
  ASSERT_EQ(::prlimit(pid, RLIMIT_FSIZE, &next, nullptr), 0) << std::strerror(errno);
}

std::string readyz_body(Daemon& d) {
  auto r = d.request("GET", "/readyz");
  return r ? r->body : std::string("(unreachable)");
}

TEST_F(HostileE2E, AFullDiskMakesTheDaemonNotReadyLosesNothingAndItRecovers) {
  const std::string a = world_gstin(500), b = world_gstin(501);
  world_.put_credential(a, "API_A", "Pw-a-1");
  world_.put_credential(b, "API_B", "Pw-b-1");
  Daemon d(world_, dir_, {.gstins = {a, b}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(a, "Pw-a-1") && delivered(b, "Pw-b-1")) << d.process().output();
  ASSERT_TRUE(eventually([&] { return state_of(d, a) == "in_sync" && state_of(d, b) == "in_sync"; }, 10s));
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();
  EXPECT_EQ(metric(d, "nicsync_ledger_writable"), 1.0);

  // The disk fills up. A rotation cannot record its intent, so nothing is pushed.
  limit_file_size(d.process().pid(), 0);
  d.mark_output();
  world_.put_credential(a, "API_A", "Pw-a-2");
  ASSERT_TRUE(eventually([&] { return metric(d, "nicsync_ledger_writable") == 0.0; }, 20s)) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 503; }, 10s));
  const std::string why = readyz_body(d);
  EXPECT_NE(why.find("ledger: writes fail: cannot commit to ledger " + d.state_dir() + "/ledger.db"), std::string::npos)
      << why;
  EXPECT_NE(why.find("nothing is pushed until one succeeds"), std::string::npos) << why;
  EXPECT_NE(why.find("state directory " + d.state_dir()), std::string::npos) << why;
  EXPECT_NE(why.find("File too large"), std::string::npos) << why;
  EXPECT_TRUE(d.wait_for_log("ledger", 5s)) << d.process().output();
  EXPECT_EQ(world_.stored(a)->password, "Pw-a-1");
  EXPECT_EQ(world_.stored(a)->stores, 1u);
  // (between two attempts it is "retrying"; during one, "pending")
  EXPECT_TRUE(eventually([&] { return state_of(d, a) == "retrying"; }, 5s)) << state_of(d, a);
  EXPECT_NE(error_message_of(d, a).find("cannot record the delivery intent in the ledger"), std::string::npos)
      << error_message_of(d, a);
  EXPECT_EQ(state_of(d, b), "in_sync");
  EXPECT_TRUE(d.process().running());
  EXPECT_EQ(d.request("GET", "/healthz")->status, 200);

  // Space again: the retry records its intent, delivers, and the daemon is ready.
  limit_file_size(d.process().pid(), RLIM_INFINITY);
  ASSERT_TRUE(delivered(a, "Pw-a-2")) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << readyz_body(d);
  ASSERT_TRUE(eventually([&] { return state_of(d, a) == "in_sync"; }, 10s));
  EXPECT_EQ(metric(d, "nicsync_ledger_writable"), 1.0);
  d.signal(SIGTERM);
  ASSERT_EQ(d.process().wait(20s), 0) << d.process().output();

  // Nothing recorded was lost: a restart knows both versions and pushes nothing again.
  Daemon again(world_, dir_, d.config());
  again.start();
  ASSERT_TRUE(again.wait_started()) << again.process().output();
  auto pa = again.pair_status(a, "cleartax");
  auto pb = again.pair_status(b, "cleartax");
  ASSERT_TRUE(pa && pb);
  EXPECT_EQ(pa->at("applied_version").as_int64(), 2);
  EXPECT_EQ(pb->at("applied_version").as_int64(), 1);
  ASSERT_TRUE(eventually([&] { return again.readyz() == 200; }, 20s)) << again.process().output();
  EXPECT_EQ(world_.stored(a)->stores, 2u);
  EXPECT_EQ(world_.stored(b)->stores, 1u);
  again.signal(SIGTERM);
  EXPECT_EQ(again.process().wait(20s), 0) << again.process().output();
}

// CI runs as root, which writes anywhere: the daemon runs as nobody (65534) through setpriv.
class HostileUnprivilegedE2E : public HostileE2E {
 protected:
  void SetUp() override {
    HostileE2E::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to start the daemon as another user";
    if (!std::filesystem::exists("/usr/bin/setpriv")) GTEST_SKIP() << "setpriv (util-linux) is not installed";
    // nobody must be able to run the built daemon (a build under /root is out of its reach).
    const std::filesystem::path program = testing::built_program("nicsyncd");
    for (auto p = program; p != p.root_path(); p = p.parent_path()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
        GTEST_SKIP() << p << " is not open to other users, so nobody cannot run " << program;
      }
    }
    // nobody must reach the config and token files (and nothing else of ours).
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_exec);
  }
  DaemonConfig as_nobody(DaemonConfig c) {
    c.wrapper = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
    return c;
  }
  static void readable_by_all(const std::string& path) {
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                           std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  }
};

TEST_F(HostileUnprivilegedE2E, AStateDirectoryItCannotWriteIsNamedAndRecoveredFrom) {
  const std::string g = world_gstin(600);
  world_.put_credential(g, "API_RO", "Pw-ro-1");
  Daemon d(world_, dir_, as_nobody({.gstins = {g}}));
  readable_by_all(d.config_path());
  readable_by_all(d.token_path());

  // A state directory that belongs to root: the daemon refuses to start and says what to do.
  std::filesystem::create_directory(d.state_dir());
  std::filesystem::permissions(d.state_dir(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                                  std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_read |
                                                  std::filesystem::perms::others_exec);
  d.start();
  ASSERT_EQ(d.process().wait(20s), 1) << d.process().output();
  EXPECT_NE(d.process().output().find("state directory " + d.state_dir() + " belongs to uid 0, not to uid 65534"),
            std::string::npos)
      << d.process().output();
  EXPECT_NE(d.process().output().find("chown"), std::string::npos) << d.process().output();

  // Its own directory with a file root left behind: refused too, naming the file.
  ASSERT_EQ(::chown(d.state_dir().c_str(), 65534, 65534), 0);
  testing::write_file(d.state_dir() + "/lock", "");
  d.start();
  ASSERT_EQ(d.process().wait(20s), 1) << d.process().output();
  EXPECT_NE(d.process().output().find("cannot open lock file " + d.state_dir() +
                                      "/lock: Permission denied; the "
                                      "files in the state directory must belong to uid 65534"),
            std::string::npos)
      << d.process().output();

  // All its own: it runs. Then the directory turns read-only under it.
  ASSERT_EQ(::chown((d.state_dir() + "/lock").c_str(), 65534, 65534), 0);
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(g, "Pw-ro-1")) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << readyz_body(d);
  std::filesystem::permissions(d.state_dir(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  ASSERT_TRUE(eventually([&] { return d.readyz() == 503; }, 10s));
  const std::string why = readyz_body(d);
  EXPECT_NE(why.find("state directory " + d.state_dir()), std::string::npos) << why;
  EXPECT_NE(why.find("Permission denied"), std::string::npos) << why;
  EXPECT_NE(metric(d, "nicsync_ready"), 1.0);
  EXPECT_TRUE(d.process().running());
  // Writable again: ready again, and a rotation goes through.
  std::filesystem::permissions(d.state_dir(), std::filesystem::perms::owner_all);
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 10s)) << readyz_body(d);
  world_.put_credential(g, "API_RO", "Pw-ro-2");
  ASSERT_TRUE(delivered(g, "Pw-ro-2")) << d.process().output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
}

}  // namespace
}  // namespace nicsync
