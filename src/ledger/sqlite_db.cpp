// SQLite failures as project errors: a full disk, a damaged file and the rest each get the
// code the engine acts on and advice for the operator.
#include "ledger/sqlite_db.hpp"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

namespace nicsync::ledger::detail {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

bool is_data_error(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return true;
    default: return false;
  }
}

namespace {

// The project error for a SQLite failure, with what the operator should do about it.
Error sqlite_error(sqlite3* db, int rc, std::string_view what, const std::filesystem::path& path) {
  const std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int sys = db != nullptr ? sqlite3_system_errno(db) : 0;
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT) {
    return Error(Errc::ledger_full,
                 fmt::format("cannot {} ledger {}: {}; the disk (or the ledger's size limit) is full: free space "
                             "and deliveries resume by themselves",
                             what, path.string(), detail));
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Error(Errc::ledger_corrupt,
                 fmt::format("cannot {} ledger {}: {}; the file is damaged: stop nicsyncd, move it aside and restore "
                             "a backup (without a ledger every credential is pushed once more)",
                             what, path.string(), detail));
  }
  std::string advice = "check the disk and the file's ownership and permissions";
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    advice = "another program holds a lock on it; close it (e.g. an sqlite3 shell)";
  }
  return Error(Errc::ledger_io, fmt::format("cannot {} ledger {}: {}{}; {}", what, path.string(), detail,
                                            sys != 0 ? fmt::format(" ({})", errno_text(sys)) : std::string(), advice));
}

}  // namespace

Error Database::error(int rc, std::string_view what) const { return sqlite_error(handle.get(), rc, what, path); }

int Database::prepare(Stmt& s, const char* sql) const {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(handle.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  s = Stmt(raw);
  return rc;
}

}  // namespace nicsync::ledger::detail
