// The socket audit device's listener over loopback and a unix socket: lines however the bytes
// arrive, many connections, lines too long, half a line when a connection ends (never joined
// with the next connection's bytes), peers refused, and stopping with connections open.
#include "nicsync/watch/audit_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "testing/deadline.hpp"
#include "testing/temp_dir.hpp"

#include <sys/stat.h>

namespace nicsync::watch {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A KV v2 write's response entry for key secret/nic/K<n> (Vault 1.18-1.20 member order).
std::string change(int key, const std::string& id) {
  return fmt::format(
      R"({{"request":{{"id":"{}","mount_point":"secret/","mount_type":"kv","namespace":{{"id":"root"}},)"
      R"("operation":"update","path":"secret/data/nic/K{}"}},"time":"2025-06-05T16:10:22.29241Z","type":"response"}})"
      "\n",
      id, key);
}
// Traffic nicsyncd does not care about: a read of another key.
std::string unrelated(int i) {
  return fmt::format(
      R"({{"request":{{"id":"r{}","mount_point":"secret/","mount_type":"kv","namespace":{{"id":"root"}},)"
      R"("operation":"read","path":"secret/data/app/{}"}},"response":{{"data":{{"x":"hmac-sha256:ab"}}}},)"
      R"("time":"2025-06-05T16:10:22Z","type":"response"}})"
      "\n",
      i, i);
}

class AuditListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    feed_ = AuditFeed::create(io_.get_executor());
    auto r = std::make_shared<AuditRoutes>();
    for (int i = 0; i < 10; ++i) r->keys.insert(fmt::format("secret/nic/K{}", i));
    r->mounts.emplace("secret", KvVersion::v2);
    feed_->set_routes(std::move(r));
    AuditFeedSink sink;
    sink.changed = [this](const std::string& p) {
      changed_.push_back(p);
      wake_.cancel();
    };
    sink.resync = [this](AuditResyncReason) {
      ++resyncs_;
      wake_.cancel();
    };
    sink.connections_changed = [this] { wake_.cancel(); };
    feed_->set_sink(std::move(sink));
  }
  void TearDown() override {
    if (listener_) listener_->stop();
    testing::drain(io_);
  }

  void listen(AuditListenerOptions o) {
    auto l = AuditListener::start(std::move(o), feed_);
    ASSERT_TRUE(l) << l.error().describe();
    listener_ = std::move(*l);
  }
  tcp::endpoint endpoint() const {
    const std::string a = listener_->local_address();
    return {asio::ip::make_address(a.substr(0, a.rfind(':'))),
            static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)))};
  }

  // Waits (on events from the feed) until `pred` holds.
  template <class Pred>
  asio::awaitable<void> until(Pred pred) {
    while (!pred()) {
      wake_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await wake_.async_wait(kTuple);
    }
  }
  bool seen(const std::string& path) const {
    return std::find(changed_.begin(), changed_.end(), path) != changed_.end();
  }

  asio::io_context io_;
  std::shared_ptr<AuditFeed> feed_;
  std::unique_ptr<AuditListener> listener_;
  std::vector<std::string> changed_;
  int resyncs_ = 0;
  asio::steady_timer wake_{io_};
};

TEST_F(AuditListenerTest, LinesAreReadWholeHoweverTheBytesArrive) {
  listen({.listen = "127.0.0.1:0"});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        tcp::socket s(io_);
        co_await s.async_connect(endpoint(), asio::use_awaitable);
        // One entry a byte at a time, then a thousand unrelated ones and a change in one write.
        const std::string first = change(1, "a");
        for (char c : first) co_await asio::async_write(s, asio::buffer(&c, 1), asio::use_awaitable);
        std::string burst;
        for (int i = 0; i < 1000; ++i) burst += unrelated(i);
        burst += change(2, "b");
        co_await asio::async_write(s, asio::buffer(burst), asio::use_awaitable);
        co_await until([&] { return seen("secret/nic/K2"); });
        EXPECT_EQ(feed_->stats().connections_open, 1u);
      }(),
      10s);
  EXPECT_EQ(changed_, (std::vector<std::string>{"secret/nic/K1", "secret/nic/K2"}));
  const auto st = feed_->stats();
  EXPECT_EQ(st.entries_ignored, 1000u);
  EXPECT_EQ(st.entries_malformed, 0u);
  EXPECT_EQ(resyncs_, 1) << "a new connection asks for a resync";
}

TEST_F(AuditListenerTest, ALineTooLongIsSkippedUpToItsNewline) {
  listen({.listen = "127.0.0.1:0"});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        tcp::socket s(io_);
        co_await s.async_connect(endpoint(), asio::use_awaitable);
        // Exactly the limit is read (and is no entry); one byte more is not read at all.
        std::string at_limit(kMaxAuditLineBytes, 'x');
        at_limit += '\n';
        co_await asio::async_write(s, asio::buffer(at_limit), asio::use_awaitable);
        std::string too_long = R"({"type":"response",)" + std::string(kMaxAuditLineBytes, ' ') + "}\n";
        co_await asio::async_write(s, asio::buffer(too_long), asio::use_awaitable);
        co_await asio::async_write(s, asio::buffer(change(3, "c")), asio::use_awaitable);
        co_await until([&] { return seen("secret/nic/K3"); });
      }(),
      20s);
  const auto st = feed_->stats();
  EXPECT_EQ(st.entries_too_large, 1u);
  EXPECT_EQ(st.entries_malformed, 1u);
  EXPECT_EQ(changed_.size(), 1u);
}

TEST_F(AuditListenerTest, HalfALineAtTheEndOfAConnectionIsDroppedNeverJoined) {
  listen({.listen = "127.0.0.1:0"});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        const std::string line = change(4, "d");
        const std::string head = line.substr(0, line.size() / 2);
        const std::string tail = line.substr(line.size() / 2);
        {
          tcp::socket a(io_);
          co_await a.async_connect(endpoint(), asio::use_awaitable);
          co_await asio::async_write(a, asio::buffer(head), asio::use_awaitable);
          a.shutdown(tcp::socket::shutdown_send);
          co_await until([&] { return feed_->stats().connections_accepted == 1 && !feed_->connected(); });
        }
        // Vault writes the whole entry again on its next connection.
        tcp::socket b(io_);
        co_await b.async_connect(endpoint(), asio::use_awaitable);
        const std::string bytes = tail + line;
        co_await asio::async_write(b, asio::buffer(bytes), asio::use_awaitable);
        co_await until([&] { return seen("secret/nic/K4"); });
      }(),
      10s);
  EXPECT_EQ(changed_.size(), 1u) << "the entry once; its halves never made one";
  EXPECT_EQ(feed_->stats().entries_malformed, 2u) << "the half left on the first connection, the tail on the second";
}

TEST_F(AuditListenerTest, EveryNodeConnectsOnItsOwn) {
  listen({.listen = "127.0.0.1:0"});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        std::vector<tcp::socket> nodes;
        for (int i = 0; i < 3; ++i) {
          nodes.emplace_back(io_);
          co_await nodes.back().async_connect(endpoint(), asio::use_awaitable);
        }
        for (int i = 0; i < 3; ++i) {
          // The same write seen by every node (a forwarded request): one hint. A duplicate wakes
          // nobody, so each node's own change comes after it: once all three are seen, every
          // duplicate has been counted.
          const std::string lines = change(9, "shared") + change(5 + i, fmt::format("n{}", i));
          co_await asio::async_write(nodes[static_cast<std::size_t>(i)], asio::buffer(lines), asio::use_awaitable);
        }
        co_await until([&] { return seen("secret/nic/K5") && seen("secret/nic/K6") && seen("secret/nic/K7"); });
        EXPECT_EQ(changed_.size(), 4u);
        EXPECT_TRUE(seen("secret/nic/K9"));
        EXPECT_EQ(feed_->stats().entries_duplicate, 2u);
        EXPECT_EQ(feed_->stats().connections_open, 3u);
        for (auto& n : nodes) n.close();
        co_await until([&] { return !feed_->connected(); });
      }(),
      10s);
  EXPECT_GE(resyncs_, 1);
  EXPECT_LE(resyncs_, 3) << "connections arriving together ask once per loop turn";
}

TEST_F(AuditListenerTest, PeersOutsideAllowFromAndPastTheLimitAreRefused) {
  listen({.listen = "127.0.0.1:0", .allow_from = {"10.0.0.0/8"}});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        tcp::socket s(io_);
        co_await s.async_connect(endpoint(), asio::use_awaitable);
        char c = 0;
        auto [ec, n] = co_await asio::async_read(s, asio::buffer(&c, 1), kTuple);
        EXPECT_TRUE(ec) << "closed at once";
      }(),
      10s);
  EXPECT_EQ(feed_->stats().connections_refused, 1u);
  EXPECT_EQ(feed_->stats().connections_accepted, 0u);
  listener_->stop();

  listen({.listen = "127.0.0.1:0", .max_connections = 1});
  testing::run_for(
      io_,
      [this]() -> asio::awaitable<void> {
        tcp::socket first(io_), second(io_);
        co_await first.async_connect(endpoint(), asio::use_awaitable);
        co_await until([&] { return feed_->connected(); });
        co_await second.async_connect(endpoint(), asio::use_awaitable);
        char c = 0;
        auto [ec, n] = co_await asio::async_read(second, asio::buffer(&c, 1), kTuple);
        EXPECT_TRUE(ec);
      }(),
      10s);
  EXPECT_EQ(feed_->stats().connections_refused, 2u);
}

TEST_F(AuditListenerTest, AUnixSocketWithItsModeReplacingAStaleOne) {
  testing::TempDir dir;
  const std::string path = dir.file("audit.sock");
  listen({.listen = "unix:" + path, .socket_mode = 0620});
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0620u);
  // A second listener on the same path while the first is alive: refused.
  auto twice = AuditListener::start({.listen = "unix:" + path}, feed_);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("another process listens"), std::string::npos) << twice.error().message;
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        asio::local::stream_protocol::socket s(io_);
        co_await s.async_connect(asio::local::stream_protocol::endpoint(path), asio::use_awaitable);
        co_await asio::async_write(s, asio::buffer(change(0, "u")), asio::use_awaitable);
        co_await until([&] { return seen("secret/nic/K0"); });
      }(),
      10s);
  listener_->stop();
  EXPECT_FALSE(std::filesystem::exists(path)) << "removed on stop";
  // A socket file left behind (a killed daemon) is replaced; any other file is not.
  { asio::local::stream_protocol::acceptor stale(io_, asio::local::stream_protocol::endpoint(path)); }
  ASSERT_TRUE(std::filesystem::exists(path));
  listen({.listen = "unix:" + path});
  listener_->stop();
  testing::write_file(path, "not a socket");
  auto refused = AuditListener::start({.listen = "unix:" + path}, feed_);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("is not a socket"), std::string::npos);
  auto no_dir = AuditListener::start({.listen = "unix:" + dir.file("missing/audit.sock")}, feed_);
  ASSERT_FALSE(no_dir);
  EXPECT_NE(no_dir.error().message.find("RuntimeDirectory"), std::string::npos) << no_dir.error().message;
}

TEST_F(AuditListenerTest, AnAddressInUseSaysSo) {
  listen({.listen = "127.0.0.1:0"});
  auto again = AuditListener::start({.listen = listener_->local_address()}, feed_);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("cannot listen on " + listener_->local_address()), std::string::npos)
      << again.error().message;
}

TEST_F(AuditListenerTest, StopsWithConnectionsOpen) {
  listen({.listen = "127.0.0.1:0"});
  tcp::socket s(io_);
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await s.async_connect(endpoint(), asio::use_awaitable);
        co_await asio::async_write(s, asio::buffer(std::string("{\"half\":")), asio::use_awaitable);
        co_await until([&] { return feed_->connected(); });
      }(),
      10s);
  const auto t0 = std::chrono::steady_clock::now();
  listener_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(feed_->connected());
}

}  // namespace
}  // namespace nicsync::watch
