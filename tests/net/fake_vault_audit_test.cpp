// The test Vault's socket audit device against the reference (/work/shared/reference/
// vault-audit.md): what it writes to a real listening socket, byte for byte against the
// reference's example entries (per-run values — times, ids, the token's HMACs, the client's
// port — put into the expected line, never masked away), in the legacy and the sorted order;
// the test probe; prefix, log_raw and unix sockets; Vault's write timeout, one redial and its
// rule that a request fails when no device took its entry. Every line is also read back with
// the daemon's parser (watch::parse_audit_entry).
#include <time.h>

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fake_vault_harness.hpp"
#include "nicsync/watch/audit_entry.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"
#include "testing/vault_audit_examples.hpp"

namespace nicsync::fakes::testing {
namespace {

namespace asio = boost::asio;
namespace ex = nicsync::testing::vault_audit;
using namespace std::chrono;
using nicsync::testing::run_for;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

/// A socket an audit device dials: accepts every connection and reads its lines (or, with
/// `reading` off, keeps them unread).
template <class Protocol>
class Listener {
 public:
  Listener(asio::io_context& io, typename Protocol::endpoint at, int receive_buffer = 0) : acceptor_(io), notify_(io) {
    acceptor_.open(at.protocol());
    if (receive_buffer > 0) acceptor_.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    acceptor_.bind(at);
    acceptor_.listen();
    asio::co_spawn(io, accept(), asio::detached);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  [[nodiscard]] typename Protocol::endpoint endpoint() const { return acceptor_.local_endpoint(); }

  /// Waits (under the test's deadline) until `n` lines or connections have arrived.
  asio::awaitable<void> wait_lines(std::size_t n) {
    while (lines.size() < n) co_await wake();
  }
  asio::awaitable<void> wait_connections(std::size_t n) {
    while (connections < n) co_await wake();
  }

  /// Aborts every accepted connection with a TCP RST.
  void reset_connections() {
    for (auto& s : sockets_) {
      boost::system::error_code ec;
      s->set_option(asio::socket_base::linger(true, 0), ec);
      s->close(ec);
    }
  }
  void close() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& s : sockets_) s->close(ec);
    notify_.cancel();
  }

  std::vector<std::string> lines;  ///< each with its newline
  std::vector<std::size_t> line_connection;
  std::size_t connections = 0;
  bool reading = true;

 private:
  asio::awaitable<void> wake() {
    notify_.expires_after(30s);
    co_await notify_.async_wait(kTuple);
  }
  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      auto s = std::make_shared<typename Protocol::socket>(std::move(socket));
      sockets_.push_back(s);
      ++connections;
      notify_.cancel();
      if (reading) asio::co_spawn(acceptor_.get_executor(), read(s, connections), asio::detached);
    }
  }
  asio::awaitable<void> read(std::shared_ptr<typename Protocol::socket> s, std::size_t connection) {
    std::string buffer;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(*s, asio::dynamic_buffer(buffer), '\n', kTuple);
      if (ec) co_return;
      lines.push_back(buffer.substr(0, n));
      line_connection.push_back(connection);
      buffer.erase(0, n);
      notify_.cancel();
    }
  }

  typename Protocol::acceptor acceptor_;
  asio::steady_timer notify_;
  std::vector<std::shared_ptr<typename Protocol::socket>> sockets_;
};

using TcpListener = Listener<asio::ip::tcp>;

std::string hmac(std::string_view salt, std::string_view value) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), salt.data(), static_cast<int>(salt.size()), reinterpret_cast<const unsigned char*>(value.data()),
       value.size(), mac.data(), &size);
  std::string out = "hmac-sha256:";
  for (unsigned int i = 0; i < size; ++i) out += fmt::format("{:02x}", mac[i]);
  return out;
}

/// Go's time.Format(time.RFC3339) in this process's zone, as Vault writes token_issue_time.
std::string rfc3339_local(system_clock::time_point t) {
  const std::time_t secs = system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (tm.tm_gmtoff == 0) return std::string(text) + "Z";
  const long off = std::labs(tm.tm_gmtoff);
  return fmt::format("{}{}{:02}:{:02}", text, tm.tm_gmtoff < 0 ? '-' : '+', off / 3600, (off % 3600) / 60);
}

/// `s` with every `from` replaced by `to`; fails when `from` is not there.
std::string with(std::string s, std::string_view from, std::string_view to) {
  std::size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << "no " << from << " in " << s.substr(0, 80);
  while (at != std::string::npos) {
    s.replace(at, from.size(), to);
    at = s.find(from, at + to.size());
  }
  return s;
}

std::string match(const std::string& s, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(s, m, std::regex(pattern)) ? m[1].str() : std::string();
}

// The reference's per-run values.
constexpr std::string_view kRefTokenHmac =
    "hmac-sha256:42a6ed19fa2a9cd0cc559b8303e97d534767278644b8bff565fea17aede841e5";
constexpr std::string_view kRefAccessorHmac =
    "hmac-sha256:1158163ee2155283ec76890b6ece17ba675362e3b9b43ff88b187d8c3898deb7";
constexpr std::string_view kRefRemote = R"("remote_address":"10.0.0.5","remote_port":51544)";
constexpr std::string_view kPath = "/v1/secret/data/nic/07AAFCD5862R1ZX";

system_clock::time_point june5(int h, int m, int s, nanoseconds frac = {}) {
  return sys_days{year{2025} / 6 / 5} + hours(h) + minutes(m) + seconds(s) +
         duration_cast<system_clock::duration>(frac);
}

class VaultReferenceAudit : public FakeVaultTest {
 protected:
  void TearDown() override {
    if (listener_) listener_->close();
    FakeVaultTest::TearDown();
    listener_.reset();
  }

  AuditDeviceOptions device(AuditDeviceOptions::Format format) {
    AuditDeviceOptions d;
    d.address = fmt::format("127.0.0.1:{}", listener_->endpoint().port());
    d.format = format;
    d.salt = std::string(ex::kSalt);
    return d;
  }

  /// The fake with one device on a fresh listener, the example's AppRole token (issued at
  /// 16:05:10Z) and key (versions 1-3), and what the entries will name.
  void start_with(AuditDeviceOptions::Format format, std::function<void(AuditDeviceOptions&)> adjust = {}) {
    listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    FakeVaultOptions o;
    o.audit_devices.push_back(device(format));
    if (adjust) adjust(o.audit_devices.back());
    clock_.set_system(june5(16, 5, 10));
    start(std::move(o));
    vault_->mount("kv1", 1);
    vault_->set_policy("nic-writer", {{"secret/data/nic/*", {"create", "read", "update", "patch", "delete"}},
                                      {"secret/metadata/nic/*", {"read", "list", "delete"}},
                                      {"secret/delete/nic/*", {"update"}},
                                      {"secret/undelete/nic/*", {"update"}},
                                      {"secret/destroy/nic/*", {"update"}},
                                      {"kv1/nic/*", {"create", "read", "update"}}});
    TokenSpec spec;
    spec.policies = {"nic-writer"};
    spec.ttl = 3600s;
    vault_->add_approle("nic-writer", "role-id-1", "secret-id-1", spec);
    for (int v = 1; v <= 3; ++v) vault_->kv_put("secret", std::string(ex::kKey), {{"legal_name", "Acme Traders"}});
    vault_->kv_put("kv1", std::string(ex::kKey), {{"legal_name", "Old"}});

    const auto login =
        json(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-id-1","secret_id":"secret-id-1"})", {}, ""));
    token_ = at(login, "auth.client_token").text();
    accessor_ = at(login, "auth.accessor").text();
    entity_ = at(login, "auth.entity_id").text();
    for (std::string_view m : {"secret", "kv1"}) {
      const auto mount = json(call("GET", fmt::format("/v1/sys/internal/ui/mounts/{}", m), {}, {}, token_));
      accessors_[std::string(m)] = at(mount, "data.accessor").text();
      plugin_version_ = at(mount, "data.running_plugin_version").text();
    }
    seen_ = 6;  // login and the two mount lookups, request and response entry each
    run_for(io_, listener_->wait_lines(seen_), 10s);
  }

  http::Response as_writer(std::string method, std::string_view path, std::string body = {}) {
    return call(std::move(method), std::string(path), std::move(body), {}, token_);
  }

  /// The next `n` lines the device wrote.
  std::vector<std::string> next_lines(std::size_t n) {
    run_for(io_, listener_->wait_lines(seen_ + n), 10s);
    std::vector<std::string> out(listener_->lines.begin() + static_cast<std::ptrdiff_t>(seen_),
                                 listener_->lines.begin() + static_cast<std::ptrdiff_t>(seen_ + n));
    seen_ += n;
    return out;
  }

  /// A reference line with this run's values in place of the example's.
  std::string expected(std::string_view reference, const std::string& actual, std::string_view mount = "secret") {
    std::string e(reference);
    const std::string id = match(actual, R"re([{,]"id":"([0-9a-f-]{36})")re");
    const std::string port = match(actual, R"re("remote_port":(\d+))re");
    EXPECT_FALSE(id.empty() || port.empty()) << actual;
    e = with(e, kRefTokenHmac, hmac(ex::kSalt, token_));
    e = with(e, kRefAccessorHmac, hmac(ex::kSalt, accessor_));
    e = with(e, ex::kEntityId, entity_);
    e = with(e, ex::kRequestId, id);
    e = with(e, kRefRemote, fmt::format(R"("remote_address":"127.0.0.1","remote_port":{})", port));
    e = with(e, "\"token_issue_time\":\"2025-06-05T16:05:10Z\"",
             fmt::format("\"token_issue_time\":\"{}\"", rfc3339_local(june5(16, 5, 10))));
    e = with(e, mount == "secret" ? "kv_5a8d0c3f" : "kv_9e21b7a4", accessors_[std::string(mount)]);
    for (std::string_view v : {"v0.16.1+builtin", "v0.20.0+builtin"}) {
      if (e.find(v) != std::string::npos) e = with(e, v, plugin_version_);
    }
    return e + "\n";
  }

  std::unique_ptr<TcpListener> listener_;
  std::string token_, accessor_, entity_, plugin_version_;
  std::map<std::string, std::string> accessors_;
  std::size_t seen_ = 0;
};

/// The request entry Vault writes before the request the response entry `line` reports:
/// the same without `response`, its type, and without the request's mount_accessor for deletes.
std::string request_entry_of(std::string line, bool is_delete, const std::string& accessor) {
  const auto response = line.find(R"(,"response":{)");
  if (response != std::string::npos) {
    const bool last = line.find(R"(,"time":)", response) == std::string::npos;
    const auto end = last ? line.size() - 2 : line.find(R"(,"time":)", response);
    line.erase(response, end - response);
  }
  line = with(line, R"("type":"response")", R"("type":"request")");
  if (is_delete) line = with(line, fmt::format(R"("mount_accessor":"{}",)", accessor), "");
  return line;
}

// --- byte for byte ------------------------------------------------------------------------

TEST(VaultReferenceAuditHmac, TheExamplesHmacsAreHmacSha256OfTheValueWithTheSalt) {
  EXPECT_EQ(hmac(ex::kSalt, ex::kToken), kRefTokenHmac);
  EXPECT_EQ(hmac(ex::kSalt, ex::kAccessor), kRefAccessorHmac);
}

// §1.3, era A: the write's request entry and response entry (v3 → v4).
TEST_F(VaultReferenceAudit, A01_LegacyWrite) {
  start_with(AuditDeviceOptions::Format::legacy);
  clock_.set_system(june5(16, 10, 22, 287123456ns));
  const auto r =
      as_writer("POST", kPath, R"({"data":{"legal_name":"Acme Traders","status":"active"},"options":{"cas":3}})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto lines = next_lines(2);
  EXPECT_EQ(lines[0], with(expected(ex::kLegacyWriteRequest, lines[0]), "16:10:22.281734Z", "16:10:22.287123456Z"));
  EXPECT_EQ(lines[1], with(expected(ex::kLegacyWriteResponse, lines[1]), "16:10:22.29241Z", "16:10:22.287123456Z"));
  EXPECT_NE(lines[1].find(at(json(r), "request_id").text()), std::string::npos);
}

// §1.3, era B (1.18–1.20).
TEST_F(VaultReferenceAudit, A02_SortedWrite) {
  start_with(AuditDeviceOptions::Format::sorted);
  clock_.set_system(june5(16, 10, 22, 287123456ns));
  const auto r =
      as_writer("POST", kPath, R"({"data":{"legal_name":"Acme Traders","status":"active"},"options":{"cas":3}})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto lines = next_lines(2);
  EXPECT_EQ(lines[0], with(expected(ex::kSortedWriteRequest, lines[0]), "16:10:22.281734Z", "16:10:22.287123456Z"));
  EXPECT_EQ(lines[1], with(expected(ex::kSortedWriteResponse, lines[1]), "16:10:22.29241Z", "16:10:22.287123456Z"));
}

struct Operation {
  std::string_view method, path, body;
  std::string_view legacy, sorted;
  bool is_delete;
  std::string_view mount = "secret";
  system_clock::time_point when = june5(16, 11, 3, 500ms);
};

const Operation kOperations[] = {
    {"DELETE", kPath, "", ex::kLegacyDeleteLatest, ex::kSortedDeleteLatest, true},
    {"POST", "/v1/secret/delete/nic/07AAFCD5862R1ZX", R"({"versions":[1,2]})", ex::kLegacyDeleteVersions,
     ex::kSortedDeleteVersions, false},
    {"POST", "/v1/secret/undelete/nic/07AAFCD5862R1ZX", R"({"versions":[1,2]})", ex::kLegacyUndelete,
     ex::kSortedUndelete, false},
    {"POST", "/v1/secret/destroy/nic/07AAFCD5862R1ZX", R"({"versions":[1,2]})", ex::kLegacyDestroy, ex::kSortedDestroy,
     false},
    {"DELETE", "/v1/secret/metadata/nic/07AAFCD5862R1ZX", "", ex::kLegacyDeleteMetadata, ex::kSortedDeleteMetadata,
     true},
    {"POST", "/v1/kv1/nic/07AAFCD5862R1ZX", R"({"legal_name":"Acme Traders"})", ex::kLegacyKv1Write,
     ex::kSortedKv1Write, false, "kv1", june5(16, 12, 40, 118ms)},
};

// §1.4: the other KV operations, response entries as the reference prints them (era B: built
// by its rules, except DELETE data/ which it prints), request entries by §1.4's rule.
TEST_F(VaultReferenceAudit, A03_LegacyOtherOperations) {
  start_with(AuditDeviceOptions::Format::legacy);
  for (const auto& op : kOperations) {
    SCOPED_TRACE(op.path);
    clock_.set_system(op.when);
    ASSERT_EQ(as_writer(std::string(op.method), op.path, std::string(op.body)).status, 204);
    const auto lines = next_lines(2);
    const std::string response = expected(op.legacy, lines[1], op.mount);
    EXPECT_EQ(lines[1], response);
    EXPECT_EQ(lines[0], request_entry_of(response, op.is_delete, accessors_[std::string(op.mount)]));
  }
}

TEST_F(VaultReferenceAudit, A04_SortedOtherOperations) {
  start_with(AuditDeviceOptions::Format::sorted);
  for (const auto& op : kOperations) {
    SCOPED_TRACE(op.path);
    clock_.set_system(op.when);
    ASSERT_EQ(as_writer(std::string(op.method), op.path, std::string(op.body)).status, 204);
    const auto lines = next_lines(2);
    const std::string response = expected(op.sorted, lines[1], op.mount);
    EXPECT_EQ(lines[1], response);
    EXPECT_EQ(lines[0], request_entry_of(response, op.is_delete, accessors_[std::string(op.mount)]));
  }
}

// §1.6: `audit enable` writes a probe first, and fails when it cannot.
TEST_F(VaultReferenceAudit, A05_TestProbe) {
  listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  clock_.set_system(june5(16, 0, 0, 1us));
  start();
  for (auto [format, reference] : {std::pair{AuditDeviceOptions::Format::legacy, ex::kLegacyTestProbe},
                                   std::pair{AuditDeviceOptions::Format::sorted, ex::kSortedTestProbe}}) {
    auto enabled = run_for(io_, vault_->enable_audit_device(device(format)), 10s);
    ASSERT_TRUE(enabled) << enabled.error().describe();
    const auto line = next_lines(1).front();
    const std::string id = match(line, R"re("id":"([0-9a-f-]{36})")re");
    EXPECT_EQ(line, with(std::string(reference), "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f", id) + "\n");
  }
  // Nobody listening: the enable call fails and adds no device (requests keep working).
  AuditDeviceOptions dead = device(AuditDeviceOptions::Format::legacy);
  listener_->close();
  auto refused = run_for(io_, vault_->enable_audit_device(dead), 10s);
  EXPECT_FALSE(refused);
  dead.skip_test = true;
  EXPECT_TRUE(run_for(io_, vault_->enable_audit_device(dead), 10s)) << "skip_test writes nothing";
}

// --- framing and values ---------------------------------------------------------------------

TEST_F(VaultReferenceAudit, A06_PrefixAndLogRaw) {
  start_with(AuditDeviceOptions::Format::legacy, [](AuditDeviceOptions& d) {
    d.prefix = "nicsync-audit: ";
    d.log_raw = true;
  });
  ASSERT_EQ(as_writer("POST", kPath, R"({"data":{"legal_name":"A & <B>","status":"active\u2028"}})").status, 200);
  for (const auto& line : next_lines(2)) {
    EXPECT_TRUE(line.starts_with("nicsync-audit: {")) << line;
    EXPECT_NE(line.find(token_), std::string::npos) << "log_raw: the token in clear";
    // Go's encoder: & < > and U+2028 escaped.
    EXPECT_NE(line.find(R"("legal_name":"A \u0026 \u003cB\u003e","status":"active\u2028")"), std::string::npos) << line;
    auto hint = watch::parse_audit_entry(line, "nicsync-audit: ", watch::AuditScan::whole);
    ASSERT_TRUE(hint) << hint.error().describe();
  }
}

TEST_F(VaultReferenceAudit, A07_UnixSocket) {
  nicsync::testing::TempDir dir;
  const std::string path = (dir.path() / "audit.sock").string();
  Listener<asio::local::stream_protocol> unix_listener(io_, asio::local::stream_protocol::endpoint(path));
  FakeVaultOptions o;
  AuditDeviceOptions d;
  d.address = path;
  d.socket_type = "unix";
  o.audit_devices.push_back(d);
  start(std::move(o));
  ASSERT_EQ(call("PUT", std::string(kPath), R"({"data":{"a":"b"}})").status, 200);
  run_for(io_, unix_listener.wait_lines(2), 10s);
  auto hint = watch::parse_audit_entry(unix_listener.lines[1], {}, watch::AuditScan::whole);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->kv.kv2_path, "secret/nic/07AAFCD5862R1ZX");
  vault_->stop();
  unix_listener.close();
  nicsync::testing::drain(io_);
}

// Every line the device writes reads, with the daemon's parser, as what it is.
TEST_F(VaultReferenceAudit, A08_TheDaemonsParserReadsEveryLine) {
  start_with(AuditDeviceOptions::Format::sorted);
  for (const auto& line : std::vector<std::string>(listener_->lines.begin(), listener_->lines.end())) {
    auto h = watch::parse_audit_entry(line, {}, watch::AuditScan::whole);
    ASSERT_TRUE(h) << line;
    // The login is a write to the approle mount; the mount lookups are reads.
    auto reason = watch::AuditIgnoreReason::not_a_change;
    if (h->type == watch::AuditEntryType::request) {
      reason = watch::AuditIgnoreReason::not_response;
    } else if (line.find("auth/approle/login") != std::string::npos) {
      reason = watch::AuditIgnoreReason::not_kv;
    }
    EXPECT_EQ(h->reason, reason) << line;
  }
  const std::string none = vault_->create_token({});
  struct Case {
    std::string method, path, body, token;
    watch::AuditIgnoreReason reason;
    std::string kv2_path;
  };
  const std::vector<Case> cases = {
      {"GET", std::string(kPath), "", token_, watch::AuditIgnoreReason::not_a_change, ""},
      {"LIST", "/v1/secret/metadata/nic", "", token_, watch::AuditIgnoreReason::not_a_change, ""},
      {"PUT", std::string(kPath), R"({"data":{"a":"b"}})", token_, watch::AuditIgnoreReason::none,
       "secret/nic/07AAFCD5862R1ZX"},
      {"PATCH", std::string(kPath), R"({"data":{"c":"d"}})", token_, watch::AuditIgnoreReason::none,
       "secret/nic/07AAFCD5862R1ZX"},
      {"DELETE", std::string(kPath), "", token_, watch::AuditIgnoreReason::none, "secret/nic/07AAFCD5862R1ZX"},
      {"PUT", std::string(kPath), R"({"data":{"a":"b"}})", none, watch::AuditIgnoreReason::failed, ""},
      {"POST", "/v1/auth/token/renew-self", "", token_, watch::AuditIgnoreReason::not_kv, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path);
    std::vector<http::Header> headers;
    if (c.method == "PATCH") headers.push_back({"Content-Type", "application/merge-patch+json"});
    call(c.method, c.path, c.body, headers, c.token);
    const auto lines = next_lines(2);
    auto request = watch::parse_audit_entry(lines[0], {}, watch::AuditScan::whole);
    auto response = watch::parse_audit_entry(lines[1], {}, watch::AuditScan::whole);
    ASSERT_TRUE(request && response) << lines[0] << lines[1];
    EXPECT_EQ(request->type, watch::AuditEntryType::request);
    EXPECT_EQ(response->reason, c.reason) << lines[1];
    EXPECT_EQ(response->kv.kv2_path, c.kv2_path);
    EXPECT_EQ(request->request_id, response->request_id);
  }
  // The refusal's own entries: "permission denied" in the request entry, Vault's multierror
  // text in the response entry.
  const auto denied = std::vector<std::string>(listener_->lines.end() - 4, listener_->lines.end() - 2);
  EXPECT_NE(denied[0].find(R"("error":"permission denied")"), std::string::npos) << denied[0];
  EXPECT_NE(denied[1].find(R"("error":"1 error occurred:\n\t* permission denied\n\n")"), std::string::npos)
      << denied[1];
  EXPECT_NE(denied[1].find(R"("policy_results":{"allowed":false})"), std::string::npos) << denied[1];
}

// --- Vault's transport rules (§3.1) -----------------------------------------------------------

// Nobody listening: the device dials, dials once more, and the request fails before it ran.
TEST_F(VaultReferenceAudit, A09_NoDeviceTookTheRequestEntry) {
  listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  FakeVaultOptions o;
  o.audit_devices.push_back(device(AuditDeviceOptions::Format::legacy));
  listener_->close();
  start(std::move(o));
  const auto r = call("PUT", std::string(kPath), R"({"data":{"a":"b"}})");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "{\"errors\":[\"internal error\"]}\n");
  EXPECT_EQ(vault_->kv_current_version("secret", "nic/07AAFCD5862R1ZX"), 0) << "refused before it ran";
  const auto stats = vault_->audit_stats();
  EXPECT_EQ(stats.dials, 2u);
  EXPECT_EQ(stats.write_failures, 1u);
  EXPECT_EQ(stats.requests_failed, 1u);
}

// The daemon went away (RST): the next entry goes out on a new connection, once.
TEST_F(VaultReferenceAudit, A10_BrokenConnectionIsDialledAgain) {
  start_with(AuditDeviceOptions::Format::legacy);
  EXPECT_EQ(listener_->connections, 1u);
  listener_->reset_connections();
  ASSERT_EQ(as_writer("POST", kPath, R"({"data":{"a":"b"}})").status, 200);
  const auto lines = next_lines(2);
  EXPECT_EQ(listener_->connections, 2u);
  EXPECT_EQ(listener_->line_connection.back(), 2u);
  EXPECT_EQ(std::count(listener_->lines.begin(), listener_->lines.end(), lines[0]), 1);
  EXPECT_EQ(vault_->audit_stats().dials, 2u);
  EXPECT_EQ(vault_->audit_stats().requests_failed, 0u);
}

// A daemon that accepts and does not read: the write times out, the device dials again, the
// second write times out too, and the request fails before it ran.
TEST_F(VaultReferenceAudit, A11_WriteTimeoutThenOneRedial) {
  listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0), 4096);
  listener_->reading = false;
  FakeVaultOptions o;
  o.audit_devices.push_back(device(AuditDeviceOptions::Format::legacy));
  o.audit_devices.back().log_raw = true;  // the entry carries the whole value: more than the buffers hold
  o.audit_devices.back().write_timeout = 200ms;
  start(std::move(o));
  const std::string body = R"({"data":{"v":")" + std::string(12u << 20, 'x') + R"("}})";
  const auto started = steady_clock::now();
  const auto r = call("PUT", std::string(kPath), body);
  const auto took = steady_clock::now() - started;
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(vault_->kv_current_version("secret", "nic/07AAFCD5862R1ZX"), 0);
  EXPECT_GE(took, 400ms) << "two writes of 200 ms each";
  EXPECT_LT(took, 5s);
  EXPECT_EQ(listener_->connections, 2u);
  EXPECT_EQ(vault_->audit_stats().dials, 2u);
}

// A response entry no device took: the client gets a 500 although the write was done.
TEST_F(VaultReferenceAudit, A12_ResponseEntryNotTaken) {
  start_with(AuditDeviceOptions::Format::legacy);
  vault_->fail_audit_entries(0, 1);
  const auto r = as_writer("POST", kPath, R"({"data":{"a":"b"}})");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(vault_->kv_current_version("secret", "nic/07AAFCD5862R1ZX"), 4) << "it ran";
  // A request entry no device took: refused before it ran.
  vault_->fail_audit_entries(1, 0);
  EXPECT_EQ(as_writer("POST", kPath, R"({"data":{"a":"b"}})").status, 500);
  EXPECT_EQ(vault_->kv_current_version("secret", "nic/07AAFCD5862R1ZX"), 4);
  EXPECT_EQ(as_writer("POST", kPath, R"({"data":{"a":"b"}})").status, 200);
  // Written: the first request's request entry, then both entries of the last one.
  const auto lines = next_lines(3);
  EXPECT_NE(lines[0].find(R"("type":"request")"), std::string::npos);
  EXPECT_NE(lines[1].find(R"("type":"request")"), std::string::npos);
  EXPECT_NE(lines[2].find(R"("type":"response")"), std::string::npos);
  EXPECT_EQ(match(lines[1], R"re(\{"id":"([0-9a-f-]{36})")re"), match(lines[2], R"re(\{"id":"([0-9a-f-]{36})")re"));
  EXPECT_NE(match(lines[0], R"re(\{"id":"([0-9a-f-]{36})")re"), match(lines[1], R"re(\{"id":"([0-9a-f-]{36})")re"));
  EXPECT_EQ(vault_->audit_stats().requests_failed, 2u);
}

// One device of two is enough (Vault's broker: at least one).
TEST_F(VaultReferenceAudit, A13_OneDeviceOfTwoIsEnough) {
  listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  TcpListener gone(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  FakeVaultOptions o;
  o.audit_devices.push_back(device(AuditDeviceOptions::Format::legacy));
  o.audit_devices.push_back(device(AuditDeviceOptions::Format::sorted));
  o.audit_devices.back().address = fmt::format("127.0.0.1:{}", gone.endpoint().port());
  gone.close();
  start(std::move(o));
  EXPECT_EQ(call("PUT", std::string(kPath), R"({"data":{"a":"b"}})").status, 200);
  run_for(io_, listener_->wait_lines(2), 10s);
  EXPECT_EQ(vault_->audit_stats().write_failures, 2u);
  EXPECT_EQ(vault_->audit_stats().requests_failed, 0u);
}

// The standalone program's flags give the same device.
TEST_F(VaultReferenceAudit, A14_ProgramFlags) {
  listener_ = std::make_unique<TcpListener>(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  nicsync::testing::Process p(
      {.argv = {nicsync::testing::built_program("tests/fakes/vault/nicsync-test-vault"), "--listen", "127.0.0.1:0",
                "--root-token", "program-root", "--audit-address",
                fmt::format("127.0.0.1:{}", listener_->endpoint().port()), "--audit-format", "sorted", "--audit-prefix",
                "p: ", "--audit-salt", std::string(ex::kSalt), "--audit-write-timeout-ms", "500"}});
  auto end = p.wait_for_output("\n", 10s);
  ASSERT_TRUE(end) << p.output();
  const std::string address = p.output().substr(13, *end - 14);
  http::Request r;
  r.method = "PUT";
  r.url = address + std::string(kPath);
  r.body = R"({"data":{"legal_name":"Acme Traders"}})";
  r.headers.push_back({"X-Vault-Token", "program-root"});
  auto w = run_for(io_, client().request(r), 10s);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200) << w->body;
  run_for(io_, listener_->wait_lines(2), 10s);
  const std::string& line = listener_->lines[1];
  EXPECT_TRUE(line.starts_with(R"(p: {"auth":{"accessor":")")) << line;
  EXPECT_NE(line.find(hmac(ex::kSalt, "program-root")), std::string::npos) << line;
  EXPECT_NE(line.find(hmac(ex::kSalt, "Acme Traders")), std::string::npos) << line;
  auto hint = watch::parse_audit_entry(line, "p: ", watch::AuditScan::whole);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->kv.kv2_path, "secret/nic/07AAFCD5862R1ZX");
  client_.reset();
  nicsync::testing::drain(io_);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(10s), 0) << p.output();
}

}  // namespace
}  // namespace nicsync::fakes::testing
