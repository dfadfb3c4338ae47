// The test Vault's admin API (/__admin/...): faults, modes, tokens, policies, mounts and the
// request log, for tests and the demo to drive the standalone program over HTTP.
#include <boost/asio/post.hpp>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
namespace asio = boost::asio;

// --- admin API -------------------------------------------------------------------------------

namespace {

http::ServerResponse admin_json(int status, const GoValue& v) {
  return http::ServerResponse::json(status, v.dump() + "\n");
}

http::ServerResponse admin_ok() {
  GoValue v = GoValue::object();
  v.set("ok", GoValue::boolean(true));
  return admin_json(200, v);
}

http::ServerResponse admin_error(int status, std::string message) {
  GoValue v = GoValue::object();
  v.set("error", GoValue::string(std::move(message)));
  return admin_json(status, v);
}

std::optional<std::chrono::seconds> seconds_field(const GoValue& body, std::string_view name) {
  const GoValue* v = body.find(name);
  if (!v) return std::nullopt;
  if (auto n = v->as_int()) return std::chrono::seconds(*n);
  if (v->is_string()) {
    if (auto d = go_parse_duration_second(v->text())) return std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  return std::nullopt;
}

std::vector<std::string> strings_field(const GoValue& body, std::string_view name) {
  std::vector<std::string> out;
  if (const GoValue* v = body.find(name); v && v->kind() == GoValue::Kind::array) {
    for (const auto& i : v->items()) out.push_back(i.text());
  }
  return out;
}

std::string string_field(const GoValue& body, std::string_view name) {
  const GoValue* v = body.find(name);
  return v && v->is_string() ? v->text() : std::string();
}

std::int64_t int_field(const GoValue& body, std::string_view name, std::int64_t fallback) {
  const GoValue* v = body.find(name);
  if (!v) return fallback;
  return v->as_int().value_or(fallback);
}

bool bool_field(const GoValue& body, std::string_view name, bool fallback) {
  const GoValue* v = body.find(name);
  return v && v->kind() == GoValue::Kind::boolean ? v->as_bool() : fallback;
}

TokenSpec token_spec(const GoValue& body) {
  TokenSpec spec;
  spec.policies = strings_field(body, "policies");
  if (auto ttl = seconds_field(body, "ttl")) spec.ttl = *ttl;
  if (auto max = seconds_field(body, "max_ttl")) spec.max_ttl = *max;
  spec.renewable = bool_field(body, "renewable", true);
  if (auto name = string_field(body, "display_name"); !name.empty()) spec.display_name = name;
  spec.num_uses = int_field(body, "num_uses", 0);
  return spec;
}

}  // namespace

http::ServerResponse FakeVault::Impl::admin(const http::ServerRequest& req) {
  const std::string op = req.path.substr(std::min<std::size_t>(req.path.size(), 9));  // after "/__admin/"
  GoValue body = GoValue::map();
  if (!req.body.empty()) {
    auto parsed = parse_go_json(req.body);
    if (!parsed || !parsed->is_object()) return admin_error(400, "the admin API takes a JSON object");
    body = std::move(*parsed);
  }
  const bool post = req.method == "POST" || req.method == "PUT";
  if (post && op == "seal") {
    sealed = true;
    return admin_ok();
  }
  if (post && op == "unseal") {
    sealed = false;
    return admin_ok();
  }
  if (post && op == "standby") {
    standby = bool_field(body, "standby", true);
    return admin_ok();
  }
  if (post && op == "health") {
    health_flags.initialized = bool_field(body, "initialized", true);
    health_flags.removed_from_cluster = bool_field(body, "removed_from_cluster", false);
    health_flags.ha_unhealthy = bool_field(body, "ha_unhealthy", false);
    health_flags.dr_secondary = bool_field(body, "dr_secondary", false);
    health_flags.performance_standby = bool_field(body, "performance_standby", false);
    return admin_ok();
  }
  if (post && op == "latency") {
    latency = std::chrono::milliseconds(int_field(body, "ms", 0));
    return admin_ok();
  }
  if (post && op == "fail") {
    FaultSpec f;
    const std::string kind = string_field(body, "kind");
    if (kind.empty() || kind == "status")
      f.kind = FaultSpec::Kind::status;
    else if (kind == "drop")
      f.kind = FaultSpec::Kind::drop;
    else if (kind == "reset")
      f.kind = FaultSpec::Kind::reset;
    else if (kind == "truncate")
      f.kind = FaultSpec::Kind::truncate;
    else if (kind == "redirect")
      f.kind = FaultSpec::Kind::redirect;
    else
      return admin_error(400, "kind must be status, drop, reset, truncate or redirect");
    f.count = static_cast<int>(int_field(body, "count", 1));
    f.status = static_cast<int>(int_field(body, "status", 500));
    if (body.find("retry_after")) f.retry_after_seconds = static_cast<int>(int_field(body, "retry_after", 0));
    if (const GoValue* b = body.find("body"); b && b->is_string()) f.body = b->text();
    f.truncate_at = static_cast<std::size_t>(int_field(body, "truncate_at", 0));
    f.location = string_field(body, "location");
    f.path_prefix = string_field(body, "path_prefix");
    faults.push_back(std::move(f));
    return admin_ok();
  }
  if (post && op == "redirect") {
    const GoValue* loc = body.find("location");
    redirect = loc && loc->is_string() && !loc->text().empty() ? std::optional(loc->text()) : std::nullopt;
    return admin_ok();
  }
  if (post && op == "rate-limit") {
    rate_limit = int_field(body, "rate", 0);
    rate_interval = seconds_field(body, "interval").value_or(std::chrono::seconds(1));
    rate_headers = bool_field(body, "headers", false);
    rate_window_start = steady_now();
    rate_window_count = 0;
    return admin_ok();
  }
  if (post && op == "drop-connections") {
    // After this answer is on its way: the admin connection is one of those dropped.
    std::weak_ptr<Impl> weak = weak_from_this();
    asio::post(ex, [weak] {
      if (auto self = weak.lock(); self && self->server) self->server->drop_connections();
    });
    return admin_ok();
  }
  if (post && op == "tokens") {
    auto& issued = token_from_spec(token_spec(body));
    GoValue v = GoValue::object();
    v.set("token", GoValue::string(issued.id));
    v.set("accessor", GoValue::string(issued.accessor));
    return admin_json(200, v);
  }
  if (post && op == "revoke") {
    revoke(string_field(body, "token"));
    return admin_ok();
  }
  if (post && op == "policies") {
    detail::Policy p;
    p.name = string_field(body, "name");
    if (p.name.empty()) return admin_error(400, "name is required");
    if (const GoValue* rules = body.find("rules")) {
      if (rules->is_object()) {
        for (const auto& m : rules->members()) {
          PolicyRule r;
          r.path = m.key;
          for (const auto& c : m.value.items()) r.capabilities.push_back(c.text());
          p.rules.push_back(std::move(r));
        }
      } else {
        for (const auto& item : rules->items()) {
          PolicyRule r;
          r.path = string_field(item, "path");
          r.capabilities = strings_field(item, "capabilities");
          r.subscribe_event_types = strings_field(item, "subscribe_event_types");
          p.rules.push_back(std::move(r));
        }
      }
    }
    policies[p.name] = std::move(p);
    return admin_ok();
  }
  if (post && op == "approles") {
    detail::AppRole role;
    role.name = string_field(body, "role");
    role.role_id = string_field(body, "role_id");
    role.secret_id = string_field(body, "secret_id");
    if (role.name.empty() || role.role_id.empty()) return admin_error(400, "role and role_id are required");
    role.spec = token_spec(body);
    role.entity_id = random_uuid();
    approles[role.name] = std::move(role);
    return admin_ok();
  }
  if (post && op == "approles/rotate") {
    auto it = approles.find(string_field(body, "role"));
    if (it == approles.end()) return admin_error(404, "no such role");
    it->second.secret_id = string_field(body, "secret_id");
    return admin_ok();
  }
  if (post && op == "mounts") {
    std::string path = string_field(body, "path");
    if (path.empty()) return admin_error(400, "path is required");
    int version = static_cast<int>(int_field(body, "version", 2));
    if (version != 1 && version != 2) return admin_error(400, "version must be 1 or 2");
    if (!path.ends_with('/')) path += '/';
    add_mount(path, version);
    return admin_ok();
  }
  if (post && op == "namespaces") {
    std::string path = detail::normalize_namespace(string_field(body, "path"));
    if (path.empty()) return admin_error(400, "path is required");
    namespaces.insert(path);
    return admin_ok();
  }
  if (post && op == "kv") {
    std::string m = string_field(body, "mount");
    if (!m.ends_with('/')) m += '/';
    auto* mount_ptr = find_mount_exact(m);
    if (!mount_ptr) return admin_error(404, "no such mount");
    const GoValue* data = body.find("data");
    if (!data || !data->is_object()) return admin_error(400, "data must be an object");
    GoValue copy = GoValue::map();
    for (const auto& member : data->members()) copy.set(member.key, member.value);
    std::int64_t version = 0;
    const std::string key = string_field(body, "key");
    detail::Attribution by{"token", "update", "", ""};
    if (mount_ptr->version == 2) {
      version = kv2_write(*mount_ptr, key, std::move(copy), by, "data-write");
    } else {
      mount_ptr->v1[key] = std::move(copy);
      kv_event(*mount_ptr, "kv-v1/write", key, key, {});
    }
    GoValue v = GoValue::object();
    v.set("version", GoValue::number(version));
    return admin_json(200, v);
  }
  if (op == "requests" && req.method == "GET") {
    GoValue list = GoValue::array();
    for (const auto& e : log) {
      GoValue item = GoValue::object();
      item.set("method", GoValue::string(e.method));
      item.set("path", GoValue::string(e.path));
      item.set("status", GoValue::number(e.status));
      item.set("at_ms",
               GoValue::number(std::chrono::duration_cast<std::chrono::milliseconds>(e.at.time_since_epoch()).count()));
      list.push(std::move(item));
    }
    GoValue v = GoValue::object();
    v.set("requests", std::move(list));
    return admin_json(200, v);
  }
  if (op == "requests" && req.method == "DELETE") {
    log.clear();
    return admin_ok();
  }
  if (op == "stats" && req.method == "GET") {
    GoValue v = GoValue::object();
    const auto stats = server ? server->stats() : http::ServerStats{};
    v.set("connections_accepted", GoValue::number(static_cast<std::int64_t>(stats.connections_accepted)));
    v.set("open_connections", GoValue::number(static_cast<std::int64_t>(stats.open_connections)));
    v.set("requests", GoValue::number(static_cast<std::int64_t>(log.size())));
    v.set("event_subscribers", GoValue::number(static_cast<std::int64_t>(subscriptions.size())));
    return admin_json(200, v);
  }
  return admin_error(404, "unknown admin operation " + req.method + " " + req.path);
}

}  // namespace nicsync::fakes
