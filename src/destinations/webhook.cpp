// Webhook destination. Answers: a status in success_statuses is success; 401 re-reads the
// secret headers once and retries once, then dest_unauthorized (auth); 408, 429 and 5xx are
// transient (Retry-After honoured); anything else is dest_rejected (permanent).
#include "nicsync/destinations/webhook.hpp"

#include <algorithm>

#include <boost/json/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "destinations/single_flight.hpp"
#include "destinations/text.hpp"
#include "nicsync/core/text.hpp"

namespace nicsync::destinations {
namespace asio = boost::asio;

namespace {

enum class Field { gstin, username, password, version, vault_path, lineage, attempt, idempotency_key };

constexpr std::pair<std::string_view, Field> kFields[] = {
    {"gstin", Field::gstin},           {"username", Field::username},
    {"password", Field::password},     {"version", Field::version},
    {"vault_path", Field::vault_path}, {"lineage", Field::lineage},
    {"attempt", Field::attempt},       {"idempotency_key", Field::idempotency_key},
};

bool numeric(Field f) { return f == Field::version || f == Field::attempt; }

struct Part {
  std::string literal;
  std::optional<Field> field;
  bool in_string = false;  // the placeholder sits inside a JSON string literal
};

struct Values {
  std::string_view gstin, username, password, vault_path, lineage, idempotency_key;
  std::string version, attempt;  // decimal

  [[nodiscard]] std::string_view of(Field f) const {
    switch (f) {
      case Field::gstin: return gstin;
      case Field::username: return username;
      case Field::password: return password;
      case Field::version: return version;
      case Field::vault_path: return vault_path;
      case Field::lineage: return lineage;
      case Field::attempt: return attempt;
      case Field::idempotency_key: return idempotency_key;
    }
    return {};
  }
};

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }

// Splits a template into literals and placeholders. `json` tracks JSON string literals so a
// placeholder knows whether it stands for a whole value or for text inside a string.
Result<std::vector<Part>> compile(std::string_view tpl, bool json, std::string_view field_name) {
  std::vector<Part> parts(1);
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < tpl.size(); ++i) {
    const char c = tpl[i];
    if (c == '{') {
      std::size_t j = i + 1;
      while (j < tpl.size() && is_name_char(tpl[j])) ++j;
      if (j > i + 1 && j < tpl.size() && tpl[j] == '}') {
        const std::string_view name = tpl.substr(i + 1, j - i - 1);
        auto it = std::find_if(std::begin(kFields), std::end(kFields), [&](const auto& f) { return f.first == name; });
        if (it == std::end(kFields)) {
          return Error(Errc::config_invalid, fmt::format("{}: unknown placeholder {{{}}}", field_name, name));
        }
        parts.push_back({{}, it->second, in_string});
        parts.emplace_back();
        i = j;
        escaped = false;
        continue;
      }
    }
    if (json) {
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      }
    }
    parts.back().literal += c;
  }
  return parts;
}

// JSON body: exact size first, so a buffer holding the password is never reallocated.
std::string render_body(const std::vector<Part>& parts, const Values& v) {
  std::size_t size = 0;
  for (const auto& p : parts) {
    size += p.literal.size();
    if (!p.field) continue;
    const auto text = v.of(*p.field);
    size += (numeric(*p.field) ? text.size() : json_escaped_size(text)) + (p.in_string ? 0 : 2);
  }
  std::string out;
  out.reserve(size);
  for (const auto& p : parts) {
    out += p.literal;
    if (!p.field) continue;
    const auto text = v.of(*p.field);
    if (numeric(*p.field)) {
      out += text;
    } else if (p.in_string) {
      append_json_escaped(out, text);
    } else {
      append_json_string(out, text);
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string render_url(const std::vector<Part>& parts, const Values& v) {
  std::string out;
  for (const auto& p : parts) {
    out += p.literal;
    if (p.field) out += percent_encode(v.of(*p.field));
  }
  return out;
}

bool loopback_url(std::string_view url) {
  auto rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  const auto host = rest.starts_with("[") ? rest.substr(0, rest.find(']') + 1) : rest.substr(0, rest.find(':'));
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]";
}

Values sample_values() {
  Values v;
  v.gstin = "07AAFCD5862R1ZX";
  v.username = "user \"with\" \\ quotes";
  v.password = "pass\nword\"\\{}";
  v.vault_path = "secret/nic/07AAFCD5862R1ZX";
  v.lineage = "2026-01-01T00:00:00.000000Z";
  v.idempotency_key = "0123abcd";
  v.version = "3";
  v.attempt = "1";
  return v;
}

}  // namespace

std::optional<ConfigFault> WebhookConfig::first_fault() const {
  // `key` is where the config file sets it; the message keeps the field's own name.
  auto bad = [&](std::string_view key, std::string_view field, std::string_view why) {
    return ConfigFault{std::string(key),
                       Error(Errc::config_invalid, fmt::format("destination \"{}\": {}: {}", name, field, why))};
  };
  if (name.empty()) return ConfigFault{"name", Error(Errc::config_invalid, "a webhook destination needs a name")};
  if (method.empty() ||
      !std::all_of(method.begin(), method.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '-'; })) {
    return bad("method", "method", "must be an HTTP method such as POST or PUT");
  }
  if ((method == "GET" || method == "HEAD") && !body_template.empty()) {
    return bad("body", "body_template", "must be empty for GET and HEAD");
  }
  if (!url.starts_with("https://") && !url.starts_with("http://")) return bad("url", "url", "must start with https://");
  if (url.starts_with("http://") && !loopback_url(url)) {
    return bad("url", "url",
               "must use https:// (the body carries the NIC password; http:// only to a loopback address)");
  }
  auto url_parts = compile(url, false, "url");
  if (!url_parts) return bad("url", "url", url_parts.error().message);
  for (const auto& p : *url_parts) {
    if (p.field == Field::username || p.field == Field::password) {
      return bad("url", "url", "{username} and {password} may not appear in the URL (URLs reach access logs)");
    }
  }
  if (!body_template.empty()) {
    auto parts = compile(body_template, true, "body_template");
    if (!parts) return bad("body", "body_template", parts.error().message);
    const auto rendered = render_body(*parts, sample_values());
    boost::system::error_code ec;
    boost::json::parse(rendered, ec);
    if (ec) {
      return bad("body", "body_template",
                 fmt::format("does not render to valid JSON ({}); placeholders outside quotes become whole values",
                             ec.message()));
    }
  }
  if (success_statuses.empty()) return bad("success_statuses", "success_statuses", "must not be empty");
  for (int s : success_statuses) {
    if (s < 200 || s > 299) return bad("success_statuses", "success_statuses", "must be 2xx statuses");
  }
  // A line break in a header would smuggle in headers of its own.
  auto breaks_line = [](std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) != v.npos; };
  for (const auto& h : headers) {
    if (h.name.empty() || h.name.find_first_of(":\r\n ") != std::string::npos)
      return bad("headers", "headers", "invalid name");
    if (breaks_line(h.value))
      return bad("headers", "headers", fmt::format("the value of {} has a line break or NUL", h.name));
  }
  for (const auto& h : secret_headers) {
    if (h.name.empty() || h.name.find_first_of(":\r\n ") != std::string::npos) {
      return bad("secret_header", "secret_headers", "invalid name");
    }
    if (breaks_line(h.prefix))
      return bad("secret_header", "secret_headers", fmt::format("the prefix of {} has a line break", h.name));
    if (!h.value) return bad("secret_header", "secret_headers", fmt::format("{} has no value provider", h.name));
  }
  if (timeout.count() <= 0) return bad("timeout", "timeouts", "must be positive");
  if (connect_timeout.count() <= 0) return bad("connect_timeout", "timeouts", "must be positive");
  if (!probe_url.empty() && !probe_url.starts_with("https://") && !probe_url.starts_with("http://")) {
    return bad("probe_url", "probe_url", "must start with https:// or http://");
  }
  return std::nullopt;
}

Result<void> WebhookConfig::validate() const {
  if (auto fault = first_fault()) return std::move(fault->error);
  return {};
}

struct WebhookDestination::Impl {
  /// `url_parts` and `body_parts` are `cfg`'s templates, compiled.
  Impl(asio::any_io_executor executor, http::Client& c, WebhookConfig cfg, std::vector<Part> url_parts,
       std::vector<Part> body_parts)
      : ex(std::move(executor)),
        client(c),
        config(std::move(cfg)),
        url(std::move(url_parts)),
        body(std::move(body_parts)),
        flight(ex) {
    has_content_type = std::any_of(config.headers.begin(), config.headers.end(),
                                   [](const http::Header& h) { return http::iequals(h.name, "Content-Type"); });
  }

  asio::any_io_executor ex;
  http::Client& client;
  WebhookConfig config;
  std::vector<Part> url;
  std::vector<Part> body;
  bool has_content_type = false;

  std::vector<Secret> secrets;  // one per secret header, once loaded
  bool secrets_loaded = false;
  std::uint64_t generation = 0;
  detail::SingleFlight flight;
  DestinationStats counters;
};

namespace {

using ImplPtr = std::shared_ptr<WebhookDestination::Impl>;

struct SecretSet {
  std::vector<Secret> values;
  std::uint64_t generation = 0;
};

asio::awaitable<Result<void>> load_secrets(ImplPtr self) {
  std::vector<Secret> values;
  for (const auto& h : self->config.secret_headers) {
    auto v = co_await h.value();
    if (!v) {
      Error e = v.error();
      e.message =
          fmt::format("destination {}: cannot read the value of header {}: {}", self->config.name, h.name, e.message);
      co_return e;
    }
    values.push_back(std::move(*v));
  }
  self->secrets = std::move(values);
  self->secrets_loaded = true;
  ++self->generation;
  co_return Result<void>{};
}

asio::awaitable<Result<SecretSet>> acquire(ImplPtr self) {
  for (int round = 0; round < 3; ++round) {
    if (self->secrets_loaded) co_return SecretSet{self->secrets, self->generation};
    if (self->flight.running()) {
      auto r = co_await self->flight.wait();
      if (!r) co_return r.error();
      continue;
    }
    auto guard = self->flight.begin();
    auto r = co_await load_secrets(self);
    guard.finish(r);
    if (!r) co_return r.error();
  }
  co_return Error(Errc::internal, "secret headers could not be loaded");
}

void add_secret_headers(const WebhookDestination::Impl& self, const SecretSet& s, http::Request& req) {
  for (std::size_t i = 0; i < self.config.secret_headers.size() && i < s.values.size(); ++i) {
    const auto& h = self.config.secret_headers[i];
    req.headers.push_back({h.name, h.prefix + std::string(s.values[i].expose())});
  }
}

Error status_error(const WebhookDestination::Impl& self, const http::Response& r, std::string_view what,
                   const std::vector<std::string_view>& scrub) {
  const std::string said =
      r.body.empty() ? std::string() : fmt::format(": \"{}\"", detail::provider_text(r.body, scrub, 160));
  Error e;
  if (r.status == 401) {
    e = Error(Errc::dest_unauthorized,
              fmt::format("webhook {} refused the credentials for {} (HTTP 401{}): check the values of its secret "
                          "headers in Vault",
                          self.config.name, what, said));
  } else if (r.status == 429) {
    e = Error(Errc::dest_rate_limited,
              fmt::format("webhook {} rate-limited {} (HTTP 429): retrying after the delay it asks for",
                          self.config.name, what));
  } else if (r.status >= 500 || r.status == 408) {
    e = Error(Errc::dest_unavailable, fmt::format("webhook {} answered HTTP {} for {}{}: retrying with backoff",
                                                  self.config.name, r.status, what, said));
  } else {
    e = Error(Errc::dest_rejected,
              fmt::format("webhook {} rejected {} (HTTP {}{}): not retried until a new version or an operator "
                          "retry; check the endpoint's URL, method and body template",
                          self.config.name, what, r.status, said));
  }
  e.http_status = r.status;
  e.retry_after = r.retry_after();
  return e;
}

asio::awaitable<Result<void>> push_impl(ImplPtr self, Delivery d, Credential c) {
  const auto& cfg = self->config;
  const std::string what = fmt::format("GSTIN {} ({} version {})", d.gstin, d.vault_path, d.version);
  Values v;
  v.gstin = d.gstin.str();
  v.username = c.username;
  v.password = c.password.expose();
  v.vault_path = d.vault_path;
  v.lineage = d.lineage;
  v.idempotency_key = d.idempotency_key;
  v.version = std::to_string(d.version);
  v.attempt = std::to_string(d.attempt);
  auto fail = [&](Error e) -> Result<void> {
    ++self->counters.push_failures;
    spdlog::debug("destination={} gstin={} version={} attempt={} push failed: {}", cfg.name, d.gstin, d.version,
                  d.attempt, e.describe());
    return e;
  };
  for (int round = 0; round < 2; ++round) {
    auto secrets = co_await acquire(self);
    if (!secrets) co_return fail(secrets.error());
    http::Request req;
    req.method = cfg.method;
    req.url = render_url(self->url, v);
    req.headers = cfg.headers;
    if (!self->body.empty() && !self->has_content_type) req.headers.push_back({"Content-Type", "application/json"});
    // The engine's key, as it is (the same on every attempt of a version).
    if (!d.idempotency_key.empty()) req.headers.push_back({"Idempotency-Key", d.idempotency_key});
    add_secret_headers(*self, *secrets, req);
    if (!self->body.empty()) req.body = render_body(self->body, v);
    req.timeout = cfg.timeout;
    req.connect_timeout = cfg.connect_timeout;
    req.sensitive = true;
    auto resp = co_await self->client.request(std::move(req));
    if (!resp) {
      Error e = resp.error();
      e.message = fmt::format("cannot deliver {} to webhook {}: {}", what, cfg.name, e.message);
      co_return fail(std::move(e));
    }
    if (std::find(cfg.success_statuses.begin(), cfg.success_statuses.end(), resp->status) !=
        cfg.success_statuses.end()) {
      ++self->counters.pushes;
      spdlog::debug("destination={} gstin={} version={} attempt={} pushed status={}", cfg.name, d.gstin, d.version,
                    d.attempt, resp->status);
      co_return Result<void>{};
    }
    if (resp->status == 401 && round == 0 && !cfg.secret_headers.empty()) {
      // The secret may have been rotated in Vault: read it again (once for all deliveries), retry once.
      if (self->generation == secrets->generation) self->secrets_loaded = false;
      ++self->counters.auth_retries;
      continue;
    }
    std::vector<std::string_view> scrub = {v.password};
    for (const auto& s : secrets->values) scrub.push_back(s.expose());
    co_return fail(status_error(*self, *resp, what, scrub));
  }
  co_return fail(Error(Errc::internal, "unreachable"));
}

asio::awaitable<Result<void>> probe_impl(ImplPtr self) {
  const auto& cfg = self->config;
  auto secrets = co_await acquire(self);
  if (!secrets) co_return secrets.error();
  http::Request req;
  req.method = "GET";
  if (!cfg.probe_url.empty()) {
    req.url = cfg.probe_url;
    add_secret_headers(*self, *secrets, req);
    req.sensitive = true;
  } else {
    const auto scheme = cfg.url.find("://") + 3;
    req.url = cfg.url.substr(0, cfg.url.find('/', scheme)) + "/";
  }
  req.timeout = cfg.timeout;
  req.connect_timeout = cfg.connect_timeout;
  auto resp = co_await self->client.request(std::move(req));
  if (!resp) {
    Error e = resp.error();
    e.message = fmt::format("destination {}: webhook endpoint is not reachable: {}", cfg.name, e.message);
    co_return e;
  }
  if (!cfg.probe_url.empty() && (resp->status == 401 || resp->status == 403)) {
    Error e(Errc::dest_unauthorized, fmt::format("destination {}: {} answered HTTP {} to the probe: check the "
                                                 "secret headers in Vault",
                                                 cfg.name, redact_url(cfg.probe_url), resp->status));
    e.http_status = resp->status;
    co_return e;
  }
  if (resp->status >= 500) {
    Error e(Errc::dest_unavailable,
            fmt::format("destination {}: the webhook endpoint answered HTTP {} to the probe", cfg.name, resp->status));
    e.http_status = resp->status;
    co_return e;
  }
  co_return Result<void>{};
}

}  // namespace

Result<std::shared_ptr<WebhookDestination>> WebhookDestination::create(asio::any_io_executor executor,
                                                                       http::Client& client, WebhookConfig config) {
  if (auto ok = config.validate(); !ok) return ok.error();
  // validate() compiled both templates already; these cannot fail.
  auto url = compile(config.url, false, "url");
  if (!url) return url.error();
  std::vector<Part> body;
  if (!config.body_template.empty()) {
    auto parts = compile(config.body_template, true, "body_template");
    if (!parts) return parts.error();
    body = std::move(*parts);
  }
  auto impl = std::make_shared<Impl>(std::move(executor), client, std::move(config), std::move(*url), std::move(body));
  return std::shared_ptr<WebhookDestination>(new WebhookDestination(std::move(impl)));
}

WebhookDestination::~WebhookDestination() = default;

const std::string& WebhookDestination::name() const noexcept { return impl_->config.name; }

asio::awaitable<Result<void>> WebhookDestination::push(Delivery delivery, Credential credential) {
  return push_impl(impl_, std::move(delivery), std::move(credential));
}

asio::awaitable<Result<void>> WebhookDestination::probe() { return probe_impl(impl_); }

DestinationStats WebhookDestination::stats() const { return impl_->counters; }

}  // namespace nicsync::destinations
