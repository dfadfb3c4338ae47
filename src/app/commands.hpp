#pragma once
// The operator subcommands of `nicsyncd` (see cli.cpp for their options).

#include <chrono>
#include <string>
#include <vector>

#include "nicsync/app/config.hpp"

namespace nicsync::app {

struct SyncOptions {
  std::vector<std::string> gstins;
  bool force = false;
  bool dry_run = false;
  bool standalone = false;
  std::string url;
  std::string token_file;
  std::chrono::milliseconds wait{60'000};
};

int command_check(const Config& config, bool online);
int command_sync(const Config& config, const SyncOptions& options);
int command_status(const Config& config, const std::string& url, const std::string& token_file);
/// Asks the leader at `url` to give its lease back, so that another replica takes over.
int command_lease_release(const Config& config, const std::string& url, const std::string& token_file);
int command_history(const Config& config, const std::string& gstin, std::size_t limit, const std::string& url);

}  // namespace nicsync::app
