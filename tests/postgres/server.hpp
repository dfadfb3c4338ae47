#pragma once
// The postgres tests' server: one per test process (ctest runs each test in a process of its
// own), with a role and database "nicsync" that logs in over TCP with a password, and a fresh
// schema for each store a test opens.

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "nicsync/ledger/postgres_store.hpp"
#include "testing/postgres_server.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::testing {

inline constexpr const char* kRole = "nicsync";
inline constexpr const char* kRolePassword = "Role-Pw-7d2f9c1e";

/// The process's server, started on first use.
inline PostgresServer& shared_server() {
  static std::unique_ptr<PostgresServer> server = [] {
    auto s = std::make_unique<PostgresServer>();
    s->create_role_and_database(kRole, kRolePassword);
    return s;
  }();
  return *server;
}

/// A schema name no other store of this process uses.
inline std::string fresh_schema() {
  static std::atomic<int> next{0};
  return fmt::format("t{}_{}", ::getpid(), next++);
}

/// Writes the role's connection string (with its password) to a 0600 file in `dir`; returns
/// the file's path.
inline std::string write_url_file(const TempDir& dir, const PostgresServer& server,
                                  const std::string& password = kRolePassword, const std::string& name = "ledger-url") {
  const auto path = dir.file(name);
  write_file(path, server.conninfo(kRole, kRole, password) + "\n");
  return path;
}

/// Options for a store of the role on `schema`, with quick reconnection for tests.
inline ledger::PostgresStoreOptions store_options(const std::string& url_file, const std::string& schema) {
  ledger::PostgresStoreOptions o;
  o.conninfo_file = url_file;
  o.schema = schema;
  o.reconnect_min = std::chrono::milliseconds(100);
  o.reconnect_max = std::chrono::milliseconds(1000);
  o.open_wait = std::chrono::milliseconds(5000);
  return o;
}

}  // namespace nicsync::testing
