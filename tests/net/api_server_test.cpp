// The daemon's API over loopback: health, readiness, Prometheus metrics, status, history and
// the authenticated trigger, against a real engine with scripted collaborators.
#include "nicsync/api/api_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"

namespace nicsync::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

const Gstin kG1 = Gstin::parse("07AAFCD5862R1ZX").value();
const Gstin kG2 = Gstin::parse("27AAPFU0939F1ZV").value();
const std::string kPlanted = "Pl4nted&<Secret>";
const std::string kToken = "api-token-0123456789";

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_.set_destinations({{dest_, sync::LanePolicy{}}});
    ASSERT_TRUE(engine_.set_pairs({{"fake", kG1, {testing::path_of(kG1)}}, {"fake", kG2, {testing::path_of(kG2)}}}));
    ASSERT_TRUE(engine_.load());
    engine_.start();
    reader_.set(kG1, 3, kPlanted);
    Observation o;
    o.path = testing::path_of(kG1);
    o.version = VersionId{3, Lineage("2025-03-01T12:00:00Z")};
    engine_.observe(o);
    auto settle = [&]() -> asio::awaitable<void> {
      while (!engine_.idle()) co_await engine_.wait_for_change();
    };
    testing::run_for(io_, settle());
    hooks_.not_ready_reasons = [this] { return reasons_; };
    hooks_.extra_metrics = [](MetricsWriter& w) {
      w.gauge("nicsync_vault_token_ttl_seconds", "Seconds left on the Vault token.", {}, 1234);
    };
    hooks_.trigger = [this](TriggerRequest r) -> asio::awaitable<Result<TriggerReport>> {
      last_trigger_ = r;
      TriggerReport rep;
      for (const auto& g : r.gstins) rep.items.push_back({g.str(), "fake", "pushed", 4, ""});
      co_return rep;
    };
  }

  void start(ApiOptions o = {}) {
    o.listen = "127.0.0.1:0";
    api_ = std::make_unique<ApiServer>(io_.get_executor(), std::move(o), engine_, hooks_);
    auto s = api_->start();
    ASSERT_TRUE(s) << s.error().describe();
  }

  void TearDown() override {
    api_.reset();
    client_.shutdown();
    testing::drain(io_);
  }

  http::Response call(std::string method, std::string path, std::string body = {}, std::string token = {}) {
    http::Request r;
    r.method = std::move(method);
    r.url = "http://" + api_->local_address() + path;
    r.body = std::move(body);
    if (!r.body.empty()) r.headers.push_back({"Content-Type", "application/json"});
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    auto resp = testing::run_for(io_, client_.request(r));
    EXPECT_TRUE(resp) << resp.error().describe();
    return resp ? *resp : http::Response{};
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  testing::FakeReader reader_;
  std::shared_ptr<testing::FakeDestination> dest_ =
      std::make_shared<testing::FakeDestination>("fake", io_.get_executor(), store_);
  sync::Engine engine_{io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_};
  ApiHooks hooks_;
  std::vector<std::string> reasons_;
  std::optional<TriggerRequest> last_trigger_;
  std::unique_ptr<ApiServer> api_;
  http::Client client_{io_.get_executor()};
};

TEST_F(ApiServerTest, HealthAndReadiness) {
  start();
  auto h = call("GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  auto ready = call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(json::parse(ready.body).at("ready").as_bool(), true);
  reasons_ = {"Vault: not logged in yet (connection refused)", "first full resync not done"};
  auto not_ready = call("GET", "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  auto body = json::parse(not_ready.body);
  EXPECT_EQ(body.at("ready").as_bool(), false);
  EXPECT_EQ(body.at("reasons").as_array().size(), 2u);
  EXPECT_EQ(body.at("reasons").as_array()[1].as_string(), "first full resync not done");
}

TEST_F(ApiServerTest, MetricsArePrometheusTextWithoutGstinLabels) {
  start();
  auto m = call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.header("Content-Type").value_or(""), "text/plain; version=0.0.4");
  const auto& t = m.body;
  EXPECT_NE(t.find("# TYPE nicsync_pairs gauge\n"), std::string::npos);
  EXPECT_NE(t.find("nicsync_pairs{state=\"in_sync\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("nicsync_pairs{state=\"pending\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("nicsync_deliveries_total{destination=\"fake\",outcome=\"applied\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("nicsync_delivery_latency_seconds_bucket{destination=\"fake\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("nicsync_delivery_latency_seconds_count{destination=\"fake\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("nicsync_vault_token_ttl_seconds 1234\n"), std::string::npos);
  EXPECT_NE(t.find("nicsync_build_info{version=\""), std::string::npos);
  EXPECT_EQ(t.find(kG1.str()), std::string::npos) << "no GSTIN labels";
  EXPECT_EQ(t.find(kPlanted), std::string::npos);
  // Every family has exactly one TYPE line.
  EXPECT_EQ(t.find("# TYPE nicsync_pairs"), t.rfind("# TYPE nicsync_pairs"));
}

TEST_F(ApiServerTest, StatusListsEveryPairWithoutSecrets) {
  start();
  auto s = call("GET", "/v1/status");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.body.find(kPlanted), std::string::npos);
  auto body = json::parse(s.body).as_object();
  EXPECT_EQ(body.at("counts").at("in_sync").as_int64(), 1);
  const auto& pairs = body.at("pairs").as_array();
  ASSERT_EQ(pairs.size(), 2u);
  const auto& p = pairs[0].as_object();
  EXPECT_EQ(p.at("gstin").as_string(), kG1.str());
  EXPECT_EQ(p.at("destination").as_string(), "fake");
  EXPECT_EQ(p.at("vault_path").as_string(), "secret/nic/" + kG1.str());
  EXPECT_EQ(p.at("state").as_string(), "in_sync");
  EXPECT_EQ(p.at("applied_version").as_int64(), 3);
  EXPECT_TRUE(p.at("pending_version").is_null());
  EXPECT_TRUE(p.at("last_error").is_null());
  EXPECT_EQ(p.at("attempts").as_int64(), 0);
  EXPECT_TRUE(pairs[1].at("applied_version").is_null());
}

TEST_F(ApiServerTest, HistoryByGstin) {
  start();
  auto h = call("GET", "/v1/history?gstin=" + kG1.str());
  EXPECT_EQ(h.status, 200);
  auto entries = json::parse(h.body).at("entries").as_array();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("outcome").as_string(), "applied");
  EXPECT_EQ(entries[0].at("version").as_int64(), 3);
  EXPECT_EQ(call("GET", "/v1/history?gstin=nope").status, 400);
  EXPECT_EQ(call("GET", "/v1/history?limit=zzz").status, 400);
}

TEST_F(ApiServerTest, SyncNeedsTheBearerToken) {
  start();
  auto disabled = call("POST", "/v1/sync", "{}");
  EXPECT_EQ(disabled.status, 403) << "no token configured: triggers are off";
  EXPECT_NE(disabled.body.find("api.token_file"), std::string::npos);
  EXPECT_FALSE(last_trigger_);
}

TEST_F(ApiServerTest, SyncValidatesAndTriggers) {
  ApiOptions o;
  o.bearer_token = Secret(kToken);
  start(o);
  EXPECT_EQ(call("POST", "/v1/sync", "{}").status, 401);
  EXPECT_EQ(call("POST", "/v1/sync", "{}", "wrong-token").status, 401);
  EXPECT_EQ(call("POST", "/v1/sync", "[1,2]", kToken).status, 400);
  EXPECT_EQ(call("POST", "/v1/sync", "{\"gstins\":[\"bad\"]}", kToken).status, 400);
  EXPECT_EQ(call("POST", "/v1/sync", "{\"force\":\"yes\"}", kToken).status, 400);
  EXPECT_EQ(call("POST", "/v1/sync", "{\"gstin\":[]}", kToken).status, 400) << "unknown field";
  EXPECT_FALSE(last_trigger_);
  auto ok = call("POST", "/v1/sync", "{\"gstins\":[\"" + kG2.str() + "\"],\"force\":true}", kToken);
  EXPECT_EQ(ok.status, 200) << ok.body;
  ASSERT_TRUE(last_trigger_);
  EXPECT_EQ(last_trigger_->gstins, std::vector<Gstin>{kG2});
  EXPECT_TRUE(last_trigger_->force);
  auto items = json::parse(ok.body).at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("result").as_string(), "pushed");
  EXPECT_EQ(items[0].at("version").as_int64(), 4);
  // Reads stay open on loopback.
  EXPECT_EQ(call("GET", "/v1/status").status, 200);
}

TEST_F(ApiServerTest, ReadsCanRequireTheToken) {
  ApiOptions o;
  o.bearer_token = Secret(kToken);
  o.require_token_for_reads = true;
  start(o);
  EXPECT_EQ(call("GET", "/healthz").status, 200) << "health stays open";
  EXPECT_EQ(call("GET", "/v1/status").status, 401);
  EXPECT_EQ(call("GET", "/metrics").status, 401);
  EXPECT_EQ(call("GET", "/readyz").status, 401);
  EXPECT_EQ(call("GET", "/v1/status", {}, kToken).status, 200);
}

TEST(ApiValidate, NonLoopbackNeedsTlsAndAToken) {
  ApiOptions o;
  o.listen = "0.0.0.0:9464";
  auto r = validate(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("api.tls_cert_file"), std::string::npos);
  o.tls_cert_file = "/etc/nicsync/api.pem";
  o.tls_key_file = "/etc/nicsync/api-key.pem";
  r = validate(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("api.token_file"), std::string::npos);
  o.bearer_token = Secret("t");
  EXPECT_TRUE(validate(o));
  ApiOptions insecure;
  insecure.listen = "10.1.2.3:9464";
  insecure.allow_insecure = true;
  EXPECT_TRUE(validate(insecure));
  ApiOptions half;
  half.tls_cert_file = "x";
  EXPECT_FALSE(validate(half));
}

TEST(Metrics, LabelEscapingAndHistogramLayout) {
  MetricsWriter w;
  w.counter("x_total", "Help with \\ backslash.", {{"path", "a\"b\\c\nd"}}, 3);
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  w.histogram("lat_seconds", "Latency.", {{"d", "k"}}, h);
  const auto t = w.text();
  EXPECT_NE(t.find("x_total{path=\"a\\\"b\\\\c\\nd\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# HELP x_total Help with \\\\ backslash.\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{d=\"k\",le=\"0.1\"} 1\nlat_seconds_bucket{d=\"k\",le=\"1\"} 2\n"
                   "lat_seconds_bucket{d=\"k\",le=\"+Inf\"} 3\nlat_seconds_sum{d=\"k\"} 5.55\n"
                   "lat_seconds_count{d=\"k\"} 3\n"),
            std::string::npos)
      << t;
}

}  // namespace
}  // namespace nicsync::api
