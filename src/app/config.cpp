#include "nicsync/app/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "app/toml_reader.hpp"
#include "nicsync/http/server.hpp"
#include "nicsync/ledger/postgres_store.hpp"
#include "nicsync/watch/audit_listener.hpp"

namespace nicsync::app {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr milliseconds kDay = 24h;

// A Vault path as the operator writes it: no leading/trailing slash, no empty, "." or ".."
// segments (Go's mux would answer those with a 301, reference §12.7).
std::optional<std::string> check_vault_path(std::string_view p, bool folder) {
  if (p.empty()) return "is empty";
  if (p.front() == '/') return "must not start with '/' (write e.g. \"secret/nic/07AAFCD5862R1ZX\")";
  std::string_view body = p;
  if (folder) {
    if (p.back() != '/') return "must end with '/' (it names a folder)";
    body.remove_suffix(1);
  } else if (p.back() == '/') {
    return "must not end with '/'";
  }
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('/', start);
    std::string_view seg = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (seg.empty() || seg == "." || seg == "..") return "has an empty, '.' or '..' segment";
    if (seg.find_first_of("?#%\\ ") != std::string_view::npos) return "has a character that needs escaping";
    for (unsigned char c : seg) {
      if (c < 0x20 || c == 0x7f) return "has a control character";
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (body.find('/') == std::string_view::npos && !folder) {
    return "needs a mount and a key, e.g. \"secret/nic/07AAFCD5862R1ZX\"";
  }
  return std::nullopt;
}

bool is_http_url(std::string_view u) { return u.starts_with("https://") || u.starts_with("http://"); }

// toml++ builds one nested table per part of a dotted key or table header and recurses over
// them: some 30,000 levels overflow an 8 MiB stack (and a 4 MiB file holds two million). Its own
// limit (TOML_MAX_NESTED_VALUES, 256) covers arrays and inline tables only. Every extra level
// needs a '.' outside strings and comments, so counting those bounds the depth; a real
// configuration has a handful.
constexpr std::size_t kMaxKeyDots = 1000;

// The line where the file's count of '.' outside strings and comments passes kMaxKeyDots.
std::optional<std::size_t> too_many_key_dots(std::string_view text) {
  enum class In { code, comment, basic, literal, ml_basic, ml_literal } in = In::code;
  std::size_t dots = 0, line = 1;
  auto run_of = [&](std::size_t i, char q) {
    std::size_t n = 0;
    while (i + n < text.size() && text[i + n] == q) ++n;
    return n;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    switch (in) {
      case In::code:
        if (c == '#') {
          in = In::comment;
        } else if (c == '"' || c == '\'') {
          const std::size_t n = run_of(i, c);
          if (n >= 3) {
            in = c == '"' ? In::ml_basic : In::ml_literal;
            i += 2;
          } else if (n == 2) {
            ++i;  // an empty string
          } else {
            in = c == '"' ? In::basic : In::literal;
          }
        } else if (c == '.' && ++dots > kMaxKeyDots) {
          return line;
        }
        break;
      case In::comment:
        if (c == '\n') in = In::code;
        break;
      case In::basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;
        } else if (c == '"' || c == '\n') {
          in = In::code;
        }
        break;
      case In::literal:
        if (c == '\'' || c == '\n') in = In::code;
        break;
      case In::ml_basic:
      case In::ml_literal: {
        const char q = in == In::ml_basic ? '"' : '\'';
        if (in == In::ml_basic && c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;
        } else if (c == q) {
          // The closing delimiter is the last three of a run of up to five quotes.
          const std::size_t n = run_of(i, q);
          if (n >= 3) in = In::code;
          i += n - 1;
        }
        break;
      }
    }
  }
  return std::nullopt;
}

void read_api(TableReader& t, ApiConfig& api) {
  if (auto v = t.string("listen", "an address such as \"127.0.0.1:9464\"")) {
    if (auto hp = http::split_host_port(*v); !hp) {
      t.error("listen", hp.error().message);
    } else {
      api.listen = *v;
    }
  }
  if (auto v = t.string("token_file", "a file path")) api.token_file = *v;
  if (auto v = t.string("tls_cert_file", "a PEM file path")) api.tls_cert_file = *v;
  if (auto v = t.string("tls_key_file", "a PEM file path")) api.tls_key_file = *v;
  if (auto v = t.boolean("allow_insecure")) api.allow_insecure = *v;
  if (auto v = t.boolean("require_token")) api.require_token = *v;
  if (api.tls_cert_file.empty() != api.tls_key_file.empty()) {
    t.error(api.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file",
            "set both tls_cert_file and tls_key_file, or neither");
  }
  if (api.require_token && api.token_file.empty()) t.error("require_token", "needs api.token_file");
  t.finish();
}

void read_log(TableReader& t, LogConfig& log) {
  if (auto v = t.string("level", "one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"")) {
    static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
        {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},
        {"warn", LogLevel::warn},   {"error", LogLevel::error}, {"critical", LogLevel::critical},
        {"off", LogLevel::off}};
    bool found = false;
    for (auto [name, level] : kLevels) {
      if (*v == name) {
        log.level = level;
        found = true;
      }
    }
    if (!found) t.error("level", fmt::format("\"{}\" is not a level; use trace, debug, info, warn or error", *v));
  }
  if (auto v = t.string("format", "\"text\" or \"json\"")) {
    if (*v == "text")
      log.format = LogFormat::text;
    else if (*v == "json")
      log.format = LogFormat::json;
    else
      t.error("format", fmt::format("\"{}\" is not a format; use \"text\" or \"json\"", *v));
  }
  t.finish();
}

void read_vault(TableReader& t, vault::ClientConfig& v) {
  if (auto s = t.string("address", "a URL such as \"https://vault.example.internal:8200\"")) {
    if (!is_http_url(*s)) t.error("address", "must start with https:// or http://");
    v.address = *s;
  }
  if (auto s = t.string("namespace", "a namespace such as \"team-a/\"")) {
    if (auto ns = vault::Namespace::parse(*s); ns) {
      v.vault_namespace = *ns;
    } else {
      t.error("namespace", ns.error().message);
    }
  }
  if (auto d = t.duration("timeout", 1s, 10min)) v.timeout = *d;
  if (auto n = t.integer("max_retries", 0, 20)) v.max_retries = static_cast<int>(*n);
  if (auto n = t.integer("max_connections", 1, 1024)) v.max_connections = static_cast<long>(*n);
  if (auto d = t.duration("renew_increment", 0ms, 365 * kDay)) {
    v.renew_increment = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  if (const auto* auth = t.table("auth")) {
    TableReader a(*auth, t.key_path("auth"), t.errors());
    if (auto m = a.string("method", "\"approle\", \"token_file\" or \"token\"")) {
      if (*m == "approle")
        v.auth.method = vault::AuthMethod::approle;
      else if (*m == "token_file")
        v.auth.method = vault::AuthMethod::token_file;
      else if (*m == "token")
        v.auth.method = vault::AuthMethod::token;
      else
        a.error("method", fmt::format("\"{}\" is not supported; use \"approle\", \"token_file\" or \"token\" "
                                      "(\"token\" takes the token from VAULT_TOKEN)",
                                      *m));
    }
    if (auto s = a.string("token_file", "a file path")) v.auth.token_file = *s;
    if (auto s = a.string("mount", "the AppRole mount, e.g. \"approle\"")) v.auth.approle_mount = *s;
    if (auto s = a.string("role_id_file", "a file path (relative paths are under $CREDENTIALS_DIRECTORY)")) {
      v.auth.role_id_file = *s;
    }
    if (auto s = a.string("secret_id_file", "a file path (relative paths are under $CREDENTIALS_DIRECTORY)")) {
      v.auth.secret_id_file = *s;
    }
    if (v.auth.method == vault::AuthMethod::approle && (v.auth.role_id_file.empty() || v.auth.secret_id_file.empty())) {
      a.error("method", "approle needs role_id_file and secret_id_file");
    }
    if (v.auth.method == vault::AuthMethod::token && !v.auth.token_file.empty()) {
      a.error("token_file", "is only read with method = \"token_file\" (method \"token\" takes VAULT_TOKEN)");
    }
    if (v.auth.method == vault::AuthMethod::token_file && v.auth.token_file.empty()) {
      a.error("method", "token_file needs token_file = \"/path/to/token\"");
    }
    a.finish();
  }
  if (const auto* tls = t.table("tls")) {
    TableReader r(*tls, t.key_path("tls"), t.errors());
    if (auto s = r.string("ca_file", "a PEM file path")) v.tls.ca_cert = *s;
    if (auto s = r.string("ca_path", "a directory of PEM files")) v.tls.ca_path = *s;
    if (auto s = r.string("client_cert", "a PEM file path")) v.tls.client_cert = *s;
    if (auto s = r.string("client_key", "a PEM file path")) v.tls.client_key = *s;
    if (auto s = r.string("server_name", "a host name")) v.tls.server_name = *s;
    if (auto b = r.boolean("skip_verify")) v.tls.skip_verify = *b;
    if (v.tls.client_cert.empty() != v.tls.client_key.empty()) {
      r.error(v.tls.client_cert.empty() ? "client_key" : "client_cert", "set both client_cert and client_key");
    }
    r.finish();
  }
  t.finish();
}

void read_watch_audit(TableReader& t, AuditFeedConfig& a) {
  if (auto s = t.string("listen", "an address such as \"127.0.0.1:9465\" or \"unix:/run/nicsync/audit.sock\"")) {
    a.listen = *s;
  }
  if (auto list = t.strings("allow_from", "addresses or ranges such as \"10.0.0.5\" or \"10.0.0.0/24\"")) {
    a.allow_from = *list;
  }
  const auto mode = t.string("socket_mode", "an octal mode such as \"0660\"");
  if (mode) {
    const bool octal = !mode->empty() && mode->size() <= 4 && mode->find_first_not_of("01234567") == std::string::npos;
    if (octal) {
      a.socket_mode = static_cast<std::uint32_t>(std::stoul(*mode, nullptr, 8));
    } else {
      t.error("socket_mode", fmt::format("\"{}\" is not an octal mode: write e.g. \"0660\"", *mode));
    }
  }
  const auto group = t.string("socket_group", "a group name such as \"vault\"");
  if (group) a.socket_group = *group;
  if (auto s = t.string("prefix", "the audit device's prefix option")) a.prefix = *s;
  if (auto s = t.string("token_file", "a file path")) a.token_file = *s;
  if (auto d = t.duration("min_resync_gap", 1s, kDay)) a.min_resync_gap = *d;
  if (!a.listen.empty()) {
    watch::AuditListenerOptions o{a.listen, a.allow_from, a.socket_mode, a.socket_group};
    if (auto r = watch::AddressRanges::parse(a.allow_from); !r) {
      t.error("allow_from", r.error().message);
    } else if (auto v = watch::validate(o); !v) {
      const std::string& why = v.error().message;
      t.error(why.starts_with("allow_from")                  ? "allow_from"
              : why.find("socket mode") != std::string::npos ? "socket_mode"
              : why.find("no group") != std::string::npos    ? "socket_group"
                                                             : "listen",
              why);
    }
    if (!a.listen.starts_with("unix:") && (mode || group)) {
      t.error(mode ? "socket_mode" : "socket_group", "is for a unix socket (listen = \"unix:/path\")");
    }
  } else if (!a.allow_from.empty() || mode || group) {
    t.error(!a.allow_from.empty() ? "allow_from" : (mode ? "socket_mode" : "socket_group"),
            "needs listen (the socket audit device's address)");
  }
  t.finish();
}

void read_watch(TableReader& t, WatchConfig& w) {
  if (auto s = t.string("mode", "\"auto\", \"poll\" or \"events\"")) {
    if (*s == "auto")
      w.mode = WatchMode::auto_detect;
    else if (*s == "poll")
      w.mode = WatchMode::poll;
    else if (*s == "events")
      w.mode = WatchMode::events;
    else
      t.error("mode", fmt::format("\"{}\" is not a mode; use \"auto\", \"poll\" or \"events\"", *s));
  }
  if (auto d = t.duration("poll_interval", 100ms, kDay)) w.poll_interval = *d;
  if (auto d = t.duration("resync_interval", 1s, 7 * kDay)) w.resync_interval = *d;
  if (auto d = t.duration("jitter", 0ms, kDay)) w.jitter = *d;
  if (auto n = t.integer("concurrency", 1, 1024)) w.concurrency = static_cast<int>(*n);
  if (w.jitter > w.poll_interval) t.error("jitter", "must not be longer than poll_interval");
  if (const auto* audit = t.table("audit")) {
    TableReader r(*audit, t.key_path("audit"), t.errors());
    read_watch_audit(r, w.audit);
  }
  t.finish();
}

void read_sync(TableReader& t, SyncConfig& s) {
  if (auto d = t.duration("backoff_base", 10ms, 1h)) s.backoff.base = *d;
  if (auto d = t.duration("backoff_cap", 10ms, kDay)) s.backoff.cap = *d;
  if (auto d = t.duration("max_age", 1s, 365 * kDay)) s.backoff.max_age = *d;
  if (auto d = t.duration("max_retry_after", 1s, kDay)) s.backoff.max_retry_after = *d;
  if (auto n = t.integer("unknown_code_attempts", 1, 100)) s.unknown_code_attempts = static_cast<int>(*n);
  if (auto d = t.duration("history_retention", 1h, 3650 * kDay)) {
    s.history_retention = std::chrono::duration_cast<std::chrono::hours>(*d);
  }
  if (auto d = t.duration("stop_grace", 0ms, 10min)) s.stop_grace = *d;
  if (auto d = t.duration("max_credential_age", 0ms, 3650 * kDay)) s.max_credential_age = *d;
  if (s.backoff.cap < s.backoff.base) t.error("backoff_cap", "must not be shorter than backoff_base");
  t.finish();
}

void read_ha(TableReader& t, HaConfig& h) {
  using std::chrono::milliseconds;
  if (auto s = t.string("replica_id", "a name such as \"nicsync-a\"")) {
    const bool plain = !s->empty() && s->size() <= 64 && std::all_of(s->begin(), s->end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
    });
    if (!plain) {
      t.error("replica_id", "must be 1 to 64 letters, digits, '-', '_', '.' or ':' (it goes into User-Agent)");
    } else {
      h.replica_id = *s;
    }
  }
  if (auto s = t.string("advertise_url", "a URL such as \"https://nicsync-a.example.net:9464\"")) {
    if (!s->starts_with("http://") && !s->starts_with("https://")) {
      t.error("advertise_url", "must start with http:// or https://");
    } else {
      h.advertise_url = *s;
      while (h.advertise_url.ends_with('/')) h.advertise_url.pop_back();
    }
  }
  if (auto d = t.duration("lease", milliseconds(1'000), milliseconds(600'000))) h.lease = *d;
  if (auto d = t.duration("renew", milliseconds(200), milliseconds(300'000))) h.renew = *d;
  // Two renewals must fit in a lease, so that one lost round trip does not lose the lead.
  if (h.renew * 2 > h.lease) {
    t.error("renew", fmt::format("must be at most half the lease ({}); the default is a third (lease = \"15s\", "
                                 "renew = \"5s\")",
                                 format_duration(h.lease)));
  }
}

void read_ledger(TableReader& t, LedgerConfig& l, bool postgres_environment) {
  if (auto s = t.string("backend", "\"sqlite\" or \"postgresql\"")) {
    if (*s == "sqlite")
      l.backend = LedgerBackend::sqlite;
    else if (*s == "postgresql")
      l.backend = LedgerBackend::postgresql;
    else
      t.error("backend", fmt::format("\"{}\" is not a ledger backend; use \"sqlite\" (a file in state_dir) or "
                                     "\"postgresql\"",
                                     *s));
  }
  // The url's text is never repeated in an error: it may hold a password.
  if (auto s = t.string("url", "a libpq connection string such as \"host=db1 dbname=nicsync user=nicsync\"")) {
    l.url = *s;
  }
  if (auto s = t.string("url_file", "a file path (relative paths are under $CREDENTIALS_DIRECTORY)")) l.url_file = *s;
  if (auto s = t.string("schema", "a schema name such as \"nicsync\"")) {
    if (!ledger::valid_schema_name(*s)) {
      t.error("schema",
              "must be a plain SQL identifier: lower-case letters, digits and '_', not starting with a "
              "digit or pg_ (e.g. \"nicsync\")");
    } else {
      l.schema = *s;
    }
  }
  if (auto s = t.string("keys_file", "a file path (relative paths are under $CREDENTIALS_DIRECTORY)")) {
    l.keys_file = *s;
  }
  if (!l.url.empty() && !l.url_file.empty()) t.error("url_file", "set url or url_file, not both");
  if (l.backend == LedgerBackend::postgresql && l.keys_file.empty()) {
    t.error("keys_file",
            "is required with backend = \"postgresql\": every daemon on a shared ledger needs the same fingerprint "
            "and sealing keys; make the file with `nicsyncd ledger keys --out FILE` (or `nicsyncd ledger copy` when "
            "moving a SQLite ledger over)");
  }
  if (l.backend == LedgerBackend::sqlite) {
    for (const char* key : {"url", "url_file", "schema"}) {
      if (t.table().contains(key)) t.error(key, "is only read with backend = \"postgresql\"");
    }
  } else if (l.url.empty() && l.url_file.empty() && !postgres_environment) {
    t.error("backend",
            "backend = \"postgresql\" needs url, url_file or PG* environment variables (PGHOST, "
            "PGDATABASE, …) to say which server to use");
  }
  if (ledger::conninfo_has_password(l.url)) {
    t.error("url",
            "holds a password, which anyone who can read this file would see: put the connection string in "
            "a file of mode 0600 and name it in url_file (or use PGPASSFILE, or a client certificate)");
  }
  t.finish();
}

std::optional<VaultSecretRef> read_secret_ref(TableReader& t, std::string_view path_key, std::string_view key_key) {
  auto path = t.string(path_key, "a Vault path such as \"secret/nicsync/cleartax\"");
  auto key = t.string(key_key, "a field name of that secret");
  if (!path && !key) return std::nullopt;
  if (!path || !key) {
    t.error(path ? key_key : path_key, fmt::format("set both {} and {}", path_key, key_key));
    return std::nullopt;
  }
  if (auto why = check_vault_path(*path, false)) {
    t.error(path_key, *why);
    return std::nullopt;
  }
  return VaultSecretRef{*path, *key};
}

void read_destination(TableReader& t, DestinationConfig& d, const std::string& state_dir) {
  if (auto s = t.string("name", "a name such as \"cleartax\"")) d.name = *s;
  if (d.name.empty() || d.name.find_first_of(" /\\\"\n") != std::string::npos) {
    t.error("name", "every destination needs a name without spaces, slashes or quotes");
  }
  std::string kind;
  if (auto s = t.string("kind", "\"cleartax\" or \"webhook\"")) kind = *s;
  if (kind != "cleartax" && kind != "webhook") t.error("kind", "must be \"cleartax\" or \"webhook\"");
  if (auto n = t.integer("concurrency", 1, 1024)) d.lane.concurrency = static_cast<int>(*n);
  if (auto x = t.number("rate_limit", 0, 100000)) d.lane.rate_per_second = *x;
  if (auto x = t.number("burst", 1, 100000)) d.lane.burst = *x;
  if (auto n = t.integer("breaker_threshold", 1, 1000)) d.lane.breaker_threshold = static_cast<int>(*n);
  if (auto x = t.duration("breaker_open_for", 100ms, 1h)) d.lane.breaker_open_for = *x;
  const auto timeout = t.duration("timeout", 100ms, 10min);
  const auto connect_timeout = t.duration("connect_timeout", 100ms, 5min);
  if (kind == "webhook") {
    destinations::WebhookConfig w;
    w.name = d.name;
    if (timeout) w.timeout = *timeout;
    if (connect_timeout) w.connect_timeout = *connect_timeout;
    if (auto s = t.string("url", "a URL template such as \"https://erp.internal/nic/{gstin}\"")) w.url = *s;
    if (auto s = t.string("method", "an HTTP method such as \"POST\"")) w.method = *s;
    if (auto s = t.string("body", "a JSON template")) w.body_template = *s;
    if (auto s = t.string("probe_url", "a URL")) w.probe_url = *s;
    if (auto v = t.integers("success_statuses", 100, 599)) {
      w.success_statuses.assign(v->begin(), v->end());
    }
    if (auto m = t.string_map("headers")) {
      for (auto& [k, v] : *m) w.headers.push_back({k, v});
    }
    for (auto [tbl, path] : t.tables("secret_header")) {
      TableReader h(*tbl, path, t.errors());
      WebhookSecretHeaderConfig sh;
      if (auto s = h.string("name", "a header name such as \"Authorization\"")) sh.name = *s;
      if (auto s = h.string("prefix", "text put before the value, e.g. \"Bearer \"")) sh.prefix = *s;
      if (auto ref = read_secret_ref(h, "secret_path", "secret_key")) {
        sh.secret = *ref;
      } else {
        h.error("name", "a secret header needs secret_path and secret_key");
      }
      if (sh.name.empty()) h.error("name", "is required");
      if (sh.name.find_first_of(":\r\n ") != std::string::npos) h.error("name", "is not a header name");
      if (sh.prefix.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        h.error("prefix", "must not contain a line break");
      }
      h.finish();
      d.secret_headers.push_back(std::move(sh));
    }
    if (w.url.empty())
      t.error("kind", "a webhook needs url = \"https://...\"");
    else if (auto fault = w.first_fault())
      t.error(fault->key, fault->error.message);
    d.settings = std::move(w);
  } else {
    destinations::ClearTaxConfig c;
    c.name = d.name;
    c.state_dir = state_dir;
    if (timeout) c.push_timeout = *timeout;
    if (connect_timeout) c.connect_timeout = *connect_timeout;
    if (auto s = t.string("base_url", "a URL such as \"https://api.clear.in\"")) c.base_url = *s;
    if (auto s = t.string("token_base_url", "a URL")) c.token_base_url = *s;
    if (auto s = t.string("auth", "\"client_secret\" or \"token\"")) {
      if (*s == "client_secret")
        c.auth = destinations::ClearTaxAuth::client_secret;
      else if (*s == "token")
        c.auth = destinations::ClearTaxAuth::static_token;
      else
        t.error("auth", "must be \"client_secret\" (exchanged for access tokens) or \"token\" (a user auth token)");
    }
    if (auto n = t.integer("token_calls_per_hour", 1, 288)) c.token_calls_per_hour = static_cast<int>(*n);
    if (auto d2 = t.duration("token_refresh_margin", 0ms, 6h)) {
      c.token_refresh_margin = std::chrono::duration_cast<std::chrono::seconds>(*d2);
    }
    d.auth_secret = read_secret_ref(t, "secret_path", "secret_key");
    if (!d.auth_secret) {
      t.error("kind",
              "a cleartax destination needs secret_path and secret_key: where in Vault its client secret "
              "(auth = \"client_secret\") or auth token (auth = \"token\") is");
    }
    if (auto fault = c.first_fault()) t.error(fault->key, fault->error.message);
    d.settings = std::move(c);
  }
  t.finish();
}

void read_mapping_common(TableReader& t, std::vector<std::string>& dests, std::string& user, std::string& pass,
                         const std::set<std::string>& known) {
  if (auto v = t.strings("destinations", "destination names")) dests = *v;
  if (dests.empty()) t.error("destinations", "list at least one destination, e.g. destinations = [\"cleartax\"]");
  for (const auto& d : dests) {
    if (known.count(d) == 0) {
      t.error("destinations", fmt::format("\"{}\" is not a configured [[destination]] name", d));
    }
  }
  if (auto s = t.string("username_key", "a field name")) user = *s;
  if (auto s = t.string("password_key", "a field name")) pass = *s;
  if (user.empty() || pass.empty() || user == pass) {
    t.error("username_key", "username_key and password_key must be two different, non-empty field names");
  }
}

}  // namespace

std::pair<std::string, std::string> split_mount(std::string_view path) {
  auto slash = path.find('/');
  if (slash == std::string_view::npos) return {std::string(path), {}};
  return {std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
}

std::string_view to_string(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::critical: return "critical";
    case LogLevel::off: return "off";
  }
  return "info";
}

std::string_view to_string(LedgerBackend b) noexcept {
  return b == LedgerBackend::postgresql ? "postgresql" : "sqlite";
}

std::string LedgerConfig::keys_file_path() const {
  if (keys_file.empty() || std::filesystem::path(keys_file).is_absolute()) return keys_file;
  if (credentials_directory.empty()) return {};
  return (std::filesystem::path(credentials_directory) / keys_file).string();
}

std::string LedgerConfig::url_file_path() const {
  if (url_file.empty()) return {};
  if (url_file.front() == '/') return url_file;
  if (credentials_directory.empty()) return {};
  return (std::filesystem::path(credentials_directory) / url_file).string();
}

std::string_view to_string(WatchMode m) noexcept {
  switch (m) {
    case WatchMode::auto_detect: return "auto";
    case WatchMode::poll: return "poll";
    case WatchMode::events: return "events";
  }
  return "auto";
}

ConfigEnvironment ConfigEnvironment::from_process() {
  ConfigEnvironment env;
  if (const char* s = std::getenv("STATE_DIRECTORY"); s != nullptr && *s != '\0') {
    // systemd may list several, separated by ':'; ours is the first.
    std::string v(s);
    env.state_directory = v.substr(0, v.find(':'));
  }
  if (const char* c = std::getenv("CREDENTIALS_DIRECTORY"); c != nullptr && *c != '\0') {
    env.credentials_directory = c;
  }
  for (const char* v : {"PGHOST", "PGHOSTADDR", "PGDATABASE", "PGSERVICE"}) {
    if (const char* x = std::getenv(v); x != nullptr && *x != '\0') env.postgres_environment = true;
  }
  return env;
}

Result<Config> parse_config(std::string_view text, std::string_view source, const ConfigEnvironment& env) {
  Config config;
  config.source = std::string(source);
  if (env.state_directory) config.state_dir = *env.state_directory;
  if (env.credentials_directory) {
    config.vault.auth.credentials_directory = *env.credentials_directory;
    config.ledger.credentials_directory = *env.credentials_directory;
  }
  ErrorList errors{std::string(source)};
  if (text.find('\0') != std::string_view::npos) {
    return Error(Errc::config_invalid, fmt::format("{}: not a text file (it contains NUL bytes)", source));
  }
  if (auto line = too_many_key_dots(text)) {
    return Error(Errc::config_invalid,
                 fmt::format("{}:{}: more than {} dotted key parts in the file: tables nested this deep are not a "
                             "nicsyncd configuration (see config/nicsyncd.toml)",
                             source, *line, kMaxKeyDots));
  }
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    return Error(Errc::config_invalid, fmt::format("{}:{}:{}: not valid TOML: {}", source, where.begin.line,
                                                   where.begin.column, e.description()));
  }
  TableReader top(root, "", errors);
  if (auto s = top.string("state_dir", "a directory path such as \"/var/lib/nicsync\"")) {
    if (s->empty() || s->front() != '/') top.error("state_dir", "must be an absolute path");
    config.state_dir = *s;
  }
  if (auto s = top.string("gstin_validation", "\"strict\" or \"sandbox\"")) {
    if (*s == "strict")
      config.gstin_mode = GstinMode::strict;
    else if (*s == "sandbox")
      config.gstin_mode = GstinMode::sandbox;
    else
      top.error("gstin_validation",
                "must be \"strict\" (production GSTINs) or \"sandbox\" (ClearTax/NIC sandbox GSTINs)");
  }
  if (const auto* t = top.table("vault")) {
    TableReader r(*t, "vault", errors);
    read_vault(r, config.vault);
  }
  if (const auto* t = top.table("watch")) {
    TableReader r(*t, "watch", errors);
    read_watch(r, config.watch);
  }
  if (const auto* t = top.table("api")) {
    TableReader r(*t, "api", errors);
    read_api(r, config.api);
  }
  if (const auto* t = top.table("log")) {
    TableReader r(*t, "log", errors);
    read_log(r, config.log);
  }
  if (const auto* t = top.table("sync")) {
    TableReader r(*t, "sync", errors);
    read_sync(r, config.sync);
  }
  if (const auto* t = top.table("ledger")) {
    TableReader r(*t, "ledger", errors);
    read_ledger(r, config.ledger, env.postgres_environment);
  }
  if (const auto* t = top.table("ha")) {
    TableReader r(*t, "ha", errors);
    read_ha(r, config.ha);
    r.finish();
    if (config.ledger.backend != LedgerBackend::postgresql) {
      top.error("ha", "is only read with [ledger] backend = \"postgresql\": replicas share a PostgreSQL ledger");
    }
  }
  std::set<std::string> names;
  for (auto [tbl, path] : top.tables("destination")) {
    TableReader r(*tbl, path, errors);
    DestinationConfig d;
    read_destination(r, d, config.state_dir);
    if (!d.name.empty() && !names.insert(d.name).second) {
      r.error("name", fmt::format("destination name \"{}\" is used twice", d.name));
    }
    config.destinations.push_back(std::move(d));
  }
  std::set<std::pair<std::string, std::string>> mapped;  // (gstin, destination)
  for (auto [tbl, path] : top.tables("mapping")) {
    TableReader r(*tbl, path, errors);
    std::optional<Gstin> gstin;
    if (auto s = r.string("gstin", "a GSTIN such as \"07AAFCD5862R1ZX\"")) {
      auto g = Gstin::parse(*s, config.gstin_mode);
      if (!g) {
        r.error("gstin", g.error().message + (config.gstin_mode == GstinMode::strict
                                                  ? " (for sandbox GSTINs set gstin_validation = \"sandbox\")"
                                                  : ""));
      } else {
        gstin = *g;
      }
    } else {
      r.error("gstin", "is required");
    }
    std::string vpath;
    if (auto s = r.string("path", "a Vault path such as \"secret/nic/07AAFCD5862R1ZX\"")) {
      if (auto why = check_vault_path(*s, false)) r.error("path", *why);
      vpath = *s;
    } else {
      r.error("path", "is required: the Vault path holding this GSTIN's username and password");
    }
    MappingConfig m{gstin.value_or(Gstin::parse("07AAFCD5862R1ZX").value()), vpath, {}, "username", "password"};
    read_mapping_common(r, m.destinations, m.username_key, m.password_key, names);
    if (gstin) {
      for (const auto& d : m.destinations) {
        if (!mapped.insert({gstin->str(), d}).second) {
          r.error("destinations", fmt::format("GSTIN {} is already mapped to destination \"{}\"", gstin->str(), d));
        }
      }
    }
    r.finish();
    if (gstin) config.mappings.push_back(std::move(m));
  }
  for (auto [tbl, path] : top.tables("mapping_set")) {
    TableReader r(*tbl, path, errors);
    MappingSetConfig ms;
    if (auto s = r.string("prefix", "a Vault folder such as \"secret/nic/\"")) {
      if (auto why = check_vault_path(*s, true)) r.error("prefix", *why);
      ms.prefix = *s;
    } else {
      r.error("prefix", "is required: the Vault folder whose keys are GSTINs");
    }
    read_mapping_common(r, ms.destinations, ms.username_key, ms.password_key, names);
    r.finish();
    config.mapping_sets.push_back(std::move(ms));
  }
  top.finish();
  if (config.destinations.empty() && (!config.mappings.empty() || !config.mapping_sets.empty())) {
    errors.add_plain("mappings are configured but no [[destination]]: add one (see config/nicsyncd.toml)");
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors.items()) {
      if (!message.empty()) message += '\n';
      message += e;
    }
    return Error(Errc::config_invalid, std::move(message));
  }
  config.mappings.shrink_to_fit();
  config.key_lines = errors.take_lines();
  // Nothing looks up a [[mapping]]'s keys once the file is valid, and with 10,000 mappings
  // their lines cost MiBs in every copy of the config the daemon keeps.
  std::erase_if(config.key_lines, [](const auto& entry) { return entry.first.starts_with("mapping["); });
  return config;
}

Result<Config> load_config_file(const std::string& path, const ConfigEnvironment& env) {
  constexpr std::size_t kMaxBytes = 4u << 20;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error(Errc::config_invalid,
                 fmt::format("{}: is a directory, not a config file; pass --config with the file's path", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::config_invalid,
                 fmt::format("{}: cannot open config file: {}; pass --config with the path of a readable file", path,
                             std::strerror(errno)));
  }
  // Read at most one byte past the limit: --config /dev/zero must not fill the memory.
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return Error(Errc::config_invalid, fmt::format("{}: cannot read config file: {}", path, std::strerror(errno)));
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxBytes) {
    return Error(Errc::config_invalid, fmt::format("{}: larger than 4 MiB; is this the right file?", path));
  }
  return parse_config(text, path, env);
}

std::string Config::where(std::string_view key) const {
  if (auto it = key_lines.find(key); it != key_lines.end()) return fmt::format("{}:{}: {}", source, it->second, key);
  return fmt::format("{}: {}", source, key);
}

}  // namespace nicsync::app
