// The test Vault's event notifications (Vault Enterprise >= 1.16, reference §6): the
// sys/events/subscribe websocket and the CloudEvents messages the KV plugin's events become.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
namespace asio = boost::asio;
using detail::Reply;

namespace {

constexpr std::string_view kSubscribePrefix = "sys/events/subscribe";

// Reads until the peer sends a data message (true) or the connection ends (false). Vault
// never reads from subscribers; it closes on unexpected data.
asio::awaitable<bool> read_until_message(http::WebSocket* ws) {
  auto msg = co_await ws->read();
  co_return msg.has_value();
}

asio::awaitable<void> write_events(std::shared_ptr<FakeVault::Impl> self, std::shared_ptr<detail::Subscription> sub,
                                   http::WebSocket* ws) {
  const auto interval = self->options.event_ping_interval;
  auto next_ping = std::chrono::steady_clock::now() + interval;
  for (;;) {
    while (!sub->queue.empty()) {
      std::string msg = std::move(sub->queue.front());
      sub->queue.pop_front();
      auto sent = co_await ws->send_text(std::move(msg));
      if (!sent) co_return;
    }
    if (sub->closed) co_return;
    sub->wake.expires_at(next_ping);
    auto [ec] = co_await sub->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (sub->closed) co_return;
    if (!ec) {
      auto pinged = co_await ws->ping();
      if (!pinged) co_return;
      next_ping += interval;
      if (next_ping < std::chrono::steady_clock::now()) next_ping = std::chrono::steady_clock::now() + interval;
    }
  }
}

}  // namespace

Reply FakeVault::Impl::events_subscribe(const http::ServerRequest& req, const std::string& rel, std::string_view ns,
                                        http::ServerResponse& upgrade) {
  // http/events.go: token and ACL first (a plain "permission denied" for both), then the event
  // type, then the json parameter; only then the websocket handshake.
  detail::Token* token = nullptr;
  if (lookup_token(req, token) != TokenState::ok) return detail::reply_errors(403, {"permission denied"});
  const auto caps = capabilities(*token, rel);
  if (!caps.root && (caps.caps.count("deny") || !caps.has("read"))) {
    return detail::reply_errors(403, {"permission denied"});
  }
  std::string type = rel.size() > kSubscribePrefix.size() ? rel.substr(kSubscribePrefix.size() + 1) : std::string();
  type.erase(0, type.find_first_not_of(" \t\r\n"));
  type.erase(type.find_last_not_of(" \t\r\n") + 1);
  if (type.empty()) return detail::reply_errors(400, {"did not specify eventType to subscribe to"});
  bool json = false;
  if (auto raw = req.query_param("json"); raw && !raw->empty()) {
    auto b = go_parse_bool(*raw);
    if (!b) return detail::reply_errors(400, {fmt::format("invalid parameter for JSON: {}", *raw)});
    json = *b;
  }
  auto sub = std::make_shared<detail::Subscription>(ex);
  sub->type_glob = type;
  sub->token_id = token->id;
  sub->ns = std::string(ns);
  auto self = shared_from_this();
  upgrade.websocket = [self, sub, json](http::WebSocket& ws) -> asio::awaitable<void> {
    if (!json) return close_binary(&ws);
    return run_subscription(self, sub, &ws);
  };
  // Without an upgrade the websocket library answers (nhooyr.io/websocket's Accept).
  Reply plain;
  plain.status = 426;
  plain.json_content_type = false;
  plain.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
  plain.headers.push_back({"X-Content-Type-Options", "nosniff"});
  plain.body = fmt::format("WebSocket protocol violation: Connection header {} does not contain Upgrade\n",
                           GoValue::string(std::string(req.header("Connection").value_or(""))).dump());
  return plain;
}

asio::awaitable<void> FakeVault::Impl::close_binary(http::WebSocket* ws) {
  // Vault would send protobuf EventReceived frames; the test Vault speaks JSON only, and says so
  // instead of sending something a client could mistake for the real encoding.
  co_await ws->close(1003, "the test Vault only sends JSON events; subscribe with json=true");
}

asio::awaitable<void> FakeVault::Impl::run_subscription(std::shared_ptr<Impl> self,
                                                        std::shared_ptr<detail::Subscription> sub,
                                                        http::WebSocket* ws) {
  using namespace boost::asio::experimental::awaitable_operators;
  self->subscriptions.push_back(sub);
  // Explicit cleanup instead of an RAII guard: g++ 12 does not reliably order the destruction
  // of coroutine locals.
  std::exception_ptr failure;
  try {
    auto result = co_await (read_until_message(ws) || write_events(self, sub, ws));
    if (result.index() == 0 && std::get<0>(result)) co_await ws->close(1008, "unexpected data message");
  } catch (...) {
    failure = std::current_exception();
  }
  sub->closed = true;
  std::erase(self->subscriptions, sub);
  if (failure) std::rethrow_exception(failure);
}

void FakeVault::Impl::emit(detail::KvEvent event) {
  if (subscriptions.empty()) return;
  const std::string path = event.metadata.find("path") ? event.metadata.find("path")->text() : std::string();
  std::string message;
  auto subs = subscriptions;
  for (const auto& sub : subs) {
    if (sub->closed || !detail::event_glob_matches(sub->type_glob, event.type)) continue;
    detail::Token* token = find_token(sub->token_id);
    if (!token) continue;
    if (!token->is_root()) {
      // 1.15+: list and subscribe on the event's path, and an event type the rule allows.
      const auto caps = capabilities(*token, event.ns + path);
      if (caps.caps.count("deny") || !caps.has("list") || !caps.has("subscribe")) continue;
      const bool type_ok = std::any_of(caps.subscribe_event_types.begin(), caps.subscribe_event_types.end(),
                                       [&](const std::string& g) { return detail::event_glob_matches(g, event.type); });
      if (!type_ok) continue;
    }
    if (message.empty()) {
      // The CloudEvents envelope of hashicorp/eventlogger (field order id, source, specversion,
      // type, data, datacontentype — sic — time) around logical.EventReceived (event,
      // namespace, event_type, plugin_info). Whether a newline follows is unverified; none is
      // sent.
      const std::string id = random_uuid();
      GoValue ev = GoValue::object();
      ev.set("id", GoValue::string(id));
      ev.set("metadata", event.metadata);
      GoValue plugin = GoValue::object();
      plugin.set("mount_class", GoValue::string("secret"));
      plugin.set("mount_accessor", GoValue::string(event.mount_accessor));
      plugin.set("mount_path", GoValue::string(event.mount_path));
      plugin.set("plugin", GoValue::string("kv"));
      GoValue data = GoValue::object();
      data.set("event", std::move(ev));
      if (!event.ns.empty()) data.set("namespace", GoValue::string(event.ns));
      data.set("event_type", GoValue::string(event.type));
      data.set("plugin_info", std::move(plugin));
      GoValue msg = GoValue::object();
      msg.set("id", GoValue::string(id));
      msg.set("source", GoValue::string("vault://" + cluster_name + "-node-1"));
      msg.set("specversion", GoValue::string("1.0"));
      msg.set("type", GoValue::string("*"));
      msg.set("data", std::move(data));
      msg.set("datacontentype", GoValue::string("application/cloudevents"));
      msg.set("time", GoValue::string(go_rfc3339_nano(sys_now())));
      message = msg.dump();
    }
    sub->queue.push_back(message);
    sub->wake.cancel();
  }
}

}  // namespace nicsync::fakes
