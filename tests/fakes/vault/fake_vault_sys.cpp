// The test Vault's system endpoints: sys/health, sys/internal/ui/mounts (mount detection) and
// the sys/ paths it models (sys/mounts/<path>).
#include <fmt/format.h>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
using detail::Op;
using detail::Reply;

Reply FakeVault::Impl::sys_other(LogicalRequest& lr) {
  // sys/mounts/<path>: enable/disable a KV mount like `vault secrets enable`.
  std::string ns;
  for (const auto& n : namespaces) {
    if (lr.path.starts_with(n) && n.size() > ns.size()) ns = n;
  }
  const std::string inner = lr.path.substr(ns.size());
  if (inner.starts_with("sys/mounts/") && inner.size() > 11) {
    std::string path = inner.substr(11);
    if (!path.ends_with('/')) path += '/';
    if (lr.op == Op::create || lr.op == Op::update) {
      const GoValue* type = lr.data.find("type");
      std::string t = type && type->is_string() ? type->text() : "";
      int version = 1;
      if (t == "kv-v2") {
        version = 2;
      } else if (t == "kv") {
        if (const GoValue* opts = lr.data.find("options"); opts && opts->is_object()) {
          if (const GoValue* v = opts->find("version"); v && (v->text() == "2")) version = 2;
        }
      } else {
        return detail::reply_errors(400, {fmt::format("plugin not found in the catalog: {}", t)});
      }
      if (mounts.count(ns + path)) {
        return detail::reply_errors(400, {fmt::format("path is already in use at {}", path)});
      }
      add_mount(ns + path, version);
      Reply r = detail::reply_no_content();
      r.wrote = true;
      return r;
    }
    if (lr.op == Op::del) {
      mounts.erase(ns + path);
      Reply r = detail::reply_no_content();
      r.wrote = true;
      return r;
    }
  }
  // Anything else under sys/ that the fake does not model. This is also what community Vault
  // >= 1.16 answers for sys/events/subscribe/... (the websocket moved to Enterprise, so the
  // path reaches the system backend, which has no such path): 404 "unsupported path" wrapped in
  // a multierror for a token that passes the ACL, 403 before that for one that does not. The
  // reference marks the exact body unverified; this is its best guess, and what we chose.
  return detail::reply_errors(404, {detail::multierror({"unsupported path"})});
}

Reply FakeVault::Impl::health(const http::ServerRequest& req) const {
  // http/sys_health.go: bad bool or code parameters → 400 with an empty error list.
  auto bool_param = [&](std::string_view name, bool& out) {
    auto v = req.query_param(name);
    if (!v) return true;
    auto b = go_parse_bool(*v);
    if (!b) return false;
    out = *b;
    return true;
  };
  auto code_param = [&](std::string_view name, int& out) {
    auto v = req.query_param(name);
    if (!v) return true;
    auto n = go_atoi(*v);
    if (!n) return false;
    out = static_cast<int>(*n);
    return true;
  };
  bool standby_ok = false;
  bool perf_standby_ok = false;
  int active_code = 200, standby_code = 429, dr_code = 472, perf_code = 473, sealed_code = 503, uninit_code = 501,
      removed_code = 530, ha_code = 474;
  if (!bool_param("standbyok", standby_ok) || !bool_param("perfstandbyok", perf_standby_ok) ||
      !code_param("activecode", active_code) || !code_param("standbycode", standby_code) ||
      !code_param("drsecondarycode", dr_code) || !code_param("performancestandbycode", perf_code) ||
      !code_param("sealedcode", sealed_code) || !code_param("uninitcode", uninit_code) ||
      !code_param("removedcode", removed_code) || !code_param("haunhealthycode", ha_code)) {
    return detail::reply_errors(400, {});
  }
  const bool is_sealed = sealed || !health_flags.initialized;
  const bool is_standby = standby || is_sealed;
  int code = active_code;
  if (!health_flags.initialized)
    code = uninit_code;
  else if (health_flags.removed_from_cluster)
    code = removed_code;
  else if (sealed)
    code = sealed_code;
  else if (standby && health_flags.ha_unhealthy)
    code = ha_code;
  else if (health_flags.dr_secondary)
    code = dr_code;
  else if (health_flags.performance_standby)
    code = perf_standby_ok ? active_code : perf_code;
  else if (standby)
    code = standby_ok ? active_code : standby_code;
  Reply r;
  if (code < 100 || code > 999) {
    // Go's WriteHeader panics on such a code; the server then drops the connection.
    r.action = http::ServerResponse::Action::drop;
    return r;
  }
  GoValue v = GoValue::object();
  v.set("initialized", GoValue::boolean(health_flags.initialized));
  v.set("sealed", GoValue::boolean(is_sealed));
  v.set("standby", GoValue::boolean(is_standby));
  v.set("performance_standby", GoValue::boolean(health_flags.performance_standby));
  v.set("replication_performance_mode", GoValue::string("disabled"));
  v.set("replication_dr_mode", GoValue::string(health_flags.dr_secondary ? "secondary" : "disabled"));
  v.set("server_time_utc",
        GoValue::number(
            std::chrono::duration_cast<std::chrono::seconds>(clock->system_now().time_since_epoch()).count()));
  v.set("version", GoValue::string(std::string(detail::kVaultVersion) + (options.enterprise ? "+ent" : "")));
  v.set("enterprise", GoValue::boolean(options.enterprise));
  if (!is_sealed) {
    v.set("cluster_name", GoValue::string(cluster_name));
    v.set("cluster_id", GoValue::string(cluster_id));
  }
  v.set("echo_duration_ms", GoValue::number(0));
  v.set("clock_skew_ms", GoValue::number(0));
  v.set("replication_primary_canary_age_ms", GoValue::number(0));
  if (health_flags.removed_from_cluster) v.set("removed_from_cluster", GoValue::boolean(true));
  if (standby && !is_sealed) {
    v.set("ha_connection_healthy", GoValue::boolean(!health_flags.ha_unhealthy));
    if (!health_flags.ha_unhealthy) v.set("last_request_forwarding_heartbeat_ms", GoValue::number(1));
  }
  r.status = code;
  r.body = v.dump() + "\n";
  return r;
}

Reply FakeVault::Impl::ui_mounts(const http::ServerRequest& req, std::string_view ns, const std::string& sub_path) {
  std::string path = sub_path;
  while (path.starts_with('/')) path.erase(path.begin());
  if (path.empty()) return detail::reply_errors(400, {"path not set"});
  if (!path.ends_with('/')) path += '/';
  const Reply preflight = detail::reply_errors(
      403, {fmt::format("preflight capability check returned 403, please ensure client's policies grant access to "
                        "path {}",
                        GoValue::string(path).dump())});
  // The mount is looked up before the token, so unknown mounts cannot be probed.
  detail::KvMount* m = find_mount(std::string(ns) + path);
  if (!m) return preflight;
  detail::Token* token = nullptr;
  const auto state = lookup_token(req, token);
  if (state == TokenState::missing) return detail::reply_errors(403, {"permission denied"});
  if (state == TokenState::dead) return dead_token_reply();
  if (!has_mount_access(*token, m->path)) return preflight;
  if (token->num_uses > 0 && --token->num_uses == 0) revoke(token->id);

  GoValue config = GoValue::map();
  config.set("default_lease_ttl", GoValue::number(0));
  config.set("force_no_cache", GoValue::boolean(false));
  config.set("max_lease_ttl", GoValue::number(0));
  GoValue opts = GoValue::map();
  opts.set("version", GoValue::string(std::to_string(m->version)));
  GoValue data = GoValue::map();
  data.set("accessor", GoValue::string(m->accessor));
  data.set("config", config);
  data.set("description", GoValue::string(m->version == 2 ? "key/value secret storage" : ""));
  data.set("external_entropy_access", GoValue::boolean(false));
  data.set("local", GoValue::boolean(false));
  data.set("options", opts);
  data.set("path", GoValue::string(m->path.substr(ns.size())));
  data.set("plugin_version", GoValue::string(""));
  data.set("running_plugin_version", GoValue::string(std::string(detail::kKvPluginVersion)));
  data.set("running_sha256", GoValue::string(""));
  data.set("seal_wrap", GoValue::boolean(false));
  data.set("type", GoValue::string("kv"));
  data.set("uuid", GoValue::string(m->uuid));
  detail::Envelope e;
  e.request_id = random_uuid();
  e.data = std::move(data);
  e.mount_type = "system";
  return detail::reply_ok(e);
}

}  // namespace nicsync::fakes
