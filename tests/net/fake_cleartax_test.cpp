// The test ClearTax in-process, driven by the project's HTTP client over loopback: token rules
// (validity, revocation, 288 a day per secret resetting at 00:00 UTC), store_nic_credentials
// header and body validation, every configured error path, fault injection, the webhook
// recorder and the admin API.
#include "fakes/cleartax/fake_cleartax.hpp"

#include <cstdlib>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"

namespace nicsync::fakes {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using testing::run_for;

constexpr std::string_view kSecret = "cs-planted-secret-0001";
constexpr std::string_view kStatic = "static-user-token-0001";
constexpr std::string_view kGstin = "07AAFCD5862R1ZX";

json::object parse(const std::string& body) { return json::parse(body).as_object(); }

// The first errorDetails entry of a `success:false` body.
json::object first_detail(const std::string& body) {
  auto o = parse(body);
  EXPECT_FALSE(o.at("success").as_bool()) << body;
  return o.at("errorDetails").as_array().at(0).as_object();
}

class FakeClearTaxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    start({});
  }

  void start(FakeClearTaxOptions o) {
    if (fake_) fake_->stop_now();
    o.clock = &clock_;
    o.client_secrets = {std::string(kSecret)};
    o.auth_tokens = {std::string(kStatic)};
    fake_ = std::make_unique<FakeClearTax>(io_.get_executor(), std::move(o));
    auto started = fake_->start();
    ASSERT_TRUE(started) << started.error().describe();
  }

  void TearDown() override {
    client_.shutdown();
    if (fake_) fake_->stop_now();
    testing::drain(io_);
    fake_.reset();
    testing::drain(io_);
  }

  http::Response call(http::Request r) {
    if (r.url.starts_with("/")) r.url = fake_->base_url() + r.url;
    auto resp = run_for(io_, client_.request(std::move(r)), 10s);
    EXPECT_TRUE(resp) << resp.error().describe();
    return resp ? std::move(*resp) : http::Response{};
  }

  Result<http::Response> try_call(http::Request r) {
    if (r.url.starts_with("/")) r.url = fake_->base_url() + r.url;
    return run_for(io_, client_.request(std::move(r)), 10s);
  }

  http::Response token_call(std::string_view secret = kSecret) {
    http::Request r;
    r.url = std::string(FakeClearTax::kTokenPath);
    if (!secret.empty()) r.headers.push_back({"x-clear-client-secret", std::string(secret)});
    return call(std::move(r));
  }

  std::string new_token() {
    auto r = token_call();
    EXPECT_EQ(r.status, 200) << r.body;
    return std::string(parse(r.body).at("access_token").as_string());
  }

  static http::Request store_request(std::string_view token, std::string_view gstin, std::string_view username,
                                     std::string_view password) {
    http::Request r;
    r.method = "POST";
    r.url = std::string(FakeClearTax::kStorePath);
    r.headers = {{"x-cleartax-auth-token", std::string(token)},
                 {"x-cleartax-product", "EInvoice"},
                 {"Content-Type", "application/json"},
                 {"gstin", std::string(gstin)}};
    json::object body;
    body["gstin"] = gstin;
    body["username"] = username;
    body["password"] = password;
    r.body = json::serialize(body);
    return r;
  }

  http::Response store(std::string_view token, std::string_view username = "API_DEMO",
                       std::string_view password = "N3w#Passw0rd", std::string_view gstin = kGstin) {
    return call(store_request(token, gstin, username, password));
  }

  asio::io_context io_;
  ManualClock clock_;
  http::Client client_{io_.get_executor()};
  std::unique_ptr<FakeClearTax> fake_;
};

// --- tokens -----------------------------------------------------------------------------------

TEST_F(FakeClearTaxTest, TokenHasDocumentedShapeAndValidTill) {
  clock_.set_system(std::chrono::sys_days{std::chrono::year{2026} / 3 / 14} + 9h + 26min + 53s);
  auto r = token_call();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type").value_or(""), "application/json");
  auto o = parse(r.body);
  EXPECT_EQ(o.size(), 2u) << r.body;
  EXPECT_FALSE(o.at("access_token").as_string().empty());
  EXPECT_EQ(o.at("valid_till").as_string(), "2026-03-14T15:26:53+00:00");
  EXPECT_EQ(fake_->token_stats().calls_today, 1);

  fake_->set_token_validity(std::nullopt);
  auto never = parse(token_call().body);
  EXPECT_TRUE(never.at("valid_till").is_null());
}

TEST_F(FakeClearTaxTest, TokenRefusesMissingAndUnknownSecretWithErrorsArray) {
  for (std::string_view secret : {std::string_view(), std::string_view("wrong-secret")}) {
    auto r = token_call(secret);
    EXPECT_EQ(r.status, 401) << r.body;
    auto e = parse(r.body).at("errors").as_array().at(0).as_object();
    EXPECT_EQ(e.at("error_code").as_string(), "INVALID_CLIENT_SECRET");
    EXPECT_EQ(e.at("error_source").as_string(), "CLEAR");
    EXPECT_FALSE(e.at("error_message").as_string().empty());
    EXPECT_EQ(e.at("error_id").as_string().size(), 36u);
  }
  EXPECT_EQ(fake_->token_stats().calls_today, 0);
  EXPECT_EQ(fake_->token_stats().unauthorized, 2);
  // The secret itself is never recorded.
  for (const auto& rec : fake_->requests()) {
    EXPECT_EQ(rec.header("x-clear-client-secret").value_or("***"), "***");
  }
}

TEST_F(FakeClearTaxTest, NewTokenRevokesThePreviousOne) {
  const auto first = new_token();
  EXPECT_EQ(store(first).status, 200);
  const auto second = new_token();
  ASSERT_NE(first, second);
  auto r = store(first);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(first_detail(r.body).at("error_code").as_string(), "105");
  EXPECT_EQ(store(second).status, 200);
  auto recs = fake_->requests(FakeClearTax::kStorePath);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].auth, "access:1");
  EXPECT_EQ(recs[1].auth, "revoked:1");
  EXPECT_EQ(recs[1].outcome, "unauthorized");
  EXPECT_EQ(recs[2].auth, "access:2");
}

TEST_F(FakeClearTaxTest, ExpiredTokenIsRefused) {
  const auto token = new_token();
  clock_.advance(6h - 1s);
  EXPECT_EQ(store(token).status, 200);
  clock_.advance(1s);
  EXPECT_EQ(store(token).status, 401);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().auth, "expired:1");
}

TEST_F(FakeClearTaxTest, DailyLimitOf288PerSecretResetsAtMidnightUtc) {
  clock_.set_system(std::chrono::sys_days{std::chrono::year{2026} / 5 / 1} + 23h + 59min);
  std::string last;
  for (int i = 0; i < 288; ++i) {
    auto r = token_call();
    ASSERT_EQ(r.status, 200) << "call " << i + 1;
    last = std::string(parse(r.body).at("access_token").as_string());
  }
  auto refused = token_call();
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(parse(refused.body).at("errors").as_array().at(0).at("error_code").as_string(), "RATE_LIMIT_EXCEEDED");
  EXPECT_FALSE(refused.header("Retry-After"));
  auto stats = fake_->token_stats();
  EXPECT_EQ(stats.calls_today, 288);
  EXPECT_EQ(stats.refused_today, 1);
  EXPECT_EQ(stats.limit, 288);

  // A refused call issues nothing: the last token still works.
  EXPECT_EQ(store(last).status, 200);
  clock_.advance(59s);
  EXPECT_EQ(token_call().status, 429);
  clock_.advance(1s);  // 00:00:00 UTC
  EXPECT_EQ(token_call().status, 200);
  EXPECT_EQ(fake_->token_stats().calls_today, 1);
  EXPECT_EQ(fake_->token_stats().issued_total, 289u);
}

TEST_F(FakeClearTaxTest, StaticAuthTokenWorksAndIsNotRevokedByTokenCalls) {
  EXPECT_EQ(store(kStatic).status, 200);
  (void)new_token();
  fake_->revoke_tokens();
  EXPECT_EQ(store(kStatic).status, 200);
  clock_.advance(24h * 400);
  EXPECT_EQ(store(kStatic).status, 200);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).front().auth, "static:0");
  EXPECT_EQ(store("unknown-token").status, 401);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().auth, "unknown");
}

// --- store_nic_credentials ----------------------------------------------------------------------

TEST_F(FakeClearTaxTest, StoresAndOverwritesPerGstinAndRecordsEverything) {
  const auto token = new_token();
  clock_.advance(1min);
  auto r = store(token, "API_ONE", "Pass#word1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"success":true,"errorDetails":null})");
  clock_.advance(1s);
  ASSERT_EQ(store(token, "API_ONE", "Pass#word2").status, 200);
  ASSERT_EQ(store(token, "API_TWO", "Other#pass1", "29ABCDE1234F1ZW").status, 200);

  auto s = fake_->stored(kGstin);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->username, "API_ONE");
  EXPECT_EQ(s->password, "Pass#word2");
  EXPECT_EQ(s->stores, 2u);
  EXPECT_EQ(s->updated_at, clock_.system_now());
  EXPECT_EQ(fake_->stored_all().size(), 2u);
  EXPECT_FALSE(fake_->stored("27AAPFU0939F1ZV"));

  auto recs = fake_->requests(FakeClearTax::kStorePath);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_LT(recs[0].seq, recs[1].seq);
  EXPECT_EQ(s->last_seq, recs[1].seq);
  EXPECT_EQ(recs[0].method, "POST");
  EXPECT_EQ(recs[0].header("x-cleartax-auth-token").value_or(""), "***");
  EXPECT_EQ(recs[0].header("gstin").value_or(""), kGstin);
  EXPECT_NE(recs[0].body.find("Pass#word1"), std::string::npos);
  EXPECT_EQ(recs[0].received_at, clock_.system_now() - 1s);
  EXPECT_EQ(recs[0].status, 200);
  EXPECT_EQ(recs[0].outcome, "stored");
  EXPECT_EQ(fake_->requests("/einv/*").size(), 3u);
  EXPECT_EQ(fake_->requests().size(), 4u);
}

TEST_F(FakeClearTaxTest, ValidatesHeadersAndBody) {
  const auto token = new_token();
  struct Case {
    std::string name;
    std::function<void(http::Request&)> mutate;
    int status;
    std::string outcome;
  };
  auto set_header = [](http::Request& r, std::string name, std::optional<std::string> value) {
    std::erase_if(r.headers, [&](const http::Header& h) { return http::iequals(h.name, name); });
    if (value) r.headers.push_back({name, *value});
  };
  const std::vector<Case> cases = {
      {"no token", [&](auto& r) { set_header(r, "x-cleartax-auth-token", std::nullopt); }, 401, "unauthorized"},
      {"empty token", [&](auto& r) { set_header(r, "x-cleartax-auth-token", ""); }, 401, "unauthorized"},
      {"no product", [&](auto& r) { set_header(r, "x-cleartax-product", std::nullopt); }, 400, "bad_request:product"},
      {"wrong product", [&](auto& r) { set_header(r, "x-cleartax-product", "EWB"); }, 400, "bad_request:product"},
      {"text body", [&](auto& r) { set_header(r, "Content-Type", "text/plain"); }, 415, "bad_request:content_type"},
      {"no gstin header", [&](auto& r) { set_header(r, "gstin", std::nullopt); }, 400, "bad_request:gstin_header"},
      {"other gstin header", [&](auto& r) { set_header(r, "gstin", "29ABCDE1234F1ZW"); }, 400,
       "bad_request:gstin_mismatch"},
      {"not json", [&](auto& r) { r.body = "gstin=07AAFCD5862R1ZX"; }, 400, "bad_request:body"},
      {"array", [&](auto& r) { r.body = "[]"; }, 400, "bad_request:body"},
      {"no password", [&](auto& r) { r.body = R"({"gstin":"07AAFCD5862R1ZX","username":"u"})"; }, 400,
       "bad_request:password"},
      {"numeric username", [&](auto& r) { r.body = R"({"gstin":"07AAFCD5862R1ZX","username":5,"password":"p"})"; }, 400,
       "bad_request:username"},
      {"short gstin",
       [&](auto& r) {
         set_header(r, "gstin", "07AAFCD5862R1Z");
         r.body = R"({"gstin":"07AAFCD5862R1Z","username":"u","password":"p"})";
       },
       400, "bad_request:gstin"},
  };
  for (const auto& c : cases) {
    auto req = store_request(token, kGstin, "API_DEMO", "N3w#Passw0rd");
    c.mutate(req);
    auto r = call(std::move(req));
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    auto d = first_detail(r.body);
    EXPECT_EQ(d.at("error_code").as_string(), c.status == 401 ? "105" : "500") << c.name;
    EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, c.outcome) << c.name;
  }
  EXPECT_TRUE(fake_->stored_all().empty());
  // A Content-Type with parameters is still JSON; a wrong method is 405.
  auto req = store_request(token, kGstin, "API_DEMO", "N3w#Passw0rd");
  req.headers[2].value = "application/json; charset=utf-8";
  EXPECT_EQ(call(std::move(req)).status, 200);
  http::Request get;
  get.url = std::string(FakeClearTax::kStorePath);
  EXPECT_EQ(call(get).status, 405);
}

TEST_F(FakeClearTaxTest, ConfiguredBadCredentialsAnswerNicCodes) {
  const auto token = new_token();
  const std::vector<std::string> nic = {"1008", "1017", "1019", "3000", "3002", "1015", "1018",
                                        "1014", "3029", "3033", "3034", "3035", "3036"};
  for (const auto& code : nic) {
    fake_->clear_bad_credentials();
    fake_->add_bad_credentials({.gstin = std::string(kGstin), .code = code});
    auto r = store(token);
    EXPECT_EQ(r.status, 200) << code;
    auto d = first_detail(r.body);
    EXPECT_EQ(d.at("error_code").as_string(), code);
    EXPECT_EQ(d.at("error_source").as_string(), "NIC");
    EXPECT_FALSE(d.at("error_message").as_string().empty());
    EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, "rejected:" + code);
  }
  EXPECT_TRUE(fake_->stored_all().empty());

  // Matching by username or password only touches matching requests.
  fake_->clear_bad_credentials();
  fake_->add_bad_credentials({.password = "Wrong#pass1", .code = "1019", .message = "Incorrect Password"});
  fake_->add_bad_credentials({.username = "GHOST", .code = "1017"});
  EXPECT_EQ(first_detail(store(token, "API_DEMO", "Wrong#pass1").body).at("error_code").as_string(), "1019");
  EXPECT_EQ(first_detail(store(token, "GHOST", "Right#pass1").body).at("error_code").as_string(), "1017");
  EXPECT_EQ(store(token, "API_DEMO", "Right#pass1").body, R"({"success":true,"errorDetails":null})");

  // ClearTax 502: no access to the GSTIN, at HTTP 403.
  fake_->add_bad_credentials({.gstin = "29ABCDE1234F1ZW", .code = "502"});
  auto r = store(token, "API_DEMO", "Right#pass1", "29ABCDE1234F1ZW");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(first_detail(r.body).at("error_code").as_string(), "502");
  EXPECT_EQ(first_detail(r.body).at("error_source").as_string(), "CLEARTAX");
}

// --- faults -----------------------------------------------------------------------------------

TEST_F(FakeClearTaxTest, InjectedStatusAppliesToNextNMatchingRequests) {
  const auto token = new_token();
  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath),
                    .times = 2,
                    .status = 503,
                    .retry_after = std::chrono::seconds(7)});
  fake_->add_fault({.path = "/hooks/*", .status = 429});
  // The token path is not affected by a fault for the store path.
  EXPECT_EQ(token_call().status, 200);
  const auto fresh = new_token();
  for (int i = 0; i < 2; ++i) {
    auto r = store(fresh);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After").value_or(""), "7");
    EXPECT_NE(r.header("Content-Type").value_or("").find("text/html"), std::string::npos);
    EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, "fault:status:503");
  }
  EXPECT_EQ(store(fresh).status, 200);
  http::Request hook;
  hook.url = "/hooks/a";
  auto h = call(hook);
  EXPECT_EQ(h.status, 429);
  EXPECT_EQ(first_detail(h.body).at("error_code").as_string(), "429");
  EXPECT_EQ(call(hook).status, 200);
  (void)token;
}

TEST_F(FakeClearTaxTest, SuccessFalseWithTransientCode) {
  const auto token = new_token();
  fake_->add_fault(
      {.path = std::string(FakeClearTax::kStorePath), .action = FaultAction::success_false, .code = "302"});
  auto r = store(token);
  EXPECT_EQ(r.status, 200);
  auto d = first_detail(r.body);
  EXPECT_EQ(d.at("error_code").as_string(), "302");
  EXPECT_FALSE(fake_->stored(kGstin));
  EXPECT_EQ(store(token).status, 200);
  EXPECT_TRUE(fake_->stored(kGstin));
}

TEST_F(FakeClearTaxTest, LatencyDelaysTheAnswer) {
  fake_->add_fault({.path = std::string(FakeClearTax::kTokenPath), .delay = 150ms, .action = FaultAction::none});
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(token_call().status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 150ms);
}

TEST_F(FakeClearTaxTest, HangNeverAnswersSoTheClientDeadlineFires) {
  const auto token = new_token();
  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath), .action = FaultAction::hang});
  auto req = store_request(token, kGstin, "API_DEMO", "N3w#Passw0rd");
  req.timeout = 300ms;
  auto r = try_call(std::move(req));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_timeout)) << r.error().describe();
  EXPECT_EQ(fake_->hung_requests(), 1u);
  EXPECT_FALSE(fake_->stored(kGstin));
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, "fault:hang");
  fake_->release_hangs();
  testing::drain(io_);
  EXPECT_EQ(fake_->hung_requests(), 0u);
  EXPECT_EQ(store(token).status, 200);
}

TEST_F(FakeClearTaxTest, DropBeforeAndAfterApplying) {
  const auto token = new_token();
  // times = 2: libcurl silently resends a request once when a reused keep-alive connection
  // closes before any byte of the answer (it takes the connection for stale), so a dropped POST
  // reaches the server twice. The recorded requests show it.
  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath), .times = 2, .action = FaultAction::drop});
  auto dropped = try_call(store_request(token, kGstin, "API_DEMO", "First#pass1"));
  ASSERT_FALSE(dropped);
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).size(), 2u);
  fake_->clear_faults();
  EXPECT_EQ(dropped.error().error_class(), ErrorClass::transient) << dropped.error().describe();
  EXPECT_FALSE(fake_->stored(kGstin));

  // The work is done, the answer is lost: the case exactly-once delivery must survive.
  fake_->add_fault(
      {.path = std::string(FakeClearTax::kStorePath), .times = 2, .action = FaultAction::drop, .apply_first = true});
  auto lost = try_call(store_request(token, kGstin, "API_DEMO", "Second#pass1"));
  ASSERT_FALSE(lost);
  ASSERT_TRUE(fake_->stored(kGstin));
  EXPECT_EQ(fake_->stored(kGstin)->password, "Second#pass1");
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, "stored+fault:drop");
  fake_->clear_faults();

  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath), .times = 2, .action = FaultAction::reset});
  auto reset = try_call(store_request(token, kGstin, "API_DEMO", "Third#pass1"));
  ASSERT_FALSE(reset);
  EXPECT_EQ(reset.error().error_class(), ErrorClass::transient) << reset.error().describe();
  EXPECT_EQ(fake_->stored(kGstin)->password, "Second#pass1");
}

TEST_F(FakeClearTaxTest, TruncatedResponseMidBody) {
  const auto token = new_token();
  fake_->add_fault({.path = std::string(FakeClearTax::kStorePath), .action = FaultAction::truncate, .truncate_at = 10});
  auto r = try_call(store_request(token, kGstin, "API_DEMO", "Trunc#pass1"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_network)) << r.error().describe();
  EXPECT_EQ(fake_->stored(kGstin)->password, "Trunc#pass1");
  EXPECT_EQ(fake_->requests(FakeClearTax::kStorePath).back().outcome, "stored+fault:truncate");
}

TEST_F(FakeClearTaxTest, FaultsUntilClearedAndReset) {
  fake_->add_fault({.path = "/hooks/*", .times = 0, .status = 500});
  http::Request hook;
  hook.url = "/hooks/x";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call(hook).status, 500);
  fake_->clear_faults();
  EXPECT_EQ(call(hook).status, 200);
  (void)new_token();
  fake_->add_fault({.times = 0, .status = 500});
  fake_->reset();
  EXPECT_TRUE(fake_->requests().empty());
  EXPECT_EQ(fake_->token_stats().issued_total, 0u);
  EXPECT_EQ(token_call().status, 200);  // faults gone, secret from the options kept
}

// --- webhook recorder ---------------------------------------------------------------------------

TEST_F(FakeClearTaxTest, HooksRecordAnyMethodAndAnswerConfiguredStatus) {
  fake_->set_hook_response("/hooks/erp/*", {.status = 202, .body = "", .headers = {}});
  http::Request put;
  put.method = "PUT";
  put.url = "/hooks/erp/07AAFCD5862R1ZX?x=1";
  put.headers = {{"Content-Type", "application/json"}, {"X-Webhook-Token", "planted-hook-token"}};
  put.body = R"({"password":"Hook#pass1"})";
  EXPECT_EQ(call(put).status, 202);
  http::Request post;
  post.method = "POST";
  post.url = "/hooks/other";
  post.body = "{}";
  post.headers = {{"Content-Type", "application/json"}};
  EXPECT_EQ(call(post).status, 200);

  auto recs = fake_->requests("/hooks/*");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].method, "PUT");
  EXPECT_EQ(recs[0].path, "/hooks/erp/07AAFCD5862R1ZX");
  EXPECT_EQ(recs[0].query, "x=1");
  EXPECT_EQ(recs[0].body, R"({"password":"Hook#pass1"})");
  EXPECT_EQ(recs[0].header("X-Webhook-Token").value_or(""), "***");
  EXPECT_EQ(recs[0].status, 202);
  EXPECT_EQ(recs[1].status, 200);
}

TEST_F(FakeClearTaxTest, WaitForRequestsIsEventDriven) {
  run_for(
      io_,
      [](FakeClearTax* fake, http::Client* client) -> asio::awaitable<void> {
        http::Request r;
        r.method = "POST";
        r.url = fake->base_url() + "/hooks/a";
        r.body = "{}";
        for (int i = 0; i < 3; ++i) (void)co_await client->request(r);
        co_await fake->wait_for_requests("/hooks/*", 3);
      }(fake_.get(), &client_),
      10s);
  EXPECT_EQ(fake_->requests("/hooks/*").size(), 3u);
}

// --- admin API ------------------------------------------------------------------------------------

TEST_F(FakeClearTaxTest, AdminApiConfiguresAndReports) {
  auto admin = [&](std::string method, std::string path, std::string body = {}) {
    http::Request r;
    r.method = std::move(method);
    r.url = "/__admin" + path;
    r.body = std::move(body);
    if (!r.body.empty()) r.headers.push_back({"Content-Type", "application/json"});
    return call(std::move(r));
  };
  EXPECT_EQ(admin("POST", "/faults", R"({"path":"/einv/*","action":"success_false","code":"301"})").status, 200);
  auto bad = admin("POST", "/faults", R"({"action":"explode"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("explode"), std::string::npos);
  EXPECT_EQ(admin("POST", "/faults", R"({"pth":"/x"})").status, 400);
  EXPECT_EQ(admin("POST", "/bad-credentials", R"({"gstin":"29ABCDE1234F1ZW","code":"1015"})").status, 200);
  EXPECT_EQ(admin("POST", "/client-secrets", R"({"secret":"second-secret"})").status, 200);
  EXPECT_EQ(admin("POST", "/auth-tokens", R"({"token":"second-static"})").status, 200);
  EXPECT_EQ(admin("POST", "/token-validity", R"({"seconds":60})").status, 200);

  EXPECT_EQ(token_call("second-secret").status, 200);
  EXPECT_EQ(first_detail(store("second-static").body).at("error_code").as_string(), "301");
  EXPECT_EQ(store("second-static").status, 200);
  EXPECT_EQ(first_detail(store("second-static", "U", "P#ass1", "29ABCDE1234F1ZW").body).at("error_code").as_string(),
            "1015");

  auto stored = parse(admin("GET", "/stored").body).at("gstins").as_object();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.at(kGstin).at("password").as_string(), "N3w#Passw0rd");
  EXPECT_EQ(parse(admin("GET", "/stored/07AAFCD5862R1ZX").body).at("stores").as_int64(), 1);
  EXPECT_EQ(admin("GET", "/stored/27AAPFU0939F1ZV").status, 404);

  auto reqs = parse(admin("GET", "/requests?path=/einv/*").body).at("requests").as_array();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].at("outcome").as_string(), "stored");
  EXPECT_EQ(reqs[1].at("headers").at("x-cleartax-auth-token").as_string(), "***");
  EXPECT_NE(reqs[1].at("body").as_string().find("N3w#Passw0rd"), std::string::npos);
  EXPECT_EQ(reqs[1].at("received_at").as_string(), "2026-01-01T00:00:00.000000Z");
  const auto since = reqs[1].at("seq").as_int64();
  EXPECT_EQ(parse(admin("GET", "/requests?since=" + std::to_string(since)).body).at("requests").as_array().size(), 1u);

  auto tokens = parse(admin("GET", "/tokens").body);
  EXPECT_EQ(tokens.at("calls_today").as_int64(), 1);
  EXPECT_EQ(tokens.at("limit").as_int64(), 288);

  const auto token = new_token();
  EXPECT_EQ(admin("POST", "/tokens/revoke").status, 200);
  EXPECT_EQ(store(token).status, 401);
  EXPECT_EQ(admin("POST", "/hooks", R"({"path":"/hooks/*","status":503,"body":"down"})").status, 200);
  http::Request hook;
  hook.url = "/hooks/z";
  auto h = call(hook);
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, "down");
  EXPECT_EQ(admin("POST", "/reset").status, 200);
  EXPECT_TRUE(fake_->stored_all().empty());
  EXPECT_EQ(token_call("second-secret").status, 401);  // added at runtime, gone after reset
  EXPECT_EQ(admin("GET", "/nope").status, 404);
}

}  // namespace
}  // namespace nicsync::fakes
