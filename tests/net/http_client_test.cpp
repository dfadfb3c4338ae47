// The async HTTP client against in-process loopback servers: reuse, concurrency, deadlines,
// broken servers, cancellation, shutdown, TLS, size caps and proxies.
#include <cstdlib>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "nicsync/http/server.hpp"
#include "testing/deadline.hpp"
#include "testing/pki.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_for;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Loopback tests must not be sent to a proxy of the machine running them.
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    router_.add("GET", "/hello", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, "hello\n");
    });
    router_.add_prefix("*", "/echo", [](const ServerRequest& r) -> asio::awaitable<ServerResponse> {
      auto resp = ServerResponse::json(201, r.body);
      resp.headers.push_back({"X-Method", r.method});
      resp.headers.push_back({"X-Target", r.target});
      if (auto h = r.header("X-Probe")) resp.headers.push_back({"X-Probe-Seen", std::string(*h)});
      resp.headers.push_back({"X-Content-Type-Seen", std::string(r.header("Content-Type").value_or("<none>"))});
      co_return resp;
    });
    router_.add("GET", "/slow", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      co_await sleep_for(20ms);
      co_return ServerResponse::text(200, "slow\n");
    });
    router_.add("GET", "/hang", [this](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      ++hangs_started_;
      co_await sleep_for(1h);
      co_return ServerResponse::text(200, "never\n");
    });
    router_.add("GET", "/truncated", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      auto r = ServerResponse::text(200, std::string(10000, 'x'));
      r.truncate_body_at = 100;
      co_return r;
    });
    router_.add("GET", "/reset", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      ServerResponse r;
      r.action = ServerResponse::Action::reset;
      co_return r;
    });
    router_.add("GET", "/big", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, std::string(2u << 20, 'b'));
    });
    router_.add("GET", "/retry", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      auto r = ServerResponse::text(429, "later\n");
      r.headers.push_back({"Retry-After", "7"});
      co_return r;
    });
  }

  void start_server(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(io_.get_executor(), std::move(options), router_.handler());
    ASSERT_TRUE(server_->start());
    base_ = std::string(server_->tls() ? "https://" : "http://") + server_->local_address();
  }

  void TearDown() override {
    client_.reset();
    if (server_) server_->stop_now();
    testing::drain(io_);
    server_.reset();
    testing::drain(io_);
  }

  Client& client(ClientOptions options = {}) {
    if (!client_) client_ = std::make_unique<Client>(io_.get_executor(), std::move(options));
    return *client_;
  }

  Result<Response> get(const std::string& path, std::chrono::milliseconds deadline = 10s) {
    Request r;
    r.url = base_ + path;
    return run_for(io_, client().request(std::move(r)), deadline);
  }

  asio::io_context io_;
  Router router_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
  std::string base_;
  int hangs_started_ = 0;
};

TEST_F(HttpClientTest, GetReturnsStatusHeadersAndBody) {
  start_server();
  auto r = get("/hello");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello\n");
  EXPECT_EQ(r->header("content-type").value_or(""), "text/plain; charset=utf-8");
}

TEST_F(HttpClientTest, MethodsBodiesAndHeadersGoThrough) {
  start_server();
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE", "LIST"}) {
    Request req;
    req.method = method;
    req.url = base_ + "/echo/x?list=true";
    req.headers = {{"X-Probe", "p1"}, {"Content-Type", "application/json"}};
    req.body = std::string(R"({"password":"a&b<c>\"d\\"})");
    if (std::string_view(method) == "DELETE" || std::string_view(method) == "LIST") req.body.clear();
    auto r = run_for(io_, client().request(req));
    ASSERT_TRUE(r) << method << ": " << r.error().describe();
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->header("X-Method").value_or(""), method);
    EXPECT_EQ(r->header("X-Target").value_or(""), "/echo/x?list=true");
    EXPECT_EQ(r->header("X-Probe-Seen").value_or(""), "p1");
    EXPECT_EQ(r->body, req.body);
  }
  // A body without a Content-Type is not labelled as a form by libcurl.
  Request post;
  post.method = "POST";
  post.url = base_ + "/echo";
  post.body = "{}";
  auto r = run_for(io_, client().request(post));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Content-Type-Seen").value_or(""), "<none>");
}

TEST_F(HttpClientTest, OneHandleServesEveryMethodInTurnWithNothingLeftOver) {
  // One request at a time: each reuses the handle of the one before (a plain GET keeps its
  // options, any other request's handle is reset). A method, body, header or connect-to of
  // one request must never reach the next.
  start_server();
  struct Step {
    const char* method;
    std::string body;
    bool probe;
    bool connect_to;
  };
  const Step steps[] = {
      {"GET", "", true, false},  {"PUT", "{\"a\":1}", false, false},
      {"GET", "", false, false}, {"DELETE", "", true, false},
      {"GET", "", false, false}, {"POST", "{}", true, false},
      {"GET", "", false, false}, {"GET", "", true, true},
      {"GET", "", false, false},
  };
  for (const auto& step : steps) {
    Request req;
    req.method = step.method;
    req.body = step.body;
    if (step.connect_to) {
      // Port 1 refuses; only the connect-to entry leads to the server.
      req.url = "http://127.0.0.1:1/echo/step";
      req.connect_to = "127.0.0.1:1:127.0.0.1:" + std::to_string(server_->port());
    } else {
      req.url = base_ + "/echo/step";
    }
    if (step.probe) req.headers = {{"X-Probe", "p"}};
    auto r = run_for(io_, client().request(std::move(req)));
    ASSERT_TRUE(r) << step.method << ": " << r.error().describe();
    EXPECT_EQ(r->header("X-Method").value_or(""), step.method);
    EXPECT_EQ(r->body, step.body) << step.method;
    EXPECT_EQ(r->header("X-Probe-Seen").has_value(), step.probe) << step.method;
  }
  // Without the entry, port 1 is port 1.
  Request stale;
  stale.url = "http://127.0.0.1:1/echo/step";
  auto r = run_for(io_, client().request(std::move(stale)));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_connection_refused)) << r.error().describe();
}

TEST_F(HttpClientTest, NonSuccessStatusIsAResponseAndRetryAfterIsParsed) {
  start_server();
  auto r = get("/retry");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  ASSERT_TRUE(r->retry_after());
  EXPECT_EQ(*r->retry_after(), 7s);
  auto missing = get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneConnection) {
  start_server();
  constexpr int kN = 25;
  for (int i = 0; i < kN; ++i) {
    auto r = get("/hello");
    ASSERT_TRUE(r) << r.error().describe();
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  EXPECT_EQ(server_->stats().requests, static_cast<std::uint64_t>(kN));
  EXPECT_EQ(client().stats().connections_opened, 1u);
  EXPECT_EQ(client().stats().requests_completed, static_cast<std::uint64_t>(kN));
}

TEST_F(HttpClientTest, SixtyFourConcurrentRequests) {
  start_server();
  Client& c = client();
  auto many = [&]() -> asio::awaitable<int> {
    int ok = 0;
    int pending = 64;
    asio::steady_timer all_done(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
    for (int i = 0; i < 64; ++i) {
      asio::co_spawn(
          co_await asio::this_coro::executor,
          [&]() -> asio::awaitable<void> {
            Request r;
            r.url = base_ + "/slow";
            auto resp = co_await c.request(std::move(r));
            if (resp && resp->status == 200 && resp->body == "slow\n") ++ok;
            if (--pending == 0) all_done.cancel();
          },
          asio::detached);
    }
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return ok;
  };
  EXPECT_EQ(run_for(io_, many(), 20s), 64);
  // Each request held its connection for 20 ms, so all 64 ran at once on 64 connections.
  EXPECT_EQ(c.stats().connections_opened, 64u);
  EXPECT_EQ(server_->stats().connections_accepted, 64u);
  // A second wave reuses them.
  EXPECT_EQ(run_for(io_, many(), 20s), 64);
  EXPECT_EQ(c.stats().connections_opened, 64u);
  // A handle per request that ran at once is kept for reuse; released when idle, the
  // connections stay and a third wave still reuses them.
  EXPECT_EQ(c.idle_handles(), 64u);
  c.release_idle_handles();
  EXPECT_EQ(c.idle_handles(), 0u);
  EXPECT_EQ(run_for(io_, many(), 20s), 64);
  EXPECT_EQ(c.stats().connections_opened, 64u);
  EXPECT_EQ(server_->stats().connections_accepted, 64u);
}

TEST_F(HttpClientTest, ServerThatNeverAnswersHitsTheDeadline) {
  start_server();
  Request r;
  r.url = base_ + "/hang";
  r.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto result = run_for(io_, client().request(r), 10s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_TRUE(result.error().is(Errc::http_timeout)) << result.error().describe();
  EXPECT_EQ(result.error().error_class(), ErrorClass::transient);
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 5s);
  EXPECT_NE(result.error().message.find("/hang"), std::string::npos);
}

TEST_F(HttpClientTest, ServerResettingMidBodyIsANetworkError) {
  start_server();
  auto truncated = get("/truncated");
  ASSERT_FALSE(truncated);
  EXPECT_TRUE(truncated.error().is(Errc::http_network)) << truncated.error().describe();
  auto reset = get("/reset");
  ASSERT_FALSE(reset);
  EXPECT_TRUE(reset.error().is(Errc::http_network)) << reset.error().describe();
  // The client recovers: the next request works on a fresh connection.
  auto ok = get("/hello");
  ASSERT_TRUE(ok) << ok.error().describe();
}

TEST_F(HttpClientTest, RefusedConnectionIsReported) {
  // Find a free port by binding and closing it.
  asio::ip::tcp::acceptor a(io_, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  base_ = "http://127.0.0.1:" + std::to_string(port);
  auto r = get("/x");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_connection_refused)) << r.error().describe();
}

TEST_F(HttpClientTest, CancellationThroughAwaitableOperatorsAbortsTheTransfer) {
  start_server();
  Client& c = client();
  auto race = [&]() -> asio::awaitable<int> {
    Request r;
    r.url = base_ + "/hang";
    asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
    auto v = co_await (c.request(r) || t.async_wait(asio::use_awaitable));
    co_return static_cast<int>(v.index());
  };
  EXPECT_EQ(run_for(io_, race(), 10s), 1);
  EXPECT_EQ(c.stats().in_flight, 0u);
  EXPECT_EQ(hangs_started_, 1);
  // The aborted connection was mid-response: it must not be reused for the next request.
  auto next = get("/hello");
  ASSERT_TRUE(next) << next.error().describe();
  EXPECT_EQ(c.stats().connections_opened, 2u);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(HttpClientTest, CancellationSignalCompletesWithCancelled) {
  start_server();
  Client& c = client();
  asio::cancellation_signal signal;
  std::optional<Result<Response>> result;
  Request r;
  r.url = base_ + "/hang";
  asio::co_spawn(io_, c.request(r),
                 asio::bind_cancellation_slot(signal.slot(),
                                              [&](std::exception_ptr, Result<Response> v) { result = std::move(v); }));
  auto wait_hang = [&]() -> asio::awaitable<void> {
    while (hangs_started_ == 0) co_await sleep_for(2ms);
    signal.emit(asio::cancellation_type::terminal);
    while (!result) co_await sleep_for(2ms);
  };
  run_for(io_, wait_hang(), 10s);
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(*result);
  EXPECT_TRUE(result->error().is(Errc::cancelled)) << result->error().describe();
}

TEST_F(HttpClientTest, ShutdownWithRequestsInFlightFailsThemCleanly) {
  start_server();
  Client& c = client();
  int failed = 0;
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    Request r;
    r.url = base_ + "/hang";
    asio::co_spawn(io_, c.request(r), [&](std::exception_ptr e, Result<Response> v) {
      ++done;
      if (!e && !v && v.error().is(Errc::http_client_shutdown)) ++failed;
    });
  }
  auto scenario = [&]() -> asio::awaitable<void> {
    while (hangs_started_ < 10) co_await sleep_for(2ms);
    c.shutdown();
    while (done < 10) co_await sleep_for(2ms);
  };
  run_for(io_, scenario(), 10s);
  EXPECT_EQ(failed, 10);
  // New requests are refused, not hung.
  auto after = get("/hello");
  ASSERT_FALSE(after);
  EXPECT_TRUE(after.error().is(Errc::http_client_shutdown));
}

TEST_F(HttpClientTest, DestroyingTheClientWithRequestsInFlightIsSafe) {
  start_server();
  int done = 0;
  for (int i = 0; i < 5; ++i) {
    Request r;
    r.url = base_ + "/hang";
    asio::co_spawn(io_, client().request(r), [&](std::exception_ptr, Result<Response>) { ++done; });
  }
  auto scenario = [&]() -> asio::awaitable<void> {
    while (hangs_started_ < 5) co_await sleep_for(2ms);
    client_.reset();
    while (done < 5) co_await sleep_for(2ms);
  };
  run_for(io_, scenario(), 10s);
  EXPECT_EQ(done, 5);
}

TEST_F(HttpClientTest, ResponseLargerThanTheCapIsRejected) {
  start_server();
  ClientOptions options;
  options.max_response_bytes = 1u << 20;
  client(options);
  auto r = get("/big");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_response_too_large)) << r.error().describe();
  Request bigger;
  bigger.url = base_ + "/big";
  bigger.max_response_bytes = 4u << 20;
  auto ok = run_for(io_, client().request(bigger));
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->body.size(), 2u << 20);
}

TEST_F(HttpClientTest, HeaderInjectionIsRefused) {
  start_server();
  Request r;
  r.url = base_ + "/hello";
  r.headers = {{"X-Evil", "a\r\nX-Injected: 1"}};
  auto result = run_for(io_, client().request(r));
  ASSERT_FALSE(result);
  EXPECT_TRUE(result.error().is(Errc::invalid_argument));
}

TEST_F(HttpClientTest, ProxyIsTakenFromTheEnvironment) {
  // The "proxy" is a loopback server that answers absolute-form requests itself.
  std::string seen_target;
  Router proxy_routes;
  proxy_routes.set_fallback([&](const ServerRequest& r) -> asio::awaitable<ServerResponse> {
    seen_target = r.target;
    co_return ServerResponse::text(200, "via proxy\n");
  });
  Server proxy(io_.get_executor(), {}, proxy_routes.handler());
  ASSERT_TRUE(proxy.start());
  ::setenv("http_proxy", ("http://" + proxy.local_address()).c_str(), 1);
  Request r;
  r.url = "http://nicsync-proxy-test.invalid:8080/v1/sys/health";
  auto result = run_for(io_, client().request(r));
  ::unsetenv("http_proxy");
  proxy.stop_now();
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_EQ(result->body, "via proxy\n");
  EXPECT_EQ(seen_target, "http://nicsync-proxy-test.invalid:8080/v1/sys/health");
}

class HttpsClientTest : public HttpClientTest {
 protected:
  void SetUp() override {
    HttpClientTest::SetUp();
    pki_ = testing::make_test_pki(dir_.path().string());
  }
  void start_tls(bool require_client_cert = false) {
    ServerOptions o;
    o.tls_cert_file = pki_.server_cert;
    o.tls_key_file = pki_.server_key;
    if (require_client_cert) o.tls_client_ca_file = pki_.ca_cert;
    start_server(o);
  }
  testing::TempDir dir_{"nicsync-tls"};
  testing::TestPki pki_;
};

TEST_F(HttpsClientTest, GoodCertificatePasses) {
  start_tls();
  ClientOptions o;
  o.tls.ca_file = pki_.ca_cert;
  client(o);
  auto r = get("/hello");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->body, "hello\n");
  // And by host name.
  Request byname;
  byname.url = "https://localhost:" + std::to_string(server_->port()) + "/hello";
  auto r2 = run_for(io_, client().request(byname));
  ASSERT_TRUE(r2) << r2.error().describe();
}

TEST_F(HttpsClientTest, WrongCaFails) {
  start_tls();
  ClientOptions o;
  o.tls.ca_file = pki_.other_ca_cert;
  client(o);
  auto r = get("/hello");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_tls_verify)) << r.error().describe();
  EXPECT_EQ(r.error().error_class(), ErrorClass::permanent);
}

TEST_F(HttpsClientTest, WrongHostNameFails) {
  start_tls();
  ClientOptions o;
  o.tls.ca_file = pki_.ca_cert;
  client(o);
  const std::string port = std::to_string(server_->port());
  Request r;
  r.url = "https://vault.wrong-name.test:" + port + "/hello";
  r.connect_to = "vault.wrong-name.test:" + port + ":127.0.0.1:" + port;
  auto result = run_for(io_, client().request(r));
  ASSERT_FALSE(result);
  EXPECT_TRUE(result.error().is(Errc::http_tls_verify)) << result.error().describe();
}

TEST_F(HttpsClientTest, SkipVerifyAcceptsAnyCertificate) {
  start_tls();
  ClientOptions o;
  o.tls.verify = false;
  client(o);
  auto r = get("/hello");
  ASSERT_TRUE(r) << r.error().describe();
}

TEST_F(HttpsClientTest, ClientCertificateIsPresented) {
  start_tls(/*require_client_cert=*/true);
  {
    ClientOptions o;
    o.tls.ca_file = pki_.ca_cert;
    client(o);
    auto r = get("/hello");
    ASSERT_FALSE(r) << "server requires a client certificate";
    client_.reset();
  }
  ClientOptions o;
  o.tls.ca_file = pki_.ca_cert;
  o.tls.client_cert = pki_.client_cert;
  o.tls.client_key = pki_.client_key;
  client(o);
  auto r = get("/hello");
  ASSERT_TRUE(r) << r.error().describe();
}

}  // namespace
}  // namespace nicsync::http
