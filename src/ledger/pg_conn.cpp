// libpq connections for the PostgreSQL ledger: connecting with a deadline and the checks that
// follow, waiting on the socket, the text encoding of the `text` columns, and the server's
// failures as project errors with advice. No text of a connection string reaches a message.
#include "ledger/pg_conn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "nicsync/core/text.hpp"

namespace nicsync::ledger::detail {
namespace {

constexpr std::string_view kMarker = "\xEF\xBF\xBF";  // U+FFFF

bool contains(std::string_view haystack, std::string_view needle) noexcept {
  return haystack.find(needle) != std::string_view::npos;
}

// Valid UTF-8 without NUL, as PostgreSQL's UTF8 encoding accepts it (no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool fits_text_column(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  const auto cont = [&](std::size_t at, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return at < n && p[at] >= lo && p[at] <= hi;
  };
  while (i < n) {
    const unsigned char c = p[i];
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!cont(i + 1)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2)) return false;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2) || !cont(i + 3)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

// A connection string copied for libpq's C strings: it may hold a password, so it is wiped
// when it goes.
struct WipedCopy {
  explicit WipedCopy(std::string_view s) : text(s) {}
  ~WipedCopy() { secure_wipe(text); }
  WipedCopy(const WipedCopy&) = delete;
  WipedCopy& operator=(const WipedCopy&) = delete;
  std::string text;
};

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// What a failed connection attempt's message says, as the SQLSTATE the server sent with it
// (libpq keeps no SQLSTATE for a connection that failed). Server messages are in English
// unless the server's lc_messages says otherwise; the fallback is "connection lost".
std::string_view state_of_connect_message(std::string_view m) noexcept {
  if (contains(m, "password authentication failed") || contains(m, "password is required")) return "28P01";
  if (contains(m, "no pg_hba.conf entry") || contains(m, "authentication failed") || contains(m, "role \"")) {
    return "28000";
  }
  if (contains(m, "database \"") && contains(m, "does not exist")) return "3D000";
  if (contains(m, "too many clients") || contains(m, "remaining connection slots")) return "53300";
  if (contains(m, "starting up") || contains(m, "shutting down") || contains(m, "recovery mode")) return "57P03";
  return "";
}

}  // namespace

std::string_view sqlstate(const PGresult* r) noexcept {
  if (r == nullptr) return {};
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s == nullptr ? std::string_view() : std::string_view(s);
}

PgFault fault_of(std::string_view state) noexcept {
  if (state.empty() || state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "25006" || state.starts_with("28") || state == "3D000" || state == "53300") {
    return PgFault::connection;
  }
  if (state.starts_with("22") || state.starts_with("23")) return PgFault::data;
  return PgFault::statement;
}

std::string flat_message(std::string_view message, std::string_view password) {
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  // libpq does not echo passwords; a short one would blot out letters of every word.
  if (password.size() >= 3) {
    for (auto pos = out.find(password); pos != std::string::npos; pos = out.find(password, pos + 3)) {
      out.replace(pos, password.size(), "***");
    }
  }
  return out;
}

PgTarget target_of(PGconn* conn, std::string_view schema) {
  PgTarget t;
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  const char* user = PQuser(conn);
  t.role = user != nullptr ? user : "";
  t.schema = std::string(schema);
  t.where = fmt::format("PostgreSQL at {}:{}, database {}, role {}", host != nullptr ? host : "?",
                        port != nullptr ? port : "?", db != nullptr ? db : "?", t.role);
  return t;
}

Error pg_error(std::string_view state, std::string_view message, const PgTarget& target, std::string_view what,
               std::string_view password) {
  const std::string msg = flat_message(message, password);
  const std::string& role = target.role.empty() ? std::string("the daemon's role") : target.role;
  const auto io = [&](std::string advice) {
    return Error(Errc::ledger_io, fmt::format("cannot {} the ledger ({}, schema {}): {}; {}", what, target.where,
                                              target.schema, msg, advice));
  };
  if (state == kFencedState) {
    return Error(Errc::ledger_fenced,
                 fmt::format("cannot {} the ledger ({}): this replica's leader lease is no longer the current one "
                             "(another replica took over, or the lease ran out before it was renewed); it stays a "
                             "standby until it wins the lease again",
                             what, target.where));
  }
  if (state == "53100") {
    return Error(Errc::ledger_full,
                 fmt::format("cannot {} the ledger ({}): {}; the database server's disk is full: free space on it "
                             "(or grow its volume) and deliveries resume by themselves",
                             what, target.where, msg));
  }
  if (state == "28P01") {
    return io(
        fmt::format("put role {}'s current password in the file [ledger] url_file names (or in PGPASSFILE); "
                    "nicsyncd tries again by itself",
                    role));
  }
  if (state.starts_with("28")) {
    return io(
        fmt::format("let role {} log in from this host (pg_hba.conf, and the role must have LOGIN), or fix "
                    "the user in [ledger] url",
                    role));
  }
  if (state == "3D000") return io("create the database (CREATE DATABASE … OWNER …) or fix dbname in [ledger] url");
  if (state == "42501") {
    return io(
        fmt::format("role {0} lacks a privilege: GRANT USAGE, CREATE ON SCHEMA {1} TO {0}; GRANT SELECT, "
                    "INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {1} TO {0} (or make {0} the schema's "
                    "owner); nicsyncd tries again by itself",
                    role, target.schema));
  }
  if (state == "25006") {
    return io(
        "the server is read-only: point [ledger] url at the primary, not a hot standby (with several hosts, "
        "add target_session_attrs=read-write); nicsyncd reconnects by itself");
  }
  if (state == "53300" || state == "53400") {
    return io("the server has no free connection slot: raise its max_connections or the role's CONNECTION LIMIT");
  }
  if (state == "42P01" || state == "42703" || state == "42883") {
    return io(
        fmt::format("the ledger's tables in schema {} are missing or were changed by hand: restore them from a "
                    "backup (or drop the schema and restart nicsyncd: every credential is then pushed once "
                    "more)",
                    target.schema));
  }
  if (state == "57014") {
    return io(
        fmt::format("a statement was cancelled: raise statement_timeout for role {} (or cancel no backend of "
                    "nicsyncd)",
                    role));
  }
  if (state.empty() || state.starts_with("08") || state.starts_with("57P")) {
    return io(
        "check that the server is up and that [ledger] url (or the PG* variables) point at it; nicsyncd "
        "reconnects by itself");
  }
  return io(fmt::format("SQLSTATE {}: see the server's log; nicsyncd retries by itself", state));
}

Error result_error(PGconn* conn, const PGresult* r, const PgTarget& target, std::string_view what,
                   std::string_view password) {
  if (r != nullptr && PQresultStatus(r) == PGRES_FATAL_ERROR && !sqlstate(r).empty()) {
    return pg_error(sqlstate(r), PQresultErrorMessage(r), target, what, password);
  }
  const char* m = r != nullptr ? PQresultErrorMessage(r) : "";
  if (m == nullptr || *m == '\0') m = PQerrorMessage(conn);
  if (m == nullptr || *m == '\0') m = "the connection was lost";
  return pg_error("", m, target, what, password);
}

std::optional<Secret> password_of(std::string_view conninfo) {
  if (conninfo.empty()) return std::nullopt;
  const WipedCopy copy(conninfo);
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(copy.text.c_str(), &err);
  PQfreemem(err);
  if (options == nullptr) return std::nullopt;
  std::optional<Secret> out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string_view(o->keyword) == "password") {
      out = Secret(o->val);
      secure_wipe(o->val, std::char_traits<char>::length(o->val));
    }
  }
  PQconninfoFree(options);
  return out;
}

Result<Secret> read_conninfo_file(const std::string& path) {
  constexpr std::size_t kMaxBytes = 8192;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::ledger_io, fmt::format("cannot read [ledger] url_file {}: {}; make it readable by the daemon's "
                                              "user (or give systemd LoadCredential= for it)",
                                              path, std::error_code(errno, std::generic_category()).message()));
  }
  std::string text(kMaxBytes + 1, '\0');
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got == text.size()) break;
  }
  ::close(fd);
  text.resize(got);
  if (got > kMaxBytes) {
    secure_wipe(text);
    return Error(Errc::ledger_io,
                 fmt::format("[ledger] url_file {} is larger than 8 KiB; is it the right file?", path));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.empty()) {
    return Error(Errc::ledger_io, fmt::format("[ledger] url_file {} is empty: write the connection string into it "
                                              "(e.g. host=db1 dbname=nicsync user=nicsync password=…)",
                                              path));
  }
  return Secret::take(text);
}

bool wait_socket(PGconn* conn, bool for_write, Deadline deadline) {
  const int fd = PQsocket(conn);
  if (fd < 0) return false;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd p{fd, static_cast<short>(POLLIN | (for_write ? POLLOUT : 0)), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

std::variant<Connected, ConnectFailure> connect(std::string_view conninfo, std::string_view schema, Deadline deadline) {
  const WipedCopy copy(conninfo);
  const std::string& text = copy.text;
  std::vector<const char*> keys;
  std::vector<const char*> values;
  if (!text.empty()) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(text.c_str(), &err);
    if (parsed == nullptr) {
      // libpq's reason may quote the text around the fault, which may be the password.
      const bool may_hold_secret = contains(text, "password") || contains(text, "@");
      std::string why = err != nullptr && !may_hold_secret ? flat_message(err, "") : std::string();
      PQfreemem(err);
      return ConnectFailure{
          Error(Errc::config_invalid, fmt::format("[ledger] url is not a libpq connection string{}: write key=value "
                                                  "pairs (host=… dbname=… user=…) or a postgresql:// URI",
                                                  why.empty() ? "" : " (" + why + ")")),
          false};
    }
    PQconninfoFree(parsed);
    keys.push_back("dbname");
    values.push_back(text.c_str());
  }
  // After the string: these win over what it says (the ledger's text is UTF-8).
  keys.push_back("client_encoding");
  values.push_back("UTF8");
  keys.push_back("fallback_application_name");
  values.push_back("nicsyncd");
  keys.push_back(nullptr);
  values.push_back(nullptr);

  const Secret secret = password_of(text).value_or(Secret());
  const std::string_view password = secret.expose();
  PgConn conn(PQconnectStartParams(keys.data(), values.data(), 1));
  if (!conn) return ConnectFailure{Error(Errc::ledger_io, "cannot connect to PostgreSQL: out of memory"), true};
  // libpq knows the host, port, database and user it is trying (from the string, PG* variables
  // or its defaults) before it is connected.
  const PgTarget where = target_of(conn.get(), schema);
  auto failure = [&](std::string_view state, std::string_view message) {
    return ConnectFailure{pg_error(state, message, where, "connect to", password),
                          state.empty() || state == "57P03" || state == "53300"};
  };
  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  while (PQstatus(conn.get()) != CONNECTION_BAD) {
    if (poll == PGRES_POLLING_OK) break;
    if (poll == PGRES_POLLING_FAILED) break;
    if (!wait_socket(conn.get(), poll == PGRES_POLLING_WRITING, deadline)) {
      return failure("", "no answer in time (is a firewall dropping the packets?)");
    }
    poll = PQconnectPoll(conn.get());
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    const std::string m = PQerrorMessage(conn.get());
    return failure(state_of_connect_message(m), m);
  }
  PgTarget target = target_of(conn.get(), schema);
  auto refuse = [&](std::string_view state, std::string_view message) {
    return ConnectFailure{pg_error(state, message, target, "connect to", password), state == "25006"};
  };
  if (PQserverVersion(conn.get()) < 130000) {
    return ConnectFailure{
        Error(Errc::ledger_io, fmt::format("{} runs version {}; nicsyncd needs PostgreSQL 13 or "
                                           "newer: upgrade the server or use [ledger] backend = "
                                           "\"sqlite\"",
                                           target.where, PQparameterStatus(conn.get(), "server_version"))),
        false};
  }
  const char* encoding = PQparameterStatus(conn.get(), "server_encoding");
  if (encoding != nullptr && std::string_view(encoding) != "UTF8" && std::string_view(encoding) != "SQL_ASCII") {
    return ConnectFailure{Error(Errc::ledger_io, fmt::format("{} has database encoding {}; nicsyncd needs UTF8: "
                                                             "create the database with ENCODING 'UTF8'",
                                                             target.where, encoding)),
                          false};
  }
  const char* standby = PQparameterStatus(conn.get(), "in_hot_standby");
  const char* read_only = PQparameterStatus(conn.get(), "default_transaction_read_only");
  if ((standby != nullptr && std::string_view(standby) == "on") ||
      (read_only != nullptr && std::string_view(read_only) == "on")) {
    return refuse("25006", "the server accepts no writes");
  }
  // The contract: a write completes once durable. A role or database set to asynchronous
  // commit would break it silently.
  PgResult sync = exec(conn.get(), "SHOW synchronous_commit", {}, deadline);
  if (!ok(sync.get())) return refuse(sqlstate(sync.get()), PQerrorMessage(conn.get()));
  if (PQntuples(sync.get()) == 1 && std::string_view(PQgetvalue(sync.get(), 0, 0)) == "off") {
    PgResult set = exec(conn.get(), "SET synchronous_commit = on", {}, deadline);
    if (!ok(set.get())) return refuse(sqlstate(set.get()), PQerrorMessage(conn.get()));
  }
  return Connected{std::move(conn), std::move(target)};
}

PgResult exec(PGconn* conn, std::string_view sql, std::initializer_list<std::string_view> params, Deadline deadline) {
  const std::string text(sql);
  std::vector<std::string> owned(params.begin(), params.end());
  std::vector<const char*> values;
  for (const auto& p : owned) values.push_back(p.c_str());
  const int sent = owned.empty() ? PQsendQuery(conn, text.c_str())
                                 : PQsendQueryParams(conn, text.c_str(), static_cast<int>(values.size()), nullptr,
                                                     values.data(), nullptr, nullptr, 0);
  if (sent == 0) return nullptr;
  while (PQflush(conn) == 1) {
    if (!wait_socket(conn, true, deadline) || PQconsumeInput(conn) == 0) return nullptr;
  }
  PgResult last;
  for (;;) {
    while (PQisBusy(conn) != 0) {
      if (!wait_socket(conn, false, deadline) || PQconsumeInput(conn) == 0) return nullptr;
    }
    PgResult r(PQgetResult(conn));
    if (!r) break;
    // The first failure is the one to report; later results are the rest of a script.
    if (!last || ok(last.get())) last = std::move(r);
  }
  return last;
}

bool ok(const PGresult* r) noexcept {
  if (r == nullptr) return false;
  const auto s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

std::string encode_text(std::string_view s) {
  if (fits_text_column(s) && !s.starts_with(kMarker)) return std::string(s);
  std::string out(kMarker);
  out += to_hex(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return out;
}

std::string decode_text(std::string_view stored) {
  if (!stored.starts_with(kMarker)) return std::string(stored);
  const std::string_view hex = stored.substr(kMarker.size());
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0 || hex.size() % 2 != 0) return std::string(stored);  // not ours: as it is
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::string qualified(std::string_view schema, std::string_view table) {
  return fmt::format("\"{}\".{}", schema, table);
}

}  // namespace nicsync::ledger::detail

namespace nicsync::ledger {

std::string describe_conninfo(std::string_view conninfo) {
  if (conninfo.empty()) return "the server the PG* environment variables name";
  const detail::WipedCopy copy(conninfo);
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(copy.text.c_str(), &err);
  PQfreemem(err);
  if (options == nullptr) return "(a connection string libpq cannot parse)";
  // In an order that reads well, whatever the order of the string.
  constexpr std::string_view kShown[] = {"host", "hostaddr", "port",    "dbname",
                                         "user", "service",  "sslmode", "target_session_attrs"};
  std::string values[std::size(kShown)];
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    const std::string_view key = o->keyword;
    if (o->val == nullptr || *o->val == '\0') continue;
    for (std::size_t i = 0; i < std::size(kShown); ++i) {
      if (key == kShown[i]) values[i] = o->val;
    }
    if (key == "password") secure_wipe(o->val, std::char_traits<char>::length(o->val));
  }
  PQconninfoFree(options);
  std::string out;
  for (std::size_t i = 0; i < std::size(kShown); ++i) {
    if (!values[i].empty()) out += fmt::format("{}{}={}", out.empty() ? "" : " ", kShown[i], values[i]);
  }
  return out.empty() ? std::string("the server the PG* environment variables name") : out;
}

bool conninfo_has_password(std::string_view conninfo) {
  if (conninfo.empty()) return false;
  if (detail::password_of(conninfo)) return true;
  // Unparsable text that may hold one counts as holding one.
  const detail::WipedCopy copy(conninfo);
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(copy.text.c_str(), &err);
  PQfreemem(err);
  if (options != nullptr) {
    PQconninfoFree(options);
    return false;
  }
  return detail::contains(conninfo, "password") || detail::contains(conninfo, "@");
}

bool valid_schema_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63) return false;
  if (name.starts_with("pg_") || name == "information_schema") return false;
  if (!(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z'))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

}  // namespace nicsync::ledger
