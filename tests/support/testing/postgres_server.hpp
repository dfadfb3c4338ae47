#pragma once
// A real PostgreSQL server for tests: Debian's PostgreSQL 15 (initdb and pg_ctl from
// /usr/lib/postgresql/15/bin, or $NICSYNC_PG_BIN), a cluster of its own in a temporary
// directory, on a free port of 127.0.0.1 with its socket in that directory and fsync on. The
// server refuses to run as root: under root (CI) it runs as `nobody`, who is given the
// directory. The superuser `postgres` logs in over the socket without a password; roles the
// tests create log in over TCP with theirs (SCRAM).

#include <cstdint>
#include <string>
#include <vector>

#include "testing/temp_dir.hpp"

namespace nicsync::testing {

class PostgresServer {
 public:
  struct Options {
    /// Extra settings, each "name=value" (passed as -c to the server).
    std::vector<std::string> settings;
  };

  /// Whether the server's programs are installed (scripts/deps installs postgresql-15).
  static bool available();
  /// The directory of initdb, pg_ctl and postgres.
  static std::string bin_dir();

  PostgresServer() : PostgresServer(Options{}) {}
  /// Creates the cluster and starts the server; throws std::runtime_error (with the server's
  /// log) when it cannot.
  explicit PostgresServer(Options options);
  /// Stops the server at once and removes the cluster.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string socket_dir() const { return dir_.path().string(); }
  [[nodiscard]] const TempDir& dir() const noexcept { return dir_; }

  /// A connection string for the superuser over the socket.
  [[nodiscard]] std::string admin_conninfo(const std::string& database = "postgres") const;
  /// A connection string for `role` over TCP, with `password` in it when not empty.
  [[nodiscard]] std::string conninfo(const std::string& role, const std::string& database,
                                     const std::string& password = {}) const;

  /// Creates a role that may log in with `password`, and a database of the same name that it
  /// owns. Returns nothing; use `conninfo(role, role, password)`.
  void create_role_and_database(const std::string& role, const std::string& password);

  /// Runs `statement` (one or more, separated by ';') as the superuser; throws on an error.
  /// Returns the rows of the last result, columns joined by '|', one line each.
  std::string sql(const std::string& statement, const std::string& database = "postgres") const;
  /// Like `sql`, but returns the error message instead of throwing ("" on success).
  std::string sql_error(const std::string& statement, const std::string& database = "postgres") const;

  /// `pg_ctl stop` in `mode` ("fast": clients are disconnected and the server stops cleanly;
  /// "immediate": like a crash, recovered from the WAL at the next start).
  void stop(const std::string& mode = "fast");
  void start();
  /// stop(mode), then start().
  void restart(const std::string& mode = "fast");
  [[nodiscard]] bool running() const noexcept { return running_; }
  /// The postmaster's process id (0 when it is not running).
  [[nodiscard]] int pid() const;
  /// The server's log so far (for failure messages).
  [[nodiscard]] std::string log() const;

 private:
  /// Runs a program of the server as the server's user; throws with its output on failure.
  void run(std::vector<std::string> argv) const;

  Options options_;
  TempDir dir_{"nicsync-pg"};
  std::uint16_t port_ = 0;
  bool running_ = false;
  bool drop_privileges_ = false;
};

}  // namespace nicsync::testing
