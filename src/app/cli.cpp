#include "nicsync/app/cli.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/ledger_commands.hpp"
#include "app/runtime.hpp"
#include "nicsync/app/config.hpp"
#include "nicsync/app/daemon.hpp"
#include "nicsync/app/logging.hpp"
#include "nicsync/core/build_info.hpp"
#include "nicsync/core/duration.hpp"

namespace nicsync::app {

int run_cli(int argc, char** argv) {
  CLI::App cli{
      "nicsyncd keeps NIC e-invoicing API credentials in step between Vault and their providers\n"
      "(ClearTax, webhooks). Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 unavailable."};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", std::string(build_info::kVersion));

  std::string config_path = "/etc/nicsync/nicsyncd.toml";
  auto add_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  };

  auto* run = cli.add_subcommand("run", "Run the daemon in the foreground (as systemd does)");
  add_config(run);

  bool online = false;
  auto* check = cli.add_subcommand("check",
                                   "Validate the configuration (and with --online, reach Vault and every "
                                   "destination); prints a table");
  add_config(check);
  check->add_flag("--online", online, "Also log in to Vault, read each mapping's metadata and probe each destination");

  SyncOptions sync;
  std::string wait_text = "60s";
  auto* sync_cmd = cli.add_subcommand("sync",
                                      "Read mapped credentials from Vault now and deliver them (asks the "
                                      "running daemon through POST /v1/sync)");
  add_config(sync_cmd);
  sync_cmd->add_option("-g,--gstin", sync.gstins, "Only this GSTIN (repeatable); default: all mapped GSTINs");
  sync_cmd->add_flag("--force", sync.force, "Push even when the destination already holds the same values");
  sync_cmd->add_flag("--dry-run", sync.dry_run, "Only show what would be pushed");
  sync_cmd->add_flag("--standalone", sync.standalone,
                     "No daemon is running: do one reconcile pass here, under the state directory's lock");
  sync_cmd->add_option("--url", sync.url, "Daemon API base URL (default from [api] listen)");
  sync_cmd->add_option("--token-file", sync.token_file, "API bearer token file (default [api] token_file)");
  sync_cmd->add_option("--wait", wait_text, "How long to wait for the deliveries")->capture_default_str();

  std::string url;
  std::string token_file;
  auto* status = cli.add_subcommand("status", "Show every (GSTIN, destination) pair of the running daemon");
  add_config(status);
  status->add_option("--url", url, "Daemon API base URL (default from [api] listen)");
  status->add_option("--token-file", token_file, "API bearer token file, if reads need it");

  std::string gstin;
  std::size_t limit = 50;
  auto* history = cli.add_subcommand("history", "Show the audit history of deliveries for a GSTIN");
  add_config(history);
  history->add_option("gstin", gstin, "The GSTIN")->required();
  history->add_option("-n,--limit", limit, "Most entries shown")->capture_default_str();
  history->add_option("--url", url, "Daemon API base URL (default from [api] listen)");

  auto* ledger = cli.add_subcommand("ledger", "Manage the ledger: make the keys of a shared one, move one over");
  ledger->require_subcommand(1);
  std::string keys_out;
  bool keys_force = false;
  auto* keys = ledger->add_subcommand("keys", "Write new ledger keys (fingerprint and sealing key) to a file");
  keys->add_option("--out", keys_out, "The keys file to create (mode 0600)")->required();
  keys->add_flag("--force", keys_force, "Replace an existing file (every daemon on the ledger needs the new one)");
  LedgerCopyOptions copy_options;
  auto* copy = ledger->add_subcommand("copy",
                                      "Copy a SQLite ledger into PostgreSQL so that nothing is pushed again (the "
                                      "daemon must be stopped)");
  add_config(copy);
  copy->add_option("--from", copy_options.from, "sqlite:PATH (the state directory, or its ledger.db)")->required();
  copy->add_option("--to", copy_options.to, "postgresql ([ledger] url/url_file, or PG*) or postgresql:CONNINFO")
      ->required();
  copy->add_option("--schema", copy_options.schema, "The target schema (default [ledger] schema)");
  copy->add_option("--keys-out", copy_options.keys_out,
                   "The shared keys file: made from the SQLite ledger's fingerprint key, or checked against it if "
                   "it exists (default [ledger] keys_file)");
  copy->add_flag("--force", copy_options.force, "Write into a target that already holds other data");

  auto* lease = cli.add_subcommand("lease", "Replicas on a PostgreSQL ledger: move the lead");
  lease->require_subcommand(1);
  auto* lease_release = lease->add_subcommand(
      "release", "Ask the leader to give its lease back; another replica takes over within a second or two");
  add_config(lease_release);
  lease_release->add_option("--url", url, "The leader's API base URL (default from [api] listen)");
  lease_release->add_option("--token-file", token_file, "API bearer token file (default [api] token_file)");

  auto* version = cli.add_subcommand("version", "Print the version and build information");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (version->parsed()) {
    std::cout << fmt::format("nicsyncd {} ({}, {})\n", build_info::kVersion, build_info::kCompiler,
                             build_info::kBuildType);
    return kExitOk;
  }
  if (keys->parsed()) return command_ledger_keys(keys_out, keys_force);
  if (copy->parsed()) {
    // Only the [ledger] table matters here: no Vault or API settings are checked.
    auto file = load_config_file(config_path);
    if (!file) {
      std::cerr << "nicsyncd: configuration invalid:\n" << file.error().message << "\n";
      return kExitConfig;
    }
    setup_logging(file->log);
    return command_ledger_copy(*file, copy_options);
  }
  // Asking a running daemon by --url needs no config file unless one is named.
  const bool client_only =
      (status->parsed() && !url.empty() && status->get_option("--config")->count() == 0) ||
      (history->parsed() && !url.empty() && history->get_option("--config")->count() == 0) ||
      (lease_release->parsed() && !url.empty() && lease_release->get_option("--config")->count() == 0) ||
      (sync_cmd->parsed() && !sync.url.empty() && !sync.standalone && sync_cmd->get_option("--config")->count() == 0);
  auto config = client_only ? Result<Config>(Config{}) : load_full_config(config_path);
  if (!config) {
    std::cerr << "nicsyncd: configuration invalid:\n" << config.error().message << "\n";
    return kExitConfig;
  }
  setup_logging(config->log);
  if (run->parsed()) return run_daemon(std::move(*config));
  if (check->parsed()) return command_check(*config, online);
  // The client commands read the API's JSON with throwing accessors: whatever answers at --url
  // (a proxy's error page, another service) gets a message, not an abort.
  const char* command = sync_cmd->parsed()        ? "sync"
                        : status->parsed()        ? "status"
                        : lease_release->parsed() ? "lease release"
                                                  : "history";
  try {
    if (sync_cmd->parsed()) {
      auto wait = parse_duration(wait_text);
      if (!wait) {
        std::cerr << "nicsyncd sync --wait: " << wait.error().message << "\n";
        return kExitUsage;
      }
      sync.wait = *wait;
      return command_sync(*config, sync);
    }
    if (status->parsed()) return command_status(*config, url, token_file);
    if (history->parsed()) return command_history(*config, gstin, limit, url);
    if (lease_release->parsed()) return command_lease_release(*config, url, token_file);
  } catch (const std::exception& e) {
    std::cerr << "nicsyncd " << command << ": the API answered with something nicsyncd does not send (" << e.what()
              << "); is the URL that of nicsyncd's API?\n";
    return kExitFailure;
  }
  return kExitUsage;
}

}  // namespace nicsync::app
