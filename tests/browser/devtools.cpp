// Headless Chromium over the DevTools protocol (see devtools.hpp). The one websocket is Beast's,
// driven on a private io_context: each operation runs the context for at most its deadline.
#include "devtools.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

namespace nicsync::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned bits = 0;
  int n = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding
    bits = (bits << 6) | static_cast<unsigned>(v);
    n += 6;
    if (n >= 8) out.push_back(static_cast<char>((bits >> (n -= 8)) & 0xffu));
  }
  return out;
}

}  // namespace

struct Browser::Connection {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};

  // Runs the context until `done` or the deadline; on the deadline cancels and throws.
  void drive(const bool& done, Clock::time_point deadline, const char* what) {
    io.restart();
    while (!done && Clock::now() < deadline) io.run_one_until(deadline);
    if (!done) {
      beast::get_lowest_layer(ws).cancel();
      io.restart();
      io.run();
      throw std::runtime_error(fmt::format("DevTools: {} timed out", what));
    }
  }

  void open(const std::string& host, const std::string& port, const std::string& target, Clock::time_point deadline) {
    bool done = false;
    beast::error_code error;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, port);
    beast::get_lowest_layer(ws).expires_at(deadline);
    beast::get_lowest_layer(ws).async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
      error = ec;
      done = true;
    });
    drive(done, deadline, "connect");
    if (error) throw std::runtime_error("DevTools: connect: " + error.message());
    beast::get_lowest_layer(ws).expires_never();
    ws.read_message_max(64u << 20);  // screenshots are large
    done = false;
    ws.async_handshake(host + ":" + port, target, [&](beast::error_code ec) {
      error = ec;
      done = true;
    });
    drive(done, deadline, "handshake");
    if (error) throw std::runtime_error("DevTools: handshake: " + error.message());
  }

  void send(const std::string& text, Clock::time_point deadline) {
    bool done = false;
    beast::error_code error;
    ws.text(true);
    ws.async_write(asio::buffer(text), [&](beast::error_code ec, std::size_t) {
      error = ec;
      done = true;
    });
    drive(done, deadline, "write");
    if (error) throw std::runtime_error("DevTools: write: " + error.message());
  }

  json::object receive(Clock::time_point deadline) {
    bool done = false;
    beast::error_code error;
    beast::flat_buffer buffer;
    ws.async_read(buffer, [&](beast::error_code ec, std::size_t) {
      error = ec;
      done = true;
    });
    drive(done, deadline, "read");
    if (error) throw std::runtime_error("DevTools: read: " + error.message());
    return json::parse(beast::buffers_to_string(buffer.data())).as_object();
  }
};

std::string find_chromium() {
  if (const char* p = std::getenv("NICSYNC_CHROMIUM"); p != nullptr && *p != '\0') return p;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

Browser::Browser(std::chrono::milliseconds timeout) {
  const std::string program = find_chromium();
  if (program.empty()) throw std::runtime_error("chromium is not installed (scripts/deps installs it)");
  // A fresh profile, no first-run work, nothing that talks to the network by itself. As root
  // (CI) chromium needs --no-sandbox.
  process_ = std::make_unique<Process>(ProcessOptions{
      .argv = {program, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
               "--user-data-dir=" + profile_.path().string(), "--remote-debugging-address=127.0.0.1",
               "--remote-debugging-port=0", "about:blank"},
      .env = {"HOME=" + profile_.path().string()},
      .unset_env = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"},
      .cwd = profile_.path().string(),
      .log_file = profile_.file("chromium.log")});
  constexpr std::string_view kListening = "DevTools listening on ws://";
  auto at = process_->wait_for_output(std::string(kListening), timeout);
  if (!at) throw std::runtime_error("chromium did not offer DevTools:\n" + process_->output());
  const std::string out = process_->output();
  const auto end = out.find_first_of("\r\n", *at);
  const std::string rest = out.substr(*at, end == std::string::npos ? std::string::npos : end - *at);
  // 127.0.0.1:PORT/devtools/browser/ID
  const auto colon = rest.find(':');
  const auto slash = rest.find('/');
  if (colon == std::string::npos || slash == std::string::npos || slash < colon) {
    throw std::runtime_error("cannot read the DevTools address from: " + rest);
  }
  connection_ = std::make_unique<Connection>();
  connection_->open(rest.substr(0, colon), rest.substr(colon + 1, slash - colon - 1), rest.substr(slash),
                    Clock::now() + timeout);
}

Browser::~Browser() {
  if (connection_) {
    try {
      call("Browser.close", {}, {}, std::chrono::seconds(5));
    } catch (const std::exception&) {
      // it may close the socket before answering
    }
  }
  connection_.reset();
  if (process_ && !process_->wait(std::chrono::seconds(10))) process_->kill();
}

json::object Browser::call(const std::string& method, json::object params, const std::string& session,
                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const long id = next_id_++;
  json::object message{{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) message["sessionId"] = session;
  connection_->send(json::serialize(message), deadline);
  for (;;) {
    json::object m;
    try {
      m = connection_->receive(deadline);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{} (waiting for the answer to {})", e.what(), method));
    }
    if (const auto* mid = m.if_contains("id"); mid && mid->is_int64() && mid->as_int64() == id) {
      if (const auto* e = m.if_contains("error")) {
        throw std::runtime_error(fmt::format("DevTools {} failed: {}", method, json::serialize(*e)));
      }
      const auto* r = m.if_contains("result");
      return r && r->is_object() ? r->as_object() : json::object{};
    }
    if (m.contains("method")) events_.push_back(std::move(m));
  }
}

json::object Browser::wait_event(const std::string& method, const std::string& session,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto matches = [&](const json::object& m) {
    const auto* s = m.if_contains("sessionId");
    const std::string_view in = s && s->is_string() ? std::string_view(s->as_string()) : std::string_view{};
    return m.at("method").as_string() == method && in == session;
  };
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (matches(*it)) {
      json::object m = std::move(*it);
      events_.erase(it);
      const auto* p = m.if_contains("params");
      return p && p->is_object() ? p->as_object() : json::object{};
    }
  }
  for (;;) {
    json::object m;
    try {
      m = connection_->receive(deadline);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{} (waiting for the event {})", e.what(), method));
    }
    if (!m.contains("method")) continue;
    if (matches(m)) {
      const auto* p = m.if_contains("params");
      return p && p->is_object() ? p->as_object() : json::object{};
    }
    events_.push_back(std::move(m));
  }
}

void Browser::clear_events() { events_.clear(); }

std::string Browser::open_tab(int width, int height) {
  auto target = call("Target.createTarget", {{"url", "about:blank"}});
  auto attached = call("Target.attachToTarget", {{"targetId", target.at("targetId")}, {"flatten", true}});
  const std::string session(attached.at("sessionId").as_string());
  call("Page.enable", {}, session);
  call("Emulation.setDeviceMetricsOverride",
       {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", width < 600}}, session);
  return session;
}

void Browser::navigate(const std::string& session, const std::string& url) {
  events_.erase(std::remove_if(events_.begin(), events_.end(),
                               [&](const json::object& m) {
                                 const auto* s = m.if_contains("sessionId");
                                 return s && s->is_string() && s->as_string() == session &&
                                        m.at("method").as_string() == "Page.loadEventFired";
                               }),
                events_.end());
  auto r = call("Page.navigate", {{"url", url}}, session);
  if (const auto* e = r.if_contains("errorText"); e && e->is_string() && !e->as_string().empty()) {
    throw std::runtime_error(fmt::format("navigating to {} failed: {}", url, std::string_view(e->as_string())));
  }
  wait_event("Page.loadEventFired", session);
}

json::value Browser::eval(const std::string& session, const std::string& expression,
                          std::chrono::milliseconds timeout) {
  auto r =
      call("Runtime.evaluate",
           {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}, {"timeout", timeout.count()}},
           session, timeout + std::chrono::seconds(2));
  if (const auto* ex = r.if_contains("exceptionDetails")) {
    throw std::runtime_error("script failed: " + json::serialize(*ex));
  }
  const auto& result = r.at("result").as_object();
  const auto* v = result.if_contains("value");
  return v ? *v : json::value(nullptr);
}

void Browser::screenshot(const std::string& session, const std::string& path) {
  auto r = call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}}, session,
                std::chrono::seconds(30));
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << base64_decode(std::string_view(r.at("data").as_string()));
}

}  // namespace nicsync::testing
