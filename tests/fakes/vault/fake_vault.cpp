// The test Vault's HTTP pipeline (what Vault's http package does before a backend runs) and the
// public FakeVault methods. The sys endpoints are in fake_vault_sys.cpp, the admin API in
// fake_vault_admin.cpp.
#include "fake_vault.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using detail::Op;
using detail::Reply;

// --- reply helpers ---------------------------------------------------------------------------

namespace detail {

std::string_view capability_for(Op op) noexcept {
  switch (op) {
    case Op::read: return "read";
    case Op::list: return "list";
    case Op::create: return "create";
    case Op::update: return "update";
    case Op::patch: return "patch";
    case Op::del: return "delete";
  }
  return "read";
}

std::string Envelope::dump() const {
  // HTTPResponse field order: request_id, lease_id, renewable, lease_duration, data,
  // wrap_info, warnings, auth, mount_type.
  GoValue v = GoValue::object();
  v.set("request_id", GoValue::string(request_id));
  v.set("lease_id", GoValue::string(lease_id));
  v.set("renewable", GoValue::boolean(renewable));
  v.set("lease_duration", GoValue::number(lease_duration));
  v.set("data", data);
  v.set("wrap_info", GoValue());
  v.set("warnings", warnings.empty() ? GoValue() : GoValue::string_array(warnings));
  v.set("auth", auth);
  v.set("mount_type", GoValue::string(mount_type));
  return v.dump();
}

Reply reply_ok(const Envelope& e) {
  Reply r;
  r.status = 200;
  r.body = e.dump();
  r.body.push_back('\n');
  return r;
}

Reply reply_raw(int status, Envelope e) {
  e.mount_type.clear();
  Reply r;
  r.status = status;
  r.body = e.dump();
  return r;
}

Reply reply_errors(int status, const std::vector<std::string>& errors) {
  GoValue v = GoValue::object();
  v.set("errors", GoValue::string_array(errors));
  Reply r;
  r.status = status;
  r.body = v.dump();
  r.body.push_back('\n');
  return r;
}

Reply reply_no_content() {
  Reply r;
  r.status = 204;
  return r;
}

std::string multierror(const std::vector<std::string>& errors) {
  std::string out = errors.size() == 1 ? "1 error occurred:\n" : fmt::format("{} errors occurred:\n", errors.size());
  for (const auto& e : errors) out += "\t* " + e + "\n";
  out += "\n";
  return out;
}

GoValue Attribution::to_go() const {
  GoValue v = GoValue::object();
  if (!actor.empty()) v.set("actor", GoValue::string(actor));
  if (!operation.empty()) v.set("operation", GoValue::string(operation));
  if (!entity_id.empty()) v.set("entity_id", GoValue::string(entity_id));
  if (!client_id.empty()) v.set("client_id", GoValue::string(client_id));
  return v;
}

std::string normalize_namespace(std::string_view ns) {
  while (!ns.empty() && ns.front() == '/') ns.remove_prefix(1);
  while (!ns.empty() && ns.back() == '/') ns.remove_suffix(1);
  if (ns.empty()) return {};
  return std::string(ns) + "/";
}

Attribution Caller::attribution(std::string operation) const {
  Attribution a;
  a.actor = token ? token->actor : "token";
  a.operation = std::move(operation);
  if (token && !token->entity_id.empty()) {
    a.entity_id = token->entity_id;
    a.client_id = token->entity_id;
  }
  return a;
}

}  // namespace detail

// --- pipeline --------------------------------------------------------------------------------

namespace {

// Go's path.Clean plus ServeMux's trailing-slash rule (cleanPath in net/http).
std::string go_clean_path(std::string_view p) {
  if (p.empty()) return "/";
  std::string in = p[0] == '/' ? std::string(p) : "/" + std::string(p);
  std::vector<std::string_view> parts;
  std::string_view rest = in;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(seg);
  }
  std::string np = "/";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) np += '/';
    np += parts[i];
  }
  if (in.back() == '/' && np != "/") np += '/';
  return np;
}

// Query parameters as Vault's parseQuery makes them request data: the first value of each.
GoValue query_data(std::string_view query) {
  GoValue data = GoValue::map();
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    for (auto& c : key) c = c == '+' ? ' ' : c;
    for (auto& c : value) c = c == '+' ? ' ' : c;
    auto k = http::percent_decode(key);
    auto v = http::percent_decode(value);
    if (!k || !v) continue;
    if (*k == "help") continue;
    if (!data.find(*k)) data.set(*k, GoValue::string(*v));
  }
  return data;
}

std::string default_fault_body(int status, const std::string& rel) {
  switch (status) {
    case 412:
      return R"({"errors":["required index state not present"]})"
             "\n";
    case 429: {
      GoValue v = GoValue::object();
      v.set("errors", GoValue::string_array({fmt::format("request path \"{}\": rate limit quota exceeded", rel)}));
      return v.dump() + "\n";
    }
    case 500:
      return R"({"errors":["internal error"]})"
             "\n";
    case 502:
      return R"({"errors":["upstream error"]})"
             "\n";
    case 503:
      return R"({"errors":["Vault is sealed"]})"
             "\n";
    default:
      return R"({"errors":[]})"
             "\n";
  }
}

}  // namespace

FakeVault::Impl::Impl(asio::any_io_executor executor, FakeVaultOptions opts)
    : ex(std::move(executor)), options(std::move(opts)), clock(options.clock ? options.clock : &Clock::real()) {
  cluster_id = random_uuid();
  cluster_name = "vault-cluster-" + cluster_id.substr(0, 8);
  // The root token as `operator init` (or -dev-root-token-id) makes it: no lease at all.
  detail::Token root;
  root.id = options.root_token;
  root.accessor = random_base62(24);
  root.policies = {"root"};
  root.display_name = "root";
  root.path = "auth/token/root";
  root.orphan = true;
  root.renewable = false;
  root.has_lease = false;
  root.issue_steady = steady_now();
  root.issue_sys = sys_now();
  tokens.emplace(root.id, root);
  // Vault's built-in default policy (the parts a client can notice).
  detail::Policy def;
  def.name = "default";
  def.rules = {{"auth/token/lookup-self", {"read"}, {}},
               {"auth/token/renew-self", {"update"}, {}},
               {"auth/token/revoke-self", {"update"}, {}},
               {"sys/capabilities-self", {"update"}, {}},
               {"sys/internal/ui/resultant-acl", {"read"}, {}}};
  policies.emplace("default", def);
}

void FakeVault::Impl::log_request(const std::string& method, const std::string& path, detail::SteadyTime at,
                                  int status) {
  constexpr std::size_t kMaxLog = 100'000;
  if (log.size() >= kMaxLog) log.pop_front();
  log.push_back({method, path, at, status});
}

std::string FakeVault::Impl::redact_tokens(std::string_view path) const {
  // A client that puts a token into a URL (Vault's deprecated auth/token/lookup/<token> forms)
  // must not make the request log hold it.
  std::string out;
  out.reserve(path.size());
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view seg = path.substr(0, slash);
    const bool token =
        seg.starts_with("hvs.") || seg.starts_with("hvb.") || (seg.size() >= 16 && tokens.count(std::string(seg)) > 0);
    out += token ? std::string_view("<token>") : seg;
    if (slash == std::string_view::npos) break;
    out += '/';
    path.remove_prefix(slash + 1);
  }
  return out;
}

asio::awaitable<http::ServerResponse> FakeVault::Impl::serve(std::shared_ptr<Impl> self, http::ServerRequest req) {
  if (!self) {
    http::ServerResponse gone;
    gone.action = http::ServerResponse::Action::drop;
    co_return gone;
  }
  if (req.path.starts_with("/__admin/") || req.path == "/__admin") co_return self->admin(req);
  const auto at = self->steady_now();
  if (self->latency > 0ms) {
    asio::steady_timer t(self->ex, self->latency);
    co_await t.async_wait(asio::use_awaitable);
  }
  std::string decoded = http::percent_decode(req.path).value_or(req.path);
  std::string log_path = self->redact_tokens(decoded);
  Reply reply;
  http::ServerResponse upgrade;
  const std::string clean = go_clean_path(decoded);
  if (clean != decoded) {
    // Go's ServeMux redirects unclean paths before Vault's handler sees them.
    std::string location = clean + (req.query.empty() ? "" : "?" + req.query);
    reply.status = 301;
    reply.json_content_type = false;
    reply.headers.push_back({"Location", location});
    if (req.method == "GET" || req.method == "HEAD") {
      reply.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
      reply.body = "<a href=\"" + location + "\">Moved Permanently</a>.\n\n";
    }
  } else if (!decoded.starts_with("/v1/")) {
    reply = detail::reply_errors(404, {});
  } else {
    std::string rel = decoded.substr(4);
    std::optional<FaultSpec> truncate;
    if (auto fault = self->take_fault(rel, truncate)) {
      if (fault->action != http::ServerResponse::Action::respond) {
        self->log_request(req.method, log_path, at, 0);
        http::ServerResponse r;
        r.action = fault->action;
        co_return r;
      }
      if (fault->status == 307) {
        // A redirect fault targets the same path on another node.
        for (auto& h : fault->headers) {
          if (h.name == "Location") h.value += req.target;
        }
      }
      reply = std::move(*fault);
    } else if (rel.starts_with("sys/events/subscribe") && self->options.enterprise && !self->sealed &&
               !self->redirect) {
      reply = self->events_subscribe(req, rel, {}, upgrade);
    } else {
      reply = co_await self->handle_v1(req, rel, log_path);
    }
    if (truncate) reply.truncate_at = truncate->truncate_at;
  }
  if (upgrade.websocket) {
    self->log_request(req.method, log_path, at, 101);
    auto plain = self->finish(req, std::move(reply));
    plain.websocket = std::move(upgrade.websocket);
    co_return plain;
  }
  self->log_request(req.method, log_path, at, reply.status);
  co_return self->finish(req, std::move(reply));
}

http::ServerResponse FakeVault::Impl::finish(const http::ServerRequest& req, Reply reply) const {
  http::ServerResponse r;
  r.status = reply.status;
  r.action = reply.action;
  r.truncate_body_at = reply.truncate_at;
  r.headers.reserve(reply.headers.size() + 4);
  r.headers.push_back({"Cache-Control", "no-store"});
  if (reply.json_content_type) r.headers.push_back({"Content-Type", "application/json"});
  r.headers.push_back({"Date", http_date(clock->system_now())});
  if (auto ns = req.header("X-Vault-Namespace"); ns && !ns->empty()) {
    r.headers.push_back({"X-Vault-Namespace", std::string(*ns)});
  }
  for (auto& h : reply.headers) r.headers.push_back(std::move(h));
  if (req.method == "HEAD") reply.body.clear();
  r.body = std::move(reply.body);
  return r;
}

std::optional<Reply> FakeVault::Impl::take_fault(const std::string& rel, std::optional<FaultSpec>& pending_truncate) {
  auto it = std::find_if(faults.begin(), faults.end(),
                         [&](const FaultSpec& f) { return f.path_prefix.empty() || rel.starts_with(f.path_prefix); });
  if (it == faults.end()) return std::nullopt;
  FaultSpec f = *it;
  if (--it->count <= 0) faults.erase(it);
  Reply r;
  switch (f.kind) {
    case FaultSpec::Kind::drop: r.action = http::ServerResponse::Action::drop; return r;
    case FaultSpec::Kind::reset: r.action = http::ServerResponse::Action::reset; return r;
    case FaultSpec::Kind::truncate: pending_truncate = f; return std::nullopt;
    case FaultSpec::Kind::redirect: f.status = 307; break;
    case FaultSpec::Kind::status: break;
  }
  r.status = f.status;
  if (f.status == 307 || f.status == 301 || f.status == 302) {
    // Vault's respondStandby: Location and no body.
    r.json_content_type = false;
    r.headers.push_back({"Location", f.location});
  } else {
    r.body = f.body ? *f.body : default_fault_body(f.status, rel);
  }
  if (f.retry_after_seconds) r.headers.push_back({"Retry-After", std::to_string(*f.retry_after_seconds)});
  return r;
}

std::optional<Reply> FakeVault::Impl::rate_limited(const std::string& rel) {
  if (rate_limit <= 0) return std::nullopt;
  const auto now = steady_now();
  if (now - rate_window_start >= rate_interval) {
    rate_window_start = now;
    rate_window_count = 0;
  }
  const auto reset = std::chrono::ceil<std::chrono::seconds>(rate_window_start + rate_interval - now).count();
  std::vector<http::Header> headers;
  if (rate_headers) {
    headers.push_back({"X-Ratelimit-Limit", std::to_string(rate_limit)});
    headers.push_back(
        {"X-Ratelimit-Remaining", std::to_string(std::max<std::int64_t>(0, rate_limit - rate_window_count - 1))});
    headers.push_back({"X-Ratelimit-Reset", std::to_string(reset)});
  }
  if (rate_window_count < rate_limit) {
    ++rate_window_count;
    if (!rate_headers) return std::nullopt;
    Reply marker;  // only carries the headers for the successful answer
    marker.status = 0;
    marker.headers = std::move(headers);
    return marker;
  }
  Reply r;
  r.status = 429;
  r.body = default_fault_body(429, rel);
  r.headers = std::move(headers);
  if (rate_headers) r.headers.push_back({"Retry-After", std::to_string(reset)});
  return r;
}

std::string FakeVault::Impl::next_index() {
  // Enterprise X-Vault-Index: base64("v1:<cluster id>:<local index>:<replicated index>:<hmac>").
  ++write_index;
  const std::string raw = fmt::format("v1:{}:{}:{}:{:016x}", cluster_id, write_index, write_index,
                                      std::hash<std::string>{}(cluster_id + std::to_string(write_index)));
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8) |
                       static_cast<unsigned char>(raw[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == raw.size()) {
    const unsigned v = static_cast<unsigned char>(raw[i]) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == raw.size()) {
    const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

std::optional<std::uint64_t> decode_index(std::string_view b64) {
  std::string raw;
  unsigned buf = 0;
  int bits = 0;
  for (char c : b64) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (c == '=') break;
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  // v1:<cluster>:<local>:<replicated>:<hmac>
  std::vector<std::string_view> parts;
  std::string_view rest = raw;
  while (true) {
    auto c = rest.find(':');
    parts.push_back(rest.substr(0, c));
    if (c == std::string_view::npos) break;
    rest.remove_prefix(c + 1);
  }
  if (parts.size() != 5 || parts[0] != "v1") return std::nullopt;
  auto n = go_atoi(parts[2]);
  if (!n || *n < 0) return std::nullopt;
  return static_cast<std::uint64_t>(*n);
}

}  // namespace

asio::awaitable<Reply> FakeVault::Impl::handle_v1(const http::ServerRequest& req, std::string rel,
                                                  std::string& log_path) {
  (void)log_path;
  std::string ns;
  if (options.enterprise) {
    if (auto h = req.header("X-Vault-Namespace")) ns = detail::normalize_namespace(*h);
    rel = ns + rel;
    // A namespace may also be a path prefix: find the deepest known namespace.
    std::string best;
    for (const auto& n : namespaces) {
      if (rel.starts_with(n) && n.size() > best.size()) best = n;
    }
    ns = best;
  }
  const std::string inner = rel.substr(ns.size());

  if (redirect && inner != "sys/health") {
    Reply r;
    r.status = 307;
    r.json_content_type = false;
    std::string location = *redirect + req.target;
    // The events websocket is redirected to ws:// or wss:// (respondStandby).
    if (inner.starts_with("sys/events/subscribe")) {
      if (location.starts_with("https://"))
        location.replace(0, 5, "wss");
      else if (location.starts_with("http://"))
        location.replace(0, 4, "ws");
    }
    r.headers.push_back({"Location", location});
    co_return r;
  }
  std::vector<http::Header> quota_headers;
  if (inner != "sys/health" && inner != "sys/seal-status") {
    if (auto limited = rate_limited(rel)) {
      if (limited->status != 0) co_return std::move(*limited);
      quota_headers = std::move(limited->headers);
    }
  }
  auto with_quota = [&](Reply r) {
    for (auto& h : quota_headers) r.headers.push_back(h);
    return r;
  };
  if (inner == "sys/health" && ns.empty()) co_return with_quota(health(req));
  if (sealed) co_return with_quota(detail::reply_errors(503, {"Vault is sealed"}));

  LogicalRequest lr;
  lr.http = &req;
  lr.request_id = random_uuid();
  lr.path = rel;
  const std::string& m = req.method;
  if (m == "GET") {
    lr.op = Op::read;
    if (auto list = req.query_param("list"); list && !list->empty()) {
      auto b = go_parse_bool(*list);
      if (!b) co_return with_quota(detail::reply_errors(400, {}));
      if (*b) {
        lr.op = Op::list;
        if (!lr.path.ends_with('/')) lr.path += '/';
      }
    }
    lr.data = lr.op == Op::list ? GoValue::map() : query_data(req.query);
  } else if (m == "LIST") {
    lr.op = Op::list;
    if (!lr.path.ends_with('/')) lr.path += '/';
    lr.data = query_data(req.query);
  } else if (m == "POST" || m == "PUT" || m == "PATCH") {
    lr.op = m == "PATCH" ? Op::patch : Op::update;
    if (m == "PATCH") {
      auto ct = req.header("Content-Type").value_or("");
      std::string media(ct.substr(0, ct.find(';')));
      while (!media.empty() && media.back() == ' ') media.pop_back();
      while (!media.empty() && media.front() == ' ') media.erase(media.begin());
      for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (media.empty()) co_return with_quota(detail::reply_errors(400, {"mime: no media type"}));
      if (media != "application/merge-patch+json") {
        GoValue q = GoValue::string(media);
        co_return with_quota(detail::reply_errors(
            415, {fmt::format("PATCH requires Content-Type of application/merge-patch+json, got {}", q.dump())}));
      }
    }
    auto parsed = parse_go_json(req.body);
    if (!parsed) {
      if (parsed.error().message != "EOF") {
        co_return with_quota(detail::reply_errors(400, {"failed to parse JSON input: " + parsed.error().message}));
      }
      lr.data = GoValue::map();
    } else if (parsed->is_null()) {
      lr.data = GoValue::map();
      lr.has_body = true;
    } else if (!parsed->is_object()) {
      static constexpr std::string_view kNames[] = {"null", "bool", "number", "string", "array", "object"};
      co_return with_quota(detail::reply_errors(
          400, {fmt::format("failed to parse JSON input: json: cannot unmarshal {} into Go value of type "
                            "map[string]interface {{}}",
                            kNames[static_cast<int>(parsed->kind())])}));
    } else {
      lr.data = std::move(*parsed);
      lr.has_body = true;
    }
  } else if (m == "DELETE") {
    lr.op = Op::del;
    lr.data = query_data(req.query);
  } else {
    co_return with_quota(detail::reply_errors(405, {}));
  }

  if (options.enterprise) {
    if (auto idx = req.header("X-Vault-Index")) {
      auto wanted = decode_index(*idx);
      auto inconsistent = req.header("X-Vault-Inconsistent").value_or("fail");
      if (wanted && *wanted > write_index && inconsistent != "forward-active-node") {
        co_return with_quota(detail::reply_errors(412, {"required index state not present"}));
      }
    }
  }

  // Audit devices log the request once it is authorised, and its response after it ran
  // (fake_vault_audit.cpp); without devices `audited` only runs it.
  Reply reply;
  if (inner.starts_with("sys/internal/ui/mounts/")) {
    const std::string sub = inner.substr(std::string_view("sys/internal/ui/mounts/").size());
    reply = co_await audited(lr, std::nullopt, [&] { return ui_mounts(req, ns, sub); });
  } else if (inner == "auth/approle/login") {
    lr.unauthenticated = true;
    reply = co_await audited(lr, std::nullopt, [&] { return approle_login(lr); });
  } else {
    auto refused = authorize(lr);
    reply = co_await audited(lr, std::move(refused), [&] { return execute(lr); });
  }
  if (options.enterprise && reply.wrote && reply.status < 400) {
    reply.headers.push_back({"X-Vault-Index", next_index()});
  }
  co_return with_quota(std::move(reply));
}

std::optional<Reply> FakeVault::Impl::authorize(LogicalRequest& lr) {
  detail::Token* token = nullptr;
  const auto state = lookup_token(*lr.http, token);
  if (state == TokenState::missing) return detail::reply_errors(403, {"permission denied"});
  if (state == TokenState::dead) return dead_token_reply();
  lr.caller.token = token;
  lr.token_id = token->id;
  lr.audit_caller = *token;

  // The operation the ACL sees: POST/PUT become create when the backend's existence check
  // says the target does not exist yet.
  detail::KvMount* mount = find_mount(lr.path);
  Op acl_op = lr.op;
  if (mount) {
    const std::string rest = lr.path.size() >= mount->path.size() ? lr.path.substr(mount->path.size()) : std::string();
    acl_op = effective_op(*mount, lr.op, rest);
    if (lr.op == Op::update) lr.op = acl_op;
  }
  const auto caps = capabilities(*token, lr.path);
  lr.acl_checked = true;
  lr.granting_policies = caps.root ? std::vector<std::string>{"root"} : caps.granting;
  if (!caps.root && (caps.caps.count("deny") || !caps.has(detail::capability_for(acl_op)))) {
    lr.granting_policies.clear();
    return denied_reply();
  }
  lr.allowed = true;
  // A token with a use limit spends one use per request it authorises.
  if (token->num_uses > 0 && --token->num_uses == 0) lr.revoke_after = token->id;
  return std::nullopt;
}

Reply FakeVault::Impl::execute(LogicalRequest& lr) {
  // Token and mount are looked up again: while an audit device took the request's entry, other
  // requests may have run (a revoke, an unmount).
  lr.caller.token = find_token(lr.token_id);
  if (!lr.caller.token) return dead_token_reply();
  detail::KvMount* mount = find_mount(lr.path);
  const std::string rest =
      mount && lr.path.size() >= mount->path.size() ? lr.path.substr(mount->path.size()) : std::string();

  Reply reply;
  std::string ns;
  for (const auto& n : namespaces) {
    if (lr.path.starts_with(n) && n.size() > ns.size()) ns = n;
  }
  const std::string inner = lr.path.substr(ns.size());
  if (inner.starts_with("auth/token/")) {
    reply = token_endpoint(lr, inner.substr(11));
  } else if (mount) {
    reply = kv(*mount, lr, rest);
  } else if (inner.starts_with("sys/")) {
    reply = sys_other(lr);
  } else {
    reply = detail::reply_errors(
        404, {fmt::format("no handler for route {}. route entry not found.", GoValue::string(lr.path).dump())});
  }
  if (!lr.revoke_after.empty()) revoke(lr.revoke_after);
  return reply;
}

// --- FakeVault -------------------------------------------------------------------------------

FakeVault::FakeVault(asio::any_io_executor ex, FakeVaultOptions options)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(options))) {}

FakeVault::~FakeVault() { stop(); }

Result<void> FakeVault::start() {
  if (!impl_->find_mount_exact("secret/")) mount("secret", 2);
  if (!impl_->find_mount_exact("kv/")) mount("kv", 1);
  if (auto audit = impl_->start_audit(); !audit) return audit.error();
  http::ServerOptions so;
  so.listen = impl_->options.listen;
  so.tls_cert_file = impl_->options.tls_cert_file;
  so.tls_key_file = impl_->options.tls_key_file;
  so.tls_client_ca_file = impl_->options.tls_client_ca_file;
  so.body_limit = 32u << 20;  // Vault's default max_request_size
  so.max_connections = 4096;
  // The handler holds the state weakly (the state owns the server); each request holds it
  // strongly until it is answered.
  std::weak_ptr<Impl> weak = impl_;
  impl_->server = std::make_unique<http::Server>(
      impl_->ex, so, [weak](const http::ServerRequest& r) { return Impl::serve(weak.lock(), r); });
  auto started = impl_->server->start();
  if (!started) return started.error();
  impl_->scheme = impl_->server->tls() ? "https" : "http";
  return {};
}

std::string FakeVault::address() const {
  return impl_->scheme + "://" + (impl_->server ? impl_->server->local_address() : std::string("127.0.0.1:0"));
}

std::uint16_t FakeVault::port() const { return impl_->server ? impl_->server->port() : 0; }

void FakeVault::stop() {
  if (impl_->server) impl_->server->stop_now();
  impl_->stop_audit();
  for (auto& s : impl_->subscriptions) {
    s->closed = true;
    s->wake.cancel();
  }
}

const FakeVaultOptions& FakeVault::options() const noexcept { return impl_->options; }

void FakeVault::create_namespace(std::string path) {
  path = detail::normalize_namespace(path);
  if (!path.empty()) impl_->namespaces.insert(path);
}

void FakeVault::seal() { impl_->sealed = true; }
void FakeVault::unseal() { impl_->sealed = false; }
void FakeVault::set_standby(bool standby) { impl_->standby = standby; }
void FakeVault::set_health_flags(HealthFlags flags) { impl_->health_flags = flags; }
void FakeVault::set_latency(std::chrono::milliseconds latency) { impl_->latency = latency; }

void FakeVault::fail_next(int count, int status, std::optional<int> retry_after_seconds) {
  FaultSpec f;
  f.count = count;
  f.status = status;
  f.retry_after_seconds = retry_after_seconds;
  fail_next(std::move(f));
}

void FakeVault::fail_next(FaultSpec fault) {
  if (fault.count <= 0) return;
  impl_->faults.push_back(std::move(fault));
}

void FakeVault::clear_faults() { impl_->faults.clear(); }

void FakeVault::set_redirect(std::optional<std::string> location) { impl_->redirect = std::move(location); }

void FakeVault::set_rate_limit(std::int64_t rate, std::chrono::seconds interval, bool response_headers) {
  impl_->rate_limit = rate;
  impl_->rate_interval = interval;
  impl_->rate_headers = response_headers;
  impl_->rate_window_start = impl_->steady_now();
  impl_->rate_window_count = 0;
}

void FakeVault::drop_connections() {
  if (impl_->server) impl_->server->drop_connections();
}

std::vector<FakeVault::LoggedRequest> FakeVault::request_log() const { return {impl_->log.begin(), impl_->log.end()}; }

std::size_t FakeVault::count_requests(std::string_view method, std::string_view path) const {
  return static_cast<std::size_t>(std::count_if(impl_->log.begin(), impl_->log.end(), [&](const LoggedRequest& r) {
    return r.method == method && r.path == path;
  }));
}

void FakeVault::clear_request_log() { impl_->log.clear(); }

std::uint64_t FakeVault::connections_accepted() const {
  return impl_->server ? impl_->server->stats().connections_accepted : 0;
}

std::size_t FakeVault::open_connections() const { return impl_->server ? impl_->server->stats().open_connections : 0; }

std::size_t FakeVault::event_subscribers() const { return impl_->subscriptions.size(); }

}  // namespace nicsync::fakes
