// POST /v1/audit-feed, where OpenBao's http audit device posts each entry (reference
// vault-audit.md §3.2): 204 once the body is read, with or without the token (anything else
// is a device failure in OpenBao), bodies up to an entry's limit on that path only, keep-alive;
// and the details /readyz and /v1/status add.
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "nicsync/api/api_server.hpp"
#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"

namespace nicsync::api {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

const std::string kFeedToken = "audit-feed-token-5e0c2a91";
constexpr std::size_t kLimit = (4u << 20) + 1;

class ApiAuditFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(engine_.load());
    engine_.start();
    hooks_.audit_feed_entry = [this](std::string_view body, bool authorized) {
      posts_.push_back({std::string(body), authorized});
    };
    hooks_.details = [] { return json::object{{"audit_feed", json::object{{"connected", true}}}}; };
    ApiOptions o;
    o.listen = "127.0.0.1:0";
    o.audit_feed_token = Secret(kFeedToken);
    o.audit_feed_body_limit = kLimit;
    o.bearer_token = Secret("api-token-0123456789");
    api_ = std::make_unique<ApiServer>(io_.get_executor(), std::move(o), engine_, hooks_);
    ASSERT_TRUE(api_->start());
  }
  void TearDown() override {
    api_.reset();
    client_.shutdown();
    testing::drain(io_);
  }

  http::Response post(std::string path, std::string body, std::string token) {
    http::Request r;
    r.method = "POST";
    r.url = "http://" + api_->local_address() + path;
    r.body = std::move(body);
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    r.timeout = 10s;
    auto resp = testing::run_for(io_, client_.request(r), 15s);
    EXPECT_TRUE(resp) << resp.error().describe();
    return resp ? *resp : http::Response{};
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  testing::FakeReader reader_;
  sync::Engine engine_{io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_};
  ApiHooks hooks_;
  std::vector<std::pair<std::string, bool>> posts_;
  std::unique_ptr<ApiServer> api_;
  http::Client client_{io_.get_executor()};
};

TEST_F(ApiAuditFeedTest, EveryPostIsAnswered204WithOrWithoutTheToken) {
  const std::string entry = R"({"type":"response","request":{"operation":"update"}})"
                            "\n";
  EXPECT_EQ(post("/v1/audit-feed", entry, kFeedToken).status, 204);
  EXPECT_EQ(post("/v1/audit-feed", entry, "api-token-0123456789").status, 204) << "the API's token is not this one";
  EXPECT_EQ(post("/v1/audit-feed", entry, "").status, 204);
  ASSERT_EQ(posts_.size(), 3u);
  EXPECT_EQ(posts_[0], std::make_pair(entry, true));
  EXPECT_FALSE(posts_[1].second);
  EXPECT_FALSE(posts_[2].second);
}

TEST_F(ApiAuditFeedTest, AnEntryUpToItsLimitOnThatPathOnly) {
  std::string big(kLimit, ' ');
  big.front() = '{';
  EXPECT_EQ(post("/v1/audit-feed", big, kFeedToken).status, 204);
  ASSERT_EQ(posts_.size(), 1u);
  EXPECT_EQ(posts_[0].first.size(), kLimit);
  EXPECT_EQ(post("/v1/audit-feed", big + " ", kFeedToken).status, 413);
  EXPECT_EQ(post("/v1/sync", big, "api-token-0123456789").status, 413) << "other routes keep their small limit";
}

TEST_F(ApiAuditFeedTest, ReadinessAndStatusCarryTheDetails) {
  http::Request r;
  r.url = "http://" + api_->local_address() + "/readyz";
  auto ready = testing::run_for(io_, client_.request(r), 15s);
  ASSERT_TRUE(ready);
  EXPECT_TRUE(json::parse(ready->body).at("audit_feed").at("connected").as_bool());
  EXPECT_TRUE(render_status(engine_, hooks_).at("audit_feed").at("connected").as_bool());
}

}  // namespace
}  // namespace nicsync::api
