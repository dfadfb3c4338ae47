// The Beast listener: routing, limits, timeouts, fault actions, websocket upgrade and the
// two-phase shutdown, driven by raw loopback sockets and by the project's own client.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "nicsync/http/server.hpp"
#include "testing/deadline.hpp"

namespace nicsync::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using testing::run_for;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Sends raw bytes and reads until the peer closes or `limit` passes.
asio::awaitable<std::string> raw_exchange(std::uint16_t port, std::string request, std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  co_await s.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  if (!request.empty()) co_await asio::async_write(s, asio::buffer(request), asio::use_awaitable);
  std::string out;
  asio::steady_timer guard(ex, limit);
  guard.async_wait([&](boost::system::error_code ec) {
    if (!ec) s.close();
  });
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
    out.append(buf, n);
    if (ec) break;
  }
  guard.cancel();
  co_return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/healthz", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, "ok\n");
    });
    router_.add("POST", "/items", [](const ServerRequest& r) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, "got " + std::to_string(r.body.size()) + "\n");
    });
    router_.add("GET", "/items", [](const ServerRequest& r) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, "q=" + r.query_param("q").value_or("<none>") + "\n");
    });
    router_.add_prefix("GET", "/v1/", [](const ServerRequest& r) -> asio::awaitable<ServerResponse> {
      co_return ServerResponse::text(200, "prefix " + r.path + "\n");
    });
    router_.add("GET", "/slow", [this](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      ++slow_started_;
      co_await sleep_for(300ms);
      co_return ServerResponse::text(200, "slow done\n");
    });
    router_.add("GET", "/hang", [this](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      ++hang_started_;
      try {
        co_await sleep_for(1h);
      } catch (const boost::system::system_error&) {
        ++hang_cancelled_;
        throw;
      }
      co_return ServerResponse::text(200, "never\n");
    });
    router_.add("GET", "/throws", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      throw std::runtime_error("boom");
      co_return ServerResponse::text(200, "unreachable\n");
    });
    router_.add("GET", "/ws", [this](const ServerRequest&) -> asio::awaitable<ServerResponse> {
      ServerResponse r;
      r.status = 400;
      r.body = "websocket only\n";
      r.websocket = [this](WebSocket& ws) -> asio::awaitable<void> {
        ++ws_sessions_;
        co_await ws.send_text("first");
        co_await ws.send_text("second");
        auto msg = co_await ws.read();
        if (msg) last_ws_message_ = *msg;
        co_await ws.close(1000, "bye");
      };
      co_return r;
    });
  }

  void start(ServerOptions o = {}) {
    server_ = std::make_unique<Server>(io_.get_executor(), std::move(o), router_.handler());
    auto started = server_->start();
    ASSERT_TRUE(started) << started.error().describe();
  }

  void TearDown() override {
    if (server_) server_->stop_now();
    testing::drain(io_);
    server_.reset();
    testing::drain(io_);
  }

  std::string raw(std::string request, std::chrono::milliseconds limit = 3s) {
    return run_for(io_, raw_exchange(server_->port(), std::move(request), limit), limit + 5s);
  }

  asio::io_context io_;
  Router router_;
  std::unique_ptr<Server> server_;
  int slow_started_ = 0;
  int hang_started_ = 0;
  int hang_cancelled_ = 0;
  int ws_sessions_ = 0;
  std::string last_ws_message_;
};

TEST_F(HttpServerTest, RoutesExactPrefixUnknownAndWrongMethod) {
  start();
  EXPECT_NE(raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("HTTP/1.1 200 OK"),
            std::string::npos);
  auto prefix = raw("GET /v1/secret/data/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(prefix.find("prefix /v1/secret/data/a"), std::string::npos) << prefix;
  auto missing = raw("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(missing.find("HTTP/1.1 404"), std::string::npos) << missing;
  auto wrong = raw("DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(wrong.find("HTTP/1.1 405"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("Allow: GET"), std::string::npos) << wrong;
  auto query = raw("GET /items?a=1&q=hello%20world HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(query.find("q=hello world"), std::string::npos) << query;
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500AndTheServerLives) {
  start();
  auto r = raw("GET /throws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 500"), std::string::npos) << r;
  EXPECT_NE(raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("200 OK"), std::string::npos);
}

TEST_F(HttpServerTest, BodyLimitGives413) {
  ServerOptions o;
  o.body_limit = 1000;
  start(o);
  std::string small = "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789";
  EXPECT_NE(raw(small).find("got 10"), std::string::npos);
  std::string big = "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x');
  auto r = raw(big);
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
}

TEST_F(HttpServerTest, HeaderLimitGives431AndGarbageGives400) {
  ServerOptions o;
  o.header_limit = 2048;
  start(o);
  auto big = raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  EXPECT_NE(big.find("HTTP/1.1 431"), std::string::npos) << big.substr(0, 100);
  auto garbage = raw("\x16\x03\x01 not http at all\r\n\r\n");
  EXPECT_NE(garbage.find("HTTP/1.1 400"), std::string::npos) << garbage;
}

TEST_F(HttpServerTest, SlowHeadersAreCutOffByTheHeaderTimeout) {
  ServerOptions o;
  o.header_timeout = 300ms;
  o.idle_timeout = 10s;
  start(o);
  const auto begin = std::chrono::steady_clock::now();
  // A first byte arrives, the rest never does (slowloris).
  auto r = raw("GET /healthz HTTP/1.1\r\nHost:", 5s);
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(r.find("200 OK"), std::string::npos);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s) << "the server must close the connection, not the client's 5 s guard";
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  ServerOptions o;
  o.idle_timeout = 200ms;
  start(o);
  const auto begin = std::chrono::steady_clock::now();
  auto r = raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s);  // keep-alive, then idle
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_NE(r.find("200 OK"), std::string::npos);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 3s);
}

TEST_F(HttpServerTest, AtTheConnectionLimitTheOldestIdleConnectionMakesRoom) {
  ServerOptions o;
  o.max_connections = 4;
  o.idle_timeout = 60s;
  start(o);
  // Four connections that never send anything fill the server...
  std::vector<std::unique_ptr<tcp::socket>> idle;
  run_for(io_, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 4; ++i) {
      idle.push_back(std::make_unique<tcp::socket>(io_));
      co_await idle.back()->async_connect({asio::ip::make_address("127.0.0.1"), server_->port()}, asio::use_awaitable);
    }
    co_await sleep_for(50ms);  // accepted
  }());
  EXPECT_EQ(server_->stats().open_connections, 4u);
  // ...yet a real request is served, and the oldest idle connection was the one closed.
  const std::string reply = raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_EQ(server_->stats().idle_closed_at_limit, 1u);
  auto closed = [&](tcp::socket& s) {
    return run_for(io_, [&]() -> asio::awaitable<bool> {
      char b;
      asio::steady_timer t(io_, 500ms);
      t.async_wait([&](boost::system::error_code ec) {
        if (!ec) s.cancel();
      });
      auto [ec, n] = co_await s.async_read_some(asio::buffer(&b, 1), kTuple);
      t.cancel();
      co_return ec == asio::error::eof || ec == asio::error::connection_reset;
    }());
  };
  EXPECT_TRUE(closed(*idle[0]));
  for (int i = 1; i < 4; ++i) EXPECT_FALSE(closed(*idle[i])) << i;
}

TEST_F(HttpServerTest, FaultActionsDropResetAndTruncate) {
  router_.add("GET", "/drop", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
    ServerResponse r;
    r.action = ServerResponse::Action::drop;
    co_return r;
  });
  router_.add("GET", "/truncate", [](const ServerRequest&) -> asio::awaitable<ServerResponse> {
    auto r = ServerResponse::text(200, std::string(100, 'z'));
    r.truncate_body_at = 10;
    co_return r;
  });
  start();
  EXPECT_EQ(raw("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  auto t = raw("GET /truncate HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(t.find("Content-Length: 100"), std::string::npos) << t;
  EXPECT_NE(t.find("\r\n\r\nzzzzzzzzzz"), std::string::npos);
  EXPECT_EQ(t.find(std::string(11, 'z')), std::string::npos);
}

TEST_F(HttpServerTest, ExpectContinueIsHonoured) {
  start();
  auto r = raw(
      "POST /items HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  EXPECT_NE(r.find("HTTP/1.1 100 Continue"), std::string::npos) << r;
  EXPECT_NE(r.find("got 3"), std::string::npos) << r;
}

TEST_F(HttpServerTest, GracefulStopLetsRequestsInProgressFinish) {
  start();
  Client client(io_.get_executor());
  std::optional<Result<Response>> slow;
  Request r;
  r.url = "http://" + server_->local_address() + "/slow";
  asio::co_spawn(io_, client.request(r), [&](std::exception_ptr, Result<Response> v) { slow = std::move(v); });
  auto scenario = [&]() -> asio::awaitable<void> {
    while (slow_started_ == 0) co_await sleep_for(2ms);
    co_await server_->stop(2s);
  };
  run_for(io_, scenario(), 10s);
  ASSERT_TRUE(slow.has_value());
  ASSERT_TRUE(*slow) << slow->error().describe();
  EXPECT_EQ((*slow)->body, "slow done\n");
  EXPECT_EQ((*slow)->header("Connection").value_or(""), "close");
  EXPECT_EQ(server_->stats().open_connections, 0u);
  // The listener is gone.
  Request after;
  after.url = "http://" + server_->local_address() + "/healthz";
  auto refused = run_for(io_, client.request(after));
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::http_connection_refused)) << refused.error().describe();
}

TEST_F(HttpServerTest, StopCancelsHandlersThatOutliveTheGrace) {
  start();
  Client client(io_.get_executor());
  std::optional<Result<Response>> hung;
  Request r;
  r.url = "http://" + server_->local_address() + "/hang";
  asio::co_spawn(io_, client.request(r), [&](std::exception_ptr, Result<Response> v) { hung = std::move(v); });
  auto scenario = [&]() -> asio::awaitable<void> {
    while (hang_started_ == 0) co_await sleep_for(2ms);
    const auto begin = std::chrono::steady_clock::now();
    co_await server_->stop(200ms);
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
    while (!hung) co_await sleep_for(2ms);
  };
  run_for(io_, scenario(), 10s);
  EXPECT_EQ(hang_cancelled_, 1);
  ASSERT_TRUE(hung.has_value());
  EXPECT_FALSE(*hung) << "the client sees the connection close";
  EXPECT_EQ(server_->stats().open_connections, 0u);
}

TEST_F(HttpServerTest, IdleConnectionsCloseAtOnceOnStop) {
  start();
  Client client(io_.get_executor());
  Request r;
  r.url = "http://" + server_->local_address() + "/healthz";
  auto ok = run_for(io_, client.request(r));
  ASSERT_TRUE(ok);
  EXPECT_EQ(server_->stats().open_connections, 1u);  // kept alive
  auto scenario = [&]() -> asio::awaitable<void> {
    const auto begin = std::chrono::steady_clock::now();
    co_await server_->stop(5s);
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s) << "idle connections must not wait for the grace";
  };
  run_for(io_, scenario(), 10s);
  EXPECT_EQ(server_->stats().open_connections, 0u);
}

TEST_F(HttpServerTest, WebSocketUpgrade) {
  start();
  // A hand-made websocket client: upgrade, read two text frames, send one masked frame.
  auto scenario = [&]() -> asio::awaitable<void> {
    tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect({asio::ip::make_address("127.0.0.1"), server_->port()}, asio::use_awaitable);
    std::string up =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    co_await asio::async_write(s, asio::buffer(up), asio::use_awaitable);
    std::string got;
    char buf[512];
    while (got.find("second") == std::string::npos) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      got.append(buf, n);
    }
    EXPECT_NE(got.find("HTTP/1.1 101"), std::string::npos);
    EXPECT_NE(got.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos);
    EXPECT_NE(got.find("first"), std::string::npos);
    // Masked text frame "hi" (FIN, opcode 1, mask bit, len 2, key 0).
    const unsigned char frame[] = {0x81, 0x82, 0, 0, 0, 0, 'h', 'i'};
    co_await asio::async_write(s, asio::buffer(frame), asio::use_awaitable);
    while (last_ws_message_.empty()) co_await sleep_for(2ms);
  };
  run_for(io_, scenario(), 10s);
  EXPECT_EQ(ws_sessions_, 1);
  EXPECT_EQ(last_ws_message_, "hi");
  // A plain GET to the same route gets the normal response.
  auto plain = raw("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(plain.find("HTTP/1.1 400"), std::string::npos) << plain;
}

TEST_F(HttpServerTest, ListenErrorsAreClear) {
  start();
  ServerOptions o;
  o.listen = server_->local_address();  // taken
  Server second(io_.get_executor(), o, router_.handler());
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot listen on " + o.listen), std::string::npos) << r.error().message;
  ServerOptions bad;
  bad.listen = "example.com:80";
  Server third(io_.get_executor(), bad, router_.handler());
  auto r3 = third.start();
  ASSERT_FALSE(r3);
  EXPECT_NE(r3.error().message.find("is not an IP address"), std::string::npos) << r3.error().message;
}

TEST(HostPort, SplitAndLoopback) {
  auto a = split_host_port("127.0.0.1:9464");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 9464);
  auto b = split_host_port("[::1]:80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, "::1");
  EXPECT_FALSE(split_host_port("::1:80"));
  EXPECT_FALSE(split_host_port("host:99999"));
  EXPECT_FALSE(split_host_port(":80"));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.8.9.10"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
}

}  // namespace
}  // namespace nicsync::http
