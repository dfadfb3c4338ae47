// The Vault client against the test Vault over real loopback sockets, plain and TLS: KV v2 and
// v1, versions, deletes and destroys, mount detection, every auth path, policies, dead tokens,
// sealed / standby / rate-limited answers, faults, namespaces and the connection pool.
#include <filesystem>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "fake_vault.hpp"
#include "nicsync/vault/client.hpp"
#include "testing/deadline.hpp"
#include "testing/pki.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fakes::FakeVault;
using fakes::FakeVaultOptions;
using fakes::TokenSpec;
using testing::run_for;

// NIC passwords must contain special characters; Go's encoder sends &<> as \u0026 etc.
const std::string kPassword = "N1c&<Pass>\"\\wörd€";
const std::string kUser = "API_07AAFCD5862R1ZX";

VaultPath vp(std::string_view s) { return VaultPath::parse(s).value(); }
KvPath kv(std::string_view mount, std::string_view key) { return KvPath{vp(mount), vp(key)}; }

class VaultClientFake : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
  }

  void start(FakeVaultOptions o = {}) {
    if (!o.clock) o.clock = &clock_;
    vault_ = std::make_unique<FakeVault>(io_.get_executor(), std::move(o));
    auto started = vault_->start();
    ASSERT_TRUE(started) << started.error().describe();
    config_.address = vault_->address();
    config_.retry_base = 5ms;
    config_.retry_cap = 20ms;
    config_.timeout = 5s;
    if (config_.auth.method == AuthMethod::none) use_token("root");
  }

  void use_token(const std::string& token) {
    config_.auth = AuthConfig{};
    config_.auth.method = AuthMethod::token;
    config_.auth.token = Token(Secret(token));
  }

  void use_approle(const std::string& role_id, const std::string& secret_id) {
    config_.auth = AuthConfig{};
    config_.auth.method = AuthMethod::approle;
    config_.auth.credentials_directory = dir_.path().string();
    config_.auth.role_id_file = "role_id";  // relative: below $CREDENTIALS_DIRECTORY
    config_.auth.secret_id_file = "secret_id";
    testing::write_file(dir_.file("role_id"), role_id + "\n");
    testing::write_file(dir_.file("secret_id"), secret_id + "\n");
  }

  void TearDown() override {
    client_.reset();
    if (vault_) vault_->stop();
    if (second_) second_->stop();
    testing::drain(io_);
  }

  Client& client() {
    if (!client_) client_ = std::make_unique<Client>(io_.get_executor(), config_, clock_);
    return *client_;
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    return run_for(io_, std::move(task), 20s);
  }

  Result<KvSecret> read(std::string_view mount, std::string_view key, std::optional<std::int64_t> v = {}) {
    return run(client().read_kv2(kv(mount, key), v));
  }

  std::int64_t put_credential(const std::string& key, const std::string& password = kPassword) {
    return vault_->kv_put("secret", key, {{"username", kUser}, {"password", password}});
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<FakeVault> vault_;
  std::unique_ptr<FakeVault> second_;
  ClientConfig config_;
  std::unique_ptr<Client> client_;
};

// --- KV ---------------------------------------------------------------------------------------

TEST_F(VaultClientFake, Kv2ReadsCurrentAndOlderVersionsWithSpecialCharacters) {
  start();
  put_credential("nic/07AAFCD5862R1ZX", "old-password");
  put_credential("nic/07AAFCD5862R1ZX");
  auto s = read("secret", "nic/07AAFCD5862R1ZX");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->version, 2);
  EXPECT_EQ(s->data.field("password").value()->expose(), kPassword);
  EXPECT_EQ(s->data.field("username").value()->expose(), kUser);
  EXPECT_FALSE(s->metadata.created_time.empty());
  auto v1 = read("secret", "nic/07AAFCD5862R1ZX", 1);
  ASSERT_TRUE(v1) << v1.error().describe();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->data.field("password").value()->expose(), "old-password");
}

TEST_F(VaultClientFake, MetadataShowsVersionsAndTheCurrentState) {
  start();
  for (int i = 0; i < 3; ++i) put_credential("nic/X");
  vault_->kv_destroy("secret", "nic/X", {1});
  vault_->kv_delete_versions("secret", "nic/X", {2});
  auto m = run(client().read_kv2_metadata(kv("secret", "nic/X")));
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->current_version, 3);
  EXPECT_EQ(m->oldest_version, 0);
  ASSERT_EQ(m->versions.size(), 3u);
  EXPECT_TRUE(m->versions.at(1).destroyed);
  EXPECT_FALSE(m->versions.at(2).deletion_time.empty());
  EXPECT_EQ(m->current_state(clock_.system_now()), SourceState::present);
  EXPECT_FALSE(m->created_time.empty());

  vault_->kv_delete_latest("secret", "nic/X");
  m = run(client().read_kv2_metadata(kv("secret", "nic/X")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->current_state(clock_.system_now()), SourceState::deleted);
  vault_->kv_destroy("secret", "nic/X", {3});
  m = run(client().read_kv2_metadata(kv("secret", "nic/X")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->current_state(clock_.system_now()), SourceState::destroyed);
}

TEST_F(VaultClientFake, DeletedAndDestroyedVersionsAreReportedAsSuch) {
  start();
  put_credential("nic/X");
  put_credential("nic/X");
  vault_->kv_delete_latest("secret", "nic/X");
  auto deleted = read("secret", "nic/X");
  ASSERT_FALSE(deleted);
  EXPECT_TRUE(deleted.error().is(Errc::vault_version_deleted)) << deleted.error().describe();
  EXPECT_NE(deleted.error().message.find("version 2"), std::string::npos);

  vault_->kv_destroy("secret", "nic/X", {1});
  auto destroyed = read("secret", "nic/X", 1);
  ASSERT_FALSE(destroyed);
  EXPECT_TRUE(destroyed.error().is(Errc::vault_version_destroyed)) << destroyed.error().describe();

  vault_->kv_undelete("secret", "nic/X", {2});
  EXPECT_TRUE(read("secret", "nic/X"));
}

TEST_F(VaultClientFake, AMissingKeyIsNotFoundAndNotRetried) {
  start();
  vault_->clear_request_log();
  auto s = read("secret", "nic/NOPE");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_not_found)) << s.error().describe();
  EXPECT_NE(s.error().message.find("secret/nic/NOPE"), std::string::npos);
  EXPECT_EQ(vault_->count_requests("GET", "/v1/secret/data/nic/NOPE"), 1u);
  auto m = run(client().read_kv2_metadata(kv("secret", "nic/NOPE")));
  ASSERT_FALSE(m);
  EXPECT_TRUE(m.error().is(Errc::vault_not_found));
  EXPECT_EQ(vault_->count_requests("GET", "/v1/secret/metadata/nic/NOPE"), 1u);
}

TEST_F(VaultClientFake, ListsV2AndV1) {
  start();
  put_credential("nic/07AAFCD5862R1ZX");
  put_credential("nic/29AAGCB1286Q1Z4");
  put_credential("nic/sub/x");
  auto keys = run(client().list_kv2(vp("secret"), vp("nic")));
  ASSERT_TRUE(keys) << keys.error().describe();
  EXPECT_EQ(*keys, (std::vector<std::string>{"07AAFCD5862R1ZX", "29AAGCB1286Q1Z4", "sub/"}));
  auto none = run(client().list_kv2(vp("secret"), vp("empty")));
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_TRUE(none->empty());

  vault_->kv_put("kv", "nic/A", {{"username", "u"}, {"password", kPassword}});
  auto v1keys = run(client().list_kv1(vp("kv"), vp("nic")));
  ASSERT_TRUE(v1keys) << v1keys.error().describe();
  EXPECT_EQ(*v1keys, (std::vector<std::string>{"A"}));
}

TEST_F(VaultClientFake, Kv1ReadsAndMountDetection) {
  start();
  vault_->kv_put("kv", "nic/A", {{"username", "u"}, {"password", kPassword}});
  put_credential("nic/B");

  auto v1 = run(client().detect_mount(vp("kv/nic/A")));
  ASSERT_TRUE(v1) << v1.error().describe();
  EXPECT_EQ(v1->version, KvVersion::v1);
  EXPECT_EQ(v1->path.str(), "kv");
  auto v2 = run(client().detect_mount(vp("secret/nic/B")));
  ASSERT_TRUE(v2) << v2.error().describe();
  EXPECT_EQ(v2->version, KvVersion::v2);
  EXPECT_EQ(v2->path.str(), "secret");

  auto path = v1->split(vp("kv/nic/A")).value();
  auto s = run(client().read(path, v1->version));
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kv, KvVersion::v1);
  EXPECT_EQ(s->data.field("password").value()->expose(), kPassword);
  auto s2 = run(client().read(v2->split(vp("secret/nic/B")).value(), v2->version));
  ASSERT_TRUE(s2) << s2.error().describe();
  EXPECT_EQ(s2->version, 1);

  // No such mount: Vault answers the preflight with 403 even for root.
  auto none = run(client().detect_mount(vp("nomount/nic/A")));
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().is(Errc::vault_permission_denied)) << none.error().describe();
  EXPECT_NE(none.error().message.find("nomount/nic/A"), std::string::npos) << none.error().message;
}

TEST_F(VaultClientFake, MalformedSecretsAreReportedByField) {
  start();
  vault_->kv_put("secret", "nic/X", {{"user", kUser}});
  auto s = read("secret", "nic/X");
  ASSERT_TRUE(s);
  auto pw = s->data.field("password");
  ASSERT_FALSE(pw);
  EXPECT_TRUE(pw.error().is(Errc::vault_secret_malformed));
  EXPECT_NE(pw.error().message.find("secret/nic/X"), std::string::npos);
  EXPECT_NE(pw.error().message.find("user"), std::string::npos);
  EXPECT_EQ(pw.error().message.find(kUser), std::string::npos);
}

// --- auth ---------------------------------------------------------------------------------------

TEST_F(VaultClientFake, PolicyDenialNamesTheCapabilityAndIsPermanent) {
  start();
  vault_->set_policy("nic-reader", {{"secret/data/nic/*", {"read"}}});
  use_token(vault_->create_token(TokenSpec{{"nic-reader"}}));
  put_credential("nic/X");
  ASSERT_TRUE(read("secret", "nic/X"));
  auto m = run(client().read_kv2_metadata(kv("secret", "nic/X")));
  ASSERT_FALSE(m);
  EXPECT_TRUE(m.error().is(Errc::vault_permission_denied)) << m.error().describe();
  EXPECT_EQ(classify(m.error().code), ErrorClass::permanent);
  EXPECT_NE(m.error().message.find("\"read\" capability on path \"secret/metadata/nic/X\""), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("nic-reader"), std::string::npos) << m.error().message;
  auto l = run(client().list_kv2(vp("secret"), vp("nic")));
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("\"list\" capability"), std::string::npos) << l.error().message;
}

TEST_F(VaultClientFake, TokenLookupAndState) {
  start();
  use_token(vault_->create_token(TokenSpec{{"default"}, 3600s}));
  ASSERT_TRUE(run(client().login()));
  auto st = client().token_state();
  EXPECT_TRUE(st.valid);
  EXPECT_TRUE(st.renewable);
  EXPECT_EQ(st.ttl, 3600s);
  ASSERT_TRUE(st.expires_at);
  EXPECT_EQ(*st.expires_at, clock_.system_now() + 3600s);
  auto info = run(client().lookup_self());
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->ttl, 3600s);

  // The root token never expires.
  use_token("root");
  client_.reset();
  ASSERT_TRUE(run(client().login()));
  EXPECT_TRUE(client().token_state().valid);
  EXPECT_FALSE(client().token_state().expires_at);
}

TEST_F(VaultClientFake, RevokedOrExpiredFixedTokenIsInvalid) {
  start();
  const auto token = vault_->create_token(TokenSpec{{"default"}, 60s});
  use_token(token);
  put_credential("nic/X");
  vault_->set_policy("default", {{"secret/data/*", {"read"}}, {"auth/token/lookup-self", {"read"}}});
  ASSERT_TRUE(read("secret", "nic/X"));
  vault_->revoke_token(token);
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_token_invalid)) << s.error().describe();
  EXPECT_EQ(classify(s.error().code), ErrorClass::auth);
  EXPECT_NE(s.error().message.find("VAULT_TOKEN"), std::string::npos);
  EXPECT_EQ(s.error().message.find(token), std::string::npos);
  EXPECT_FALSE(client().token_state().valid);

  const auto short_lived = vault_->create_token(TokenSpec{{"default"}, 60s});
  use_token(short_lived);
  client_.reset();
  ASSERT_TRUE(read("secret", "nic/X"));
  clock_.advance(61s);
  EXPECT_FALSE(client().token_state().valid);
  auto expired = read("secret", "nic/X");
  ASSERT_FALSE(expired);
  EXPECT_TRUE(expired.error().is(Errc::vault_token_invalid)) << expired.error().describe();
}

TEST_F(VaultClientFake, LegacyPermissionDeniedWordingIsJudgedByLookupSelf) {
  FakeVaultOptions o;
  o.legacy_permission_denied = true;
  start(o);
  vault_->set_policy("nic-reader", {{"secret/data/nic/*", {"read"}}});
  const auto token = vault_->create_token(TokenSpec{{"nic-reader"}});
  use_token(token);
  put_credential("nic/X");
  auto denied = run(client().read_kv2_metadata(kv("secret", "nic/X")));
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().is(Errc::vault_permission_denied)) << denied.error().describe();
  vault_->revoke_token(token);
  auto dead = read("secret", "nic/X");
  ASSERT_FALSE(dead);
  EXPECT_TRUE(dead.error().is(Errc::vault_token_invalid)) << dead.error().describe();
}

TEST_F(VaultClientFake, AppRoleLogsInFromCredentialFilesAndPicksUpARotatedSecretId) {
  start();
  vault_->set_policy("nic-reader", {{"secret/data/nic/*", {"read"}}});
  vault_->add_approle("nicsync", "role-1234", "secret-AAAA", TokenSpec{{"nic-reader"}, 3600s});
  use_approle("role-1234", "secret-AAAA");
  put_credential("nic/X");
  auto s = read("secret", "nic/X");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(client().token_state().method, AuthMethod::approle);
  EXPECT_EQ(client().token_state().logins, 1u);
  EXPECT_EQ(vault_->count_requests("POST", "/v1/auth/approle/login"), 1u);

  // The secret id is rotated (systemd credential refreshed) and the current token revoked: the
  // next call sees a dead token, logs in again with the new file and succeeds.
  vault_->rotate_secret_id("nicsync", "secret-BBBB");
  testing::write_file(dir_.file("secret_id"), "secret-BBBB\n");
  clock_.advance(3601s);  // the token has expired
  auto again = read("secret", "nic/X");
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(client().token_state().logins, 2u);
  EXPECT_EQ(vault_->count_requests("POST", "/v1/auth/approle/login"), 2u);
}

// The token dies on the server while the client still thinks it good (its uses ran out): the
// 403 "invalid token" leads to exactly one fresh login and a retry.
TEST_F(VaultClientFake, AppRoleReLogsInOnceWhenVaultRejectsItsToken) {
  start();
  vault_->set_policy("nic-reader", {{"secret/data/nic/*", {"read"}}});
  TokenSpec spec{{"nic-reader"}, 3600s};
  spec.num_uses = 2;
  vault_->add_approle("nicsync", "role-1234", "secret-AAAA", spec);
  use_approle("role-1234", "secret-AAAA");
  put_credential("nic/X");
  ASSERT_TRUE(read("secret", "nic/X"));
  ASSERT_TRUE(read("secret", "nic/X"));
  EXPECT_EQ(client().token_state().logins, 1u);
  auto third = read("secret", "nic/X");
  ASSERT_TRUE(third) << third.error().describe();
  EXPECT_EQ(client().token_state().logins, 2u);
  EXPECT_EQ(client().stats().relogins_after_403, 1u);
}

TEST_F(VaultClientFake, BadAppRoleCredentialsAreALoginFailureWithoutTheSecret) {
  start();
  vault_->add_approle("nicsync", "role-1234", "secret-AAAA", TokenSpec{{"default"}});
  use_approle("role-1234", "secret-WRONG-planted");
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_login_failed)) << s.error().describe();
  EXPECT_NE(s.error().message.find("invalid role or secret ID"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(dir_.file("secret_id")), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().message.find("planted"), std::string::npos);
  ASSERT_TRUE(client().token_state().last_error);
  EXPECT_EQ(client().token_state().last_error->message.find("planted"), std::string::npos);

  // A missing secret_id file says which file.
  std::filesystem::remove(dir_.file("secret_id"));
  auto missing = run(client().login());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("secret_id"), std::string::npos);
}

TEST_F(VaultClientFake, TokenFileFromVaultAgentIsFollowed) {
  start();
  put_credential("nic/X");
  const auto first = vault_->create_token(TokenSpec{{"root"}});
  config_.auth = AuthConfig{};
  config_.auth.method = AuthMethod::token_file;
  config_.auth.token_file = dir_.file("agent-token");
  testing::write_file(config_.auth.token_file, first);
  ASSERT_TRUE(read("secret", "nic/X"));

  // The agent writes a new token and the old one is revoked.
  const auto second = vault_->create_token(TokenSpec{{"root"}});
  testing::write_file(dir_.file("agent-token.tmp"), second + "\n");
  std::filesystem::rename(dir_.file("agent-token.tmp"), config_.auth.token_file);
  vault_->revoke_token(first);
  ASSERT_TRUE(read("secret", "nic/X"));
  EXPECT_EQ(client().token_state().logins, 2u);

  // Revoked and not replaced: a clear error naming the file.
  vault_->revoke_token(second);
  auto dead = read("secret", "nic/X");
  ASSERT_FALSE(dead);
  EXPECT_TRUE(dead.error().is(Errc::vault_token_invalid)) << dead.error().describe();
  EXPECT_NE(dead.error().message.find("agent-token"), std::string::npos) << dead.error().message;
}

// --- server states and faults -------------------------------------------------------------------

TEST_F(VaultClientFake, SealedVaultIsRetriedThenReported) {
  start();
  put_credential("nic/X");
  ASSERT_TRUE(run(client().login()));
  vault_->seal();
  config_.max_retries = 1;
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_sealed)) << s.error().describe();
  EXPECT_EQ(classify(s.error().code), ErrorClass::transient);
  EXPECT_EQ(vault_->count_requests("GET", "/v1/secret/data/nic/X"), 3u);  // default: 2 retries
  vault_->unseal();
  EXPECT_TRUE(read("secret", "nic/X"));
}

TEST_F(VaultClientFake, StandbyWithoutActiveNodeAndRedirectToTheActiveNode) {
  start();
  put_credential("nic/X");
  ASSERT_TRUE(run(client().login()));
  fakes::FaultSpec no_active;
  no_active.status = 503;
  no_active.count = 3;  // the first attempt and both retries
  no_active.body = "{\"errors\":[\"no active Vault instance found\"]}\n";
  vault_->fail_next(no_active);
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_unavailable)) << s.error().describe();
  EXPECT_NE(s.error().message.find("no active node"), std::string::npos);

  // A standby that cannot forward answers 307 to the active node.
  second_ = std::make_unique<FakeVault>(io_.get_executor(), FakeVaultOptions{.clock = &clock_});
  ASSERT_TRUE(second_->start());
  second_->kv_put("secret", "nic/X", {{"username", "active"}, {"password", kPassword}});
  vault_->set_redirect(second_->address());
  auto r = read("secret", "nic/X");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->data.field("username").value()->expose(), "active");
}

TEST_F(VaultClientFake, RateLimitsAreRetriedHonouringRetryAfter) {
  start();
  put_credential("nic/X");
  ASSERT_TRUE(run(client().login()));
  vault_->fail_next(1, 429);
  auto quick = read("secret", "nic/X");
  ASSERT_TRUE(quick) << quick.error().describe();

  vault_->fail_next(1, 429, 1);
  const auto start = std::chrono::steady_clock::now();
  auto waited = read("secret", "nic/X");
  ASSERT_TRUE(waited) << waited.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 950ms);

  vault_->fail_next(10, 429);
  auto limited = read("secret", "nic/X");
  ASSERT_FALSE(limited);
  EXPECT_TRUE(limited.error().is(Errc::vault_rate_limited)) << limited.error().describe();
  EXPECT_NE(limited.error().message.find("rate limit quota exceeded"), std::string::npos);
}

TEST_F(VaultClientFake, BrokenConnectionsAndTruncatedAnswersAreRetried) {
  start();
  put_credential("nic/X");
  ASSERT_TRUE(run(client().login()));
  for (auto kind : {fakes::FaultSpec::Kind::drop, fakes::FaultSpec::Kind::reset, fakes::FaultSpec::Kind::truncate}) {
    fakes::FaultSpec f;
    f.kind = kind;
    f.truncate_at = 30;
    vault_->fail_next(f);
    auto s = read("secret", "nic/X");
    ASSERT_TRUE(s) << static_cast<int>(kind) << ": " << s.error().describe();
    EXPECT_EQ(s->data.field("password").value()->expose(), kPassword);
  }
  vault_->set_latency(2s);
  config_.timeout = 300ms;
  client_.reset();
  auto slow = read("secret", "nic/X");
  ASSERT_FALSE(slow);
  EXPECT_TRUE(slow.error().is(Errc::http_timeout)) << slow.error().describe();
}

TEST_F(VaultClientFake, NamespacesGoInTheHeader) {
  FakeVaultOptions o;
  o.enterprise = true;
  start(o);
  vault_->create_namespace("team-a/");
  vault_->mount("team-a/secret", 2);
  vault_->kv_put("team-a/secret", "nic/X", {{"username", "ns-user"}, {"password", kPassword}});
  auto root_ns = read("secret", "nic/X");
  ASSERT_FALSE(root_ns);
  EXPECT_TRUE(root_ns.error().is(Errc::vault_not_found)) << root_ns.error().describe();

  config_.vault_namespace = Namespace::parse("team-a").value();
  client_.reset();
  auto s = read("secret", "nic/X");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->data.field("username").value()->expose(), "ns-user");
}

TEST_F(VaultClientFake, SixtyFourConcurrentReadsShareOnePoolAndOneLogin) {
  start();
  for (int i = 0; i < 8; ++i) put_credential("nic/K" + std::to_string(i));
  vault_->add_approle("nicsync", "role-1234", "secret-AAAA", TokenSpec{{"root"}});
  use_approle("role-1234", "secret-AAAA");
  int ok = 0;
  auto many = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int done = 0;
    asio::steady_timer all(ex, std::chrono::steady_clock::time_point::max());
    for (int i = 0; i < 256; ++i) {
      asio::co_spawn(
          ex,
          [&, i]() -> asio::awaitable<void> {
            if (co_await client().read_kv2_metadata(kv("secret", "nic/K" + std::to_string(i % 8)))) ++ok;
            if (++done == 256) all.cancel();
          },
          asio::detached);
    }
    auto [ec] = co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;
  };
  run_for(io_, many(), 30s);
  EXPECT_EQ(ok, 256);
  EXPECT_EQ(vault_->count_requests("POST", "/v1/auth/approle/login"), 1u);
  const auto st = client().stats();
  EXPECT_LE(st.connections_opened, 64u);
  EXPECT_EQ(st.connections_opened, vault_->connections_accepted());
  EXPECT_EQ(st.calls, 256u);
  EXPECT_EQ(st.calls_failed, 0u);
}

// --- TLS ------------------------------------------------------------------------------------------

class VaultClientFakeTls : public VaultClientFake {
 protected:
  void start_tls(bool require_client_cert = false) {
    pki_ = testing::make_test_pki(dir_.path().string());
    FakeVaultOptions o;
    o.tls_cert_file = pki_.server_cert;
    o.tls_key_file = pki_.server_key;
    if (require_client_cert) o.tls_client_ca_file = pki_.ca_cert;
    start(o);
    put_credential("nic/X");
  }
  testing::TestPki pki_;
};

TEST_F(VaultClientFakeTls, VerifiesTheServerWithTheConfiguredCa) {
  start_tls();
  config_.tls.ca_cert = pki_.ca_cert;
  auto s = read("secret", "nic/X");
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->data.field("password").value()->expose(), kPassword);
}

TEST_F(VaultClientFakeTls, AnUnknownCaIsRefusedAndNotRetried) {
  start_tls();
  config_.tls.ca_cert = pki_.other_ca_cert;
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::http_tls_verify)) << s.error().describe();
  EXPECT_NE(s.error().message.find("VAULT_CACERT"), std::string::npos);
  EXPECT_EQ(vault_->connections_accepted(), 1u);

  // Only when asked: skip verification.
  config_.tls.skip_verify = true;
  client_.reset();
  EXPECT_TRUE(read("secret", "nic/X"));
}

TEST_F(VaultClientFakeTls, ServerNameOverride) {
  start_tls();
  config_.tls.ca_cert = pki_.ca_cert;
  config_.address = "https://127.0.0.1:" + std::to_string(vault_->port());
  config_.tls.server_name = "localhost";  // in the certificate
  ASSERT_TRUE(read("secret", "nic/X"));
  config_.tls.server_name = "vault.other.example";  // not in the certificate
  client_.reset();
  auto s = read("secret", "nic/X");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::http_tls_verify)) << s.error().describe();
}

TEST_F(VaultClientFakeTls, ClientCertificates) {
  start_tls(true);
  config_.tls.ca_cert = pki_.ca_cert;
  auto without = read("secret", "nic/X");
  ASSERT_FALSE(without);
  EXPECT_FALSE(without.error().is(Errc::vault_permission_denied)) << without.error().describe();
  config_.tls.client_cert = pki_.client_cert;
  config_.tls.client_key = pki_.client_key;
  client_.reset();
  auto with = read("secret", "nic/X");
  ASSERT_TRUE(with) << with.error().describe();
}

}  // namespace
}  // namespace nicsync::vault
