// The test Vault's events websocket (Enterprise mode): the checks before the upgrade, every KV
// event type and its CloudEvents shape, type globs and per-event policies, pings, dropped
// subscribers reconnecting, and what community mode answers instead.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "fake_vault_harness.hpp"

namespace nicsync::fakes::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// A minimal websocket client (RFC 6455) so these tests do not depend on the code under test
// elsewhere: upgrade, then read server frames (text, ping, close) one at a time.
class WsClient {
 public:
  struct Frame {
    int opcode = -1;  ///< 1 text, 8 close, 9 ping; -1 when the connection ended
    std::string payload;
  };

  explicit WsClient(asio::any_io_executor ex) : socket_(ex) {}

  /// Connects and sends the upgrade; returns the response head ("HTTP/1.1 101 ...").
  asio::awaitable<std::string> open(std::uint16_t port, std::string target, std::string token) {
    co_await socket_.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    std::string req = "GET " + target +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (!token.empty()) req += "X-Vault-Token: " + token + "\r\n";
    req += "\r\n";
    co_await asio::async_write(socket_, asio::buffer(req), asio::use_awaitable);
    for (;;) {
      auto end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buffer_.substr(0, end + 4);
        buffer_.erase(0, end + 4);
        // A non-101 answer carries a body: take what Content-Length says.
        auto cl = head.find("Content-Length: ");
        if (!head.starts_with("HTTP/1.1 101") && cl != std::string::npos) {
          const std::size_t n = std::stoul(head.substr(cl + 16));
          const bool body_read = co_await fill(n);
          if (!body_read) co_return head;
          body_ = buffer_.substr(0, n);
          buffer_.erase(0, n);
        }
        co_return head;
      }
      const bool more = co_await read_more();
      if (!more) co_return buffer_;
    }
  }

  [[nodiscard]] const std::string& body() const { return body_; }

  asio::awaitable<Frame> next() {
    Frame f;
    const bool have_header = co_await fill(2);
    if (!have_header) co_return f;
    const auto b0 = static_cast<unsigned char>(buffer_[0]);
    const auto b1 = static_cast<unsigned char>(buffer_[1]);
    std::size_t header = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
      const bool have_len16 = co_await fill(4);
      if (!have_len16) co_return f;
      len = (static_cast<unsigned char>(buffer_[2]) << 8) | static_cast<unsigned char>(buffer_[3]);
      header = 4;
    } else if (len == 127) {
      const bool have_len64 = co_await fill(10);
      if (!have_len64) co_return f;
      len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<unsigned char>(buffer_[i]);
      header = 10;
    }
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
    const bool have_payload = co_await fill(header + len);
    if (!have_payload) co_return f;
    f.opcode = b0 & 0x0F;
    f.payload = buffer_.substr(header, len);
    buffer_.erase(0, header + len);
    co_return f;
  }

  /// The next text frame, skipping pings.
  asio::awaitable<Frame> next_text() {
    for (;;) {
      Frame f = co_await next();
      if (f.opcode != 9) co_return f;
    }
  }

  asio::awaitable<void> send_masked_text(std::string text) {
    std::string frame;
    frame.push_back(static_cast<char>(0x81));
    frame.push_back(static_cast<char>(0x80 | text.size()));
    frame.append(4, '\0');  // mask key 0
    frame += text;
    co_await asio::async_write(socket_, asio::buffer(frame), asio::use_awaitable);
  }

 private:
  asio::awaitable<bool> read_more() {
    char buf[4096];
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), kTuple);
    if (ec) co_return false;
    buffer_.append(buf, n);
    co_return true;
  }
  asio::awaitable<bool> fill(std::size_t n) {
    while (buffer_.size() < n) {
      const bool more = co_await read_more();
      if (!more) co_return false;
    }
    co_return true;
  }

  tcp::socket socket_;
  std::string buffer_;
  std::string body_;
};

class FakeVaultEvents : public FakeVaultTest {
 protected:
  void SetUp() override {
    FakeVaultOptions o;
    o.enterprise = true;
    start(o);
  }

  // Opens a subscription and waits until the fake has registered it.
  asio::awaitable<std::string> subscribe(WsClient& ws, std::string target, std::string token = "root") {
    const auto before = vault_->event_subscribers();
    std::string head = co_await ws.open(vault_->port(), std::move(target), std::move(token));
    if (head.starts_with("HTTP/1.1 101")) {
      while (vault_->event_subscribers() == before) co_await sleep_for(std::chrono::milliseconds(1));
    }
    co_return head;
  }

  asio::awaitable<http::Response> request(std::string method, std::string path, std::string body,
                                          std::vector<http::Header> headers = {}) {
    http::Request r;
    r.method = std::move(method);
    r.url = vault_->address() + path;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.headers.push_back({"X-Vault-Token", "root"});
    auto resp = co_await client().request(std::move(r));
    EXPECT_TRUE(resp) << resp.error().describe();
    co_return resp ? std::move(*resp) : http::Response{};
  }

  // Replaces the per-event values (ids, times, vault_index) for byte comparison.
  static std::string mask_event(std::string text) {
    static const std::regex kIndex(R"("vault_index":"[A-Za-z0-9+/=]+")");
    text = std::regex_replace(text, kIndex, R"("vault_index":"<index>")");
    return mask(text);
  }

  std::string accessor() {
    return at(json(call("GET", "/v1/sys/internal/ui/mounts/secret/x")), "data.accessor").text();
  }
};

TEST_F(FakeVaultEvents, EveryKvV2EventTypeWithItsShape) {
  const std::string acc = accessor();
  std::vector<std::string> frames;
  auto scenario = [&]() -> asio::awaitable<void> {
    WsClient ws(co_await asio::this_coro::executor);
    const auto head = co_await subscribe(ws, "/v1/sys/events/subscribe/kv-v2/*?json=true");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
    const std::vector<http::Header> patch = {{"Content-Type", "application/merge-patch+json"}};
    struct Step {
      std::string method, path, body;
      bool patch = false;
    };
    const std::vector<Step> steps = {
        {"PUT", "/v1/secret/data/app/db", R"({"data":{"password":"a"}})"},
        {"PATCH", "/v1/secret/data/app/db", R"({"data":{"password":"b"}})", true},
        {"DELETE", "/v1/secret/data/app/db", ""},
        {"POST", "/v1/secret/delete/app/db", R"({"versions":[1,2]})"},
        {"POST", "/v1/secret/undelete/app/db", R"({"versions":["1","2"]})"},
        {"POST", "/v1/secret/destroy/app/db", R"({"versions":[1]})"},
        {"POST", "/v1/secret/metadata/app/db", R"({"max_versions":5})"},
        {"PATCH", "/v1/secret/metadata/app/db", R"({"custom_metadata":{"a":"b"}})", true},
        {"DELETE", "/v1/secret/metadata/app/db", ""},
        {"POST", "/v1/secret/config", R"({"max_versions":20})"},
    };
    for (const auto& s : steps) {
      // Named first: a temporary inside a co_await expression is destroyed twice by g++ 12.
      std::vector<http::Header> headers;
      if (s.patch) headers = patch;
      auto r = co_await request(s.method, s.path, s.body, std::move(headers));
      EXPECT_LT(r.status, 300) << s.method << " " << s.path << ": " << r.body;
      auto f = co_await ws.next_text();
      EXPECT_EQ(f.opcode, 1);
      frames.push_back(f.payload);
    }
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  ASSERT_EQ(frames.size(), 10u);
  auto envelope = [&](const std::string& type, const std::string& metadata) {
    return R"({"id":"<uuid>","source":"vault://vault-cluster-<hex>-node-1","specversion":"1.0","type":"*","data":)"
           R"({"event":{"id":"<uuid>","metadata":)" +
           metadata + R"(},"event_type":")" + type + R"(","plugin_info":{"mount_class":"secret","mount_accessor":")" +
           acc +
           R"(","mount_path":"secret/","plugin":"kv"}},"datacontentype":"application/cloudevents","time":"<time>"})";
  };
  auto masked = [&](std::size_t i) {
    static const std::regex kSource(R"(vault-cluster-[0-9a-f]{8})");
    return std::regex_replace(mask_event(frames.at(i)), kSource, "vault-cluster-<hex>");
  };
  EXPECT_EQ(masked(0),
            envelope("kv-v2/data-write", R"({"current_version":"1","data_path":"secret/data/app/db","modified":"true",)"
                                         R"("oldest_version":"0","operation":"data-write","path":"secret/data/app/db",)"
                                         R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(1),
            envelope("kv-v2/data-patch", R"({"current_version":"2","data_path":"secret/data/app/db","modified":"true",)"
                                         R"("oldest_version":"0","operation":"data-patch","path":"secret/data/app/db",)"
                                         R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(2), envelope("kv-v2/data-delete",
                                R"({"current_version":"2","modified":"true","oldest_version":"0",)"
                                R"("operation":"data-delete","path":"secret/data/app/db","vault_index":"<index>"})"));
  EXPECT_EQ(masked(3),
            envelope("kv-v2/delete", R"({"current_version":"2","deleted_versions":"[1,2]","modified":"true",)"
                                     R"("oldest_version":"0","operation":"delete","path":"secret/delete/app/db",)"
                                     R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(4),
            envelope("kv-v2/undelete", R"({"current_version":"2","data_path":"secret/data/app/db","modified":"true",)"
                                       R"("oldest_version":"0","operation":"undelete","path":"secret/undelete/app/db",)"
                                       R"("undeleted_versions":"[1,2]","vault_index":"<index>"})"));
  EXPECT_EQ(masked(5),
            envelope("kv-v2/destroy", R"({"current_version":"2","destroyed_versions":"[1]","modified":"true",)"
                                      R"("oldest_version":"0","operation":"destroy","path":"secret/destroy/app/db",)"
                                      R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(6),
            envelope("kv-v2/metadata-write", R"({"data_path":"secret/metadata/app/db","modified":"true",)"
                                             R"("operation":"metadata-write","path":"secret/metadata/app/db",)"
                                             R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(7),
            envelope("kv-v2/metadata-patch", R"({"data_path":"secret/metadata/app/db","modified":"true",)"
                                             R"("operation":"metadata-patch","path":"secret/metadata/app/db",)"
                                             R"("vault_index":"<index>"})"));
  EXPECT_EQ(masked(8),
            envelope("kv-v2/metadata-delete", R"({"modified":"true","operation":"metadata-delete",)"
                                              R"("path":"secret/metadata/app/db","vault_index":"<index>"})"));
  EXPECT_EQ(masked(9), envelope("kv-v2/config-write",
                                R"({"data_path":"secret/config","modified":"true","operation":"config-write",)"
                                R"("path":"secret/config","vault_index":"<index>"})"));
  // The same id in the envelope and in data.event; a fresh one per event.
  auto first = parse_go_json(frames[0]);
  ASSERT_TRUE(first);
  EXPECT_EQ(at(*first, "id").text(), at(*first, "data.event.id").text());
  EXPECT_NE(at(*first, "id").text(), at(*parse_go_json(frames[1]), "id").text());
}

TEST_F(FakeVaultEvents, TypeGlobsAndKvV1Events) {
  std::vector<std::string> data_only, v1;
  auto scenario = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    WsClient a(ex), b(ex);
    co_await subscribe(a, "/v1/sys/events/subscribe/kv-v2/data-*?json=true");
    co_await subscribe(b, "/v1/sys/events/subscribe/kv-v1/*?json=1");
    co_await request("POST", "/v1/secret/metadata/x", R"({"max_versions":2})");  // not data-*
    co_await request("PUT", "/v1/secret/data/x", R"({"data":{"a":"1"}})");
    co_await request("PUT", "/v1/kv/flat", R"({"a":"1"})");
    co_await request("DELETE", "/v1/kv/flat", "");
    data_only.push_back((co_await a.next_text()).payload);
    v1.push_back((co_await b.next_text()).payload);
    v1.push_back((co_await b.next_text()).payload);
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  EXPECT_EQ(at(*parse_go_json(data_only.at(0)), "data.event_type").text(), "kv-v2/data-write");
  auto w = *parse_go_json(v1.at(0));
  EXPECT_EQ(at(w, "data.event_type").text(), "kv-v1/write");
  EXPECT_EQ(at(w, "data.event.metadata.path").text(), "kv/flat");
  EXPECT_EQ(at(w, "data.event.metadata.data_path").text(), "kv/flat");
  EXPECT_EQ(at(w, "data.plugin_info.mount_path").text(), "kv/");
  auto d = *parse_go_json(v1.at(1));
  EXPECT_EQ(at(d, "data.event_type").text(), "kv-v1/delete");
  EXPECT_FALSE(at(d, "data.event.metadata").find("data_path"));
}

TEST_F(FakeVaultEvents, ChecksBeforeTheUpgrade) {
  vault_->set_policy("events", {{"sys/events/subscribe/*", {"read"}}});
  const auto allowed = vault_->create_token({.policies = {"events"}});
  const auto other = vault_->create_token({});
  auto get = [&](const std::string& target, const std::string& token) { return call("GET", target, {}, {}, token); };
  auto r = get("/v1/sys/events/subscribe/kv-v2/*?json=true", "");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "{\"errors\":[\"permission denied\"]}\n");
  EXPECT_EQ(get("/v1/sys/events/subscribe/kv-v2/*?json=true", "hvs.dead").body,
            "{\"errors\":[\"permission denied\"]}\n");
  EXPECT_EQ(get("/v1/sys/events/subscribe/kv-v2/*?json=true", other).body, "{\"errors\":[\"permission denied\"]}\n");
  r = get("/v1/sys/events/subscribe/?json=true", allowed);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"errors\":[\"did not specify eventType to subscribe to\"]}\n");
  r = get("/v1/sys/events/subscribe/kv-v2/*?json=maybe", allowed);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"errors\":[\"invalid parameter for JSON: maybe\"]}\n");
  r = get("/v1/sys/events/subscribe/kv-v2/*?json=true", allowed);
  EXPECT_EQ(r.status, 426) << "no upgrade headers";
  EXPECT_EQ(r.body, "WebSocket protocol violation: Connection header \"\" does not contain Upgrade\n");
  vault_->seal();
  EXPECT_EQ(get("/v1/sys/events/subscribe/kv-v2/*?json=true", allowed).status, 503);
}

TEST_F(FakeVaultEvents, PerEventPoliciesAndBinaryRefusal) {
  vault_->set_policy_rules("sub", {{"sys/events/subscribe/*", {"read"}, {}},
                                   {"secret/data/app/*", {"list", "subscribe"}, {"kv-v2/*"}},
                                   {"secret/data/other/*", {"list", "subscribe"}, {"kv-v1/*"}}});
  const auto token = vault_->create_token({.policies = {"sub"}});
  std::string got;
  WsClient::Frame binary_close;
  auto scenario = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    WsClient ws(ex);
    auto head = co_await subscribe(ws, "/v1/sys/events/subscribe/kv-v2/*?json=true", token);
    EXPECT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
    co_await request("PUT", "/v1/secret/data/hidden", R"({"data":{"a":"1"}})");   // no access to the path
    co_await request("PUT", "/v1/secret/data/other/x", R"({"data":{"a":"1"}})");  // wrong event types
    co_await request("PUT", "/v1/secret/data/app/db", R"({"data":{"a":"1"}})");   // allowed
    got = (co_await ws.next_text()).payload;
    WsClient bin(ex);
    head = co_await bin.open(vault_->port(), "/v1/sys/events/subscribe/kv-v2/*", "root");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
    binary_close = co_await bin.next();
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  EXPECT_EQ(at(*parse_go_json(got), "data.event.metadata.path").text(), "secret/data/app/db");
  EXPECT_EQ(binary_close.opcode, 8);
  EXPECT_EQ(binary_close.payload.substr(0, 2), std::string("\x03\xEB", 2)) << "close code 1003";
}

TEST_F(FakeVaultEvents, PingsAndDroppedSubscribersReconnect) {
  vault_->stop();
  FakeVaultOptions o;
  o.enterprise = true;
  o.event_ping_interval = std::chrono::milliseconds(50);
  start(o);
  int pings = 0;
  std::string after_reconnect;
  int end_opcode = 0;
  auto scenario = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    WsClient ws(ex);
    co_await subscribe(ws, "/v1/sys/events/subscribe/*?json=true");
    while (pings < 2) {
      auto f = co_await ws.next();
      if (f.opcode == 9) ++pings;
      if (f.opcode < 0) break;
    }
    vault_->drop_connections();
    auto f = co_await ws.next();
    while (f.opcode == 9) f = co_await ws.next();
    end_opcode = f.opcode;
    while (vault_->event_subscribers() != 0) co_await sleep_for(std::chrono::milliseconds(1));
    WsClient again(ex);
    co_await subscribe(again, "/v1/sys/events/subscribe/*?json=true");
    co_await request("PUT", "/v1/secret/data/k", R"({"data":{"a":"1"}})");
    after_reconnect = (co_await again.next_text()).payload;
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  EXPECT_EQ(pings, 2);
  EXPECT_EQ(end_opcode, -1) << "dropped without a close frame";
  EXPECT_EQ(at(*parse_go_json(after_reconnect), "data.event_type").text(), "kv-v2/data-write");
  EXPECT_EQ(vault_->count_requests("GET", "/v1/sys/events/subscribe/*"), 2u);
}

TEST_F(FakeVaultEvents, DataMessagesFromTheClientCloseTheSubscription) {
  WsClient::Frame close;
  auto scenario = [&]() -> asio::awaitable<void> {
    WsClient ws(co_await asio::this_coro::executor);
    co_await subscribe(ws, "/v1/sys/events/subscribe/*?json=true");
    co_await ws.send_masked_text("hello");
    close = co_await ws.next_text();
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  EXPECT_EQ(close.opcode, 8);
  EXPECT_EQ(close.payload.substr(0, 2), std::string("\x03\xF0", 2)) << "close code 1008";
}

TEST_F(FakeVaultEvents, CommunityVaultHasNoEventsEndpoint) {
  vault_->stop();
  start();
  auto r = call("GET", "/v1/sys/events/subscribe/kv-v2/*?json=true");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"errors\":[\"1 error occurred:\\n\\t* unsupported path\\n\\n\"]}\n");
  const auto nobody = vault_->create_token({});
  r = call("GET", "/v1/sys/events/subscribe/kv-v2/*?json=true", {}, {}, nobody);
  EXPECT_EQ(r.status, 403);
  std::string head;
  auto scenario = [&]() -> asio::awaitable<void> {
    WsClient ws(co_await asio::this_coro::executor);
    head = co_await ws.open(vault_->port(), "/v1/sys/events/subscribe/kv-v2/*?json=true", "root");
  };
  nicsync::testing::run_for(io_, scenario(), std::chrono::seconds(20));
  EXPECT_TRUE(head.starts_with("HTTP/1.1 404")) << head;
}

}  // namespace
}  // namespace nicsync::fakes::testing
