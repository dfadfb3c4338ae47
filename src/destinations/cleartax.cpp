// The ClearTax destination: its settings checked, and a push as one store_nic_credentials
// request with a shared access token (refreshed once and retried once when ClearTax refuses it).
// The answers: cleartax_wire.cpp; the token: cleartax_token.cpp.
#include "nicsync/destinations/cleartax.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "destinations/cleartax_impl.hpp"
#include "nicsync/core/text.hpp"

namespace nicsync::destinations {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kStorePath = "/einv/v2/nic_credentials/store_nic_credentials";
constexpr std::string_view kTokenPath = "/integration/v1/authz/token";

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string sanitize(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out;
}

}  // namespace

std::optional<ConfigFault> ClearTaxConfig::first_fault() const {
  // `key` is where the config file sets it; the message keeps the field's own name.
  auto bad = [&](std::string_view key, std::string_view field, std::string_view why) {
    return ConfigFault{std::string(key),
                       Error(Errc::config_invalid, fmt::format("destination \"{}\": {}: {}", name, field, why))};
  };
  if (name.empty()) return ConfigFault{"name", Error(Errc::config_invalid, "a ClearTax destination needs a name")};
  for (const auto* url : {&base_url, &token_base_url}) {
    if (url == &token_base_url && url->empty()) continue;
    const std::string_view field = url == &base_url ? "base_url" : "token_base_url";
    if (!url->starts_with("https://") && !url->starts_with("http://")) {
      return bad(field, field, "must start with https://");
    }
    if (url->starts_with("http://")) {
      // Plain HTTP would send NIC passwords and tokens in clear text: loopback only (tests).
      std::string_view rest = std::string_view(*url).substr(7);
      rest = rest.substr(0, rest.find('/'));
      const auto host = rest.starts_with("[") ? rest.substr(0, rest.find(']') + 1) : rest.substr(0, rest.find(':'));
      if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
        return bad(field, field, "must use https:// (plain http:// is only allowed to a loopback address)");
      }
    }
    if (url->find_first_of("?#") != std::string::npos) return bad(field, field, "must not have a query or fragment");
  }
  if (push_timeout.count() <= 0) return bad("timeout", "timeouts", "must be positive");
  if (connect_timeout.count() <= 0) return bad("connect_timeout", "timeouts", "must be positive");
  if (token_timeout.count() <= 0) return bad("token_timeout", "timeouts", "must be positive");
  if (token_calls_per_hour < 1) return bad("token_calls_per_hour", "token_calls_per_hour", "must be at least 1");
  if (token_calls_per_day < 1) return bad("token_calls_per_day", "token_calls_per_day", "must be at least 1");
  if (token_refresh_margin.count() < 0) {
    return bad("token_refresh_margin", "token_refresh_margin", "must not be negative");
  }
  return std::nullopt;
}

Result<void> ClearTaxConfig::validate() const {
  if (auto fault = first_fault()) return std::move(fault->error);
  return {};
}

ClearTaxDestination::Impl::Impl(asio::any_io_executor executor, http::Client& c, ClearTaxConfig cfg, SecretProvider p,
                                const Clock& clk, std::shared_ptr<TokenStash> s)
    : ex(std::move(executor)),
      client(c),
      config(std::move(cfg)),
      provider(std::move(p)),
      clock(clk),
      stash(std::move(s)),
      flight(ex) {
  base = trim_slash(config.base_url);
  store_url = base + std::string(kStorePath);
  token_url =
      trim_slash(config.token_base_url.empty() ? config.base_url : config.token_base_url) + std::string(kTokenPath);
  stash_name = "cleartax-" + sanitize(config.name);
  if (!stash && !config.state_dir.empty()) stash = make_file_token_stash(config.state_dir);
}

namespace {

using ImplPtr = std::shared_ptr<ClearTaxDestination::Impl>;

http::Request store_request(const ClearTaxDestination::Impl& self, const detail::TokenRef& token, const Delivery& d,
                            const Credential& c) {
  const std::string& gstin = d.gstin.str();
  const auto password = c.password.expose();
  http::Request req;
  req.method = "POST";
  req.url = self.store_url;
  req.headers = {{"x-cleartax-auth-token", std::string(token.value.expose())},
                 {"x-cleartax-product", "EInvoice"},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"},
                 {"gstin", gstin}};
  // The engine's key, as it is (the same on every attempt of a version).
  if (!d.idempotency_key.empty()) req.headers.push_back({"Idempotency-Key", d.idempotency_key});
  // Sized once so that no copy of the password is left behind in a reallocated buffer.
  std::string& body = req.body;
  body.reserve(48 + json_escaped_size(gstin) + json_escaped_size(c.username) + json_escaped_size(password));
  body += "{\"gstin\":";
  append_json_string(body, gstin);
  body += ",\"username\":";
  append_json_string(body, c.username);
  body += ",\"password\":";
  append_json_string(body, password);
  body += '}';
  req.timeout = self.config.push_timeout;
  req.connect_timeout = self.config.connect_timeout;
  req.sensitive = true;
  return req;
}

asio::awaitable<Result<void>> push_impl(ImplPtr self, Delivery d, Credential c) {
  const std::string what = fmt::format("GSTIN {} ({} version {})", d.gstin, d.vault_path, d.version);
  auto fail = [&](Error e) -> Result<void> {
    ++self->counters.push_failures;
    spdlog::debug("destination={} gstin={} version={} attempt={} push failed: {}", self->config.name, d.gstin,
                  d.version, d.attempt, e.describe());
    return e;
  };
  for (int round = 0; round < 2; ++round) {
    auto token = co_await detail::acquire_token(self);
    if (!token) co_return fail(token.error());
    auto req = store_request(*self, *token, d, c);
    auto resp = co_await self->client.request(std::move(req));
    if (!resp) {
      Error e = resp.error();
      e.message = fmt::format("cannot deliver {} to ClearTax ({}): {}", what, self->config.name, e.message);
      co_return fail(std::move(e));
    }
    auto r = interpret_store_response(*resp, d.gstin.str(), what, {c.password.expose(), token->value.expose()});
    if (r) {
      ++self->counters.pushes;
      spdlog::debug("destination={} gstin={} version={} attempt={} pushed", self->config.name, d.gstin, d.version,
                    d.attempt);
      co_return r;
    }
    if (round == 0 && r.error().is(Errc::dest_unauthorized)) {
      // Refresh once (single-flight across deliveries), then retry once.
      detail::invalidate_token(*self, token->generation);
      ++self->counters.auth_retries;
      continue;
    }
    co_return fail(r.error());
  }
  co_return fail(Error(Errc::internal, "unreachable"));
}

asio::awaitable<Result<void>> probe_impl(ImplPtr self) {
  auto token = co_await detail::acquire_token(self);
  if (!token) co_return token.error();
  // Any HTTP answer shows the host is reachable and its certificate verifies.
  http::Request req;
  req.method = "GET";
  req.url = self->base + "/";
  req.timeout = self->config.token_timeout;
  req.connect_timeout = self->config.connect_timeout;
  auto resp = co_await self->client.request(std::move(req));
  if (!resp) {
    Error e = resp.error();
    e.message = fmt::format("destination {}: ClearTax at {} is not reachable: {}", self->config.name,
                            redact_url(self->base), e.message);
    co_return e;
  }
  co_return Result<void>{};
}

}  // namespace

Result<std::shared_ptr<ClearTaxDestination>> ClearTaxDestination::create(asio::any_io_executor executor,
                                                                         http::Client& client, ClearTaxConfig config,
                                                                         SecretProvider auth_secret, const Clock& clock,
                                                                         std::shared_ptr<TokenStash> stash) {
  if (auto ok = config.validate(); !ok) return ok.error();
  if (!auth_secret) {
    return Error(Errc::config_invalid, fmt::format("destination \"{}\": no auth secret provider", config.name));
  }
  auto impl = std::make_shared<Impl>(std::move(executor), client, std::move(config), std::move(auth_secret), clock,
                                     std::move(stash));
  return std::shared_ptr<ClearTaxDestination>(new ClearTaxDestination(std::move(impl)));
}

ClearTaxDestination::~ClearTaxDestination() = default;

const std::string& ClearTaxDestination::name() const noexcept { return impl_->config.name; }

asio::awaitable<Result<void>> ClearTaxDestination::push(Delivery delivery, Credential credential) {
  return push_impl(impl_, std::move(delivery), std::move(credential));
}

asio::awaitable<Result<void>> ClearTaxDestination::probe() { return probe_impl(impl_); }

DestinationStats ClearTaxDestination::stats() const { return impl_->stats(); }

void ClearTaxDestination::reread_shared_state() { impl_->cache_loaded = false; }

std::string ClearTaxDestination::token_cache_path() const {
  return impl_->stash ? impl_->stash->where(impl_->stash_name) : std::string();
}

}  // namespace nicsync::destinations
