// The status page and what /v1/status and /metrics gained with it: the HTML, its policy
// headers, the Host check on loopback, HTTP Basic for browsers (reads only), bounded and
// validated URLs, escaping, pagination of many pairs, hints beside every error and credential
// age. Against a real engine with scripted collaborators; requests go through the API's
// router in-process, and once over a real socket.
#include "nicsync/api/status_page.hpp"

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

const Gstin kG1 = Gstin::parse("07AAFCD5862R1ZX").value();
const Gstin kG2 = Gstin::parse("27AAPFU0939F1ZV").value();
const Gstin kG3 = Gstin::parse("29ABCDE1234F1ZW").value();
const std::string kPlanted = "Pl4nted&<Secret>";
const std::string kToken = "api-token-0123456789";
const std::string kHostile = "<img src=x onerror=alert(1)>\"'&";

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_.set_destinations({{dest_, sync::LanePolicy{}}});
    ASSERT_TRUE(engine_.set_pairs({{"fake", kG1, {testing::path_of(kG1)}},
                                   {"fake", kG2, {testing::path_of(kG2)}},
                                   {"fake", kG3, {testing::path_of(kG3)}}}));
    ASSERT_TRUE(engine_.load());
    engine_.start();
    reader_.set(kG1, 3, kPlanted);
    reader_.set(kG3, 2, kPlanted + "3");
    observe(kG1, 3, "2025-03-01T12:00:00Z", std::chrono::system_clock::now() - 100 * 24h);
    settle();
    dest_->script.push_back(Error(Errc::dest_credential_rejected, "NIC says <b>1019</b> Incorrect Password"));
    observe(kG3, 2, "2025-05-01T12:00:00Z", std::chrono::system_clock::now() - 2h);
    settle();
    hooks_.not_ready_reasons = [] { return std::vector<std::string>{}; };
    hooks_.warnings = [] {
      return std::vector<std::string>{"mapping set secret/nic/: key \"" + kHostile + "\" is ignored"};
    };
    hooks_.max_credential_age = [] { return std::chrono::seconds(90 * 24h); };
    hooks_.vault = [] { return VaultInfo{"https://vault.example:8200", true, std::chrono::seconds(3000), ""}; };
    hooks_.change_feed = [] { return std::string("polling every 1m"); };
    hooks_.destinations = [] { return std::vector<DestinationInfo>{{"fake", "fake", 5, 8, 287}}; };
  }

  void observe(const Gstin& g, std::int64_t v, const std::string& lineage, std::chrono::system_clock::time_point at) {
    Observation o;
    o.path = testing::path_of(g);
    o.version = VersionId{v, Lineage(lineage)};
    o.written_at = at;
    engine_.observe(o);
  }
  void settle() {
    auto wait = [&]() -> asio::awaitable<void> {
      while (!engine_.idle()) co_await engine_.wait_for_change();
    };
    testing::run_for(io_, wait());
  }

  void make(ApiOptions o = {}) {
    o.listen = "127.0.0.1:0";
    api_ = std::make_unique<ApiServer>(io_.get_executor(), std::move(o), engine_, hooks_);
  }

  http::ServerResponse get(std::string target, std::vector<http::Header> headers = {{"Host", "127.0.0.1:9464"}},
                           std::string method = "GET") {
    http::ServerRequest r;
    r.method = std::move(method);
    r.target = target;
    const auto q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? std::string() : target.substr(q + 1);
    r.headers = std::move(headers);
    return testing::run_for(io_, api_->handle(std::move(r)));
  }
  static std::string header(const http::ServerResponse& r, std::string_view name) {
    return std::string(http::find_header(r.headers, name).value_or(""));
  }

  void TearDown() override {
    api_.reset();
    testing::drain(io_);
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  testing::FakeReader reader_;
  std::shared_ptr<testing::FakeDestination> dest_ =
      std::make_shared<testing::FakeDestination>("fake", io_.get_executor(), store_);
  sync::Engine engine_{io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_};
  ApiHooks hooks_;
  std::unique_ptr<ApiServer> api_;
};

TEST_F(StatusPageTest, PageShowsEveryPairUnderAStrictPolicy) {
  make();
  auto r = get("/");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  const std::string csp = header(r, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  for (const auto& g : {kG1, kG2, kG3}) EXPECT_NE(r.body.find("/gstin/" + g.str()), std::string::npos) << g.str();
  EXPECT_NE(r.body.find("Delhi"), std::string::npos) << "the GSTIN's state name";
  EXPECT_EQ(r.body.find(kPlanted), std::string::npos);
  EXPECT_EQ(r.body.find("<script>"), std::string::npos) << "no inline script";
  EXPECT_EQ(r.body.find("style="), std::string::npos) << "no inline style";
  // Problems first: the rejected pair is the first row.
  const auto rejected = r.body.find("data-gstin=\"" + kG3.str() + "\"");
  const auto fine = r.body.find("data-gstin=\"" + kG1.str() + "\"");
  ASSERT_NE(rejected, std::string::npos);
  EXPECT_LT(rejected, fine);
  // The hint and next action beside the error, the error's own text escaped.
  EXPECT_NE(r.body.find("What to do: fix the password at the e-invoice portal"), std::string::npos);
  EXPECT_NE(r.body.find("NIC says &lt;b&gt;1019&lt;/b&gt;"), std::string::npos);
  // Credential age: kG1's version is 100 days old, over the 90-day limit.
  EXPECT_NE(r.body.find("older than 90d"), std::string::npos);
  EXPECT_NE(r.body.find("287"), std::string::npos) << "token calls left";
  EXPECT_NE(r.body.find("expires in 50m"), std::string::npos);

  auto css = get("/static/page.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(header(css, "Content-Type"), "text/css; charset=utf-8");
  auto js = get("/static/page.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(js.body.find("nicsync:updated"), std::string::npos);
}

TEST_F(StatusPageTest, EverythingShownIsEscaped) {
  make();
  auto r = get("/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(kHostile), std::string::npos);
  EXPECT_EQ(r.body.find("<img"), std::string::npos);
  EXPECT_NE(r.body.find("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"), std::string::npos);
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST_F(StatusPageTest, LoopbackServesOnlyLoopbackHostNames) {
  make();
  EXPECT_EQ(get("/", {{"Host", "127.0.0.1:9464"}}).status, 200);
  EXPECT_EQ(get("/", {{"Host", "localhost:9464"}}).status, 200);
  EXPECT_EQ(get("/", {{"Host", "[::1]:9464"}}).status, 200);
  EXPECT_EQ(get("/", {{"Host", "localhost"}}).status, 200);
  for (const char* host : {"attacker.example:9464", "127.0.0.1.nip.io:9464", "localhost.attacker.example", "[::1]x", "",
                           "10.0.0.1:9464"}) {
    auto r = get("/", {{"Host", host}});
    EXPECT_EQ(r.status, 421) << host;
    EXPECT_EQ(r.body.find(kG1.str()), std::string::npos) << host;
  }
  EXPECT_EQ(get("/", {}).status, 421) << "no Host at all";
  EXPECT_EQ(get("/gstin/" + kG1.str(), {{"Host", "attacker.example"}}).status, 421);
}

TEST_F(StatusPageTest, BrowsersLogInWithBasicForReadsOnly) {
  ApiOptions o;
  o.bearer_token = Secret(kToken);
  o.require_token_for_reads = true;
  make(o);
  auto basic = [](const std::string& user_pass) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned bits = 0;
    int n = 0;
    for (unsigned char c : user_pass) {
      bits = (bits << 8) | c;
      n += 8;
      while (n >= 6) out += kAlphabet[(bits >> (n -= 6)) & 63];
    }
    if (n > 0) out += kAlphabet[(bits << (6 - n)) & 63];
    while (out.size() % 4) out += '=';
    return "Basic " + out;
  };
  const http::Header host{"Host", "127.0.0.1:9464"};
  auto none = get("/", {host});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(header(none, "WWW-Authenticate"), "Basic realm=\"nicsyncd\", charset=\"UTF-8\"");
  EXPECT_EQ(none.body, "unauthorized\n") << "a refusal says nothing more";
  auto wrong = get("/", {host, {"Authorization", basic("admin:not-the-token")}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body, "unauthorized\n");
  EXPECT_EQ(get("/", {host, {"Authorization", "Basic %%%"}}).status, 401);
  EXPECT_EQ(get("/", {host, {"Authorization", basic(kToken)}}).status, 401) << "no colon: no password";
  EXPECT_EQ(get("/", {host, {"Authorization", basic("anyone:" + kToken)}}).status, 200);
  EXPECT_EQ(get("/", {host, {"Authorization", "Bearer " + kToken}}).status, 200);
  EXPECT_EQ(get("/static/page.js", {host}).status, 401);
  EXPECT_EQ(get("/v1/status", {host, {"Authorization", basic("x:" + kToken)}}).status, 200);
  // A browser sends Basic by itself, whatever page makes it send the request: never a sync.
  auto sync = get("/v1/sync", {host, {"Authorization", basic("x:" + kToken)}}, "POST");
  EXPECT_EQ(sync.status, 401);
}

TEST_F(StatusPageTest, UrlsAreBoundedAndValidated) {
  make();
  for (const char* bad :
       {"/?q=%3Cscript%3E", "/?q=0123456789ABCDEF", "/?state=bogus", "/?sort=evil", "/?page=0", "/?page=99999999",
        "/?per=5", "/?per=1000", "/?nope=1", "/?q=a&q=b", "/?q=%zz", "/gstin/..%2F..%2Fetc%2Fpasswd", "/gstin/",
        "/gstin/07AAFCD5862R1ZX/x", "/gstin/%3Cscript%3E", "/gstin/07AAFCD5862R1ZX?x=1"}) {
    auto r = get(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.find("<script>"), std::string::npos) << bad;
  }
  EXPECT_EQ(get("/?q=" + std::string(600, 'A')).status, 400);
  auto filtered = get("/?q=07aaf&state=in_sync");
  ASSERT_EQ(filtered.status, 200);
  EXPECT_NE(filtered.body.find("data-gstin=\"" + kG1.str() + "\""), std::string::npos);
  EXPECT_EQ(filtered.body.find("data-gstin=\"" + kG2.str() + "\""), std::string::npos);
  EXPECT_NE(filtered.body.find("value=\"07AAF\""), std::string::npos) << "the filter keeps its text";
  EXPECT_NE(filtered.body.find("href=\"/?q=07AAF&amp;state=in_sync&amp;sort=gstin\""), std::string::npos)
      << "a column's order keeps the filter";
  auto problems = get("/?state=problems");
  EXPECT_EQ(problems.body.find("data-gstin=\"" + kG1.str() + "\""), std::string::npos);
  EXPECT_NE(problems.body.find("data-gstin=\"" + kG3.str() + "\""), std::string::npos);
}

TEST_F(StatusPageTest, GstinPageShowsItsHistory) {
  make();
  auto r = get("/gstin/" + kG3.str());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("<table id=\"history\""), std::string::npos);
  EXPECT_NE(r.body.find("oc-rejected"), std::string::npos);
  EXPECT_NE(r.body.find("secret/nic/" + kG3.str()), std::string::npos);
  EXPECT_EQ(r.body.find(kPlanted), std::string::npos);
  EXPECT_EQ(get("/gstin/24AAACC1206D1ZM").status, 404);
  // The JSON history carries the same advice.
  auto h = json::parse(get("/v1/history?gstin=" + kG3.str()).body);
  const auto& entry = h.at("entries").as_array().at(0).as_object();
  EXPECT_EQ(entry.at("error_code").as_string(), "dest_credential_rejected");
  EXPECT_NE(std::string(entry.at("next_action").as_string()).find("e-invoice portal"), std::string::npos);
}

TEST_F(StatusPageTest, StatusAndMetricsCarryHintsAgeAndVersionsBehind) {
  make();
  // kG1 is at version 3 in Vault and delivered; Vault now has version 5: 2 behind.
  observe(kG1, 5, "2025-03-01T12:00:00Z", std::chrono::system_clock::now() - 1h);
  auto st = render_status(engine_, hooks_);
  const auto& pairs = st.at("pairs").as_array();
  const json::object* g1 = nullptr;
  const json::object* g3 = nullptr;
  for (const auto& p : pairs) {
    if (p.at("gstin").as_string() == kG1.str()) g1 = &p.as_object();
    if (p.at("gstin").as_string() == kG3.str()) g3 = &p.as_object();
  }
  ASSERT_TRUE(g1 && g3);
  EXPECT_EQ(g1->at("vault_version").as_int64(), 5);
  EXPECT_EQ(g1->at("versions_behind").as_int64(), 2);
  EXPECT_LT(g1->at("credential_age_seconds").as_int64(), 7200);
  EXPECT_FALSE(g1->at("too_old").as_bool());
  const auto& err = g3->at("last_error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "dest_credential_rejected");
  EXPECT_NE(std::string(err.at("next_action").as_string()).find("e-invoice portal"), std::string::npos);
  EXPECT_FALSE(err.at("hint").as_string().empty());
  EXPECT_EQ(st.at("credentials").at("max_age_seconds").as_int64(), 90 * 86400);
  EXPECT_EQ(st.at("vault").at("token_ttl_seconds").as_int64(), 3000);

  // A recreated key (a new lineage at version 1) is one behind until delivered.
  observe(kG3, 1, "2025-06-01T00:00:00Z", std::chrono::system_clock::now() - 200 * 24h);
  const auto m = render_metrics(engine_, hooks_);
  EXPECT_NE(m.find("\nnicsync_versions_behind "), std::string::npos) << m;
  EXPECT_NE(m.find("\nnicsync_credentials_too_old 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nnicsync_credential_age_seconds_max "), std::string::npos);
  auto behind = [&] {
    const auto now = render_status(engine_, hooks_);
    for (const auto& p : now.at("pairs").as_array()) {
      if (p.at("gstin").as_string() == kG3.str()) return p.at("versions_behind").as_int64();
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(behind(), 1);
  auto st2 = render_status(engine_, hooks_);
  bool warned = false;
  for (const auto& w : st2.at("warnings").as_array())
    warned |= w.as_string().find("max_credential_age") != json::string::npos;
  EXPECT_TRUE(warned);
}

TEST_F(StatusPageTest, OverARealSocket) {
  make();
  ASSERT_TRUE(api_->start());
  http::Client client(io_.get_executor());
  http::Request rq;
  rq.url = "http://" + api_->local_address() + "/?state=rejected";
  auto resp = testing::run_for(io_, client.request(rq));
  ASSERT_TRUE(resp) << resp.error().describe();
  EXPECT_EQ(resp->status, 200);
  EXPECT_NE(resp->body.find("data-gstin=\"" + kG3.str() + "\""), std::string::npos);
  client.shutdown();
}

// Many pairs: the listing picks one page, in order, and the pager counts the rest.
TEST(PairListing, PagesThroughManyPairsProblemsFirst) {
  asio::io_context io;
  ManualClock clock;
  testing::MemoryStore store{io.get_executor()};
  testing::FakeReader reader;
  auto dest = std::make_shared<testing::FakeDestination>("fake", io.get_executor(), store);
  sync::Engine engine{io.get_executor(), store, reader, testing::test_fingerprint, clock};
  engine.set_destinations({{dest, sync::LanePolicy{}}});
  std::vector<sync::PairConfig> pairs;
  for (int i = 0; i < 250; ++i) {
    auto g = Gstin::parse(fmt::format("{:02}AAAAA{:04}A1Z", 1 + i % 37, i) + "0", GstinMode::sandbox).value();
    pairs.push_back({"fake", g, {testing::path_of(g)}});
  }
  ASSERT_TRUE(engine.set_pairs(pairs));
  PageQuery q;
  q.per_page = 100;
  q.page = 3;
  auto l = list_pairs(engine, q, std::chrono::seconds{0}, std::chrono::system_clock::now());
  EXPECT_EQ(l.matched, 250u);
  EXPECT_EQ(l.pages, 3u);
  EXPECT_EQ(l.rows.size(), 50u);
  q.page = 99;
  EXPECT_EQ(list_pairs(engine, q, {}, {}).rows.size(), 50u) << "past the end: the last page";
  q.page = 1;
  q.sort = PageSort::gstin;
  auto first = list_pairs(engine, q, {}, {});
  ASSERT_EQ(first.rows.size(), 100u);
  for (std::size_t i = 1; i < first.rows.size(); ++i) {
    EXPECT_LE(engine.brief(first.rows[i - 1]).gstin, engine.brief(first.rows[i]).gstin);
  }
  auto parsed = parse_page_query("q=01a&state=problems&sort=age&per=50&page=2");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(page_query_string(*parsed), "/?q=01A&state=problems&sort=age&per=50&page=2");
}

}  // namespace
}  // namespace nicsync::api
