#include "app/runtime.hpp"

#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "app/audit_feed_wiring.hpp"
#include "app/sealed_token_stash.hpp"
#include "nicsync/core/build_info.hpp"
#include "nicsync/core/duration.hpp"
#include "nicsync/core/text.hpp"
#include "nicsync/sync/news.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

// The API bearer token; errors say what is wrong with the file (the caller adds where it is set).
Result<std::optional<Secret>> read_token_file(const std::string& path) {
  if (path.empty()) return std::optional<Secret>{};
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error(Errc::config_invalid, fmt::format("{} is a directory, not a token file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::config_invalid, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  // A token is a line; anything much longer is the wrong file (and must not fill the memory).
  constexpr std::size_t kMaxBytes = 4096;
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxBytes) {
    secure_wipe(text);
    return Error(Errc::config_invalid, fmt::format("{} is larger than 4 KiB; is it the right file?", path));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.size() < 16) {
    secure_wipe(text);
    return Error(Errc::config_invalid, fmt::format("the token in {} must be at least 16 characters "
                                                   "(create one with: head -c 32 /dev/urandom | base64 > {})",
                                                   path, path));
  }
  return std::optional<Secret>{Secret::take(text)};
}

namespace {

// A file the configuration names must exist and be readable by this user.
std::optional<std::string> unreadable(const std::string& path, bool directory = false) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) return fmt::format("{} does not exist", path);
  if (directory != std::filesystem::is_directory(st)) {
    return fmt::format("{} is {}", path, directory ? "not a directory" : "a directory, not a file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return fmt::format("{} is not readable by this user: {}", path, std::strerror(errno));
  }
  return std::nullopt;
}

watch::Mode to_watch_mode(WatchMode m) {
  switch (m) {
    case WatchMode::auto_detect: return watch::Mode::auto_detect;
    case WatchMode::poll: return watch::Mode::poll;
    case WatchMode::events: return watch::Mode::events;
  }
  return watch::Mode::auto_detect;
}

std::string vault_signature(const vault::ClientConfig& v) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", v.address, v.vault_namespace.str(),
                     to_string(v.auth.method), v.auth.token_file, v.auth.approle_mount, v.auth.role_id_file,
                     v.auth.secret_id_file, v.tls.ca_cert, v.tls.ca_path, v.tls.client_cert, v.tls.client_key,
                     v.tls.server_name, v.tls.skip_verify.value_or(false), v.timeout ? v.timeout->count() : -1,
                     v.max_retries.value_or(-1), v.max_connections);
}

}  // namespace

Result<Config> load_full_config(const std::string& path) {
  auto config = load_config_file(path);
  if (!config) return config;
  // Files named in the file itself, with file:line: key (those from VAULT_* are checked by
  // vault::validate below, which names the variable).
  std::vector<std::string> errors;
  auto check = [&](std::string_view key, const std::string& file, bool directory = false) {
    if (file.empty() || !config->key_lines.contains(key)) return;
    if (auto why = unreadable(file, directory)) errors.push_back(fmt::format("{}: {}", config->where(key), *why));
  };
  check("vault.tls.ca_file", config->vault.tls.ca_cert);
  check("vault.tls.ca_path", config->vault.tls.ca_path, true);
  check("vault.tls.client_cert", config->vault.tls.client_cert);
  check("vault.tls.client_key", config->vault.tls.client_key);
  check("api.tls_cert_file", config->api.tls_cert_file);
  check("api.tls_key_file", config->api.tls_key_file);
  if (auto t = read_token_file(config->api.token_file); !t) {
    errors.push_back(fmt::format("{}: {}", config->where("api.token_file"), t.error().message));
  }
  if (auto why = check_audit_token_file(*config)) errors.push_back(*why);
  if (!errors.empty()) return Error(Errc::config_invalid, fmt::format("{}", fmt::join(errors, "\n")));
  if (auto r = vault::apply_environment(config->vault, vault::process_environment()); !r) {
    return Error(Errc::config_invalid, fmt::format("{}: [vault] with the environment: {}", path, r.error().message));
  }
  if (auto r = vault::validate(config->vault); !r) {
    return Error(Errc::config_invalid, fmt::format("{}: [vault]: {}", path, r.error().message));
  }
  api::ApiOptions o;
  o.listen = config->api.listen;
  o.tls_cert_file = config->api.tls_cert_file;
  o.tls_key_file = config->api.tls_key_file;
  o.allow_insecure = config->api.allow_insecure;
  o.require_token_for_reads = config->api.require_token;
  if (!config->api.token_file.empty()) o.bearer_token = Secret("placeholder-for-validation");
  if (auto r = api::validate(o); !r) return Error(Errc::config_invalid, fmt::format("{}: {}", path, r.error().message));
  return config;
}

Result<void> check_auth_files(const Config& config) {
  // At run time these may appear later (Vault Agent writes its sink, systemd provides
  // $CREDENTIALS_DIRECTORY): the daemon starts and retries the login. `check` says it now.
  const auto& auth = config.vault.auth;
  std::vector<std::string> errors;
  auto check = [&](std::string_view key, const std::string& file) {
    if (file.empty()) return;
    std::filesystem::path p(file);
    if (p.is_relative()) {
      if (auth.credentials_directory.empty()) return;  // only systemd knows where it will be
      p = std::filesystem::path(auth.credentials_directory) / p;
    }
    if (auto why = unreadable(p.string())) errors.push_back(fmt::format("{}: {}", config.where(key), *why));
  };
  if (config.ledger.backend == LedgerBackend::postgresql) check("ledger.url_file", config.ledger.url_file);
  switch (auth.method) {
    case vault::AuthMethod::token_file: check("vault.auth.token_file", auth.token_file); break;
    case vault::AuthMethod::approle:
      check("vault.auth.role_id_file", auth.role_id_file);
      check("vault.auth.secret_id_file", auth.secret_id_file);
      break;
    default: break;
  }
  if (!errors.empty()) return Error(Errc::config_invalid, fmt::format("{}", fmt::join(errors, "\n")));
  return {};
}

Result<ledger::PostgresStoreOptions> postgres_options(const Config& config) {
  const auto& l = config.ledger;
  ledger::PostgresStoreOptions o;
  o.conninfo = Secret(l.url);
  o.schema = l.schema;
  if (!l.url_file.empty()) {
    o.conninfo_file = l.url_file_path();
    if (o.conninfo_file.empty()) {
      return Error(Errc::config_invalid,
                   fmt::format("{}: the path is relative but $CREDENTIALS_DIRECTORY is not set: give an absolute path, "
                               "or LoadCredential= in the unit",
                               config.where("ledger.url_file")));
    }
  }
  return o;
}

Result<ledger::LedgerKeys> read_ledger_keys(const Config& config) {
  const std::string path = config.ledger.keys_file_path();
  if (path.empty()) {
    return Error(Errc::config_invalid,
                 fmt::format("{}: the path is relative but $CREDENTIALS_DIRECTORY is not set: give an absolute path, "
                             "or LoadCredential= in the unit",
                             config.where("ledger.keys_file")));
  }
  auto keys = ledger::read_keys_file(path);
  if (!keys) return Error(keys.error().code, config.where("ledger.keys_file") + ": " + keys.error().message);
  return keys;
}

Result<std::unique_ptr<ledger::Store>> open_ledger(const Config& config, const std::filesystem::path& state_dir,
                                                   bool for_reading) {
  if (config.ledger.backend == LedgerBackend::postgresql) {
    auto options = postgres_options(config);
    if (!options) return options.error();
    auto store = ledger::PostgresStore::open(std::move(*options));
    if (!store) return store.error();
    return std::unique_ptr<ledger::Store>(std::move(*store));
  }
  ledger::SqliteStoreOptions so;
  so.path = state_dir / ledger::SqliteStore::kFileName;
  so.quick_check = !for_reading;
  auto store = ledger::SqliteStore::open(so);
  if (!store) return store.error();
  return std::unique_ptr<ledger::Store>(std::move(*store));
}

std::optional<std::string> restart_only_change(const Config& a, const Config& b) {
  if (a.state_dir != b.state_dir) return "state_dir";
  const auto& la = a.ledger;
  const auto& lb = b.ledger;
  if (la.backend != lb.backend || la.url != lb.url || la.url_file != lb.url_file || la.schema != lb.schema ||
      la.keys_file != lb.keys_file) {
    return "[ledger]";
  }
  if (vault_signature(a.vault) != vault_signature(b.vault)) return "[vault]";
  const auto& wa = a.watch;
  const auto& wb = b.watch;
  if (wa.mode != wb.mode || wa.poll_interval != wb.poll_interval || wa.resync_interval != wb.resync_interval ||
      wa.jitter != wb.jitter || wa.concurrency != wb.concurrency) {
    return "[watch]";
  }
  if (wa.audit != wb.audit) return "[watch.audit]";
  const auto& sa = a.sync;
  const auto& sb = b.sync;
  if (sa.backoff.base != sb.backoff.base || sa.backoff.cap != sb.backoff.cap ||
      sa.backoff.max_age != sb.backoff.max_age || sa.backoff.max_retry_after != sb.backoff.max_retry_after ||
      sa.unknown_code_attempts != sb.unknown_code_attempts || sa.history_retention != sb.history_retention ||
      sa.stop_grace != sb.stop_grace) {
    return "[sync]";
  }
  if (a.api.listen != b.api.listen || a.api.tls_cert_file != b.api.tls_cert_file ||
      a.api.tls_key_file != b.api.tls_key_file || a.api.allow_insecure != b.api.allow_insecure ||
      a.api.require_token != b.api.require_token) {
    return "[api] listen/TLS settings";
  }
  if (a.gstin_mode != b.gstin_mode) return "gstin_validation";
  return std::nullopt;
}

Runtime::Runtime(asio::any_io_executor executor, Config config)
    : ex_(std::move(executor)), config_(std::move(config)) {}

Runtime::~Runtime() {
  api_.reset();
  audit_.reset();
  watcher_.reset();
  engine_.reset();
  destinations_.clear();
  if (http_) http_->shutdown();
  if (vault_) vault_->shutdown();
  if (store_) store_->close();
}

Result<std::unique_ptr<Runtime>> Runtime::open(asio::any_io_executor executor, Config given) {
  std::unique_ptr<Runtime> rt(new Runtime(std::move(executor), std::move(given)));
  const Config& config = rt->config_;
  auto dir = ledger::StateDirectory::open(config.state_dir);
  if (!dir) return dir.error();
  rt->state_dir_.emplace(std::move(*dir));
  // The keys: from the keys file (every daemon on a shared ledger has the same), else the
  // fingerprint key in the state directory, made at the first start.
  std::optional<ledger::LedgerKeys> keys;
  if (!config.ledger.keys_file.empty()) {
    auto k = read_ledger_keys(config);
    if (!k) return k.error();
    keys = std::move(*k);
  }
  auto fp = keys ? ledger::Fingerprinter::with_key(keys->fingerprint)
                 : ledger::Fingerprinter::open(rt->state_dir_->file(ledger::Fingerprinter::kKeyFileName));
  if (!fp) return fp.error();
  rt->fingerprinter_.emplace(std::move(*fp));
  // With PostgreSQL the state directory still holds the lock.
  auto store = open_ledger(config, rt->state_dir_->path());
  if (!store) return store.error();
  rt->store_ = std::move(*store);
  if (keys) {
    // The ClearTax token is kept in the ledger, sealed: every replica sees the one token.
    auto sealer = ledger::Sealer::with_key(keys->sealing);
    if (!sealer) return sealer.error();
    rt->token_stash_ = std::make_shared<SealedTokenStash>(*rt->store_, std::move(*sealer));
  }

  const bool replicated = config.ledger.backend == LedgerBackend::postgresql;
  rt->vault_ = std::make_unique<vault::Client>(rt->ex_, config.vault, Clock::real());
  http::ClientOptions ho;
  ho.max_host_connections = 32;
  // Every push says which replica sent it.
  if (replicated)
    ho.user_agent = fmt::format("nicsync/{} replica/{}", build_info::kVersion, Replica::default_id(config));
  rt->http_ = std::make_unique<http::Client>(rt->ex_, ho);
  rt->reader_ = std::make_unique<VaultCredentialReader>(*rt->vault_);
  rt->secrets_ = std::make_unique<VaultSecretSource>(*rt->vault_);
  if (auto r = rt->build_destinations(config, rt->destinations_); !r) return r.error();

  sync::EngineOptions eo;
  eo.backoff = config.sync.backoff;
  eo.unknown_code_attempts = config.sync.unknown_code_attempts;
  eo.history_retention = config.sync.history_retention;
  eo.standby = replicated;  // a replica delivers only while it holds the leader lease
  auto fingerprinter = *rt->fingerprinter_;
  rt->engine_ = std::make_unique<sync::Engine>(
      rt->ex_, *rt->store_, *rt->reader_,
      [fingerprinter](std::string_view user, const Secret& password) {
        return fingerprinter.fingerprint(user, password);
      },
      Clock::real(), eo);
  std::vector<std::pair<std::shared_ptr<destinations::Destination>, sync::LanePolicy>> lanes;
  for (const auto& d : config.destinations) lanes.emplace_back(rt->destinations_.at(d.name), d.lane);
  rt->engine_->set_destinations(std::move(lanes));
  rt->mapper_ = std::make_unique<sync::Mapper>(*rt->engine_);
  if (auto r = rt->mapper_->configure(config.mappings, config.mapping_sets); !r) return r.error();
  if (auto r = rt->engine_->load(); !r) return r.error();
  if (!replicated) rt->engine_->start();

  watch::WatcherOptions wo;
  wo.mode = to_watch_mode(config.watch.mode);
  wo.poll_interval = config.watch.poll_interval;
  wo.resync_interval = config.watch.resync_interval;
  wo.jitter = config.watch.jitter;
  wo.concurrency = config.watch.concurrency;
  wo.gstin_mode = config.gstin_mode;
  Runtime* self = rt.get();
  rt->watcher_ = std::make_unique<watch::Watcher>(rt->ex_, *rt->vault_, wo, Clock::real(),
                                                  [self](const watch::WatchEvent& e) { self->on_watch_event(e); });
  rt->watch_mapped_keys();
  if (replicated) {
    if (auto r = rt->open_replica(); !r) return r.error();
  }
  return rt;
}

void Runtime::on_watch_event(const watch::WatchEvent& event) {
  if (const auto* o = std::get_if<Observation>(&event)) {
    mapper_->observe(*o);
  } else if (const auto* l = std::get_if<watch::SetListing>(&event)) {
    invalid_keys_[l->prefix] = l->invalid_keys;
    mapper_->set_listed(l->prefix, l->gstins);
  }
}

Result<void> Runtime::build_destinations(const Config& config,
                                         std::map<std::string, std::shared_ptr<destinations::Destination>>& out) {
  for (const auto& d : config.destinations) {
    if (const auto* c = std::get_if<destinations::ClearTaxConfig>(&d.settings)) {
      auto settings = *c;
      settings.state_dir = state_dir_->path().string();
      auto dest = destinations::ClearTaxDestination::create(ex_, *http_, settings, secrets_->provider(*d.auth_secret),
                                                            Clock::real(), token_stash_);
      if (!dest) return dest.error();
      out[d.name] = std::move(*dest);
    } else {
      auto settings = std::get<destinations::WebhookConfig>(d.settings);
      for (const auto& h : d.secret_headers) {
        settings.secret_headers.push_back({h.name, h.prefix, secrets_->provider(h.secret)});
      }
      auto dest = destinations::WebhookDestination::create(ex_, *http_, settings);
      if (!dest) return dest.error();
      out[d.name] = std::move(*dest);
    }
  }
  return {};
}

void Runtime::watch_mapped_keys() {
  watcher_->set_keys(mapper_->watched_keys());
  watcher_->set_prefixes(mapper_->watched_prefixes());
}

Result<void> Runtime::start_api() {
  api::ApiOptions o;
  o.listen = config_.api.listen;
  o.tls_cert_file = config_.api.tls_cert_file;
  o.tls_key_file = config_.api.tls_key_file;
  o.allow_insecure = config_.api.allow_insecure;
  o.require_token_for_reads = config_.api.require_token;
  auto token = read_token_file(config_.api.token_file);
  if (!token) return Error(token.error().code, config_.where("api.token_file") + ": " + token.error().message);
  if (*token) api_token_ = **token;
  o.bearer_token = std::move(*token);
  api::ApiHooks hooks;
  if (auto r = start_audit_feed(o, hooks); !r) return r;
  hooks.details = [this] {
    boost::json::object out = audit_ ? audit_->details() : boost::json::object();
    if (replica_) add_replica_details(out);
    return out;
  };
  if (replica_) add_replica_hooks(hooks);
  hooks.not_ready_reasons = [this] { return not_ready_reasons(); };
  hooks.warnings = [this] { return warnings(); };
  hooks.extra_metrics = [this](api::MetricsWriter& w) { add_metrics(w); };
  hooks.trigger = [this](api::TriggerRequest r) { return trigger(std::move(r), std::chrono::seconds(60)); };
  // What the status page and /v1/status show beyond the engine: read from where it lives.
  hooks.vault = [this] {
    const auto ts = vault_->token_state();
    api::VaultInfo v{redact_url(config_.vault.address), ts.valid, std::nullopt,
                     ts.last_error ? ts.last_error->describe() : std::string()};
    if (ts.valid && ts.expires_at) {
      v.token_ttl =
          std::max(std::chrono::seconds{0},
                   std::chrono::duration_cast<std::chrono::seconds>(*ts.expires_at - std::chrono::system_clock::now()));
    }
    return v;
  };
  hooks.change_feed = [this] {
    const auto& w = config_.watch;
    if (watcher_->stats().events_active) {
      return fmt::format("Vault events, and a full read every {}", format_duration(w.resync_interval));
    }
    const auto audit = watcher_->audit_feed_health();
    if (audit.healthy) {
      return fmt::format("Vault's audit stream, and a full read every {}", format_duration(w.resync_interval));
    }
    if (audit.attached) {
      return fmt::format("polling every {} (the audit stream is not healthy)", format_duration(w.poll_interval));
    }
    return fmt::format("polling every {}", format_duration(w.poll_interval));
  };
  hooks.destinations = [this] {
    std::vector<api::DestinationInfo> out;
    for (const auto& d : config_.destinations) {
      auto it = destinations_.find(d.name);
      const auto left = it == destinations_.end() ? -1 : it->second->stats().token_requests_left_today;
      out.push_back(
          {d.name, std::string(d.kind()), d.lane.rate_per_second, d.lane.concurrency, static_cast<int>(left)});
    }
    return out;
  };
  hooks.max_credential_age = [this] {
    return std::chrono::duration_cast<std::chrono::seconds>(config_.sync.max_credential_age);
  };
  api_ = std::make_unique<api::ApiServer>(ex_, std::move(o), *engine_, std::move(hooks));
  return api_->start();
}

std::string Runtime::api_address() const { return api_ ? api_->local_address() : std::string(); }

void Runtime::start_background(asio::cancellation_slot slot) {
  auto both = [](vault::Client* v, watch::Watcher* w) -> asio::awaitable<void> {
    co_await (v->run_token_lifetime() && w->run());
  };
  asio::co_spawn(ex_, both(vault_.get(), watcher_.get()), asio::bind_cancellation_slot(slot, asio::detached));
  // The replica keeps its lease through the stop: the engine's last outcomes commit under it.
  if (replica_) {
    asio::co_spawn(ex_, replica_->run(), asio::bind_cancellation_slot(replica_stop_.slot(), asio::detached));
  }
}

Result<void> Runtime::reconfigure(Config next) {
  std::map<std::string, std::shared_ptr<destinations::Destination>> fresh;
  if (auto r = build_destinations(next, fresh); !r) return r;
  auto token = read_token_file(next.api.token_file);
  if (!token) return Error(token.error().code, next.where("api.token_file") + ": " + token.error().message);
  std::vector<std::pair<std::shared_ptr<destinations::Destination>, sync::LanePolicy>> lanes;
  for (const auto& d : next.destinations) lanes.emplace_back(fresh.at(d.name), d.lane);
  Config previous = std::exchange(config_, std::move(next));
  engine_->set_destinations(std::move(lanes));
  // The mapper keeps the lists of config_ by reference: on an error it keeps its pairs, and the
  // lists it refers to get their previous contents back.
  if (auto r = mapper_->configure(config_.mappings, config_.mapping_sets); !r) {
    config_ = std::move(previous);
    return r;
  }
  destinations_ = std::move(fresh);
  watch_mapped_keys();
  api_token_ = *token ? std::optional<Secret>(**token) : std::nullopt;
  if (api_) api_->set_bearer_token(std::move(*token));
  return {};
}

Result<void> Runtime::start_audit_feed(api::ApiOptions& options, api::ApiHooks& hooks) {
  auto audit = AuditFeedWiring::start(config_, ex_, *watcher_);
  if (!audit) return audit.error();
  audit_ = std::move(*audit);
  if (!audit_) return {};
  audit_->add_api_hooks(options, hooks);
  return {};
}

asio::awaitable<void> Runtime::stop(std::chrono::milliseconds grace) {
  if (audit_) audit_->stop();
  co_await engine_->stop(grace);
  if (replica_) {
    replica_stop_.emit(asio::cancellation_type::terminal);
    co_await replica_->give_back();
  }
  if (api_) co_await api_->stop(std::chrono::seconds(1));
  http_->shutdown();
  vault_->shutdown();
}

std::vector<std::string> Runtime::not_ready_reasons() const {
  std::vector<std::string> out;
  if (replica_ && !replica_->leader()) return standby_not_ready_reasons();
  const auto ts = vault_->token_state();
  if (!ts.valid) {
    out.push_back(ts.last_error ? "Vault: not authenticated: " + ts.last_error->describe()
                                : std::string("Vault: not authenticated yet"));
  }
  if (!engine_->ledger_writable()) {
    const std::string why = engine_->ledger_error();
    out.push_back(fmt::format("ledger: writes fail{}; nothing is pushed until one succeeds (retried by itself)",
                              why.empty() ? std::string(" (is the disk full or read-only?)") : ": " + why));
  }
  if (auto w = state_dir_->check_writable(); !w) out.push_back("state directory: " + w.error().message);
  if (!watcher_->first_sweep_done()) {
    const auto problems = watcher_->problems();
    std::string line = "first full read of Vault not finished";
    if (!problems.empty()) {
      line += fmt::format(" ({} key(s) failing, e.g. {}: {})", problems.size(), problems.begin()->first,
                          problems.begin()->second);
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> Runtime::warnings() const {
  std::vector<std::string> out;
  // Keys Vault does not answer for (after the first sweep /readyz no longer shows them): at
  // most a screenful, since during an outage every key fails.
  constexpr std::size_t kMaxKeyLines = 20;
  const auto problems = watcher_->problems();
  std::size_t shown = 0;
  for (const auto& [path, why] : problems) {
    if (shown++ == kMaxKeyLines) {
      out.push_back(fmt::format("Vault: {} more key(s) cannot be read; see the log", problems.size() - kMaxKeyLines));
      break;
    }
    out.push_back(path == "events" ? fmt::format("Vault events: {}", why)
                                   : fmt::format("Vault: cannot read {}: {}; retrying", path, why));
  }
  if (auto w = audit_ ? audit_->warning() : std::nullopt) out.push_back(std::move(*w));
  for (const auto& set : config_.mapping_sets) {
    auto it = invalid_keys_.find(set.prefix);
    if (it == invalid_keys_.end()) continue;
    for (const auto& key : it->second) {
      auto g = Gstin::parse(key, config_.gstin_mode);
      std::string why = g ? std::string("not a GSTIN") : g.error().message;
      if (config_.gstin_mode == GstinMode::strict && Gstin::parse(key, GstinMode::sandbox)) {
        why += " (it is a sandbox GSTIN: set gstin_validation = \"sandbox\" if this Vault holds sandbox credentials)";
      }
      out.push_back(
          fmt::format("mapping set {}: key \"{}\" is ignored: {}; rename or move it in Vault", set.prefix, key, why));
    }
  }
  return out;
}

std::string Runtime::status_line() const {
  const auto counts = engine_->state_counts();
  auto n = [&](ledger::PairState s) {
    auto it = counts.find(s);
    return it == counts.end() ? std::size_t{0} : it->second;
  };
  const auto reasons = not_ready_reasons();
  return fmt::format("{}{} in sync, {} pending, {} retrying, {} parked, {} rejected, {} source deleted; {}",
                     replica_ ? (replica_->leader() ? "leader; " : "standby; ") : "", n(ledger::PairState::in_sync),
                     n(ledger::PairState::pending), n(ledger::PairState::retrying), n(ledger::PairState::parked),
                     n(ledger::PairState::rejected), n(ledger::PairState::source_deleted),
                     reasons.empty() ? "ready" : "not ready: " + reasons.front());
}

void Runtime::release_memory_when_settled() {
  // glibc keeps what a burst of work freed (the first sweep's and the deliveries' buffers, the
  // ledger's page cache, which its thread frees after 1 s idle) in its free lists and arenas,
  // counted as the daemon's memory for as long as it is idle (measured with 10,000 keys: MiBs).
  // malloc_trim gives it back: once per change of work, when no delivery finished since the
  // previous call and nothing is queued or in flight.
  std::uint64_t outcomes = 0;
  for (const auto& [name, lane] : engine_->lane_metrics()) {
    for (const auto& [outcome, n] : lane.outcomes) outcomes += n;
  }
  const bool settled = outcomes == outcomes_seen_;
  outcomes_seen_ = outcomes;
  const std::uint64_t work = watcher_->stats().sweeps + outcomes;
  if (work == released_at_work_ || !settled || !engine_->idle()) return;
  // The destinations' request handles, one per delivery that ran at once (64 at most, ~0.6 MiB
  // after a burst of 10,000). The Vault client's stay: it polls all the time.
  http_->release_idle_handles();
  ::malloc_trim(0);
  released_at_work_ = work;
}

void Runtime::add_metrics(api::MetricsWriter& w) const {
  if (replica_) add_replica_metrics(w);
  const auto vs = vault_->stats();
  w.counter("nicsync_vault_requests_total", "Vault API calls by outcome.", {{"outcome", "ok"}},
            static_cast<double>(vs.calls - vs.calls_failed));
  w.counter("nicsync_vault_requests_total", "Vault API calls by outcome.", {{"outcome", "error"}},
            static_cast<double>(vs.calls_failed));
  for (const auto& [code, count] : vs.errors_by_code) {
    w.counter("nicsync_vault_errors_total", "Failed Vault calls by error code.", {{"code", code}},
              static_cast<double>(count));
  }
  w.counter("nicsync_vault_retries_total", "Vault HTTP attempts repeated after a retryable failure.", {},
            static_cast<double>(vs.retries));
  const auto ts = vault_->token_state();
  double ttl = 0;
  if (ts.valid && ts.expires_at) {
    ttl = std::max(0.0, std::chrono::duration<double>(*ts.expires_at - std::chrono::system_clock::now()).count());
  }
  w.gauge("nicsync_vault_token_valid", "1 while the Vault token is valid.", {}, ts.valid ? 1 : 0);
  w.gauge("nicsync_vault_token_ttl_seconds", "Seconds until the Vault token expires (0 when none or not expiring).", {},
          ttl);
  w.counter("nicsync_vault_logins_total", "Vault logins by outcome.", {{"outcome", "ok"}},
            static_cast<double>(ts.logins));
  w.counter("nicsync_vault_logins_total", "Vault logins by outcome.", {{"outcome", "error"}},
            static_cast<double>(ts.login_failures));
  for (const auto& [name, d] : destinations_) {
    const auto s = d->stats();
    if (s.token_requests_left_today >= 0) {
      w.gauge("nicsync_destination_token_calls_today", "Access-token calls made this UTC day.", {{"destination", name}},
              static_cast<double>(s.token_requests_today));
      w.gauge("nicsync_destination_token_calls_left_today",
              "Access-token calls the provider still allows this UTC day (ClearTax: 288 a day).",
              {{"destination", name}}, static_cast<double>(s.token_requests_left_today));
    }
  }
  const auto ws = watcher_->stats();
  w.gauge("nicsync_watched_keys", "Vault keys being watched.", {}, static_cast<double>(ws.keys));
  w.counter("nicsync_watch_reads_total", "Vault metadata/data reads made by the watcher.", {},
            static_cast<double>(ws.reads));
  w.counter("nicsync_watch_read_failures_total", "Watcher reads that failed.", {},
            static_cast<double>(ws.read_failures));
  w.counter("nicsync_watch_sweeps_total", "Full sweeps over every watched key.", {}, static_cast<double>(ws.sweeps));
  w.gauge("nicsync_watch_events_active", "1 while the Vault event stream is subscribed.", {}, ws.events_active ? 1 : 0);
  if (audit_) audit_->add_metrics(w);
}

asio::awaitable<Result<api::TriggerReport>> Runtime::trigger(api::TriggerRequest request,
                                                             std::chrono::milliseconds wait) {
  api::TriggerReport report;
  const auto before = engine_->snapshot();
  std::set<Gstin> wanted(request.gstins.begin(), request.gstins.end());
  std::set<Gstin> seen;
  std::vector<sync::PairView> selected;
  for (const auto& v : before) {
    if (wanted.empty() || wanted.count(v.config.gstin) != 0) {
      selected.push_back(v);
      seen.insert(v.config.gstin);
    }
  }
  for (const auto& g : wanted) {
    if (seen.count(g) == 0) report.errors.push_back(fmt::format("GSTIN {} is not mapped to any destination", g.str()));
  }
  std::set<std::string> path_set;
  for (const auto& v : selected) path_set.insert(v.config.source.path);
  std::vector<std::string> paths(path_set.begin(), path_set.end());
  if (paths.empty()) co_return report;
  auto reads = co_await watcher_->read_now(paths, request.force, /*emit=*/!request.dry_run);
  std::map<std::string, watch::ReadResult> by_path;
  for (auto& r : reads) by_path.emplace(r.path, std::move(r));

  if (request.dry_run) {
    for (const auto& v : selected) {
      api::TriggerItem item{v.config.gstin.str(), v.config.destination, "", std::nullopt, ""};
      const auto& r = by_path[v.config.source.path];
      if (r.error) {
        item.result = "error";
        item.message = r.error->describe();
      } else if (!r.observation || r.observation->version.state != SourceState::present) {
        item.result = "source_deleted";
        item.message = "the current Vault version is not readable; nothing would be pushed";
      } else {
        // The engine's own rule (sync/news.hpp) says what a sync would do.
        item.version = r.observation->version.number;
        sync::PairPosition position;
        position.state = v.record.state;
        if (v.record.applied) position.applied = &v.record.applied->version;
        if (v.record.pending) position.pending = &v.record.pending->version;
        if (v.target) position.target = &*v.target;
        position.target_forced = v.target_forced;
        position.delivering = v.in_flight;
        const sync::News news = sync::is_news(*r.observation, position);
        if (news == sync::News::version) {
          item.result = "would_push";
        } else if (v.record.state == ledger::PairState::in_sync || news == sync::News::content_check) {
          item.result = "up_to_date";
        } else {
          // Waiting for a different version (parked, rejected) or already under way.
          item.result = std::string(ledger::to_string(v.record.state));
          item.message = v.record.last_error_message;
        }
      }
      report.items.push_back(std::move(item));
    }
    co_return report;
  }

  // Wait until every selected pair settled (nothing queued or in flight) or the time is up.
  auto settled = [&] {
    for (const auto& now : engine_->snapshot()) {
      for (const auto& v : selected) {
        if (now.config.gstin == v.config.gstin && now.config.destination == v.config.destination &&
            (now.in_flight || (now.target && now.record.state == ledger::PairState::pending))) {
          return false;
        }
      }
    }
    return true;
  };
  auto wait_settled = [&]() -> asio::awaitable<void> {
    while (!settled()) co_await engine_->wait_for_change();
  };
  asio::steady_timer deadline(ex_, wait);
  co_await (wait_settled() || deadline.async_wait(asio::use_awaitable));

  std::map<std::pair<std::string, std::string>, sync::PairView> after;
  for (auto& v : engine_->snapshot()) after.emplace(std::make_pair(v.config.gstin.str(), v.config.destination), v);
  for (const auto& v : selected) {
    api::TriggerItem item{v.config.gstin.str(), v.config.destination, "", std::nullopt, ""};
    const auto& r = by_path[v.config.source.path];
    auto it = after.find({v.config.gstin.str(), v.config.destination});
    if (r.error) {
      item.result = "error";
      item.message = r.error->describe();
    } else if (it != after.end()) {
      const auto& rec = it->second.record;
      if (rec.applied) item.version = rec.applied->version.number;
      if (rec.state == ledger::PairState::in_sync) {
        item.result = rec.applied_at != v.record.applied_at ? "pushed" : "up_to_date";
      } else {
        item.result = std::string(ledger::to_string(rec.state));
        if (rec.pending) item.version = rec.pending->version.number;
        item.message = rec.last_error_message;
        if (it->second.in_flight) item.message = "still in progress after " + format_duration(wait);
      }
    }
    report.items.push_back(std::move(item));
  }
  co_return report;
}

}  // namespace nicsync::app
