#pragma once
// Every runtime component of the daemon, built from a Config and wired together: state
// directory and ledger, Vault client, destinations, engine, watcher, API. Shared by
// `nicsyncd run`, `sync --standalone` and `check --online`.

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "app/replica.hpp"
#include "app/vault_sources.hpp"
#include "nicsync/api/api_server.hpp"
#include "nicsync/app/config.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/ledger/fingerprint.hpp"
#include "nicsync/ledger/keys.hpp"
#include "nicsync/ledger/postgres_store.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/ledger/state_directory.hpp"
#include "nicsync/sync/engine.hpp"
#include "nicsync/sync/mapper.hpp"
#include "nicsync/vault/client.hpp"
#include "nicsync/watch/watcher.hpp"

namespace nicsync::app {

class AuditFeedWiring;

/// A bearer token file (api.token_file, watch.audit.token_file): one line of at least 16
/// characters; nothing when `path` is empty. Errors say what is wrong with the file.
Result<std::optional<Secret>> read_token_file(const std::string& path);

/// Parses the file, fills Vault settings from VAULT_* and validates everything that can be
/// checked offline. Errors name file, line and key.
Result<Config> load_full_config(const std::string& path);

/// For `nicsyncd check`: the Vault auth files (token file, AppRole role/secret id files) and
/// [ledger] url_file exist and are readable. Not part of load_full_config: at run time they
/// may appear later.
Result<void> check_auth_files(const Config& config);

/// The PostgreSQL store's options for [ledger] (backend = "postgresql"). Errors: a relative
/// url_file with no $CREDENTIALS_DIRECTORY to find it in.
Result<ledger::PostgresStoreOptions> postgres_options(const Config& config);

/// Opens the ledger [ledger] names: the SQLite file in the state directory `state_dir`, or the
/// PostgreSQL schema. Blocks. `for_reading`: the SQLite file is opened without its integrity
/// check (for a command that only reads it).
/// The ledger keys named by `[ledger] keys_file`; errors name the key and what to fix.
Result<ledger::LedgerKeys> read_ledger_keys(const Config& config);

Result<std::unique_ptr<ledger::Store>> open_ledger(const Config& config, const std::filesystem::path& state_dir,
                                                   bool for_reading = false);

/// The first setting that differs between `a` and `b` and only takes effect on a restart
/// (state_dir, [vault], [watch], [sync], [ledger], api listen/TLS), if any.
std::optional<std::string> restart_only_change(const Config& a, const Config& b);

class Runtime {
 public:
  /// Opens the state directory (taking its lock), the fingerprint key and the ledger; builds
  /// the Vault client, destinations, engine and watcher and loads the ledger. Blocks briefly.
  static Result<std::unique_ptr<Runtime>> open(boost::asio::any_io_executor executor, Config config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Result<void> start_api();
  [[nodiscard]] std::string api_address() const;
  /// Token lifetime manager and watcher, until `slot` is signalled.
  void start_background(boost::asio::cancellation_slot slot);
  /// Applies a new configuration's mappings, destinations and API token, and keeps it; on an
  /// error the current one stays.
  Result<void> reconfigure(Config next);
  /// The configuration in effect: the runtime is its only holder (10,000 mappings are MiBs).
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  /// Stops the watcher, gives the engine `grace`, stops the API and the clients.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

  [[nodiscard]] std::string status_line() const;
  /// Gives memory freed by finished work (a sweep, a burst of deliveries) back to the system
  /// once the deliveries have settled; called every couple of seconds from the loop.
  void release_memory_when_settled();
  [[nodiscard]] std::vector<std::string> not_ready_reasons() const;
  /// Problems that do not stop the daemon but need an operator (keys under a mapping set that
  /// are not GSTINs), one line each saying what to fix.
  [[nodiscard]] std::vector<std::string> warnings() const;
  /// `sync --standalone` on a PostgreSQL ledger: takes the leader lease (kept until `stop`),
  /// or says which replica leads. Nothing to do with a SQLite ledger.
  boost::asio::awaitable<Result<void>> lead_alone();
  boost::asio::awaitable<Result<api::TriggerReport>> trigger(api::TriggerRequest request,
                                                             std::chrono::milliseconds wait);

  sync::Engine& engine() noexcept { return *engine_; }
  watch::Watcher& watcher() noexcept { return *watcher_; }
  vault::Client& vault() noexcept { return *vault_; }
  const std::map<std::string, std::shared_ptr<destinations::Destination>>& destinations() const noexcept {
    return destinations_;
  }

 private:
  Runtime(boost::asio::any_io_executor executor, Config config);
  Result<void> build_destinations(const Config& config,
                                  std::map<std::string, std::shared_ptr<destinations::Destination>>& out);
  /// Gives the watcher the keys and mapping-set folders of the configuration in effect.
  void watch_mapped_keys();
  /// Where the watcher's events go: observations and listings to the mapper.
  void on_watch_event(const watch::WatchEvent& event);
  void add_metrics(api::MetricsWriter& w) const;

  // --- replicas on a PostgreSQL ledger (runtime_replica.cpp) -------------------------------
  Result<void> open_replica();
  boost::asio::awaitable<Result<void>> lead(std::int64_t epoch);
  boost::asio::awaitable<void> stand_by();
  boost::asio::awaitable<void> follow();
  boost::asio::awaitable<std::optional<http::ServerResponse>> forward_sync(const http::ServerRequest& request);
  [[nodiscard]] std::vector<std::string> standby_not_ready_reasons() const;
  void add_replica_hooks(api::ApiHooks& hooks);
  void add_replica_details(boost::json::object& out) const;
  void add_replica_metrics(api::MetricsWriter& w) const;
  /// A standby's audit hint: handed to the leader (POST /v1/sync with the API token).
  void hand_hint_to_leader(const std::string& path);
  boost::asio::awaitable<void> flush_hints_to_leader();
  /// [watch.audit]: binds the audit feed's listener, has the watcher follow the feed and adds
  /// the feed's route (OpenBao's http device) and details to the API's options and hooks.
  Result<void> start_audit_feed(api::ApiOptions& options, api::ApiHooks& hooks);

  boost::asio::any_io_executor ex_;
  Config config_;
  std::optional<ledger::StateDirectory> state_dir_;
  std::optional<ledger::Fingerprinter> fingerprinter_;
  std::unique_ptr<ledger::Store> store_;
  std::unique_ptr<vault::Client> vault_;
  std::unique_ptr<http::Client> http_;
  std::unique_ptr<VaultCredentialReader> reader_;
  std::unique_ptr<VaultSecretSource> secrets_;
  std::shared_ptr<destinations::TokenStash> token_stash_;  // null: each destination's file in the state directory
  std::map<std::string, std::shared_ptr<destinations::Destination>> destinations_;
  std::unique_ptr<sync::Engine> engine_;
  std::unique_ptr<sync::Mapper> mapper_;
  std::unique_ptr<watch::Watcher> watcher_;
  std::unique_ptr<api::ApiServer> api_;
  std::unique_ptr<Replica> replica_;  // a PostgreSQL ledger: one of possibly several replicas
  boost::asio::cancellation_signal replica_stop_;
  std::optional<Secret> api_token_;  // for handing a standby's audit hints to the leader
  std::set<std::string> hints_for_leader_;
  bool hints_flushing_ = false;
  bool warned_no_hint_token_ = false;
  std::uint64_t hints_handed_ = 0;
  std::unique_ptr<AuditFeedWiring> audit_;
  std::map<std::string, std::vector<std::string>> invalid_keys_;  // mapping-set prefix → keys not GSTINs
  std::uint64_t outcomes_seen_ = 0;     // delivery outcomes at the last release_memory_when_settled()
  std::uint64_t released_at_work_ = 0;  // sweeps + outcomes when memory was last given back
};

}  // namespace nicsync::app
