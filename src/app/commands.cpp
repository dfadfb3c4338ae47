// Operator commands: check, sync, status, history. They talk to the running daemon's API, or
// (check --online, sync --standalone, history without a daemon) build what they need themselves.
#include "app/commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "app/runtime.hpp"
#include "nicsync/app/cli.hpp"
#include "nicsync/core/duration.hpp"
#include "nicsync/core/timestamp.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/sys/hardening.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace asio::experimental::awaitable_operators;

namespace {

// Runs one coroutine to completion on a private loop.
template <class T>
T run_blocking(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out.emplace(std::move(v));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

std::string api_url(const Config& c, const std::string& override_url) {
  if (!override_url.empty()) return override_url;
  const bool tls = !c.api.tls_cert_file.empty();
  return std::string(tls ? "https://" : "http://") + c.api.listen;
}

Result<std::optional<Secret>> token_from(const std::string& path) {
  if (path.empty()) return std::optional<Secret>{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::config_invalid, fmt::format("cannot read the API token file {}", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return std::optional<Secret>{Secret::take(text)};
}

struct ApiCall {
  std::string method = "GET";
  std::string path;
  std::string body;
  std::optional<Secret> token;
};

Result<http::Response> call_api(const std::string& base, ApiCall call, std::chrono::milliseconds timeout) {
  asio::io_context io;
  http::Client client(io.get_executor());
  http::Request r;
  r.method = call.method;
  r.url = base + call.path;
  r.body = std::move(call.body);
  r.timeout = timeout;
  r.connect_timeout = std::chrono::seconds(3);
  if (!r.body.empty()) r.headers.push_back({"Content-Type", "application/json"});
  if (call.token) r.headers.push_back({"Authorization", "Bearer " + std::string(call.token->expose())});
  r.sensitive = true;
  auto task = [&]() -> asio::awaitable<Result<http::Response>> { co_return co_await client.request(r); };
  auto out = run_blocking(io, task());
  for (auto& h : r.headers) secure_wipe(h.value);
  return out;
}

std::string cell(const json::value& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  return json::serialize(v);
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

int unreachable(const std::string& url, const Error& e, const char* hint) {
  std::cerr << "nicsyncd: cannot reach the daemon at " << url << ": " << e.describe() << "\n" << hint << "\n";
  return kExitUnavailable;
}

int print_trigger_items(const json::array& items, const json::array& errors) {
  std::vector<std::vector<std::string>> rows{{"GSTIN", "DESTINATION", "RESULT", "VERSION", "MESSAGE"}};
  int rc = kExitOk;
  for (const auto& i : items) {
    const std::string result = cell(i.at("result"));
    if (result != "pushed" && result != "up_to_date" && result != "would_push") rc = kExitFailure;
    rows.push_back(
        {cell(i.at("gstin")), cell(i.at("destination")), result, cell(i.at("version")), cell(i.at("message"))});
  }
  print_table(rows);
  for (const auto& e : errors) {
    std::cerr << "error: " << cell(e) << "\n";
    rc = kExitFailure;
  }
  return rc;
}

// The audit feed's row of `check --online`: configured or not, and what the running daemon
// says of it (the feed is the daemon's: a device connects to it, not to this command).
std::vector<std::string> audit_feed_check(const Config& config) {
  const auto& a = config.watch.audit;
  std::string target = a.listen;
  if (!a.token_file.empty()) target += std::string(target.empty() ? "" : ", ") + "POST /v1/audit-feed";
  if (!a.enabled()) return {"audit feed", "-", "not configured ([watch.audit]); polling alone finds changes"};
  const std::string url = api_url(config, "");
  ApiCall call{"GET", "/readyz", {}, {}};
  if (auto t = token_from(config.api.token_file); t && *t) call.token = std::move(*t);
  auto resp = call_api(url, std::move(call), std::chrono::seconds(5));
  if (!resp) return {"audit feed", target, "configured; no daemon answers at " + url + " to say more"};
  boost::system::error_code ec;
  const auto body = json::parse(resp->body, ec);
  const auto* feed = !ec && body.is_object() ? body.as_object().if_contains("audit_feed") : nullptr;
  if (feed == nullptr || !feed->is_object()) return {"audit feed", target, "configured; the daemon does not report it"};
  const auto& f = feed->as_object();
  const auto flag = [&](std::string_view key) {
    const auto* v = f.if_contains(key);
    return v != nullptr && v->is_bool() && v->as_bool();
  };
  std::string result = flag("healthy")     ? "connected and healthy"
                       : flag("connected") ? "connected, but the daemon's own reads do not come back through it"
                                           : "configured, no audit device connected";
  if (const auto* last = f.if_contains("last_entry_at"); last != nullptr && last->is_string()) {
    result += fmt::format(" (last entry {})", std::string_view(last->as_string()));
  }
  return {"audit feed", target, result};
}

}  // namespace

int command_check(const Config& config, bool online) {
  if (auto r = check_auth_files(config); !r) {
    std::cerr << "nicsyncd: configuration invalid:\n" << r.error().message << "\n";
    return kExitConfig;
  }
  std::cout << fmt::format(
      "{}: configuration OK — {} destination(s), {} mapping(s), {} mapping set(s), state in {}{}\n", config.source,
      config.destinations.size(), config.mappings.size(), config.mapping_sets.size(), config.state_dir,
      config.ledger.backend == LedgerBackend::postgresql
          ? fmt::format(", ledger on PostgreSQL (schema {})", config.ledger.schema)
          : std::string());
  if (!online) return kExitOk;
  int ledger_rc = kExitOk;
  std::vector<std::vector<std::string>> ledger_rows;
  if (config.ledger.backend == LedgerBackend::postgresql) {
    // Where it points, never the string itself (it may hold a password).
    auto options = postgres_options(config);
    if (!options) {
      ledger_rows.push_back({"ledger", "postgresql", options.error().message});
      ledger_rc = kExitFailure;
    } else {
      const std::string target = options->conninfo_file.empty() ? ledger::describe_conninfo(options->conninfo.expose())
                                                                : "url_file " + options->conninfo_file;
      for (const auto& line : ledger::check_postgres(*options)) {
        ledger_rows.push_back({"ledger " + line.check, target, line.result});
        if (!line.ok) ledger_rc = kExitFailure;
      }
    }
  }
  if (auto r = sys::disable_core_dumps(); !r) std::cerr << "warning: " << r.error().describe() << "\n";
  asio::io_context io;
  vault::Client vault(io.get_executor(), config.vault, Clock::real());
  http::Client http(io.get_executor());
  VaultSecretSource secrets(vault);
  int rc = kExitOk;
  const auto feed_row = audit_feed_check(config);
  auto task = [&]() -> asio::awaitable<int> {
    std::vector<std::vector<std::string>> rows{{"CHECK", "TARGET", "RESULT"}};
    for (auto& r : ledger_rows) rows.push_back(std::move(r));
    rc = ledger_rc;
    auto login = co_await vault.login();
    rows.push_back({"vault login", config.vault.address, login ? "ok" : login.error().describe()});
    if (!login) {
      print_table(rows);
      co_return kExitFailure;
    }
    for (const auto& m : config.mappings) {
      std::string result;
      if (auto where = co_await vault.locate(m.path); !where) {
        result = where.error().describe();
      } else if (where->kv == KvVersion::v2) {
        auto md = co_await vault.read_kv2_metadata(where->path);
        result = md ? fmt::format("KV v2, version {} ({})", md->current_version,
                                  to_string(md->current_state(std::chrono::system_clock::now())))
                    : md.error().describe();
      } else {
        auto d = co_await vault.read_kv1(where->path);
        result = d ? std::string("KV v1, readable") : d.error().describe();
      }
      if (result.find("version") == std::string::npos && result != "KV v1, readable") rc = kExitFailure;
      rows.push_back({"mapping " + m.gstin.str(), std::string(m.path), result});
    }
    for (const auto& s : config.mapping_sets) {
      rows.push_back({"mapping set", s.prefix, "listed by the daemon at each sweep"});
    }
    rows.push_back(feed_row);
    std::map<std::string, std::shared_ptr<destinations::Destination>> dests;
    for (const auto& d : config.destinations) {
      Result<std::shared_ptr<destinations::Destination>> dest;
      if (const auto* c = std::get_if<destinations::ClearTaxConfig>(&d.settings)) {
        auto settings = *c;
        settings.state_dir.clear();  // a probe must not touch the daemon's token cache
        dest = destinations::ClearTaxDestination::create(io.get_executor(), http, settings,
                                                         secrets.provider(*d.auth_secret));
      } else {
        dest = destinations::WebhookDestination::create(io.get_executor(), http,
                                                        std::get<destinations::WebhookConfig>(d.settings));
      }
      Result<void> p = dest ? Result<void>() : Result<void>(dest.error());
      if (dest) p = co_await (*dest)->probe();
      if (!p) rc = kExitFailure;
      rows.push_back({"destination " + d.name, std::string(d.kind()), p ? "reachable" : p.error().describe()});
    }
    print_table(rows);
    vault.shutdown();
    http.shutdown();
    co_return rc;
  };
  return run_blocking(io, task());
}

int command_sync(const Config& config, const SyncOptions& options) {
  std::vector<Gstin> gstins;
  for (const auto& g : options.gstins) {
    auto parsed = Gstin::parse(g, config.gstin_mode);
    if (!parsed) {
      std::cerr << "nicsyncd sync: " << parsed.error().message << "\n";
      return kExitUsage;
    }
    gstins.push_back(*parsed);
  }
  if (options.standalone) {
    if (auto r = sys::disable_core_dumps(); !r) {
      std::cerr << "nicsyncd: " << r.error().describe() << "\n";
      return kExitFailure;
    }
    asio::io_context io(1);
    auto rt = Runtime::open(io.get_executor(), config);
    if (!rt) {
      std::cerr << "nicsyncd sync --standalone: " << rt.error().message << "\n";
      if (rt.error().is(Errc::state_dir_locked)) {
        std::cerr << "A daemon is running on this state directory: run `nicsyncd sync` without --standalone.\n";
        return kExitUnavailable;
      }
      return kExitFailure;
    }
    auto task = [&]() -> asio::awaitable<int> {
      auto login = co_await (*rt)->vault().login();
      if (!login) {
        std::cerr << "nicsyncd sync --standalone: Vault login failed: " << login.error().describe() << "\n";
        co_await (*rt)->stop(std::chrono::seconds(1));
        co_return kExitUnavailable;
      }
      // With replicas, only the leader pushes: this run takes the lease, or leaves it be.
      if (auto lead = co_await (*rt)->lead_alone(); !lead) {
        std::cerr << "nicsyncd sync --standalone: " << lead.error().message << "\n";
        co_await (*rt)->stop(std::chrono::seconds(1));
        co_return kExitUnavailable;
      }
      api::TriggerRequest req{gstins, options.force, options.dry_run};
      auto report = co_await (*rt)->trigger(req, options.wait);
      co_await (*rt)->stop(config.sync.stop_grace);
      if (!report) {
        std::cerr << "nicsyncd sync: " << report.error().describe() << "\n";
        co_return kExitFailure;
      }
      json::array items;
      for (const auto& i : report->items) {
        items.emplace_back(json::object{{"gstin", i.gstin},
                                        {"destination", i.destination},
                                        {"result", i.result},
                                        {"version", i.version ? json::value(*i.version) : json::value(nullptr)},
                                        {"message", i.message}});
      }
      json::array errors;
      for (const auto& e : report->errors) errors.emplace_back(e);
      co_return print_trigger_items(items, errors);
    };
    return run_blocking(io, task());
  }
  auto token = token_from(options.token_file.empty() ? config.api.token_file : options.token_file);
  if (!token) {
    std::cerr << "nicsyncd sync: " << token.error().message << "\n";
    return kExitConfig;
  }
  if (!*token) {
    std::cerr << "nicsyncd sync: no API token: set api.token_file in the configuration or pass --token-file\n";
    return kExitConfig;
  }
  json::object body{{"force", options.force}, {"dry_run", options.dry_run}};
  json::array list;
  for (const auto& g : gstins) list.emplace_back(g.str());
  body["gstins"] = std::move(list);
  const std::string url = api_url(config, options.url);
  auto resp = call_api(url, {"POST", "/v1/sync", json::serialize(body), std::move(*token)},
                       options.wait + std::chrono::seconds(30));
  if (!resp) {
    return unreachable(url, resp.error(), "Is nicsyncd running? Without a daemon, use `nicsyncd sync --standalone`.");
  }
  if (resp->status != 200) {
    std::cerr << "nicsyncd sync: the daemon answered " << resp->status << ": " << resp->body;
    return resp->status == 401 || resp->status == 403 ? kExitConfig : kExitFailure;
  }
  auto parsed = json::parse(resp->body);
  return print_trigger_items(parsed.at("items").as_array(), parsed.at("errors").as_array());
}

int command_lease_release(const Config& config, const std::string& url_override, const std::string& token_file) {
  auto token = token_from(token_file.empty() ? config.api.token_file : token_file);
  if (!token || !*token) {
    std::cerr << "nicsyncd lease release: no API token: set api.token_file in the configuration or pass "
                 "--token-file\n";
    return kExitConfig;
  }
  const std::string url = api_url(config, url_override);
  auto resp = call_api(url, {"POST", "/v1/lease/release", "{}", std::move(*token)}, std::chrono::seconds(30));
  if (!resp) return unreachable(url, resp.error(), "Is nicsyncd running? Give the leader's API with --url.");
  if (resp->status != 200) {
    std::cerr << "nicsyncd lease release: the daemon answered " << resp->status << ": " << resp->body;
    return resp->status == 401 || resp->status == 403 ? kExitConfig : kExitFailure;
  }
  std::cout << cell(json::parse(resp->body).at("message")) << "\n";
  return kExitOk;
}

int command_status(const Config& config, const std::string& url_override, const std::string& token_file) {
  const std::string url = api_url(config, url_override);
  ApiCall call{"GET", "/v1/status", {}, {}};
  if (auto t = token_from(token_file.empty() ? config.api.token_file : token_file); t && *t) call.token = std::move(*t);
  auto resp = call_api(url, std::move(call), std::chrono::seconds(10));
  if (!resp) return unreachable(url, resp.error(), "Is nicsyncd running? Check `systemctl status nicsyncd`.");
  if (resp->status != 200) {
    std::cerr << "nicsyncd status: the daemon answered " << resp->status << ": " << resp->body;
    return kExitFailure;
  }
  auto s = json::parse(resp->body).as_object();
  std::cout << "nicsyncd " << cell(s.at("version")) << " — " << (s.at("ready").as_bool() ? "ready" : "NOT READY")
            << "\n";
  for (const auto& r : s.at("not_ready_reasons").as_array()) std::cout << "  not ready: " << cell(r) << "\n";
  if (const auto* w = s.if_contains("warnings"); w && w->is_array()) {
    for (const auto& r : w->as_array()) std::cout << "  warning: " << cell(r) << "\n";
  }
  std::vector<std::vector<std::string>> rows{{"GSTIN", "DESTINATION", "STATE", "APPLIED", "PENDING", "CREDENTIAL AGE",
                                              "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"}};
  // Each error code once, with what it means and what to do (the daemon's hint table).
  struct Advice {
    std::size_t pairs = 0;
    std::string hint;
    std::string next_action;
  };
  std::map<std::string, Advice> advice;
  for (const auto& p : s.at("pairs").as_array()) {
    const auto& o = p.as_object();
    std::string err = "-";
    if (!o.at("last_error").is_null()) {
      const auto& e = o.at("last_error").as_object();
      err = cell(e.at("code"));
      if (!e.at("provider_code").as_string().empty()) err += " " + cell(e.at("provider_code"));
      err += ": " + cell(e.at("message"));
      auto& a = advice[cell(e.at("code"))];
      ++a.pairs;
      if (const auto* h = e.if_contains("hint")) a.hint = cell(*h);
      if (const auto* n = e.if_contains("next_action")) a.next_action = cell(*n);
    }
    std::string age = "-";
    if (const auto* a = o.if_contains("credential_age_seconds"); a && a->is_int64()) {
      age = format_duration(std::chrono::seconds(a->as_int64()));
      if (const auto* old = o.if_contains("too_old"); old && old->is_bool() && old->as_bool()) age += " (too old)";
    }
    rows.push_back({cell(o.at("gstin")), cell(o.at("destination")), cell(o.at("state")), cell(o.at("applied_version")),
                    cell(o.at("pending_version")), age, cell(o.at("attempts")), cell(o.at("next_attempt_at")), err});
  }
  print_table(rows);
  if (!advice.empty()) {
    std::cout << "\nWhat to do:\n";
    for (const auto& [code, a] : advice) {
      std::cout << "  " << code << " (" << a.pairs << (a.pairs == 1 ? " pair" : " pairs") << ")";
      if (!a.hint.empty()) std::cout << ": " << a.hint;
      std::cout << "\n";
      if (!a.next_action.empty()) std::cout << "    -> " << a.next_action << "\n";
    }
  }
  std::cout << "\n";
  for (const auto& [state, count] : s.at("counts").as_object()) std::cout << state << "=" << cell(count) << " ";
  std::cout << "\n";
  return kExitOk;
}

int command_history(const Config& config, const std::string& gstin_text, std::size_t limit,
                    const std::string& url_override) {
  auto gstin = Gstin::parse(gstin_text, GstinMode::sandbox);
  if (!gstin) {
    std::cerr << "nicsyncd history: " << gstin.error().message << "\n";
    return kExitUsage;
  }
  json::array entries;
  const std::string url = api_url(config, url_override);
  ApiCall call{"GET", fmt::format("/v1/history?gstin={}&limit={}", gstin->str(), limit), {}, {}};
  if (auto t = token_from(config.api.token_file); t && *t) call.token = std::move(*t);
  auto resp = call_api(url, std::move(call), std::chrono::seconds(10));
  if (resp && resp->status == 200) {
    entries = json::parse(resp->body).at("entries").as_array();
  } else {
    // No daemon: read the ledger directly (SQLite lets a reader in beside a writer; PostgreSQL
    // any number of connections).
    auto store = open_ledger(config, config.state_dir, /*for_reading=*/true);
    if (!store) {
      std::cerr << "nicsyncd history: no daemon at " << url << " and cannot open the ledger: " << store.error().message
                << "\n";
      return kExitUnavailable;
    }
    asio::io_context io;
    auto task = [&]() -> asio::awaitable<Result<std::vector<ledger::HistoryEntry>>> {
      co_return co_await (*store)->history(gstin->str(), limit);
    };
    auto h = run_blocking(io, task());
    (*store)->close();
    if (!h) {
      std::cerr << "nicsyncd history: " << h.error().message << "\n";
      return kExitFailure;
    }
    for (const auto& e : *h) {
      entries.emplace_back(json::object{{"at", format_rfc3339(e.at)},
                                        {"destination", e.destination},
                                        {"version", e.version.number},
                                        {"outcome", ledger::to_string(e.outcome)},
                                        {"attempt", e.attempt},
                                        {"error_code", e.error_code},
                                        {"provider_code", e.error_provider},
                                        {"message", e.message}});
    }
  }
  std::vector<std::vector<std::string>> rows{{"TIME", "DESTINATION", "VERSION", "OUTCOME", "ATTEMPT", "DETAIL"}};
  for (const auto& e : entries) {
    const auto& o = e.as_object();
    std::string detail = cell(o.at("message"));
    if (!o.at("provider_code").as_string().empty()) detail = cell(o.at("provider_code")) + ": " + detail;
    if (detail.empty()) detail = "-";
    rows.push_back({cell(o.at("at")), cell(o.at("destination")), cell(o.at("version")), cell(o.at("outcome")),
                    cell(o.at("attempt")), detail});
  }
  print_table(rows);
  return kExitOk;
}

}  // namespace nicsync::app
