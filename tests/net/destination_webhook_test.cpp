// The webhook destination against the test ClearTax's /hooks/ recorder: URL and body
// templating with proper JSON escaping, headers and secret headers, success statuses, error
// mapping, the re-read of secret headers on 401, validation and the probe.
#include <boost/json/parse.hpp>

#include "destination_fixture.hpp"
#include "nicsync/destinations/webhook.hpp"

namespace nicsync::destinations::test {
namespace {

namespace json = boost::json;
using fakes::FakeClearTax;
using fakes::HookResponse;

constexpr std::string_view kGstin = "07AAFCD5862R1ZX";

class WebhookDestinationTest : public DestinationTest {
 protected:
  WebhookConfig config() {
    WebhookConfig c;
    c.name = "erp";
    c.url = fake_->base_url() + "/hooks/erp/{gstin}";
    c.headers = {{"X-Source", "nicsync"}};
    c.secret_headers = {{.name = "X-Hook-Auth", .prefix = "Bearer ", .value = provider_of(secret_)}};
    return c;
  }

  std::shared_ptr<WebhookDestination> make(WebhookConfig c) {
    auto d = WebhookDestination::create(io_.get_executor(), client_, std::move(c));
    EXPECT_TRUE(d) << d.error().describe();
    return d ? *d : nullptr;
  }

  Result<void> push_one(Destination& d, std::string_view password = "Hook#pass1", std::int64_t version = 4) {
    return push(d, delivery_for(d.name(), gstin(kGstin), version), credential("API_DEMO", password));
  }

  void SetUp() override {
    DestinationTest::SetUp();
    secret_->value = "PLANTED-hook-secret-55e1";
  }
};

TEST_F(WebhookDestinationTest, DefaultTemplateEscapesEveryValue) {
  auto d = make(config());
  EXPECT_EQ(d->kind(), "webhook");
  const std::string nasty = "q\"uo\\te\n\t\x01 ü €{password}";
  auto r = push(*d, delivery_for("erp", gstin(kGstin), 4), credential("API \"DEMO\"", nasty));
  ASSERT_TRUE(r) << r.error().describe();
  auto recs = fake_->requests("/hooks/*");
  ASSERT_EQ(recs.size(), 1u);
  const auto& rec = recs[0];
  EXPECT_EQ(rec.method, "POST");
  EXPECT_EQ(rec.path, "/hooks/erp/07AAFCD5862R1ZX");
  EXPECT_EQ(rec.header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(rec.header("X-Source").value_or(""), "nicsync");
  EXPECT_EQ(rec.header("X-Hook-Auth").value_or(""), "Bearer PLANTED-hook-secret-55e1");
  EXPECT_EQ(
      rec.header("Idempotency-Key").value_or(""),
      sync::idempotency_key("erp", gstin(kGstin), "secret/nic/07AAFCD5862R1ZX", "2026-01-01T00:00:00.000000Z", 4));
  auto body = json::parse(rec.body).as_object();
  EXPECT_EQ(body.at("gstin").as_string(), kGstin);
  EXPECT_EQ(body.at("username").as_string(), "API \"DEMO\"");
  EXPECT_EQ(body.at("password").as_string(), nasty);
  EXPECT_EQ(body.at("version").as_int64(), 4);
  EXPECT_EQ(body.at("vault_path").as_string(), "secret/nic/07AAFCD5862R1ZX");
  EXPECT_EQ(d->stats().pushes, 1u);
  EXPECT_EQ(d->stats().token_requests_left_today, -1);
}

TEST_F(WebhookDestinationTest, PlaceholdersInsideStringsAndInTheUrl) {
  auto c = config();
  c.method = "PUT";
  c.url = fake_->base_url() + "/hooks/x/{vault_path}?v={version}&g={gstin}";
  c.body_template =
      R"J({"credential": {"user": "{username}", "secret": {password}}, "note": "v{version} of {vault_path} (try {attempt})",)J"
      R"J( "key": {idempotency_key}, "lineage": {lineage}, "n": [{version}, {attempt}], "literal": "{not a placeholder}"})J";
  c.headers.push_back({"Content-Type", "application/vnd.erp+json"});
  auto d = make(c);
  auto delivery = delivery_for("erp", gstin(kGstin), 12, 3);
  delivery.idempotency_key = "k-1";
  ASSERT_TRUE(push(*d, std::move(delivery), credential("U\"1", "P\\w")));
  auto rec = fake_->requests("/hooks/*").at(0);
  EXPECT_EQ(rec.method, "PUT");
  EXPECT_EQ(rec.path, "/hooks/x/secret%2Fnic%2F07AAFCD5862R1ZX");
  EXPECT_EQ(rec.query, "v=12&g=07AAFCD5862R1ZX");
  EXPECT_EQ(rec.header("Content-Type").value_or(""), "application/vnd.erp+json");
  EXPECT_EQ(rec.header("Idempotency-Key").value_or(""), "k-1");
  auto body = json::parse(rec.body).as_object();
  EXPECT_EQ(body.at("credential").at("user").as_string(), "U\"1");
  EXPECT_EQ(body.at("credential").at("secret").as_string(), "P\\w");
  EXPECT_EQ(body.at("note").as_string(), "v12 of secret/nic/07AAFCD5862R1ZX (try 3)");
  EXPECT_EQ(body.at("key").as_string(), "k-1");
  EXPECT_EQ(body.at("lineage").as_string(), "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(body.at("n").as_array().at(0).as_int64(), 12);
  EXPECT_EQ(body.at("n").as_array().at(1).as_int64(), 3);
  EXPECT_EQ(body.at("literal").as_string(), "{not a placeholder}");
}

TEST_F(WebhookDestinationTest, NoKeyIsMadeUpForADeliveryWithout) {
  auto c = config();
  c.body_template = R"({"key": {idempotency_key}})";
  auto d = make(c);
  auto delivery = delivery_for("erp", gstin(kGstin), 5);
  delivery.idempotency_key.clear();
  ASSERT_TRUE(push(*d, std::move(delivery), credential("API_DEMO", "Hook#pass1")));
  auto rec = fake_->requests("/hooks/*").at(0);
  EXPECT_FALSE(rec.header("Idempotency-Key"));
  EXPECT_EQ(json::parse(rec.body).at("key").as_string(), "");
}

TEST_F(WebhookDestinationTest, SuccessStatusesAreConfigurable) {
  auto c = config();
  c.success_statuses = {201};
  auto d = make(c);
  fake_->set_hook_response("/hooks/*", {.status = 201, .body = ""});
  EXPECT_TRUE(push_one(*d));
  fake_->set_hook_response("/hooks/*", {.status = 200});
  auto r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_rejected)) << r.error().describe();
  EXPECT_EQ(r.error().http_status, 200);
  auto defaults = make(config());
  fake_->set_hook_response("/hooks/*", {.status = 204, .body = ""});
  EXPECT_TRUE(push_one(*defaults));
}

TEST_F(WebhookDestinationTest, ErrorMapping) {
  auto d = make(config());
  struct Case {
    HookResponse response;
    Errc expected;
    ErrorClass cls;
    std::optional<std::chrono::milliseconds> retry_after;
  };
  const std::vector<Case> cases = {
      {{.status = 429, .headers = {{"Retry-After", "9"}}}, Errc::dest_rate_limited, ErrorClass::transient, 9s},
      {{.status = 503, .headers = {{"Retry-After", "3"}}}, Errc::dest_unavailable, ErrorClass::transient, 3s},
      {{.status = 500}, Errc::dest_unavailable, ErrorClass::transient, std::nullopt},
      {{.status = 408}, Errc::dest_unavailable, ErrorClass::transient, std::nullopt},
      {{.status = 400, .body = R"({"error":"bad field"})"}, Errc::dest_rejected, ErrorClass::permanent, std::nullopt},
      {{.status = 404}, Errc::dest_rejected, ErrorClass::permanent, std::nullopt},
      {{.status = 409}, Errc::dest_rejected, ErrorClass::permanent, std::nullopt},
      {{.status = 302, .headers = {{"Location", "https://elsewhere/"}}},
       Errc::dest_rejected,
       ErrorClass::permanent,
       std::nullopt},
  };
  for (const auto& c : cases) {
    fake_->set_hook_response("/hooks/*", c.response);
    auto r = push_one(*d);
    ASSERT_FALSE(r) << c.response.status;
    EXPECT_TRUE(r.error().is(c.expected)) << c.response.status << ": " << r.error().describe();
    EXPECT_EQ(r.error().error_class(), c.cls);
    EXPECT_EQ(r.error().http_status, c.response.status);
    EXPECT_EQ(r.error().retry_after, c.retry_after) << c.response.status;
    EXPECT_NE(r.error().message.find("GSTIN 07AAFCD5862R1ZX"), std::string::npos) << r.error().message;
  }
  fake_->set_hook_response("/hooks/*", {.status = 400, .body = R"({"error":"bad field"})"});
  EXPECT_NE(push_one(*d).error().message.find("bad field"), std::string::npos);
  EXPECT_EQ(d->stats().push_failures, cases.size() + 1);
}

TEST_F(WebhookDestinationTest, UnauthorizedRereadsSecretHeadersOnce) {
  auto d = make(config());
  ASSERT_TRUE(push_one(*d));
  ASSERT_TRUE(push_one(*d));
  EXPECT_EQ(secret_->calls, 1);

  // The endpoint's key was rotated: one 401, the header is read again, the retry succeeds.
  fake_->add_fault({.path = "/hooks/*", .status = 401});
  secret_->value = "PLANTED-hook-secret-rotated";
  ASSERT_TRUE(push_one(*d));
  EXPECT_EQ(secret_->calls, 2);
  EXPECT_EQ(d->stats().auth_retries, 1u);
  EXPECT_EQ(fake_->requests("/hooks/*").back().header("X-Hook-Auth").value_or(""),
            "Bearer PLANTED-hook-secret-rotated");

  fake_->add_fault({.path = "/hooks/*", .times = 0, .status = 401});
  auto r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::dest_unauthorized)) << r.error().describe();
  EXPECT_EQ(r.error().error_class(), ErrorClass::auth);
  EXPECT_EQ(secret_->calls, 3);

  secret_->error = Error(Errc::vault_not_found, "no secret at secret/erp/key");
  fake_->clear_faults();
  fake_->add_fault({.path = "/hooks/*", .status = 401});
  r = push_one(*d);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::vault_not_found)) << r.error().describe();
  EXPECT_NE(r.error().message.find("X-Hook-Auth"), std::string::npos);
}

TEST_F(WebhookDestinationTest, ConcurrentFirstPushesReadSecretsOnce) {
  auto d = make(config());
  std::vector<Delivery> deliveries;
  std::vector<Credential> creds;
  for (int i = 0; i < 20; ++i) {
    deliveries.push_back(delivery_for("erp", nth_gstin(i), 1));
    creds.push_back(credential("U", "P#1"));
  }
  auto results = testing::run_for(io_, push_all(d.get(), deliveries, std::move(creds)), 20s);
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(secret_->calls, 1);
  EXPECT_EQ(fake_->requests("/hooks/*").size(), 20u);
}

TEST_F(WebhookDestinationTest, TransportErrorsAndProbe) {
  auto c = config();
  c.url = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/hooks/{gstin}";
  auto gone = make(c);
  auto r = push_one(*gone);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_connection_refused)) << r.error().describe();
  auto p = testing::run_for(io_, gone->probe(), 10s);
  ASSERT_FALSE(p);
  EXPECT_TRUE(p.error().is(Errc::http_connection_refused));

  auto d = make(config());
  ASSERT_TRUE(testing::run_for(io_, d->probe(), 10s));
  auto with_probe = config();
  with_probe.probe_url = fake_->base_url() + "/hooks/health";
  auto dp = make(with_probe);
  fake_->set_hook_response("/hooks/health", {.status = 401});
  auto denied = testing::run_for(io_, dp->probe(), 10s);
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().is(Errc::dest_unauthorized));
  EXPECT_EQ(fake_->requests("/hooks/health").back().header("X-Hook-Auth").value_or(""),
            "Bearer PLANTED-hook-secret-55e1");
  EXPECT_EQ(d->stats().pushes + dp->stats().pushes, 0u);
}

TEST_F(WebhookDestinationTest, ConfigValidation) {
  auto expect_invalid = [&](WebhookConfig c, std::string_view mentions) {
    auto r = c.validate();
    ASSERT_FALSE(r) << mentions;
    EXPECT_TRUE(r.error().is(Errc::config_invalid));
    EXPECT_NE(r.error().message.find(mentions), std::string::npos) << r.error().message;
    auto d = WebhookDestination::create(io_.get_executor(), client_, std::move(c));
    ASSERT_FALSE(d) << mentions;
    EXPECT_TRUE(d.error().is(Errc::config_invalid));
    EXPECT_EQ(d.error().message, r.error().message);
  };
  EXPECT_TRUE(config().validate());
  auto c = config();
  c.body_template = R"({"a": {unknown}})";
  expect_invalid(c, "unknown placeholder {unknown}");
  c = config();
  c.body_template = R"({"a": {password})";
  expect_invalid(c, "valid JSON");
  c = config();
  c.body_template = R"({"a": ""{password}""})";
  expect_invalid(c, "valid JSON");
  c = config();
  c.url = fake_->base_url() + "/hooks/{password}";
  expect_invalid(c, "may not appear in the URL");
  c = config();
  c.url = "http://erp.example.com/hooks/{gstin}";
  expect_invalid(c, "https://");
  c = config();
  c.url = "erp.example.com/hooks/{gstin}";
  expect_invalid(c, "url: must start with https://");
  c = config();
  c.method = "GET";
  expect_invalid(c, "must be empty for GET");
  c = config();
  c.success_statuses = {};
  expect_invalid(c, "success_statuses");
  c = config();
  c.success_statuses = {302};
  expect_invalid(c, "2xx");
  c = config();
  c.secret_headers[0].value = nullptr;
  expect_invalid(c, "no value provider");
  c = config();
  c.method = "GET";
  c.body_template.clear();
  EXPECT_TRUE(c.validate());
  c = config();
  c.url = "https://erp.example.com/nic/{gstin}";
  EXPECT_TRUE(c.validate());
}

}  // namespace
}  // namespace nicsync::destinations::test
