// The ClearTax destination against the test ClearTax over loopback: the request it sends, every
// error mapping, the access token (shared, single-flight, cached across restarts in a 0600 file,
// refreshed once on rejection, hourly cap, daily counter) and the probe.
#include <filesystem>

#include <boost/json/parse.hpp>

#include "destination_fixture.hpp"
#include "nicsync/destinations/cleartax.hpp"

#include <sys/stat.h>

namespace nicsync::destinations::test {
namespace {

namespace json = boost::json;
using fakes::FakeClearTax;
using fakes::Fault;
using fakes::FaultAction;

constexpr std::string_view kGstin = "07AAFCD5862R1ZX";

class ClearTaxDestinationTest : public DestinationTest {
 protected:
  ClearTaxConfig config(ClearTaxAuth auth = ClearTaxAuth::client_secret) {
    ClearTaxConfig c;
    c.name = "cleartax-test";
    c.base_url = fake_->base_url();
    c.auth = auth;
    c.state_dir = dir_.path().string();
    return c;
  }

  std::shared_ptr<ClearTaxDestination> make(ClearTaxConfig c) {
    auto d = ClearTaxDestination::create(io_.get_executor(), client_, std::move(c), provider_of(secret_), clock_);
    EXPECT_TRUE(d) << d.error().describe();
    return d ? *d : nullptr;
  }
  std::shared_ptr<ClearTaxDestination> make() { return make(config()); }

  Result<void> push_one(Destination& d, std::int64_t version = 1, std::string_view password = "N3w#Passw0rd") {
    return push(d, delivery_for(d.name(), gstin(kGstin), version), credential("API_DEMO", password));
  }
};

TEST_F(ClearTaxDestinationTest, PushSendsTheDocumentedRequest) {
  auto d = make();
  EXPECT_EQ(d->kind(), "cleartax");
  EXPECT_EQ(d->name(), "cleartax-test");
  auto r = push_one(*d, 3, "Quote\"Back\\slash#1");
  ASSERT_TRUE(r) << r.error().describe();

  auto stored = fake_->stored(kGstin);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->username, "API_DEMO");
  EXPECT_EQ(stored->password, "Quote\"Back\\slash#1");

  auto recs = fake_->requests(FakeClearTax::kStorePath);
  ASSERT_EQ(recs.size(), 1u);
  const auto& rec = recs[0];
  EXPECT_EQ(rec.method, "POST");
  EXPECT_EQ(rec.auth, "access:1");
  EXPECT_EQ(rec.header("x-cleartax-product").value_or(""), "EInvoice");
  EXPECT_EQ(rec.header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(rec.header("gstin").value_or(""), kGstin);
  const auto key = sync::idempotency_key("cleartax-test", gstin(kGstin), "secret/nic/07AAFCD5862R1ZX",
                                         "2026-01-01T00:00:00.000000Z", 3);
  EXPECT_EQ(rec.header("Idempotency-Key").value_or(""), key);
  auto body = json::parse(rec.body).as_object();
  EXPECT_EQ(body.size(), 3u);
  EXPECT_EQ(body.at("gstin").as_string(), kGstin);
  EXPECT_EQ(body.at("username").as_string(), "API_DEMO");
  EXPECT_EQ(body.at("password").as_string(), "Quote\"Back\\slash#1");

  auto tokens = fake_->requests(FakeClearTax::kTokenPath);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].method, "GET");
  EXPECT_EQ(tokens[0].auth, "secret:0");

  auto s = d->stats();
  EXPECT_EQ(s.pushes, 1u);
  EXPECT_EQ(s.token_requests_hourly_cap, 12);
  EXPECT_EQ(s.token_requests_today, 1u);
  EXPECT_EQ(s.token_requests_left_today, 287);
  EXPECT_TRUE(s.token_cached);
  ASSERT_TRUE(s.token_valid_till);
  EXPECT_EQ(*s.token_valid_till, std::chrono::floor<std::chrono::seconds>(clock_.system_now()) + 6h);

  // The token is shared: more pushes, no more token calls.
  for (int v = 4; v < 8; ++v) ASSERT_TRUE(push_one(*d, v));
  EXPECT_EQ(token_calls(), 1u);
  EXPECT_EQ(secret_->calls, 1);

  // An engine-given key is used as it is.
  auto given = delivery_for("cleartax-test", gstin(kGstin), 9);
  given.idempotency_key = "engine-key";
  ASSERT_TRUE(push(*d, std::move(given), credential("API_DEMO", "N3w#Passw0rd")));
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().header("Idempotency-Key").value_or(""), "engine-key");

  // Without one no key is made up here: the engine gives each version its key.
  auto keyless = delivery_for("cleartax-test", gstin(kGstin), 10);
  keyless.idempotency_key.clear();
  ASSERT_TRUE(push(*d, std::move(keyless), credential("API_DEMO", "N3w#Passw0rd")));
  EXPECT_FALSE(fake_->requests(FakeClearTax::kStorePath).back().header("Idempotency-Key"));
}

TEST_F(ClearTaxDestinationTest, StaticTokenIsReadOnceAndReReadWhenRejected) {
  secret_->value = kStaticToken;
  auto d = make(config(ClearTaxAuth::static_token));
  for (int v = 1; v <= 3; ++v) ASSERT_TRUE(push_one(*d, v));
  EXPECT_EQ(secret_->calls, 1);
  EXPECT_EQ(token_calls(), 0u);
  EXPECT_EQ(d->stats().token_requests_left_today, -1);

  // The token was rotated in Vault and the old one revoked: one 401, one re-read, one retry.
  fake_->add_auth_token("PLANTED-static-token-rotated");
  fake_->revoke_auth_token(kStaticToken);
  secret_->value = "PLANTED-static-token-rotated";
  auto r = push_one(*d, 4);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(secret_->calls, 2);
  EXPECT_EQ(d->stats().auth_retries, 1u);
  auto recs = fake_->requests(FakeClearTax::kStorePath);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[2].auth, "static:0");
  EXPECT_EQ(recs[3].auth, "revoked-static:0");
  EXPECT_EQ(recs[4].auth, "static:1");
}

struct Mapping {
  std::string name;
  std::function<void(FakeClearTax&)> arrange;
  Errc expected;
  ErrorClass cls;
  std::string provider_code;
  int http_status;
  std::optional<std::chrono::milliseconds> retry_after = std::nullopt;
};

TEST_F(ClearTaxDestinationTest, EveryAnswerMapsToItsError) {
  const std::string store(FakeClearTax::kStorePath);
  auto bad = [](std::string code) {
    return [code](FakeClearTax& f) { f.add_bad_credentials({.gstin = std::string(kGstin), .code = code}); };
  };
  auto fault = [](Fault f) { return [f](FakeClearTax& fake) { fake.add_fault(f); }; };
  std::vector<Mapping> cases;
  for (std::string code : {"1008", "1017", "1019", "3000", "3002"}) {
    cases.push_back({"NIC " + code, bad(code), Errc::dest_credential_rejected, ErrorClass::credential_rejected,
                     "NIC:" + code, 200});
  }
  cases.push_back({"NIC 1015", bad("1015"), Errc::dest_gstin_not_linked, ErrorClass::permanent, "NIC:1015", 200});
  cases.push_back({"NIC 1018", bad("1018"), Errc::dest_wrong_gsp, ErrorClass::permanent, "NIC:1018", 200});
  for (std::string code : {"1014", "3029", "3033", "3034", "3035", "3036"}) {
    cases.push_back({"NIC " + code, bad(code), Errc::dest_gstin_inactive, ErrorClass::permanent, "NIC:" + code, 200});
  }
  cases.push_back({"CT 502", bad("502"), Errc::dest_no_access, ErrorClass::permanent, "CT:502", 403});
  for (std::string code : {"301", "302"}) {
    cases.push_back({"CT " + code,
                     fault({.path = store,
                            .action = FaultAction::success_false,
                            .retry_after = std::chrono::seconds(5),
                            .code = code}),
                     Errc::dest_unavailable, ErrorClass::transient, "CT:" + code, 200, 5s});
  }
  cases.push_back({"CT 105 twice",
                   fault({.path = store, .times = 2, .action = FaultAction::success_false, .code = "105"}),
                   Errc::dest_unauthorized, ErrorClass::auth, "CT:105", 200});
  cases.push_back({"HTTP 401 twice", fault({.path = store, .times = 2, .status = 401}), Errc::dest_unauthorized,
                   ErrorClass::auth, "CT:401", 401});
  cases.push_back({"HTTP 429", fault({.path = store, .status = 429, .retry_after = std::chrono::seconds(7)}),
                   Errc::dest_rate_limited, ErrorClass::transient, "", 429, 7s});
  cases.push_back({"HTTP 503", fault({.path = store, .status = 503, .retry_after = std::chrono::seconds(2)}),
                   Errc::dest_unavailable, ErrorClass::transient, "", 503, 2s});
  cases.push_back(
      {"HTTP 500", fault({.path = store, .status = 500}), Errc::dest_unavailable, ErrorClass::transient, "", 500});
  cases.push_back({"unknown code", fault({.path = store, .action = FaultAction::success_false, .code = "9931"}),
                   Errc::dest_unknown_code, ErrorClass::transient, "CT:9931", 200});
  cases.push_back({"no code", fault({.path = store, .status = 200, .body = R"({"success":false,"errorDetails":null})"}),
                   Errc::dest_unknown_code, ErrorClass::transient, "CT:unspecified", 200});
  cases.push_back({"not JSON", fault({.path = store, .status = 200, .body = "<html>ok</html>"}),
                   Errc::dest_bad_response, ErrorClass::transient, "", 200});
  cases.push_back({"no success", fault({.path = store, .status = 200, .body = R"({"result":"ok"})"}),
                   Errc::dest_bad_response, ErrorClass::transient, "", 200});
  cases.push_back({"HTTP 201", fault({.path = store, .status = 201, .body = R"({"success":true})"}),
                   Errc::dest_bad_response, ErrorClass::transient, "", 201});
  cases.push_back(
      {"HTTP 400", fault({.path = store, .status = 400}), Errc::dest_rejected, ErrorClass::permanent, "CT:400", 400});
  cases.push_back({"HTTP 404", fault({.path = store, .status = 404, .body = "{}"}), Errc::dest_rejected,
                   ErrorClass::permanent, "", 404});

  auto cfg = config();
  cfg.token_calls_per_hour = 100;
  auto d = make(cfg);
  std::int64_t version = 1;
  for (const auto& c : cases) {
    fake_->clear_faults();
    fake_->clear_bad_credentials();
    ASSERT_TRUE(push_one(*d, version++)) << c.name << ": setting up";
    c.arrange(*fake_);
    auto r = push_one(*d, version++);
    ASSERT_FALSE(r) << c.name;
    const Error& e = r.error();
    EXPECT_TRUE(e.is(c.expected)) << c.name << ": " << e.describe();
    EXPECT_EQ(e.error_class(), c.cls) << c.name;
    EXPECT_EQ(e.provider_code, c.provider_code) << c.name << ": " << e.describe();
    EXPECT_EQ(e.http_status, c.http_status) << c.name;
    EXPECT_EQ(e.retry_after, c.retry_after) << c.name;
    EXPECT_FALSE(e.message.empty());
    EXPECT_NE(e.message.find(std::string(kGstin)), std::string::npos) << c.name << ": " << e.message;
    EXPECT_EQ(e.message.find("N3w#Passw0rd"), std::string::npos) << c.name;
  }
}

TEST_F(ClearTaxDestinationTest, MessagesTellTheOperatorWhatToDo) {
  auto d = make();
  fake_->add_bad_credentials({.gstin = std::string(kGstin), .code = "1019"});
  auto r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Incorrect Password"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("will not be pushed again"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("secret/nic/07AAFCD5862R1ZX version 1"), std::string::npos) << r.error().message;
  fake_->clear_bad_credentials();
  fake_->add_bad_credentials({.gstin = std::string(kGstin), .code = "1018"});
  r = push_one(*d);
  EXPECT_NE(r.error().message.find("another GSP"), std::string::npos) << r.error().message;
}

TEST_F(ClearTaxDestinationTest, TransportFailuresKeepTheirCodes) {
  auto c = config();
  c.push_timeout = 300ms;
  auto d = make(c);
  ASSERT_TRUE(push_one(*d, 1));
  const std::string store(FakeClearTax::kStorePath);
  fake_->add_fault({.path = store, .action = FaultAction::hang});
  auto hung = push_one(*d, 2);
  ASSERT_FALSE(hung);
  EXPECT_TRUE(hung.error().is(Errc::http_timeout)) << hung.error().describe();
  EXPECT_NE(hung.error().message.find("cannot deliver GSTIN 07AAFCD5862R1ZX"), std::string::npos);
  fake_->release_hangs();
  fake_->add_fault({.path = store, .times = 2, .action = FaultAction::drop});
  auto dropped = push_one(*d, 3);
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error().error_class(), ErrorClass::transient) << dropped.error().describe();
  fake_->clear_faults();

  auto gone = config();
  gone.base_url = "http://127.0.0.1:" + std::to_string(testing::free_port());
  auto g = make(gone);
  auto refused = push_one(*g, 1);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::http_connection_refused)) << refused.error().describe();
  EXPECT_EQ(g->stats().token_requests_today, 1u);  // an attempt counts
}

TEST_F(ClearTaxDestinationTest, ProviderFailureIsReportedWithItsCode) {
  secret_->error = Error(Errc::vault_permission_denied, "permission denied on secret/clear/client");
  auto d = make();
  auto r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::vault_permission_denied));
  EXPECT_NE(r.error().message.find("cannot read the ClearTax client secret"), std::string::npos);
  EXPECT_EQ(token_calls(), 0u);
  EXPECT_EQ(d->stats().token_requests_today, 0u);
}

TEST_F(ClearTaxDestinationTest, TokenEndpointRefusals) {
  secret_->value = "PLANTED-wrong-secret";
  auto d = make();
  auto r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_unauthorized)) << r.error().describe();
  EXPECT_EQ(r.error().provider_code, "CT:INVALID_CLIENT_SECRET");
  EXPECT_NE(r.error().message.find("client secret"), std::string::npos);
  EXPECT_EQ(store_calls(), 0u);

  secret_->value = kClientSecret;
  fake_->add_fault({.path = std::string(FakeClearTax::kTokenPath), .status = 502});
  r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_unavailable)) << r.error().describe();
  fake_->add_fault({.path = std::string(FakeClearTax::kTokenPath), .status = 200, .body = R"({"token":"x"})"});
  r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_bad_response)) << r.error().describe();
  ASSERT_TRUE(push_one(*d));
  EXPECT_EQ(d->stats().token_requests_today, 4u);
}

// --- the token ---------------------------------------------------------------------------------

TEST_F(ClearTaxDestinationTest, TokenIsCachedAcrossARestartInA0600File) {
  {
    auto d = make();
    ASSERT_TRUE(push_one(*d, 1));
    const auto path = d->token_cache_path();
    ASSERT_FALSE(path.empty());
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(std::filesystem::path(path).parent_path(), dir_.path());
  }
  // A "restart": a new destination object on the same state directory.
  auto d = make();
  ASSERT_TRUE(push_one(*d, 2));
  EXPECT_EQ(token_calls(), 1u);
  EXPECT_EQ(secret_->calls, 1);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().auth, "access:1");
  EXPECT_EQ(d->stats().token_requests_today, 1u);  // the counter came back too

  // Near expiry (inside the refresh margin) the next push gets a new token.
  clock_.advance(6h - 4min);
  ASSERT_TRUE(push_one(*d, 3));
  EXPECT_EQ(token_calls(), 2u);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().auth, "access:2");
  EXPECT_EQ(d->stats().token_requests_today, 2u);
}

TEST_F(ClearTaxDestinationTest, CacheReadableByOthersOrFromAnotherEndpointIsIgnored) {
  std::string path;
  {
    auto d = make();
    ASSERT_TRUE(push_one(*d, 1));
    path = d->token_cache_path();
  }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  LogCapture log;
  {
    auto d = make();
    ASSERT_TRUE(push_one(*d, 2));
    EXPECT_EQ(token_calls(), 2u);
    EXPECT_NE(log.text().find("must be 0600"), std::string::npos) << log.text();
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // rewritten safely

  auto other = config();
  other.token_base_url = "http://localhost:" + std::to_string(fake_->port());
  auto d = make(other);
  ASSERT_TRUE(push_one(*d, 3));
  EXPECT_EQ(token_calls(), 3u);
}

TEST_F(ClearTaxDestinationTest, FiftyConcurrentPushesShareOneTokenCall) {
  auto d = make();
  // A slow token endpoint, so that every push arrives while the first refresh is running.
  fake_->add_fault(
      {.path = std::string(FakeClearTax::kTokenPath), .times = 0, .delay = 100ms, .action = FaultAction::none});
  std::vector<Delivery> deliveries;
  std::vector<Credential> creds;
  for (int i = 0; i < 50; ++i) {
    deliveries.push_back(delivery_for("cleartax-test", nth_gstin(i), 1));
    creds.push_back(credential("API_" + std::to_string(i), "Pass#" + std::to_string(i)));
  }
  auto results = testing::run_for(io_, push_all(d.get(), deliveries, std::move(creds)), 20s);
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(token_calls(), 1u);
  EXPECT_EQ(fake_->stored_all().size(), 50u);
  EXPECT_EQ(secret_->calls, 1);

  // All 50 refused at once (token revoked elsewhere): still one refresh, then one retry each.
  fake_->revoke_tokens();
  std::vector<Credential> again;
  for (int i = 0; i < 50; ++i) again.push_back(credential("API_" + std::to_string(i), "Pass#2-" + std::to_string(i)));
  results = testing::run_for(io_, push_all(d.get(), deliveries, std::move(again)), 20s);
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(token_calls(), 2u);
  EXPECT_EQ(d->stats().auth_retries, 50u);
  EXPECT_EQ(fake_->stored(nth_gstin(7).str())->password, "Pass#2-7");
}

TEST_F(ClearTaxDestinationTest, RejectedTokenIsRefreshedExactlyOnce) {
  auto d = make();
  ASSERT_TRUE(push_one(*d, 1));
  fake_->revoke_tokens();
  ASSERT_TRUE(push_one(*d, 2));
  EXPECT_EQ(token_calls(), 2u);
  EXPECT_EQ(store_calls(), 3u);

  // Refused even with a fresh token: one refresh, one retry, then the error.
  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath), .times = 0, .status = 401});
  auto r = push_one(*d, 3);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_unauthorized));
  EXPECT_EQ(token_calls(), 3u);
  EXPECT_EQ(store_calls(), 5u);
}

TEST_F(ClearTaxDestinationTest, HourlyCapStopsTokenCalls) {
  auto c = config();
  c.token_calls_per_hour = 3;
  auto d = make(c);
  for (int v = 1; v <= 3; ++v) {
    fake_->revoke_tokens();
    ASSERT_TRUE(push_one(*d, v)) << v;
    clock_.advance(1min);
  }
  EXPECT_EQ(token_calls(), 3u);
  EXPECT_EQ(d->stats().token_requests_last_hour, 3u);
  fake_->revoke_tokens();
  auto r = push_one(*d, 4);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_token_quota)) << r.error().describe();
  EXPECT_EQ(r.error().error_class(), ErrorClass::transient);
  ASSERT_TRUE(r.error().retry_after);
  EXPECT_EQ(*r.error().retry_after, 57min);  // the first call leaves the window 57 min from now
  EXPECT_EQ(token_calls(), 3u);
  clock_.advance(57min);
  ASSERT_TRUE(push_one(*d, 5));
  EXPECT_EQ(token_calls(), 4u);
}

TEST_F(ClearTaxDestinationTest, DailyCounterAndQuota) {
  clock_.set_system(std::chrono::sys_days{std::chrono::year{2026} / 2 / 10} + 20h);
  auto c = config();
  c.token_calls_per_day = 4;
  auto d = make(c);
  for (int v = 1; v <= 4; ++v) {
    fake_->revoke_tokens();
    ASSERT_TRUE(push_one(*d, v));
  }
  auto s = d->stats();
  EXPECT_EQ(s.token_requests_today, 4u);
  EXPECT_EQ(s.token_requests_left_today, 0);
  fake_->revoke_tokens();
  auto r = push_one(*d, 5);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_token_quota)) << r.error().describe();
  EXPECT_EQ(r.error().retry_after, std::chrono::milliseconds(4h));
  EXPECT_EQ(token_calls(), 4u);

  clock_.advance(4h);  // 00:00 UTC
  EXPECT_EQ(d->stats().token_requests_today, 0u);
  EXPECT_EQ(d->stats().token_requests_left_today, 4);
  ASSERT_TRUE(push_one(*d, 6));
  EXPECT_EQ(d->stats().token_requests_today, 1u);

  // ClearTax's own refusal (429) also ends the day's calls.
  fake_->set_daily_token_limit(1);
  fake_->revoke_tokens();
  r = push_one(*d, 7);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_token_quota)) << r.error().describe();
  EXPECT_EQ(d->stats().token_requests_left_today, 0);
  EXPECT_EQ(token_calls(), 6u);
  fake_->revoke_tokens();
  EXPECT_FALSE(push_one(*d, 8));
  EXPECT_EQ(token_calls(), 6u);  // no call made
}

TEST_F(ClearTaxDestinationTest, TokenExpiringOnArrivalIsNotRefreshedInALoop) {
  // valid_till == now (a token lifetime of zero, or a skewed clock): each fresh token is tried
  // once; the push fails after one refresh instead of spending token calls in a loop.
  fake_->set_token_validity(std::chrono::seconds(0));
  LogCapture log;
  auto d = make();
  auto r = push_one(*d, 1);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_unauthorized)) << r.error().describe();
  EXPECT_EQ(token_calls(), 2u);
  EXPECT_EQ(store_calls(), 2u);
  EXPECT_NE(log.text().find("check the system clock"), std::string::npos) << log.text();
}

TEST_F(ClearTaxDestinationTest, TokenThatNeverExpires) {
  fake_->set_token_validity(std::nullopt);
  auto d = make();
  ASSERT_TRUE(push_one(*d, 1));
  clock_.advance(24h * 30);
  ASSERT_TRUE(push_one(*d, 2));
  EXPECT_EQ(token_calls(), 1u);
  EXPECT_FALSE(d->stats().token_valid_till);
  EXPECT_TRUE(d->stats().token_cached);
}

TEST_F(ClearTaxDestinationTest, ProbeChecksTokenAndReachability) {
  auto d = make();
  auto r = testing::run_for(io_, d->probe(), 10s);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(token_calls(), 1u);
  EXPECT_EQ(store_calls(), 0u);
  auto gone = config();
  gone.base_url = "http://127.0.0.1:" + std::to_string(testing::free_port());
  gone.state_dir.clear();
  auto g = make(gone);
  auto refused = testing::run_for(io_, g->probe(), 10s);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::http_connection_refused)) << refused.error().describe();
}

TEST_F(ClearTaxDestinationTest, ConfigValidation) {
  auto c = config();
  EXPECT_TRUE(c.validate());
  c.base_url = "http://api.clear.in";
  ASSERT_FALSE(c.validate());
  EXPECT_NE(c.validate().error().message.find("base_url"), std::string::npos);
  c.base_url = "https://api.clear.in";
  EXPECT_TRUE(c.validate());
  c.base_url = "ftp://x";
  EXPECT_FALSE(c.validate());
  c = config();
  c.token_calls_per_hour = 0;
  EXPECT_FALSE(c.validate());
  c = config();
  c.push_timeout = 0ms;
  EXPECT_FALSE(c.validate());
}

TEST_F(ClearTaxDestinationTest, FactoryRefusesAnInvalidConfig) {
  auto c = config();
  c.base_url = "api.clear.in";
  auto bad_url = ClearTaxDestination::create(io_.get_executor(), client_, c, provider_of(secret_), clock_);
  ASSERT_FALSE(bad_url);
  EXPECT_TRUE(bad_url.error().is(Errc::config_invalid)) << bad_url.error().describe();
  EXPECT_NE(bad_url.error().message.find("base_url"), std::string::npos) << bad_url.error().message;

  c = config();
  c.token_base_url = "https://auth.clear.in/?x=1";
  auto bad_token_url = ClearTaxDestination::create(io_.get_executor(), client_, c, provider_of(secret_), clock_);
  ASSERT_FALSE(bad_token_url);
  EXPECT_TRUE(bad_token_url.error().is(Errc::config_invalid));
  EXPECT_NE(bad_token_url.error().message.find("token_base_url"), std::string::npos);

  auto no_secret = ClearTaxDestination::create(io_.get_executor(), client_, config(), nullptr, clock_);
  ASSERT_FALSE(no_secret);
  EXPECT_TRUE(no_secret.error().is(Errc::config_invalid));
  EXPECT_NE(no_secret.error().message.find("no auth secret provider"), std::string::npos);

  auto good = ClearTaxDestination::create(io_.get_executor(), client_, config(), provider_of(secret_), clock_);
  ASSERT_TRUE(good) << good.error().describe();
  EXPECT_EQ((*good)->name(), "cleartax-test");
}

}  // namespace
}  // namespace nicsync::destinations::test
