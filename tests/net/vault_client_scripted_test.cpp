// The Vault client against a tiny scripted HTTP server on 127.0.0.1: what it sends (URL,
// headers), retries and deadlines, malformed bodies the test Vault cannot produce, redirects,
// and how a 403 is judged (dead token vs policy) — behaviour that does not need a whole Vault.
#include <deque>
#include <filesystem>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/server.hpp"
#include "nicsync/vault/client.hpp"
#include "testing/deadline.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::run_for;

constexpr std::string_view kToken = "hvs.scripted-token";

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

std::string lookup_body(int ttl, bool renewable, std::string_view policies = R"(["default","svc"])") {
  return fmt::format(
      R"({{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{{"accessor":"acc",)"
      R"("display_name":"token","expire_time":null,"id":"{}","policies":{},"renewable":{},"ttl":{}}},)"
      R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"token"}})"
      "\n",
      kToken, policies, renewable ? "true" : "false", ttl);
}

std::string kv2_body(std::string_view password_json, int version = 1) {
  return fmt::format(
      R"({{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{{"data":{{"password":{},)"
      R"("username":"svc"}},"metadata":{{"created_time":"2025-03-04T10:11:12.345678901Z","custom_metadata":null,)"
      R"("deletion_time":"","destroyed":false,"version":{}}}}},"wrap_info":null,"warnings":null,"auth":null,)"
      R"("mount_type":"kv"}})"
      "\n",
      password_json, version);
}

struct Seen {
  std::string method;
  std::string target;
  std::vector<http::Header> headers;
  std::string body;
};

class VaultClientScripted : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    router_.add("GET", "/v1/auth/token/lookup-self",
                [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
                  ++lookups_;
                  const auto t = r.header("X-Vault-Token").value_or("");
                  if (accepted_tokens_.count(std::string(t)) == 0) {
                    co_return http::ServerResponse::json(403, dead_body_);
                  }
                  co_return http::ServerResponse::json(200, lookup_);
                });
    router_.add_prefix("*", "/v1/", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      seen_.push_back({r.method, r.target, r.headers, r.body});
      if (!script_.empty()) {
        auto resp = std::move(script_.front());
        script_.pop_front();
        co_return resp;
      }
      if (hang_) co_await sleep_for(1h);
      co_return http::ServerResponse::json(200, default_body_);
    });
    server_ = std::make_unique<http::Server>(io_.get_executor(), http::ServerOptions{}, router_.handler());
    ASSERT_TRUE(server_->start());
    config_.address = "http://" + server_->local_address();
    config_.auth.method = AuthMethod::token;
    config_.auth.token = Token(Secret(kToken));
    config_.retry_base = 5ms;
    config_.retry_cap = 20ms;
    config_.timeout = 5s;
  }

  void TearDown() override {
    client_.reset();
    server_->stop_now();
    if (second_) second_->stop_now();
    testing::drain(io_);
  }

  Client& client() {
    if (!client_) client_ = std::make_unique<Client>(io_.get_executor(), config_, Clock::real());
    return *client_;
  }

  void push(int status, std::string body, std::vector<http::Header> headers = {}) {
    auto r = http::ServerResponse::json(status, std::move(body));
    for (auto& h : headers) r.headers.push_back(std::move(h));
    script_.push_back(std::move(r));
  }

  Result<KvSecret> read(std::string_view key = "nic/07AAFCD5862R1ZX", std::optional<std::int64_t> version = {}) {
    KvPath p{VaultPath::parse("secret").value(), VaultPath::parse(key).value()};
    return run_for(io_, client().read_kv2(p, version), 20s);
  }

  asio::io_context io_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Server> second_;
  std::unique_ptr<Client> client_;
  ClientConfig config_;
  std::deque<http::ServerResponse> script_;
  std::vector<Seen> seen_;
  std::string default_body_ = kv2_body("\"pw\"");
  std::string lookup_ = lookup_body(0, false);
  std::string dead_body_ = "{\"errors\":[\"permission denied\"]}\n";
  std::set<std::string> accepted_tokens_{std::string(kToken)};
  int lookups_ = 0;
  bool hang_ = false;
};

TEST_F(VaultClientScripted, SendsTheVaultHeadersAndEncodedPath) {
  config_.vault_namespace = Namespace::parse("team-a/app").value();
  auto s = read("nic/07AAFCD5862R1ZX", 2);
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(seen_.size(), 1u);
  const auto& r = seen_[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/v1/secret/data/nic/07AAFCD5862R1ZX?version=2");
  EXPECT_EQ(http::find_header(r.headers, "X-Vault-Token").value_or(""), kToken);
  EXPECT_EQ(http::find_header(r.headers, "X-Vault-Namespace").value_or(""), "team-a/app");
  EXPECT_EQ(http::find_header(r.headers, "X-Vault-Request").value_or(""), "true");
  EXPECT_FALSE(http::find_header(r.headers, "Authorization"));

  ASSERT_TRUE(read("nic/a b&c"));
  EXPECT_EQ(seen_.back().target, "/v1/secret/data/nic/a%20b&c");
  EXPECT_FALSE(VaultPath::parse("nic/a?b"));  // never sent: it would change the URL
}

TEST_F(VaultClientScripted, DecodesEscapedPasswordsWithNonAscii) {
  default_body_ = kv2_body(R"("N3w\u0026\u003cpass\u003e\"\\ü€")");
  auto s = read();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->data.field("password").value()->expose(), "N3w&<pass>\"\\ü€");
}

TEST_F(VaultClientScripted, RetriesSealedAndBadGatewayThenSucceeds) {
  config_.max_retries = 3;
  push(503, "{\"errors\":[\"Vault is sealed\"]}\n");
  push(502, "<html>bad gateway</html>");
  push(412, "{\"errors\":[\"required index state not present\"]}\n");
  auto s = read();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(seen_.size(), 4u);
  EXPECT_EQ(client().stats().retries, 3u);
}

TEST_F(VaultClientScripted, GivesUpAfterMaxRetriesWithTheLastClassification) {
  config_.max_retries = 2;
  for (int i = 0; i < 5; ++i) push(503, "{\"errors\":[\"Vault is sealed\"]}\n");
  auto s = read();
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_sealed)) << s.error().describe();
  EXPECT_EQ(seen_.size(), 3u);
  EXPECT_EQ(client().stats().retries, 2u);
  EXPECT_EQ(client().stats().errors_by_code.at("vault_sealed"), 1u);
}

TEST_F(VaultClientScripted, DoesNotRetryNotFoundBadRequestOrNotInitialised) {
  push(404, "{\"errors\":[]}\n");
  auto missing = read();
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(Errc::vault_not_found));
  EXPECT_EQ(seen_.size(), 1u);

  push(400, "{\"errors\":[\"bad version\"]}\n");
  auto bad = read();
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(Errc::vault_bad_request));
  EXPECT_EQ(seen_.size(), 2u);

  push(501, "{\"errors\":[]}\n");
  auto uninit = read();
  ASSERT_FALSE(uninit);
  EXPECT_TRUE(uninit.error().is(Errc::vault_unavailable));
  EXPECT_EQ(seen_.size(), 3u);
}

TEST_F(VaultClientScripted, RetryAfterIsHonoured) {
  push(429, R"({"errors":["request path \"secret/data/x\": rate limit quota exceeded"]})", {{"Retry-After", "1"}});
  const auto start = std::chrono::steady_clock::now();
  auto s = read();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 950ms);
  EXPECT_EQ(seen_.size(), 2u);
}

TEST_F(VaultClientScripted, RetryAfterBeyondTheDeadlineReturnsAtOnceWithTheHint) {
  config_.timeout = 1s;
  push(429, R"({"errors":["request path \"secret/data/x\": rate limit quota exceeded"]})", {{"Retry-After", "30"}});
  const auto start = std::chrono::steady_clock::now();
  auto s = read();
  ASSERT_FALSE(s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_TRUE(s.error().is(Errc::vault_rate_limited));
  EXPECT_EQ(s.error().retry_after, 30s);
  EXPECT_EQ(seen_.size(), 1u);
}

TEST_F(VaultClientScripted, PerCallDeadlineCoversAHangingServer) {
  config_.timeout = 300ms;
  hang_ = true;
  const auto start = std::chrono::steady_clock::now();
  auto s = read();
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::http_timeout)) << s.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_NE(s.error().message.find("Vault"), std::string::npos);
}

TEST_F(VaultClientScripted, TruncatedAndNonJsonBodiesAreClearErrors) {
  config_.max_retries = 0;
  // Content-Length promises more than arrives: a transport error.
  auto cut = http::ServerResponse::json(200, kv2_body("\"SECRET-VALUE\""));
  cut.truncate_body_at = 40;
  script_.push_back(std::move(cut));
  auto a = read();
  ASSERT_FALSE(a);
  EXPECT_TRUE(a.error().is(Errc::http_network)) << a.error().describe();

  // A complete HTTP message holding half a JSON document.
  const std::string full = kv2_body("\"SECRET-VALUE\"");
  push(200, full.substr(0, full.find("SECRET") + 4));
  auto b = read();
  ASSERT_FALSE(b);
  EXPECT_TRUE(b.error().is(Errc::vault_bad_response)) << b.error().describe();
  EXPECT_NE(b.error().message.find("truncated"), std::string::npos);
  EXPECT_EQ(b.error().message.find("SECR"), std::string::npos);

  push(200, "<html>login page of a proxy</html>");
  auto c = read();
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(Errc::vault_bad_response));

  push(200, R"({"data":{"data":["not","an","object"],"metadata":{"version":1}}})");
  auto d = read();
  ASSERT_FALSE(d);
  EXPECT_TRUE(d.error().is(Errc::vault_bad_response));
  EXPECT_NE(d.error().message.find("data.data"), std::string::npos);
}

TEST_F(VaultClientScripted, OversizedDeepAndMisencodedAnswersAreClearErrorsThatNeverQuoteTheSecret) {
  config_.max_retries = 0;
  config_.max_response_bytes = 1u << 20;
  // Larger than the client takes: refused while it arrives, not buffered whole.
  push(200, kv2_body("\"SECRET-" + std::string(2u << 20, 'x') + "\""));
  auto big = read();
  ASSERT_FALSE(big);
  EXPECT_TRUE(big.error().is(Errc::http_response_too_large)) << big.error().describe();
  EXPECT_EQ(big.error().message.find("SECRET-"), std::string::npos);

  // 100,000 nested arrays where the password should be: refused by depth, not by the stack.
  push(200, kv2_body(std::string(100000, '[') + std::string(100000, ']')));
  auto deep = read();
  ASSERT_FALSE(deep);
  EXPECT_TRUE(deep.error().is(Errc::vault_bad_response)) << deep.error().describe();

  // Bytes that are not UTF-8 inside a JSON string (no Go server sends them; a proxy might).
  push(200, kv2_body("\"SECRET-\xff\xfe-latin\""));
  auto latin = read();
  ASSERT_FALSE(latin);
  EXPECT_TRUE(latin.error().is(Errc::vault_bad_response)) << latin.error().describe();
  EXPECT_EQ(latin.error().message.find("SECRET-"), std::string::npos) << latin.error().message;

  // A lone surrogate escape.
  push(200, kv2_body("\"SECRET-\\ud800-lone\""));
  auto lone = read();
  if (lone) {
    // If the parser takes it, the field must not come out as valid UTF-8 text the daemon would push.
    auto pw = lone->data.field("password");
    ASSERT_TRUE(pw);
    ADD_FAILURE() << "a lone surrogate was decoded into " << (*pw)->size() << " bytes";
  } else {
    EXPECT_TRUE(lone.error().is(Errc::vault_bad_response)) << lone.error().describe();
    EXPECT_EQ(lone.error().message.find("SECRET-"), std::string::npos) << lone.error().message;
  }

  // Everything in place but the values are not strings: each field names its kind.
  push(200, R"({"data":{"data":{"username":7,"password":{"v":"SECRET-obj"}},"metadata":{"version":1}}})");
  auto kinds = read();
  ASSERT_TRUE(kinds) << kinds.error().describe();
  auto user = kinds->data.field("username");
  ASSERT_FALSE(user);
  EXPECT_NE(user.error().message.find("is a number, not a string"), std::string::npos) << user.error().message;
  auto pass = kinds->data.field("password");
  ASSERT_FALSE(pass);
  EXPECT_NE(pass.error().message.find("is an object, not a string"), std::string::npos) << pass.error().message;
  EXPECT_EQ(pass.error().message.find("SECRET-"), std::string::npos);
}

TEST_F(VaultClientScripted, FollowsOneRedirectToTheActiveNode) {
  http::Router other;
  std::string token_seen;
  other.add_prefix("GET", "/v1/", [&](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
    token_seen = std::string(r.header("X-Vault-Token").value_or(""));
    co_return http::ServerResponse::json(200, kv2_body("\"from-active\"", 7));
  });
  second_ = std::make_unique<http::Server>(io_.get_executor(), http::ServerOptions{}, other.handler());
  ASSERT_TRUE(second_->start());
  http::ServerResponse redirect;
  redirect.status = 307;
  redirect.headers.push_back(
      {"Location", "http://" + second_->local_address() + "/v1/secret/data/nic/07AAFCD5862R1ZX?version=7"});
  script_.push_back(std::move(redirect));
  auto s = read("nic/07AAFCD5862R1ZX", 7);
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->version, 7);
  EXPECT_EQ(s->data.field("password").value()->expose(), "from-active");
  EXPECT_EQ(token_seen, kToken);
}

TEST_F(VaultClientScripted, LegacyPermissionDeniedIsJudgedWithLookupSelf) {
  // Old wording, live token: a policy problem (permanent), with the token's policies named.
  push(403, "{\"errors\":[\"permission denied\"]}\n");
  auto denied = read();
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().is(Errc::vault_permission_denied)) << denied.error().describe();
  EXPECT_EQ(classify(denied.error().code), ErrorClass::permanent);
  EXPECT_NE(denied.error().message.find("\"read\" capability on path \"secret/data/nic/07AAFCD5862R1ZX\""),
            std::string::npos)
      << denied.error().message;
  EXPECT_NE(denied.error().message.find("default, svc"), std::string::npos) << denied.error().message;

  // Old wording, dead token: the fixed token cannot be replaced, so it is reported as invalid.
  accepted_tokens_.clear();
  push(403, "{\"errors\":[\"permission denied\"]}\n");
  auto dead = read();
  ASSERT_FALSE(dead);
  EXPECT_TRUE(dead.error().is(Errc::vault_token_invalid)) << dead.error().describe();
  EXPECT_NE(dead.error().message.find("VAULT_TOKEN"), std::string::npos);
  EXPECT_EQ(dead.error().message.find(kToken), std::string::npos);
  EXPECT_FALSE(client().token_state().valid);
}

TEST_F(VaultClientScripted, TokenFileIsReReadWhenVaultAgentReplacesIt) {
  testing::TempDir dir;
  const std::string file = dir.file("token");
  testing::write_file(file, "hvs.first\n");
  config_.auth = AuthConfig{};
  config_.auth.method = AuthMethod::token_file;
  config_.auth.token_file = "token";  // relative to $CREDENTIALS_DIRECTORY
  config_.auth.credentials_directory = dir.path().string();
  accepted_tokens_ = {"hvs.first"};
  ASSERT_TRUE(read());
  EXPECT_EQ(http::find_header(seen_.back().headers, "X-Vault-Token").value_or(""), "hvs.first");

  // The agent writes a new token (rename over the old file): used before the next call.
  testing::write_file(dir.file("token.tmp"), "hvs.second\n");
  std::filesystem::rename(dir.file("token.tmp"), file);
  accepted_tokens_ = {"hvs.second"};
  ASSERT_TRUE(read());
  EXPECT_EQ(http::find_header(seen_.back().headers, "X-Vault-Token").value_or(""), "hvs.second");
  EXPECT_EQ(client().token_state().logins, 2u);
}

TEST_F(VaultClientScripted, ConcurrentCallsShareOneLogin) {
  int ok = 0;
  auto many = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int done = 0;
    asio::steady_timer all(ex, std::chrono::steady_clock::time_point::max());
    for (int i = 0; i < 32; ++i) {
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            KvPath p{VaultPath::parse("secret").value(), VaultPath::parse("k").value()};
            if (co_await client().read_kv2(p)) ++ok;
            if (++done == 32) all.cancel();
          },
          asio::detached);
    }
    auto [ec] = co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
  };
  run_for(io_, many(), 20s);
  EXPECT_EQ(ok, 32);
  EXPECT_EQ(lookups_, 1);
}

TEST_F(VaultClientScripted, MountDetection) {
  auto detect = [&](std::string_view p) {
    return run_for(io_, client().detect_mount(VaultPath::parse(p).value()), 10s);
  };
  push(200,
       R"({"request_id":"r","data":{"options":{"version":"2"},"path":"secret/","type":"kv"},"mount_type":"system"})");
  auto v2 = detect("secret/nic/X");
  ASSERT_TRUE(v2) << v2.error().describe();
  EXPECT_EQ(v2->version, KvVersion::v2);
  EXPECT_EQ(seen_.back().target, "/v1/sys/internal/ui/mounts/secret/nic/X");

  push(404, "{\"errors\":[]}\n");
  auto old = detect("secret/nic/X");
  ASSERT_TRUE(old) << old.error().describe();
  EXPECT_EQ(old->version, KvVersion::v1);
  EXPECT_TRUE(old->path.empty());

  push(403, R"({"errors":["preflight capability check returned 403, please ensure client's policies grant )"
            R"(access to path \"nomount/\""]})");
  auto denied = detect("nomount/nic/X");
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().is(Errc::vault_permission_denied));
  EXPECT_NE(denied.error().message.find("nomount/nic/X"), std::string::npos) << denied.error().message;
  EXPECT_NE(denied.error().message.find("mount exists"), std::string::npos) << denied.error().message;

  push(200, R"({"data":{"options":null,"path":"pki/","type":"pki"}})");
  auto pki = detect("pki/issue/x");
  ASSERT_FALSE(pki);
  EXPECT_NE(pki.error().message.find("not a KV mount"), std::string::npos);
}

TEST_F(VaultClientScripted, EmptyListIsEmptyNotAnError) {
  push(404, "{\"errors\":[]}\n");
  auto keys = run_for(io_, client().list_kv2(VaultPath::parse("secret").value(), VaultPath::parse("nic").value()));
  ASSERT_TRUE(keys) << keys.error().describe();
  EXPECT_TRUE(keys->empty());
  EXPECT_EQ(seen_.back().target, "/v1/secret/metadata/nic?list=true");
}

}  // namespace
}  // namespace nicsync::vault
