#include "testing/postgres_server.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "testing/process.hpp"

#include <libpq-fe.h>

namespace nicsync::testing {
namespace {

using namespace std::chrono_literals;

// `nobody`: the server's user when the tests run as root.
constexpr unsigned kNobody = 65534;

struct ConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultFree {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

// The variables libpq and pg_ctl read: a developer's own must not steer the test server.
const std::vector<std::string> kPgVariables = {
    "PGHOST", "PGHOSTADDR", "PGPORT",    "PGDATABASE", "PGUSER", "PGPASSWORD",       "PGSERVICE",
    "PGDATA", "PGOPTIONS",  "PGSSLMODE", "PGPASSFILE", "PGTZ",   "PGCONNECT_TIMEOUT"};

}  // namespace

std::string PostgresServer::bin_dir() {
  if (const char* b = std::getenv("NICSYNC_PG_BIN"); b != nullptr && *b != '\0') return b;
  return "/usr/lib/postgresql/15/bin";
}

bool PostgresServer::available() {
  return ::access((bin_dir() + "/initdb").c_str(), X_OK) == 0 && ::access((bin_dir() + "/pg_ctl").c_str(), X_OK) == 0;
}

PostgresServer::PostgresServer(Options options) : options_(std::move(options)) {
  if (!available()) {
    throw std::runtime_error(
        fmt::format("PostgreSQL's server programs are not in {}: install postgresql-15 "
                    "(scripts/deps) or set NICSYNC_PG_BIN",
                    bin_dir()));
  }
  drop_privileges_ = ::geteuid() == 0;
  if (drop_privileges_ && ::chown(dir_.path().c_str(), kNobody, kNobody) != 0) {
    throw std::runtime_error("cannot give " + dir_.path().string() + " to nobody");
  }
  run({bin_dir() + "/initdb", "-D", dir_.file("data"), "-U", "postgres", "-E", "UTF8", "--no-locale",
       "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"});
  start();
}

PostgresServer::~PostgresServer() {
  if (running_) {
    try {
      stop("immediate");
    } catch (...) {  // NOLINT(bugprone-empty-catch): the directory goes anyway
    }
  }
}

void PostgresServer::run(std::vector<std::string> argv) const {
  std::vector<std::string> full;
  if (drop_privileges_) {
    full = {"/usr/bin/setpriv", fmt::format("--reuid={}", kNobody), fmt::format("--regid={}", kNobody),
            "--clear-groups", "--"};
  }
  full.insert(full.end(), argv.begin(), argv.end());
  Process p({.argv = full, .unset_env = kPgVariables, .cwd = dir_.path().string()});
  const auto code = p.wait(120s);
  if (code != 0) {
    throw std::runtime_error(fmt::format("{} failed ({}): {}\n{}", argv.front(),
                                         code ? std::to_string(*code) : "timeout", p.output(), log()));
  }
}

void PostgresServer::start() {
  if (port_ == 0) port_ = free_port();
  std::string settings = fmt::format("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", port_, socket_dir());
  for (const auto& s : options_.settings) settings += " -c " + s;
  run({bin_dir() + "/pg_ctl", "-D", dir_.file("data"), "-l", dir_.file("server.log"), "-w", "-t", "60", "-o", settings,
       "start"});
  running_ = true;
}

void PostgresServer::stop(const std::string& mode) {
  running_ = false;
  run({bin_dir() + "/pg_ctl", "-D", dir_.file("data"), "-m", mode, "-w", "-t", "60", "stop"});
}

void PostgresServer::restart(const std::string& mode) {
  stop(mode);
  start();
}

int PostgresServer::pid() const {
  if (!running_) return 0;
  // The first line of postmaster.pid.
  const auto text = read_file(dir_.file("data/postmaster.pid"));
  return std::atoi(text.c_str());
}

std::string PostgresServer::log() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_.file("server.log"), ec)) return {};
  return read_file(dir_.file("server.log"));
}

std::string PostgresServer::admin_conninfo(const std::string& database) const {
  return fmt::format("host={} port={} dbname={} user=postgres", socket_dir(), port_, database);
}

std::string PostgresServer::conninfo(const std::string& role, const std::string& database,
                                     const std::string& password) const {
  std::string out = fmt::format("host=127.0.0.1 port={} dbname={} user={}", port_, database, role);
  if (!password.empty()) out += " password=" + password;
  return out;
}

void PostgresServer::create_role_and_database(const std::string& role, const std::string& password) {
  sql(fmt::format("CREATE ROLE {} LOGIN PASSWORD '{}'", role, password));
  sql(fmt::format("CREATE DATABASE {} OWNER {}", role, role));
}

std::string PostgresServer::sql_error(const std::string& statement, const std::string& database) const {
  std::unique_ptr<PGconn, ConnCloser> c(PQconnectdb(admin_conninfo(database).c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) return PQerrorMessage(c.get());
  std::unique_ptr<PGresult, ResultFree> r(PQexec(c.get(), statement.c_str()));
  const auto s = PQresultStatus(r.get());
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) return PQresultErrorMessage(r.get());
  return {};
}

std::string PostgresServer::sql(const std::string& statement, const std::string& database) const {
  std::unique_ptr<PGconn, ConnCloser> c(PQconnectdb(admin_conninfo(database).c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error(fmt::format("cannot connect to the test server: {}", PQerrorMessage(c.get())));
  }
  std::unique_ptr<PGresult, ResultFree> r(PQexec(c.get(), statement.c_str()));
  const auto s = PQresultStatus(r.get());
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    throw std::runtime_error(fmt::format("{}: {}", statement, PQresultErrorMessage(r.get())));
  }
  std::string out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    for (int j = 0; j < PQnfields(r.get()); ++j) {
      out += PQgetisnull(r.get(), i, j) != 0 ? "NULL" : PQgetvalue(r.get(), i, j);
      out += j + 1 < PQnfields(r.get()) ? "|" : "\n";
    }
  }
  return out;
}

}  // namespace nicsync::testing
