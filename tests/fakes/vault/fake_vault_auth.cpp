// The test Vault's token store, ACL policies and AppRole login (Vault's token_store.go,
// acl.go, approle path_login.go as the reference describes them).
#include <algorithm>

#include <fmt/format.h>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
using detail::Op;
using detail::Reply;
using detail::Token;

namespace detail {

bool Token::is_root() const { return std::find(policies.begin(), policies.end(), "root") != policies.end(); }

bool policy_path_matches(std::string_view pattern, std::string_view path) {
  const bool glob = pattern.ends_with('*');
  if (glob) pattern.remove_suffix(1);
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < pattern.size()) {
    const bool plus =
        pattern[i] == '+' && (i == 0 || pattern[i - 1] == '/') && (i + 1 == pattern.size() || pattern[i + 1] == '/');
    if (plus) {
      std::size_t end = path.find('/', j);
      if (end == std::string_view::npos) end = path.size();
      if (end == j) return false;
      j = end;
      ++i;
      continue;
    }
    if (j >= path.size() || path[j] != pattern[i]) return false;
    ++i;
    ++j;
  }
  return glob || j == path.size();
}

bool event_glob_matches(std::string_view pattern, std::string_view text) {
  // Iterative '*' matching with backtracking to the last star.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace detail

namespace {

bool is_glob(std::string_view pattern) { return pattern.ends_with('*') || pattern.find('+') != std::string_view::npos; }

// Vault's ACL priority between two matching glob rules: true if `a` has lower priority than `b`.
bool lower_priority(std::string_view a, std::string_view b) {
  auto first_wild = [](std::string_view p) {
    auto i = p.find_first_of("+*");
    return i == std::string_view::npos ? p.size() : i;
  };
  if (first_wild(a) != first_wild(b)) return first_wild(a) < first_wild(b);
  if (a.ends_with('*') != b.ends_with('*')) return a.ends_with('*');
  const auto pa = std::count(a.begin(), a.end(), '+');
  const auto pb = std::count(b.begin(), b.end(), '+');
  if (pa != pb) return pa > pb;
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

// Field helpers with Vault's framework conversions (json.Number or strings accepted).
std::optional<std::int64_t> int_value(const GoValue* v) {
  if (!v) return std::nullopt;
  if (auto n = v->as_int()) return n;
  if (v->is_string()) return go_atoi(v->text());
  return std::nullopt;
}

std::optional<std::chrono::seconds> duration_value(const GoValue* v, bool& bad) {
  bad = false;
  if (!v || v->is_null()) return std::nullopt;
  if (auto n = v->as_int()) return std::chrono::seconds(*n);
  if (v->is_string()) {
    if (auto d = go_parse_duration_second(v->text())) return std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  bad = true;
  return std::nullopt;
}

std::optional<bool> bool_value(const GoValue* v) {
  if (!v) return std::nullopt;
  if (v->kind() == GoValue::Kind::boolean) return v->as_bool();
  if (v->is_string()) return go_parse_bool(v->text());
  if (auto n = v->as_int()) return *n != 0;
  return std::nullopt;
}

std::vector<std::string> string_slice(const GoValue* v) {
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    std::string_view s = v->text();
    while (!s.empty()) {
      auto c = s.find(',');
      std::string part(s.substr(0, c));
      part.erase(0, part.find_first_not_of(' '));
      part.erase(part.find_last_not_of(' ') + 1);
      if (!part.empty()) out.push_back(part);
      if (c == std::string_view::npos) break;
      s.remove_prefix(c + 1);
    }
  } else if (v->kind() == GoValue::Kind::array) {
    for (const auto& i : v->items()) out.push_back(i.text());
  }
  return out;
}

}  // namespace

std::vector<std::string> FakeVault::Impl::sanitize_policies(std::vector<std::string> in, bool add_default) const {
  // policyutil.SanitizePolicies: trimmed, lower-cased, "root" alone wins, "default" added,
  // duplicates removed and the result sorted.
  std::vector<std::string> out;
  bool root = false;
  for (auto p : in) {
    p.erase(0, p.find_first_not_of(" \t"));
    p.erase(p.find_last_not_of(" \t") + 1);
    for (auto& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (p.empty()) continue;
    if (p == "root") {
      root = true;
      break;
    }
    out.push_back(p);
  }
  if (root) return {"root"};
  if (add_default && std::find(out.begin(), out.end(), "default") == out.end()) out.push_back("default");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

FakeVault::Impl::TokenState FakeVault::Impl::lookup_token(const http::ServerRequest& req, Token*& out) {
  // getTokenFromReq: X-Vault-Token wins; otherwise "Authorization: Bearer <t>".
  std::string id;
  if (auto h = req.header("X-Vault-Token"); h && !h->empty()) {
    id = std::string(*h);
  } else {
    for (const auto& h : req.headers) {
      if (http::iequals(h.name, "Authorization") && h.value.starts_with("Bearer ")) {
        id = h.value.substr(7);
        id.erase(0, id.find_first_not_of(" \t"));
        id.erase(id.find_last_not_of(" \t") + 1);
        break;
      }
    }
  }
  if (id.empty()) return TokenState::missing;
  out = find_token(id);
  return out ? TokenState::ok : TokenState::dead;
}

Token* FakeVault::Impl::find_token(const std::string& id) {
  auto it = tokens.find(id);
  if (it == tokens.end()) return nullptr;
  if (it->second.expire_steady && steady_now() >= *it->second.expire_steady) {
    tokens.erase(it);  // expired tokens are revoked by the expiration manager
    return nullptr;
  }
  return &it->second;
}

void FakeVault::Impl::revoke(const std::string& id) { tokens.erase(id); }

Reply FakeVault::Impl::dead_token_reply() const {
  if (options.legacy_permission_denied) return detail::reply_errors(403, {"permission denied"});
  return detail::reply_errors(403, {detail::multierror({"permission denied", "invalid token"})});
}

Reply FakeVault::Impl::denied_reply() const {
  return detail::reply_errors(403, {detail::multierror({"permission denied"})});
}

detail::Capabilities FakeVault::Impl::capabilities(const Token& t, const std::string& path) const {
  detail::Capabilities out;
  if (t.is_root()) {
    out.root = true;
    return out;
  }
  // Merge rules of the same pattern across policies, then pick the exact rule or the
  // highest-priority glob.
  std::map<std::string, detail::Capabilities> matching;
  for (const auto& name : t.policies) {
    auto it = policies.find(name);
    if (it == policies.end()) continue;
    for (const auto& rule : it->second.rules) {
      if (!detail::policy_path_matches(rule.path, path)) continue;
      auto& merged = matching[rule.path];
      if (merged.granting.empty() || merged.granting.back() != name) merged.granting.push_back(name);
      merged.caps.insert(rule.capabilities.begin(), rule.capabilities.end());
      merged.subscribe_event_types.insert(merged.subscribe_event_types.end(), rule.subscribe_event_types.begin(),
                                          rule.subscribe_event_types.end());
    }
  }
  const std::string* best = nullptr;
  for (const auto& [pattern, caps] : matching) {
    if (!is_glob(pattern)) {
      best = &pattern;
      break;
    }
    if (!best || lower_priority(*best, pattern)) best = &pattern;
  }
  if (!best) return out;
  out = matching[*best];
  if (out.caps.count("deny")) {
    out.caps = {"deny"};
    out.subscribe_event_types.clear();
  }
  std::sort(out.granting.begin(), out.granting.end());
  return out;
}

bool FakeVault::Impl::has_mount_access(const Token& t, const std::string& mount_path) const {
  if (t.is_root()) return true;
  for (const auto& name : t.policies) {
    auto it = policies.find(name);
    if (it == policies.end()) continue;
    for (const auto& rule : it->second.rules) {
      const bool any = std::any_of(rule.capabilities.begin(), rule.capabilities.end(),
                                   [](const std::string& c) { return c != "deny"; });
      if (!any) continue;
      const std::string_view p = rule.path;
      const auto wild = p.find_first_of("+*");
      const std::string_view literal = p.substr(0, wild);
      if (literal.starts_with(mount_path)) return true;
      if (wild != std::string_view::npos && std::string_view(mount_path).starts_with(literal)) return true;
    }
  }
  return false;
}

Token& FakeVault::Impl::issue_token(Token t) {
  if (t.id.empty()) t.id = (t.batch ? "hvb." : "hvs.") + random_base62(24);
  if (t.accessor.empty() && !t.batch) t.accessor = random_base62(24);
  t.issue_steady = steady_now();
  t.issue_sys = sys_now();
  issued_ids.push_back(t.id);
  if (t.creation_ttl.count() > 0) {
    t.expire_steady = t.issue_steady + t.creation_ttl;
    t.expire_sys = t.issue_sys + t.creation_ttl;
  }
  auto [it, inserted] = tokens.insert_or_assign(t.id, std::move(t));
  return it->second;
}

GoValue FakeVault::Impl::auth_block(const Token& t) const {
  // logical.HTTPAuth field order; token_policies/identity_policies are omitempty.
  std::int64_t lease = 0;
  if (t.expire_steady) {
    // Vault reports the TTL it granted (whole seconds), not a remainder cut down by the
    // microseconds spent since the token was issued: round, do not truncate.
    lease = std::chrono::round<std::chrono::seconds>(*t.expire_steady - steady_now()).count();
    if (lease < 0) lease = 0;
  }
  GoValue a = GoValue::object();
  a.set("client_token", GoValue::string(t.id));
  a.set("accessor", GoValue::string(t.accessor));
  a.set("policies", GoValue::string_array(t.policies));
  if (!t.policies.empty()) a.set("token_policies", GoValue::string_array(t.policies));
  if (t.meta) {
    GoValue m = GoValue::map();
    for (const auto& [k, v] : *t.meta) m.set(k, GoValue::string(v));
    a.set("metadata", m);
  } else {
    a.set("metadata", GoValue());
  }
  a.set("lease_duration", GoValue::number(lease));
  a.set("renewable", GoValue::boolean(t.renewable && !t.batch));
  a.set("entity_id", GoValue::string(t.entity_id));
  a.set("token_type", GoValue::string(t.batch ? "batch" : "service"));
  a.set("orphan", GoValue::boolean(t.orphan));
  a.set("mfa_requirement", GoValue());
  a.set("num_uses", GoValue::number(t.num_uses));
  return a;
}

Reply FakeVault::Impl::token_endpoint(LogicalRequest& lr, const std::string& sub) {
  Token& caller = *lr.caller.token;
  const bool write = lr.op == Op::create || lr.op == Op::update;
  auto unsupported_op = [] { return detail::reply_errors(405, {detail::multierror({"unsupported operation"})}); };

  if (sub == "create" || sub == "create-orphan") {
    if (!write) return unsupported_op();
    const bool parent_root = caller.is_root();
    bool no_parent = bool_value(lr.data.find("no_parent")).value_or(false) || sub == "create-orphan";
    if (no_parent && !parent_root && sub == "create") {
      return detail::reply_errors(400, {"root or sudo privileges required to create orphan token"});
    }
    const bool no_default = bool_value(lr.data.find("no_default_policy")).value_or(false);
    std::vector<std::string> requested = string_slice(lr.data.find("policies"));
    std::vector<std::string> pol;
    if (requested.empty()) {
      pol = caller.policies;
    } else {
      pol = sanitize_policies(requested, !no_default);
      if (!parent_root) {
        for (const auto& p : pol) {
          if (p == "default") continue;
          if (std::find(caller.policies.begin(), caller.policies.end(), p) == caller.policies.end()) {
            return detail::reply_errors(400, {"child policies must be subset of parent"});
          }
        }
      }
    }
    if (no_default) pol.erase(std::remove(pol.begin(), pol.end(), "default"), pol.end());
    Token t;
    t.policies = pol;
    const auto num_uses = int_value(lr.data.find("num_uses")).value_or(0);
    if (num_uses < 0) return detail::reply_errors(400, {"number of uses cannot be negative"});
    t.num_uses = num_uses;
    std::string display = lr.data.find("display_name") ? lr.data.find("display_name")->text() : "";
    if (display.empty()) {
      t.display_name = "token";
    } else {
      // "token-" + the name with runs of anything but [a-zA-Z0-9-] replaced by "-".
      std::string full = "token-";
      bool in_run = false;
      for (char c : display) {
        const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-';
        if (ok) {
          full.push_back(c);
          in_run = false;
        } else if (!in_run) {
          full.push_back('-');
          in_run = true;
        }
      }
      while (full.ends_with('-')) full.pop_back();
      t.display_name = full;
    }
    bool bad = false;
    auto ttl = duration_value(lr.data.find("ttl"), bad);
    if (bad) return detail::reply_errors(400, {"error parsing ttl"});
    auto explicit_max = duration_value(lr.data.find("explicit_max_ttl"), bad);
    if (bad) return detail::reply_errors(400, {"error parsing explicit_max_ttl"});
    if (auto m = lr.data.find("meta"); m && m->is_object()) {
      std::map<std::string, std::string> meta;
      for (const auto& member : m->members()) meta[member.key] = member.value.text();
      t.meta = std::move(meta);
    }
    const std::string type = lr.data.find("type") ? lr.data.find("type")->text() : "service";
    if (type == "batch") {
      t.batch = true;
      t.renewable = false;
    } else if (type != "service" && !type.empty()) {
      return detail::reply_errors(400, {"invalid 'token_type' value"});
    } else {
      t.renewable = bool_value(lr.data.find("renewable")).value_or(true);
    }
    t.orphan = no_parent;
    t.path = sub == "create" ? "auth/token/create" : "auth/token/create-orphan";
    t.explicit_max_ttl = explicit_max.value_or(std::chrono::seconds(0));
    t.max_ttl = t.explicit_max_ttl;
    std::chrono::seconds effective_max =
        t.max_ttl.count() > 0 ? std::min(t.max_ttl, detail::kSystemMaxTtl) : detail::kSystemMaxTtl;
    std::chrono::seconds want = ttl.value_or(std::chrono::seconds(0));
    if (want.count() == 0) {
      // Root tokens without a TTL never expire; everything else gets the system default.
      want = t.is_root() && t.max_ttl.count() == 0 ? std::chrono::seconds(0) : detail::kSystemMaxTtl;
    }
    if (want > effective_max) want = effective_max;
    t.creation_ttl = want;
    if (t.is_root() && want.count() == 0) t.renewable = false;
    Token& issued = issue_token(std::move(t));
    detail::Envelope e;
    e.request_id = lr.request_id;
    e.auth = auth_block(issued);
    e.mount_type = "token";
    Reply r = detail::reply_ok(e);
    r.wrote = true;
    return r;
  }

  if (sub == "lookup-self") {
    if (lr.op != Op::read && !write) return unsupported_op();
    const Token& t = caller;
    const auto now = steady_now();
    GoValue d = GoValue::map();
    d.set("accessor", GoValue::string(t.accessor));
    d.set("creation_time",
          GoValue::number(std::chrono::duration_cast<std::chrono::seconds>(t.issue_sys.time_since_epoch()).count()));
    d.set("creation_ttl", GoValue::number(t.creation_ttl.count()));
    d.set("display_name", GoValue::string(t.display_name));
    d.set("entity_id", GoValue::string(t.entity_id));
    d.set("expire_time", GoValue());
    d.set("explicit_max_ttl", GoValue::number(t.explicit_max_ttl.count()));
    d.set("id", GoValue::string(t.id));
    if (t.meta) {
      GoValue m = GoValue::map();
      for (const auto& [k, v] : *t.meta) m.set(k, GoValue::string(v));
      d.set("meta", m);
    } else {
      d.set("meta", GoValue());
    }
    d.set("num_uses", GoValue::number(t.num_uses));
    d.set("orphan", GoValue::boolean(t.orphan));
    d.set("path", GoValue::string(t.path));
    d.set("policies", GoValue::string_array(t.policies));
    d.set("ttl", GoValue::number(0));
    d.set("type", GoValue::string(t.batch ? "batch" : "service"));
    if (t.has_lease) {
      // Fields that come from the token's lease entry.
      if (t.last_renewal_sys) {
        d.set("last_renewal_time",
              GoValue::number(
                  std::chrono::duration_cast<std::chrono::seconds>(t.last_renewal_sys->time_since_epoch()).count()));
        d.set("last_renewal", GoValue::string(go_rfc3339_nano(*t.last_renewal_sys)));
      }
      d.set("issue_time", GoValue::string(go_rfc3339_nano(t.issue_sys)));
      if (t.expire_sys && t.expire_steady) {
        d.set("expire_time", GoValue::string(go_rfc3339_nano(*t.expire_sys)));
        d.set("ttl", GoValue::number(std::chrono::duration_cast<std::chrono::seconds>(*t.expire_steady - now).count()));
      }
      d.set("renewable", GoValue::boolean(t.renewable && t.expire_steady.has_value()));
    }
    detail::Envelope e;
    e.request_id = lr.request_id;
    e.data = std::move(d);
    e.mount_type = "token";
    return detail::reply_ok(e);
  }

  if (sub == "renew-self") {
    if (!write) return unsupported_op();
    Token& t = caller;
    if (t.batch) return detail::reply_errors(400, {"batch tokens cannot be renewed"});
    if (!t.has_lease) return detail::reply_errors(400, {"invalid lease ID"});
    if (!t.renewable || !t.expire_steady) return detail::reply_errors(400, {"lease is not renewable"});
    bool bad = false;
    auto increment = duration_value(lr.data.find("increment"), bad);
    if (bad) return detail::reply_errors(400, {"error parsing increment"});
    std::chrono::seconds ttl = increment && increment->count() > 0 ? *increment : t.creation_ttl;
    if (ttl.count() == 0) ttl = detail::kSystemMaxTtl;
    const auto now = steady_now();
    const auto max = t.max_ttl.count() > 0 ? std::min(t.max_ttl, detail::kSystemMaxTtl) : detail::kSystemMaxTtl;
    const auto max_valid = t.issue_steady + max;
    if (max_valid <= now) return detail::reply_errors(400, {"lease is not renewable"});
    std::vector<std::string> warnings;
    if (now + ttl > max_valid) {
      const auto remaining = std::chrono::duration_cast<std::chrono::seconds>(max_valid - now);
      warnings.push_back(
          fmt::format("TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped "
                      "accordingly",
                      go_duration(ttl), go_duration(remaining)));
      ttl = remaining;
    }
    t.expire_steady = now + ttl;
    t.expire_sys = sys_now() + ttl;
    t.last_renewal_sys = sys_now();
    detail::Envelope e;
    e.request_id = lr.request_id;
    e.warnings = std::move(warnings);
    e.auth = auth_block(t);
    e.mount_type = "token";
    return detail::reply_ok(e);
  }

  if (sub == "revoke-self") {
    if (!write) return unsupported_op();
    revoke(caller.id);
    Reply r = detail::reply_no_content();
    r.wrote = true;
    return r;
  }

  if (sub == "revoke" || sub == "revoke-orphan") {
    if (!write) return unsupported_op();
    const GoValue* tok = lr.data.find("token");
    if (!tok || !tok->is_string() || tok->text().empty()) return detail::reply_errors(400, {"missing token"});
    revoke(tok->text());
    Reply r = detail::reply_no_content();
    r.wrote = true;
    return r;
  }

  return detail::reply_errors(404, {detail::multierror({"unsupported path"})});
}

Reply FakeVault::Impl::approle_login(LogicalRequest& lr) {
  const GoValue* role_id = lr.data.find("role_id");
  if (!role_id || !role_id->is_string() || role_id->text().empty()) {
    return detail::reply_errors(400, {"missing role_id"});
  }
  const detail::AppRole* role = nullptr;
  for (const auto& [name, r] : approles) {
    if (r.role_id == role_id->text()) role = &r;
  }
  if (!role) return detail::reply_errors(400, {"invalid role or secret ID"});
  const GoValue* secret_id = lr.data.find("secret_id");
  if (!secret_id || !secret_id->is_string() || secret_id->text().empty()) {
    return detail::reply_errors(400, {"missing secret_id"});
  }
  if (secret_id->text() != role->secret_id) return detail::reply_errors(400, {"invalid role or secret ID"});

  Token t;
  t.policies = sanitize_policies(role->spec.policies, true);
  t.display_name = "approle";
  t.path = "auth/approle/login";
  t.meta = std::map<std::string, std::string>{{"role_name", role->name}};
  t.orphan = true;
  t.renewable = role->spec.renewable;
  t.entity_id = role->entity_id;
  t.actor = "approle";
  t.num_uses = role->spec.num_uses;
  t.max_ttl = role->spec.max_ttl;
  std::vector<std::string> warnings;
  auto ttl = role->spec.ttl.count() > 0 ? role->spec.ttl : detail::kSystemMaxTtl;
  const auto max = t.max_ttl.count() > 0 ? std::min(t.max_ttl, detail::kSystemMaxTtl) : detail::kSystemMaxTtl;
  if (ttl > max) {
    warnings.push_back(
        fmt::format("TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                    go_duration(ttl), go_duration(max)));
    ttl = max;
  }
  t.creation_ttl = ttl;
  Token& issued = issue_token(std::move(t));
  detail::Envelope e;
  e.request_id = lr.request_id;
  e.warnings = std::move(warnings);
  e.auth = auth_block(issued);
  e.mount_type = "approle";
  Reply r = detail::reply_ok(e);
  r.wrote = true;
  return r;
}

// --- public auth methods ----------------------------------------------------------------------

Token& FakeVault::Impl::token_from_spec(const TokenSpec& spec) {
  Token t;
  t.policies = sanitize_policies(spec.policies, true);
  t.creation_ttl = spec.ttl;
  if (t.creation_ttl.count() == 0 && !t.is_root()) t.creation_ttl = detail::kSystemMaxTtl;
  t.explicit_max_ttl = spec.max_ttl;
  t.max_ttl = spec.max_ttl;
  if (t.max_ttl.count() > 0 && t.creation_ttl > t.max_ttl) t.creation_ttl = t.max_ttl;
  t.renewable = spec.renewable && t.creation_ttl.count() > 0;
  t.display_name = spec.display_name;
  t.num_uses = spec.num_uses;
  return issue_token(std::move(t));
}

std::string FakeVault::create_token(TokenSpec spec) { return impl_->token_from_spec(spec).id; }

void FakeVault::revoke_token(const std::string& token) { impl_->revoke(token); }

void FakeVault::set_policy(std::string name, std::vector<std::pair<std::string, std::vector<std::string>>> rules) {
  std::vector<PolicyRule> converted;
  converted.reserve(rules.size());
  for (auto& [path, caps] : rules) converted.push_back({std::move(path), std::move(caps), {}});
  set_policy_rules(std::move(name), std::move(converted));
}

void FakeVault::set_policy_rules(std::string name, std::vector<PolicyRule> rules) {
  detail::Policy p;
  p.name = name;
  p.rules = std::move(rules);
  impl_->policies[name] = std::move(p);
}

void FakeVault::add_approle(std::string role, std::string role_id, std::string secret_id, TokenSpec spec) {
  detail::AppRole r;
  r.name = role;
  r.role_id = std::move(role_id);
  r.secret_id = std::move(secret_id);
  r.spec = std::move(spec);
  r.entity_id = random_uuid();
  impl_->approles[role] = std::move(r);
}

void FakeVault::rotate_secret_id(const std::string& role, std::string new_secret_id) {
  auto it = impl_->approles.find(role);
  if (it != impl_->approles.end()) it->second.secret_id = std::move(new_secret_id);
}

std::size_t FakeVault::revoke_role_tokens(const std::string& role) {
  std::vector<std::string> ids;
  for (const auto& [id, t] : impl_->tokens) {
    if (t.path != "auth/approle/login" || !t.meta) continue;
    auto it = t.meta->find("role_name");
    if (it != t.meta->end() && it->second == role) ids.push_back(id);
  }
  for (const auto& id : ids) impl_->revoke(id);
  return ids.size();
}

std::vector<std::string> FakeVault::issued_tokens() const { return impl_->issued_ids; }

}  // namespace nicsync::fakes
