// The test Vault's KV secrets engine, v1 (passthrough.go) and v2 (vault-plugin-secrets-kv), as
// reference/vault-api.md §1 (with the §12 corrections) describes them.
#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "fake_vault_impl.hpp"

namespace nicsync::fakes {
using detail::Attribution;
using detail::KvKey;
using detail::KvMount;
using detail::KvVersion;
using detail::Op;
using detail::Reply;

namespace {

constexpr std::int64_t kDefaultMaxVersions = 10;

Reply unsupported_operation() { return detail::reply_errors(405, {detail::multierror({"unsupported operation"})}); }

std::string subcommand(Op op) {
  switch (op) {
    case Op::create:
    case Op::update: return "put";
    case Op::patch: return "patch";
    case Op::read: return "get";
    case Op::list: return "list";
    case Op::del: return "delete";
  }
  return "get";
}

std::string ts(std::optional<detail::SysTime> t) { return t ? go_rfc3339_nano(*t) : std::string(); }

// mapstructure.WeakDecode into an int, which is how the KV plugin reads options.cas: strings
// are parsed with base 0 ("0x10", "010" octal), bools become 1/0, null 0.
std::optional<std::int64_t> weak_int(const GoValue& v) {
  switch (v.kind()) {
    case GoValue::Kind::null: return 0;
    case GoValue::Kind::boolean: return v.as_bool() ? 1 : 0;
    case GoValue::Kind::number: return v.as_int();
    case GoValue::Kind::string: {
      std::string_view s = v.text();
      bool neg = false;
      if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
      }
      int base = 10;
      if (s.size() > 1 && s[0] == '0') {
        if (s[1] == 'x' || s[1] == 'X')
          base = 16, s.remove_prefix(2);
        else if (s[1] == 'b' || s[1] == 'B')
          base = 2, s.remove_prefix(2);
        else if (s[1] == 'o' || s[1] == 'O')
          base = 8, s.remove_prefix(2);
        else
          base = 8, s.remove_prefix(1);
      }
      std::string digits;
      for (char c : s) {
        if (c != '_') digits.push_back(c);
      }
      if (digits.empty()) return std::nullopt;
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n, base);
      if (ec != std::errc{} || p != digits.data() + digits.size()) return std::nullopt;
      return neg ? -n : n;
    }
    default: return std::nullopt;
  }
}

// Vault's TypeCommaIntSlice: [1,2], ["1","2"], "1,2" or a single number.
std::optional<std::vector<std::int64_t>> int_slice(const GoValue* v) {
  std::vector<std::int64_t> out;
  if (!v || v->is_null()) return out;
  auto one = [&](const GoValue& item) -> bool {
    if (auto n = item.as_int()) {
      out.push_back(*n);
      return true;
    }
    if (item.is_string()) {
      if (auto n = go_atoi(item.text())) {
        out.push_back(*n);
        return true;
      }
    }
    return false;
  };
  if (v->kind() == GoValue::Kind::array) {
    for (const auto& item : v->items()) {
      if (!one(item)) return std::nullopt;
    }
    return out;
  }
  if (v->is_string()) {
    std::string_view s = v->text();
    while (!s.empty()) {
      auto c = s.find(',');
      std::string part(s.substr(0, c));
      part.erase(0, part.find_first_not_of(' '));
      part.erase(part.find_last_not_of(' ') + 1);
      if (!part.empty()) {
        auto n = go_atoi(part);
        if (!n) return std::nullopt;
        out.push_back(*n);
      }
      if (c == std::string_view::npos) break;
      s.remove_prefix(c + 1);
    }
    return out;
  }
  if (one(*v)) return out;
  return std::nullopt;
}

std::string versions_json(const std::vector<std::int64_t>& versions) {
  GoValue a = GoValue::array();
  for (auto v : versions) a.push(GoValue::number(v));
  return a.dump();
}

std::optional<std::chrono::nanoseconds> duration_field(const GoValue* v, bool& bad) {
  bad = false;
  if (!v || v->is_null()) return std::nullopt;
  if (auto n = v->as_int()) return std::chrono::seconds(*n);
  if (v->is_string()) {
    if (auto d = go_parse_duration_second(v->text())) return *d;
  }
  bad = true;
  return std::nullopt;
}

// RFC 7386 JSON merge patch.
GoValue merge_patch(GoValue target, const GoValue& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = GoValue::map();
  for (const auto& m : patch.members()) {
    if (m.value.is_null()) {
      target.erase(m.key);
    } else if (GoValue* existing = target.find(m.key)) {
      *existing = merge_patch(*existing, m.value);
    } else {
      target.set(m.key, merge_patch(GoValue(), m.value));
    }
  }
  return target;
}

GoValue subkeys_of(const GoValue& data, std::int64_t depth, std::int64_t level) {
  GoValue out = GoValue::map();
  for (const auto& m : data.members()) {
    if (m.value.is_object() && !m.value.members().empty() && (depth == 0 || level < depth)) {
      out.set(m.key, subkeys_of(m.value, depth, level + 1));
    } else {
      out.set(m.key, GoValue());
    }
  }
  return out;
}

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

std::string hex_of(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

// The plugin's validateCustomMetadata (errors collected in a multierror).
std::optional<std::string> validate_custom_metadata(const std::map<std::string, std::string>& cm) {
  std::vector<std::string> errors;
  if (cm.size() > 64) errors.push_back(fmt::format("payload must contain at most 64 keys, provided: {}", cm.size()));
  for (const auto& [k, v] : cm) {
    if (k.size() > 128) {
      errors.push_back(fmt::format("length of key {} is {} but max is 128", GoValue::string(k).dump(), k.size()));
    }
    if (v.size() > 512) {
      errors.push_back(
          fmt::format("length of value for key {} is {} but max is 512", GoValue::string(k).dump(), v.size()));
    }
    if (!printable(k)) {
      errors.push_back(
          fmt::format("key {} ({}) contains unprintable characters", GoValue::string(k).dump(), hex_of(k)));
    }
    if (!printable(v)) {
      errors.push_back(
          fmt::format("value for key {} ({}) contains unprintable characters", GoValue::string(k).dump(), hex_of(v)));
    }
  }
  if (errors.empty()) return std::nullopt;
  return "custom_metadata validation failed: " + detail::multierror(errors);
}

// TypeKVPairs is decoded weakly: numbers and bools become strings.
std::optional<std::string> weak_string(const GoValue& v) {
  switch (v.kind()) {
    case GoValue::Kind::string:
    case GoValue::Kind::number: return v.text();
    case GoValue::Kind::boolean: return std::string(v.as_bool() ? "1" : "0");
    case GoValue::Kind::null: return std::string();
    default: return std::nullopt;
  }
}

}  // namespace

// --- mounts ----------------------------------------------------------------------------------

KvMount* FakeVault::Impl::find_mount(const std::string& path) {
  KvMount* best = nullptr;
  for (auto& [p, m] : mounts) {
    const bool match = path.starts_with(p) || (path + "/") == p;
    if (match && (!best || p.size() > best->path.size())) best = &m;
  }
  return best;
}

const KvMount* FakeVault::Impl::find_mount_exact(const std::string& path) const {
  auto it = mounts.find(path.ends_with('/') ? path : path + "/");
  return it == mounts.end() ? nullptr : &it->second;
}

KvMount* FakeVault::Impl::find_mount_exact(const std::string& path) {
  auto it = mounts.find(path.ends_with('/') ? path : path + "/");
  return it == mounts.end() ? nullptr : &it->second;
}

Op FakeVault::Impl::effective_op(KvMount& m, Op op, const std::string& rest) const {
  if (op != Op::update) return op;
  if (m.version == 1) return m.v1.count(rest) ? Op::update : Op::create;
  for (std::string_view prefix : {"data/", "metadata/"}) {
    if (rest.starts_with(prefix)) return m.keys.count(rest.substr(prefix.size())) ? Op::update : Op::create;
  }
  return Op::update;
}

bool FakeVault::Impl::version_dead(const KvVersion& v) const {
  // Vault compares with time.Now(), which always moves; with a manual clock a deletion stamped
  // "now" must count as past too.
  return v.destroyed || (v.deletion && *v.deletion <= sys_now());
}

GoValue FakeVault::Impl::version_metadata(const KvKey& k, std::int64_t version) const {
  const KvVersion& v = k.versions.at(version);
  GoValue cm;
  if (!k.custom_metadata.empty()) {
    cm = GoValue::map();
    for (const auto& [a, b] : k.custom_metadata) cm.set(a, GoValue::string(b));
  }
  GoValue md = GoValue::map();
  md.set("created_time", GoValue::string(go_rfc3339_nano(v.created)));
  md.set("custom_metadata", cm);
  md.set("deletion_time", GoValue::string(ts(v.deletion)));
  md.set("destroyed", GoValue::boolean(v.destroyed));
  md.set("version", GoValue::number(version));
  return md;
}

void FakeVault::Impl::kv_event(const KvMount& m, std::string type, const std::string& path_suffix,
                               const std::string& data_path_suffix,
                               std::vector<std::pair<std::string, std::string>> extra) {
  if (subscriptions.empty()) return;
  const std::string mount_path = m.path.substr(m.ns.size());
  GoValue md = GoValue::map();
  md.set("modified", GoValue::string("true"));
  md.set("operation", GoValue::string(type.substr(type.find('/') + 1)));
  md.set("path", GoValue::string(mount_path + path_suffix));
  if (!data_path_suffix.empty()) md.set("data_path", GoValue::string(mount_path + data_path_suffix));
  for (auto& [k, v] : extra) md.set(k, GoValue::string(std::move(v)));
  if (options.enterprise) md.set("vault_index", GoValue::string(next_index()));
  emit({std::move(type), std::move(md), mount_path, m.accessor, m.ns});
}

// --- KV v2 operations (shared by HTTP and the data plane) -------------------------------------

std::int64_t FakeVault::Impl::kv2_write(KvMount& m, const std::string& key, GoValue data, const Attribution& by,
                                        std::string event_operation) {
  const auto now = sys_now();
  const bool existed = m.keys.count(key) > 0;
  KvKey& k = m.keys[key];
  if (!existed || k.created == detail::SysTime{}) k.created = now;
  Attribution who = by;
  if (who.operation.empty()) who.operation = existed ? "update" : "create";
  k.current += 1;
  KvVersion v;
  v.created = now;
  v.created_by = who;
  v.data = std::move(data);
  // delete_version_after: the key's value, capped by the mount's.
  auto dva = m.config.delete_version_after;
  if (k.delete_version_after.count() > 0 && (dva.count() == 0 || k.delete_version_after < dva)) {
    dva = k.delete_version_after;
  }
  if (dva.count() > 0) v.deletion = now + std::chrono::duration_cast<detail::SysTime::duration>(dva);
  k.versions[k.current] = std::move(v);
  k.updated = now;
  k.last_updated_by = who;
  // AddVersion's eviction (the larger of key and mount max_versions, 10 if both unset). On
  // the limit-th write it "deletes" version 0, so oldest_version becomes 1 (§12.1).
  std::int64_t limit = std::max(k.max_versions, m.config.max_versions);
  if (limit == 0) limit = kDefaultMaxVersions;
  if (k.current - k.oldest >= limit) {
    const std::int64_t to_delete = k.current - limit;
    for (std::int64_t i = k.oldest; i <= to_delete; ++i) k.versions.erase(i);
    k.oldest = to_delete + 1;
  }
  kv_event(m, "kv-v2/" + event_operation, "data/" + key, "data/" + key,
           {{"current_version", std::to_string(k.current)}, {"oldest_version", std::to_string(k.oldest)}});
  return k.current;
}

bool FakeVault::Impl::kv2_delete_latest(KvMount& m, const std::string& key, const Attribution& by) {
  auto it = m.keys.find(key);
  if (it == m.keys.end()) return false;
  KvKey& k = it->second;
  auto v = k.versions.find(k.current);
  if (v == k.versions.end() || v->second.destroyed) return false;
  if (v->second.deletion && *v->second.deletion <= sys_now()) return false;
  v->second.deletion = sys_now();
  v->second.deleted_by = by;
  k.last_updated_by = by;
  kv_event(m, "kv-v2/data-delete", "data/" + key, "",
           {{"current_version", std::to_string(k.current)}, {"oldest_version", std::to_string(k.oldest)}});
  return true;
}

void FakeVault::Impl::kv2_delete_versions(KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions,
                                          const Attribution& by) {
  auto it = m.keys.find(key);
  if (it == m.keys.end()) return;
  KvKey& k = it->second;
  for (auto n : versions) {
    auto v = k.versions.find(n);
    if (v == k.versions.end() || v->second.destroyed) continue;
    if (v->second.deletion && *v->second.deletion <= sys_now()) continue;
    v->second.deletion = sys_now();
    v->second.deleted_by = by;
  }
  k.last_updated_by = by;
  kv_event(m, "kv-v2/delete", "delete/" + key, "",
           {{"current_version", std::to_string(k.current)},
            {"oldest_version", std::to_string(k.oldest)},
            {"deleted_versions", versions_json(versions)}});
}

void FakeVault::Impl::kv2_undelete(KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions,
                                   const Attribution& by) {
  auto it = m.keys.find(key);
  if (it == m.keys.end()) return;
  KvKey& k = it->second;
  auto dva = m.config.delete_version_after;
  if (k.delete_version_after.count() > 0 && (dva.count() == 0 || k.delete_version_after < dva)) {
    dva = k.delete_version_after;
  }
  for (auto n : versions) {
    auto v = k.versions.find(n);
    if (v == k.versions.end() || v->second.destroyed) continue;
    v->second.deletion.reset();
    if (dva.count() > 0) v->second.deletion = sys_now() + std::chrono::duration_cast<detail::SysTime::duration>(dva);
    v->second.deleted_by.reset();
  }
  k.last_updated_by = by;
  kv_event(m, "kv-v2/undelete", "undelete/" + key, "data/" + key,
           {{"current_version", std::to_string(k.current)},
            {"oldest_version", std::to_string(k.oldest)},
            {"undeleted_versions", versions_json(versions)}});
}

void FakeVault::Impl::kv2_destroy(KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions) {
  auto it = m.keys.find(key);
  if (it == m.keys.end()) return;
  KvKey& k = it->second;
  for (auto n : versions) {
    auto v = k.versions.find(n);
    if (v == k.versions.end() || v->second.destroyed) continue;
    v->second.destroyed = true;
    v->second.data = GoValue();
  }
  kv_event(m, "kv-v2/destroy", "destroy/" + key, "",
           {{"current_version", std::to_string(k.current)},
            {"oldest_version", std::to_string(k.oldest)},
            {"destroyed_versions", versions_json(versions)}});
}

void FakeVault::Impl::kv2_delete_metadata(KvMount& m, const std::string& key) {
  if (!m.keys.erase(key)) return;
  kv_event(m, "kv-v2/metadata-delete", "metadata/" + key, "", {});
}

// --- HTTP ------------------------------------------------------------------------------------

Reply FakeVault::Impl::kv(KvMount& m, LogicalRequest& lr, const std::string& rest) {
  return m.version == 1 ? kv_v1(m, lr, rest) : kv_v2(m, lr, rest);
}

namespace {

GoValue list_keys(const std::vector<std::string>& names, const std::string& dir) {
  std::set<std::string> out;
  for (const auto& n : names) {
    if (!n.starts_with(dir)) continue;
    std::string rel = n.substr(dir.size());
    if (rel.empty()) continue;
    auto slash = rel.find('/');
    out.insert(slash == std::string::npos ? rel : rel.substr(0, slash + 1));
  }
  GoValue keys = GoValue::array();
  for (const auto& k : out) keys.push(GoValue::string(k));
  return keys;
}

}  // namespace

Reply FakeVault::Impl::kv_v1(KvMount& m, LogicalRequest& lr, const std::string& rest) {
  switch (lr.op) {
    case Op::list: {
      std::vector<std::string> names;
      for (const auto& [k, v] : m.v1) names.push_back(k);
      GoValue keys = list_keys(names, rest);
      if (keys.items().empty()) return detail::reply_errors(404, {});
      GoValue data = GoValue::map();
      data.set("keys", std::move(keys));
      detail::Envelope e;
      e.request_id = lr.request_id;
      e.data = std::move(data);
      e.mount_type = "kv";
      return detail::reply_ok(e);
    }
    case Op::read: {
      auto it = m.v1.find(rest);
      if (it == m.v1.end()) return detail::reply_errors(404, {});
      // lease_duration: a "ttl" (or "lease") field that parses as a duration, else the
      // mount's default lease TTL (768h).
      std::int64_t lease = detail::kSystemMaxTtl.count();
      const GoValue* ttl = it->second.find("ttl");
      if (!ttl) ttl = it->second.find("lease");
      if (ttl) {
        std::optional<std::chrono::nanoseconds> d;
        if (auto n = ttl->as_int())
          d = std::chrono::seconds(*n);
        else if (ttl->is_string())
          d = go_parse_duration_second(ttl->text());
        if (d) lease = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
      }
      detail::Envelope e;
      e.request_id = lr.request_id;
      e.lease_duration = lease;
      e.data = it->second;
      e.mount_type = "kv";
      return detail::reply_ok(e);
    }
    case Op::create:
    case Op::update: {
      if (lr.data.members().empty()) return detail::reply_errors(400, {"missing data fields"});
      m.v1[rest] = lr.data;
      kv_event(m, "kv-v1/write", rest, rest, {});
      Reply r = detail::reply_no_content();
      r.wrote = true;
      return r;
    }
    case Op::del: {
      m.v1.erase(rest);
      kv_event(m, "kv-v1/delete", rest, "", {});
      Reply r = detail::reply_no_content();
      r.wrote = true;
      return r;
    }
    case Op::patch: return unsupported_operation();
  }
  return unsupported_operation();
}

Reply FakeVault::Impl::kv_v2(KvMount& m, LogicalRequest& lr, const std::string& rest) {
  const Attribution by_write = lr.caller.attribution("");
  auto invalid_path = [&] {
    detail::Envelope e;
    e.request_id = lr.request_id;
    e.warnings = {fmt::format(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
        "If using the Vault CLI, use 'vault kv {}' for this operation.",
        subcommand(lr.op))};
    return detail::reply_raw(404, std::move(e));
  };
  auto ok_data = [&](GoValue data) {
    detail::Envelope e;
    e.request_id = lr.request_id;
    e.data = std::move(data);
    e.mount_type = "kv";
    return detail::reply_ok(e);
  };
  auto written = [](Reply r) {
    r.wrote = true;
    return r;
  };

  // Mount config.
  if (rest == "config") {
    if (lr.op == Op::read) {
      GoValue d = GoValue::map();
      d.set("cas_required", GoValue::boolean(m.config.cas_required));
      d.set("delete_version_after", GoValue::string(go_duration(m.config.delete_version_after)));
      d.set("max_versions", GoValue::number(m.config.max_versions));
      return ok_data(std::move(d));
    }
    if (lr.op == Op::create || lr.op == Op::update) {
      if (const GoValue* v = lr.data.find("max_versions")) {
        auto n = weak_int(*v);
        if (!n) return detail::reply_errors(400, {"error parsing max_versions"});
        m.config.max_versions = *n;
      }
      if (const GoValue* v = lr.data.find("cas_required")) {
        m.config.cas_required =
            v->kind() == GoValue::Kind::boolean ? v->as_bool() : go_parse_bool(v->text()).value_or(false);
      }
      bool bad = false;
      if (auto d = duration_field(lr.data.find("delete_version_after"), bad)) m.config.delete_version_after = *d;
      if (bad) return detail::reply_errors(400, {"error parsing delete_version_after"});
      kv_event(m, "kv-v2/config-write", "config", "config", {});
      return written(detail::reply_no_content());
    }
    return unsupported_operation();
  }

  // The roots of data/, metadata/, delete/, undelete/, destroy/.
  static const std::set<std::string> kRoots = {"data",    "data/",    "metadata",  "metadata/", "delete",
                                               "delete/", "undelete", "undelete/", "destroy",   "destroy/"};
  if (kRoots.count(rest)) {
    if (lr.op == Op::list) {
      if (!rest.starts_with("metadata")) return unsupported_operation();
    } else {
      detail::Envelope e;
      e.request_id = lr.request_id;
      e.warnings = {"Non-listing operations on the root of a K/V v2 mount are not supported."};
      return detail::reply_raw(404, std::move(e));
    }
  }

  // LIST metadata/<dir>/
  if (rest.starts_with("metadata") && lr.op == Op::list) {
    std::string dir = rest.size() > 9 ? rest.substr(9) : std::string();
    std::vector<std::string> names;
    names.reserve(m.keys.size());
    for (const auto& [k, v] : m.keys) names.push_back(k);
    GoValue keys = list_keys(names, dir);
    if (keys.items().empty()) return detail::reply_errors(404, {});
    GoValue d = GoValue::map();
    d.set("keys", std::move(keys));
    return ok_data(std::move(d));
  }

  auto key_after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (!rest.starts_with(prefix)) return std::nullopt;
    std::string key = rest.substr(prefix.size());
    if (key.empty() || key.ends_with('/')) return std::nullopt;
    return key;
  };

  auto version_param = [&](std::int64_t& out) -> std::optional<Reply> {
    out = 0;
    const GoValue* v = lr.data.find("version");
    if (!v) return std::nullopt;
    if (auto n = v->as_int()) {
      out = *n;
      return std::nullopt;
    }
    if (v->is_string()) {
      if (v->text().empty()) return std::nullopt;
      if (auto n = go_atoi(v->text())) {
        out = *n;
        return std::nullopt;
      }
    }
    // Framework field conversion error (exact text unverified in the reference).
    return detail::reply_errors(
        400, {fmt::format("error converting input {} for field \"version\": strconv.ParseInt: parsing {}: invalid "
                          "syntax",
                          v->text(), GoValue::string(v->text()).dump())});
  };

  // CAS rules shared by write and patch.
  auto check_cas = [&](const KvKey* k) -> std::optional<Reply> {
    const GoValue* options_v = lr.data.find("options");
    const GoValue* cas = options_v && options_v->is_object() ? options_v->find("cas") : nullptr;
    const std::int64_t current = k ? k->current : 0;
    if (cas) {
      auto n = weak_int(*cas);
      if (!n) return detail::reply_errors(400, {"error parsing check-and-set parameter"});
      if (*n != current)
        return detail::reply_errors(400, {"check-and-set parameter did not match the current version"});
      return std::nullopt;
    }
    if (m.config.cas_required || (k && k->cas_required)) {
      return detail::reply_errors(400, {"check-and-set parameter required for this call"});
    }
    return std::nullopt;
  };

  auto data_field = [&](GoValue& out) -> std::optional<Reply> {
    const GoValue* d = lr.data.find("data");
    if (!d || d->is_null()) return detail::reply_errors(400, {"no data provided"});
    if (!d->is_object()) {
      // mapstructure's message for a non-map (exact text unverified in the reference).
      static constexpr std::string_view kNames[] = {"null", "bool", "json.Number", "string", "[]interface {}", "map"};
      return detail::reply_errors(400,
                                  {fmt::format("error converting input for field \"data\": '' expected a map, got '{}'",
                                               kNames[static_cast<int>(d->kind())])});
    }
    out = *d;
    return std::nullopt;
  };

  if (auto key = key_after("data/")) {
    auto it = m.keys.find(*key);
    switch (lr.op) {
      case Op::read: {
        std::int64_t version = 0;
        if (auto bad = version_param(version)) return std::move(*bad);
        if (it == m.keys.end()) return detail::reply_errors(404, {});
        const KvKey& k = it->second;
        if (version == 0) version = k.current;
        auto v = k.versions.find(version);
        if (v == k.versions.end()) return detail::reply_errors(404, {});
        GoValue d = GoValue::map();
        d.set("metadata", version_metadata(k, version));
        if (version_dead(v->second)) {
          d.set("data", GoValue());
          detail::Envelope e;
          e.request_id = lr.request_id;
          e.data = std::move(d);
          return detail::reply_raw(404, std::move(e));
        }
        d.set("data", v->second.data);
        return ok_data(std::move(d));
      }
      case Op::create:
      case Op::update: {
        GoValue data;
        if (auto bad = data_field(data)) return std::move(*bad);
        if (auto bad = check_cas(it == m.keys.end() ? nullptr : &it->second)) return std::move(*bad);
        const auto version = kv2_write(m, *key, std::move(data), by_write, "data-write");
        return written(ok_data(version_metadata(m.keys.at(*key), version)));
      }
      case Op::patch: {
        GoValue patch;
        if (auto bad = data_field(patch)) return std::move(*bad);
        if (it == m.keys.end()) return detail::reply_errors(404, {});
        if (auto bad = check_cas(&it->second)) return std::move(*bad);
        KvKey& k = it->second;
        auto v = k.versions.find(k.current);
        if (v == k.versions.end()) return detail::reply_errors(404, {});
        if (version_dead(v->second)) {
          detail::Envelope e;
          e.request_id = lr.request_id;
          e.data = version_metadata(k, k.current);
          return detail::reply_raw(404, std::move(e));
        }
        GoValue merged = merge_patch(v->second.data, patch);
        const auto version = kv2_write(m, *key, std::move(merged), lr.caller.attribution("patch"), "data-patch");
        return written(ok_data(version_metadata(m.keys.at(*key), version)));
      }
      case Op::del:
        kv2_delete_latest(m, *key, lr.caller.attribution("delete"));
        return written(detail::reply_no_content());
      case Op::list: return invalid_path();
    }
  }

  if (auto key = key_after("metadata/")) {
    auto it = m.keys.find(*key);
    switch (lr.op) {
      case Op::read: {
        if (it == m.keys.end()) return detail::reply_errors(404, {});
        const KvKey& k = it->second;
        GoValue versions = GoValue::map();
        for (const auto& [n, v] : k.versions) {
          GoValue e = GoValue::map();
          e.set("created_by", v.created_by ? v.created_by->to_go() : GoValue());
          e.set("created_time", GoValue::string(go_rfc3339_nano(v.created)));
          e.set("deleted_by", v.deleted_by ? v.deleted_by->to_go() : GoValue());
          e.set("deletion_time", GoValue::string(ts(v.deletion)));
          e.set("destroyed", GoValue::boolean(v.destroyed));
          versions.set(std::to_string(n), std::move(e));
        }
        GoValue cm;
        if (!k.custom_metadata.empty()) {
          cm = GoValue::map();
          for (const auto& [a, b] : k.custom_metadata) cm.set(a, GoValue::string(b));
        }
        GoValue d = GoValue::map();
        d.set("cas_required", GoValue::boolean(k.cas_required));
        d.set("created_time", GoValue::string(go_rfc3339_nano(k.created)));
        d.set("current_version", GoValue::number(k.current));
        d.set("custom_metadata", cm);
        d.set("delete_version_after", GoValue::string(go_duration(k.delete_version_after)));
        d.set("last_updated_by", k.last_updated_by ? k.last_updated_by->to_go() : GoValue());
        d.set("max_versions", GoValue::number(k.max_versions));
        d.set("oldest_version", GoValue::number(k.oldest));
        d.set("updated_time", GoValue::string(go_rfc3339_nano(k.updated)));
        d.set("versions", std::move(versions));
        return ok_data(std::move(d));
      }
      case Op::create:
      case Op::update:
      case Op::patch: {
        if (lr.op == Op::patch && it == m.keys.end()) return detail::reply_errors(404, {});
        // Parse everything before changing anything.
        std::optional<std::int64_t> max_versions;
        if (const GoValue* v = lr.data.find("max_versions"); v && !v->is_null()) {
          max_versions = weak_int(*v);
          if (!max_versions) return detail::reply_errors(400, {"error parsing max_versions"});
        }
        std::optional<bool> cas_required;
        if (const GoValue* v = lr.data.find("cas_required"); v && !v->is_null()) {
          cas_required = v->kind() == GoValue::Kind::boolean ? std::optional(v->as_bool()) : go_parse_bool(v->text());
          if (!cas_required) return detail::reply_errors(400, {"error parsing cas_required"});
        }
        bool bad = false;
        auto dva = duration_field(lr.data.find("delete_version_after"), bad);
        if (bad) return detail::reply_errors(400, {"error parsing delete_version_after"});
        std::optional<std::map<std::string, std::string>> cm;
        if (const GoValue* v = lr.data.find("custom_metadata"); v && !v->is_null()) {
          if (!v->is_object()) return detail::reply_errors(400, {"custom_metadata must be a map of strings"});
          std::map<std::string, std::string> next;
          if (lr.op == Op::patch) next = it->second.custom_metadata;
          for (const auto& member : v->members()) {
            if (lr.op == Op::patch && member.value.is_null()) {
              next.erase(member.key);
              continue;
            }
            auto s = weak_string(member.value);
            if (!s) return detail::reply_errors(400, {"custom_metadata must be a map of strings"});
            next[member.key] = *s;
          }
          if (auto err = validate_custom_metadata(next)) return detail::reply_errors(400, {*err});
          cm = std::move(next);
        }
        const bool existed = it != m.keys.end();
        KvKey& k = m.keys[*key];
        if (!existed) {
          k.created = sys_now();
          k.updated = k.created;
        }
        if (max_versions) k.max_versions = *max_versions;
        if (cas_required) k.cas_required = *cas_required;
        if (dva) k.delete_version_after = *dva;
        if (cm) k.custom_metadata = std::move(*cm);
        std::vector<std::string> warnings;
        if (cas_required && !*cas_required && m.config.cas_required) {
          warnings.push_back(
              "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.");
        }
        kv_event(m, lr.op == Op::patch ? "kv-v2/metadata-patch" : "kv-v2/metadata-write", "metadata/" + *key,
                 "metadata/" + *key, {});
        if (warnings.empty()) return written(detail::reply_no_content());
        detail::Envelope e;
        e.request_id = lr.request_id;
        e.warnings = std::move(warnings);
        e.mount_type = "kv";
        return written(detail::reply_ok(e));
      }
      case Op::del: kv2_delete_metadata(m, *key); return written(detail::reply_no_content());
      case Op::list: return invalid_path();
    }
  }

  for (std::string_view prefix : {"delete/", "undelete/", "destroy/"}) {
    auto key = key_after(prefix);
    if (!key) continue;
    if (lr.op != Op::create && lr.op != Op::update) return unsupported_operation();
    auto versions = int_slice(lr.data.find("versions"));
    if (!versions) {
      return detail::reply_errors(400, {"error converting input for field \"versions\": expected a list of integers"});
    }
    if (versions->empty()) {
      return detail::reply_errors(400,
                                  {prefix == "destroy/" ? "no version number provided" : "No version number provided"});
    }
    if (prefix == "delete/")
      kv2_delete_versions(m, *key, *versions, lr.caller.attribution("update"));
    else if (prefix == "undelete/")
      kv2_undelete(m, *key, *versions, lr.caller.attribution("undelete"));
    else
      kv2_destroy(m, *key, *versions);
    return written(detail::reply_no_content());
  }

  if (auto key = key_after("subkeys/")) {
    if (lr.op != Op::read) return unsupported_operation();
    std::int64_t version = 0;
    if (auto bad = version_param(version)) return std::move(*bad);
    std::int64_t depth = 0;
    if (const GoValue* d = lr.data.find("depth"); d && !d->text().empty()) {
      auto n = d->is_string() ? go_atoi(d->text()) : d->as_int();
      if (!n || *n < 0) return detail::reply_errors(400, {"depth must be a non-negative integer"});
      depth = *n;
    }
    auto it = m.keys.find(*key);
    if (it == m.keys.end()) return detail::reply_errors(404, {});
    const KvKey& k = it->second;
    if (version == 0) version = k.current;
    auto v = k.versions.find(version);
    if (v == k.versions.end()) return detail::reply_errors(404, {});
    GoValue d = GoValue::map();
    d.set("metadata", version_metadata(k, version));
    if (version_dead(v->second)) {
      d.set("subkeys", GoValue());
      detail::Envelope e;
      e.request_id = lr.request_id;
      e.data = std::move(d);
      return detail::reply_raw(404, std::move(e));
    }
    d.set("subkeys", subkeys_of(v->second.data, depth, 1));
    return ok_data(std::move(d));
  }

  return invalid_path();
}

// --- public data plane -----------------------------------------------------------------------

namespace {
Attribution root_attribution(std::string operation) { return {"token", std::move(operation), "", ""}; }
}  // namespace

void FakeVault::mount(std::string path, int kv_version) { impl_->add_mount(std::move(path), kv_version); }

void FakeVault::Impl::add_mount(std::string path, int kv_version) {
  while (path.starts_with('/')) path.erase(path.begin());
  if (!path.ends_with('/')) path += '/';
  if (mounts.count(path)) return;
  KvMount m;
  m.path = path;
  for (const auto& ns : namespaces) {
    if (path.starts_with(ns) && ns.size() > m.ns.size()) m.ns = ns;
  }
  m.version = kv_version;
  m.accessor = "kv_" + random_uuid().substr(0, 8);
  m.uuid = random_uuid();
  mounts.emplace(path, std::move(m));
}

void FakeVault::unmount(const std::string& path) { impl_->mounts.erase(path.ends_with('/') ? path : path + "/"); }

std::int64_t FakeVault::kv_put(const std::string& mount, const std::string& key,
                               std::vector<std::pair<std::string, std::string>> data) {
  KvMount* m = impl_->find_mount_exact(mount);
  if (!m) return 0;
  GoValue d = GoValue::map();
  for (auto& [k, v] : data) d.set(std::move(k), GoValue::string(std::move(v)));
  if (m->version == 1) {
    m->v1[key] = std::move(d);
    impl_->kv_event(*m, "kv-v1/write", key, key, {});
    return 0;
  }
  return impl_->kv2_write(*m, key, std::move(d), root_attribution(""), "data-write");
}

void FakeVault::kv_delete_latest(const std::string& mount, const std::string& key) {
  KvMount* m = impl_->find_mount_exact(mount);
  if (!m) return;
  if (m->version == 1) {
    m->v1.erase(key);
    impl_->kv_event(*m, "kv-v1/delete", key, "", {});
    return;
  }
  impl_->kv2_delete_latest(*m, key, root_attribution("delete"));
}

void FakeVault::kv_delete_versions(const std::string& mount, const std::string& key,
                                   std::vector<std::int64_t> versions) {
  if (KvMount* m = impl_->find_mount_exact(mount); m && m->version == 2) {
    impl_->kv2_delete_versions(*m, key, versions, root_attribution("update"));
  }
}

void FakeVault::kv_undelete(const std::string& mount, const std::string& key, std::vector<std::int64_t> versions) {
  if (KvMount* m = impl_->find_mount_exact(mount); m && m->version == 2) {
    impl_->kv2_undelete(*m, key, versions, root_attribution("undelete"));
  }
}

void FakeVault::kv_destroy(const std::string& mount, const std::string& key, std::vector<std::int64_t> versions) {
  if (KvMount* m = impl_->find_mount_exact(mount); m && m->version == 2) impl_->kv2_destroy(*m, key, versions);
}

void FakeVault::kv_delete_metadata(const std::string& mount, const std::string& key) {
  if (KvMount* m = impl_->find_mount_exact(mount); m && m->version == 2) impl_->kv2_delete_metadata(*m, key);
}

void FakeVault::kv_set_key_settings(const std::string& mount, const std::string& key, std::int64_t max_versions,
                                    bool cas_required, std::chrono::seconds delete_version_after,
                                    std::optional<std::vector<std::pair<std::string, std::string>>> custom_metadata) {
  KvMount* m = impl_->find_mount_exact(mount);
  if (!m || m->version != 2) return;
  const bool existed = m->keys.count(key) > 0;
  KvKey& k = m->keys[key];
  if (!existed) {
    k.created = impl_->sys_now();
    k.updated = k.created;
  }
  k.max_versions = max_versions;
  k.cas_required = cas_required;
  k.delete_version_after = delete_version_after;
  if (custom_metadata) {
    k.custom_metadata.clear();
    for (auto& [a, b] : *custom_metadata) k.custom_metadata[a] = b;
  }
  impl_->kv_event(*m, "kv-v2/metadata-write", "metadata/" + key, "metadata/" + key, {});
}

void FakeVault::kv_set_mount_config(const std::string& mount, std::int64_t max_versions, bool cas_required,
                                    std::chrono::seconds delete_version_after) {
  KvMount* m = impl_->find_mount_exact(mount);
  if (!m || m->version != 2) return;
  m->config.max_versions = max_versions;
  m->config.cas_required = cas_required;
  m->config.delete_version_after = delete_version_after;
  impl_->kv_event(*m, "kv-v2/config-write", "config", "config", {});
}

std::int64_t FakeVault::kv_current_version(const std::string& mount, const std::string& key) const {
  const KvMount* m = impl_->find_mount_exact(mount);
  if (!m) return 0;
  auto it = m->keys.find(key);
  return it == m->keys.end() ? 0 : it->second.current;
}

}  // namespace nicsync::fakes
