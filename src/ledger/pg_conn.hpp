#pragma once
// Thin RAII over libpq (a connection, a result), establishing a connection with a deadline,
// and how the server's failures become project errors that tell the operator what to do.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "nicsync/core/error.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/postgres_store.hpp"

#include <libpq-fe.h>

namespace nicsync::ledger::detail {

struct PgResultFree {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

struct PgConnFinish {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnFinish>;

using Deadline = std::chrono::steady_clock::time_point;

/// The SQLSTATE the ledger's fence function raises when the writer's lease epoch is not the
/// current one (a class of nicsync's own).
inline constexpr std::string_view kFencedState = "NSF01";

/// The SQLSTATE of a failed result ("" when there is none, e.g. the connection broke).
std::string_view sqlstate(const PGresult* r) noexcept;

/// What a failure means for the connection.
enum class PgFault {
  data,        ///< one statement's data is at fault (class 22, 23): the others may go on
  statement,   ///< the transaction failed; the connection is fine (disk full, grants, ...)
  connection,  ///< the connection is lost or useless (read-only, login): reconnect
};

/// Where the store is connected, for messages ("host:port/db as user, schema s").
struct PgTarget {
  std::string where;  ///< "PostgreSQL at db1:5432, database nicsync, role nicsync"
  std::string role;
  std::string schema;
};

/// The target of a live connection.
PgTarget target_of(PGconn* conn, std::string_view schema);

/// A failure as a project error with advice, from a server's SQLSTATE and message (or libpq's
/// own message when there is no SQLSTATE). `what` says what could not be done ("write to",
/// "connect to"). `password` is scrubbed from every text that goes into the message.
Error pg_error(std::string_view state, std::string_view message, const PgTarget& target, std::string_view what,
               std::string_view password);
/// How a failure with this SQLSTATE affects the connection (`state` empty: connection lost).
PgFault fault_of(std::string_view state) noexcept;

/// The failure of result `r` (or of the connection when `r` is null).
Error result_error(PGconn* conn, const PGresult* r, const PgTarget& target, std::string_view what,
                   std::string_view password);

/// libpq's message, flattened onto one line with the password (if any) removed.
std::string flat_message(std::string_view message, std::string_view password);

/// A connection string's password (from `password=` or the URI's user info), if it has one;
/// nothing if it cannot be parsed.
std::optional<Secret> password_of(std::string_view conninfo);

/// The connection string in `path` ([ledger] url_file), without the line break at its end.
/// Errors (`ledger_io`) say what is wrong with the file, never what is in it.
Result<Secret> read_conninfo_file(const std::string& path);

/// Opens a connection with libpq's non-blocking connect, giving up at `deadline`. On failure
/// the error says what to do; `transient` tells whether waiting may help (refused, starting up).
struct Connected {
  PgConn conn;
  PgTarget target;
};
struct ConnectFailure {
  Error error;
  bool transient = false;
};
std::variant<Connected, ConnectFailure> connect(std::string_view conninfo, std::string_view schema, Deadline deadline);

/// Waits until the connection's socket is readable (or also writable), or the deadline passes.
/// False on timeout or a poll error.
bool wait_socket(PGconn* conn, bool for_write, Deadline deadline);

/// Runs one statement outside a pipeline (start-up, migrations, checks) with text parameters.
PgResult exec(PGconn* conn, std::string_view sql, std::initializer_list<std::string_view> params = {},
              Deadline deadline = Deadline::max());

/// Whether `r` succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK).
bool ok(const PGresult* r) noexcept;

/// Text kept in PostgreSQL `text` columns: a value a `text` column cannot hold (a NUL byte,
/// bytes that are not UTF-8) or one that starts with the marker U+FFFF (a noncharacter no
/// real text holds) is stored as the marker followed by its bytes in hex; everything else as
/// it is, so that operators read plain text in psql.
std::string encode_text(std::string_view s);
std::string decode_text(std::string_view stored);

/// `"schema"."table"`, quoted for SQL (the schema is a validated plain identifier).
std::string qualified(std::string_view schema, std::string_view table);

}  // namespace nicsync::ledger::detail
