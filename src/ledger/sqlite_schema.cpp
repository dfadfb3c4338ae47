// Opening the ledger: the file is created 0600 before SQLite touches it, the connection runs in
// WAL mode with synchronous=FULL, a quick check finds a damaged file at start-up, and migrations
// bring an older schema up to the one this binary writes.
#include "ledger/sqlite_schema.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <sys/stat.h>

namespace nicsync::ledger::detail {
namespace {

// 'NCSY' in PRAGMA application_id marks the file as a nicsync ledger.
constexpr std::int32_t kApplicationId = 0x4E435359;
// The WAL is truncated back to this size after a checkpoint.
constexpr std::int64_t kJournalSizeLimit = 16 << 20;

// Schema and migrations. A migration takes the database from version N-1 to N inside one
// transaction; the runner applies those above the file's user_version in order. To change the
// schema: add migrate_to_vN, append it to kMigrations and raise SqliteStore::kSchemaVersion.

using Migration = int (*)(sqlite3* db);

int migrate_to_v1(sqlite3* db) {
  static constexpr const char* kSql = R"sql(
    CREATE TABLE pairs (
      destination          TEXT    NOT NULL,
      gstin                TEXT    NOT NULL,
      vault_path           TEXT    NOT NULL,
      state                TEXT    NOT NULL,
      applied_version      INTEGER,
      applied_lineage      TEXT,
      applied_fingerprint  TEXT,
      applied_at_ns        INTEGER NOT NULL,
      pending_version      INTEGER,
      pending_lineage      TEXT,
      pending_fingerprint  TEXT,
      push_in_flight       INTEGER NOT NULL,
      attempts             INTEGER NOT NULL,
      first_attempt_at_ns  INTEGER NOT NULL,
      next_attempt_at_ns   INTEGER NOT NULL,
      last_error_class     TEXT    NOT NULL,
      last_error_code      TEXT    NOT NULL,
      last_error_provider  TEXT    NOT NULL,
      last_error_message   TEXT    NOT NULL,
      updated_at_ns        INTEGER NOT NULL,
      PRIMARY KEY (destination, gstin)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE history (
      id              INTEGER PRIMARY KEY,
      at_ns           INTEGER NOT NULL,
      destination     TEXT    NOT NULL,
      gstin           TEXT    NOT NULL,
      version         INTEGER NOT NULL,
      lineage         TEXT    NOT NULL,
      outcome         TEXT    NOT NULL,
      attempt         INTEGER NOT NULL,
      error_class     TEXT    NOT NULL,
      error_code      TEXT    NOT NULL,
      error_provider  TEXT    NOT NULL,
      message         TEXT    NOT NULL,
      duration_ms     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX history_by_gstin ON history (gstin, at_ns);
    CREATE INDEX history_by_time ON history (at_ns);
    CREATE TRIGGER history_append_only BEFORE UPDATE ON history
      BEGIN SELECT RAISE(ABORT, 'the history is append-only'); END;
  )sql";
  return sqlite3_exec(db, kSql, nullptr, nullptr, nullptr);
}

// v2: sealed blobs (the caller's encrypted values, e.g. a destination's cached access token).
int migrate_to_v2(sqlite3* db) {
  static constexpr const char* kSql = R"sql(
    CREATE TABLE sealed (
      name   TEXT NOT NULL PRIMARY KEY,
      value  BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;
  )sql";
  return sqlite3_exec(db, kSql, nullptr, nullptr, nullptr);
}

constexpr Migration kMigrations[] = {&migrate_to_v1, &migrate_to_v2};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion, "one migration per schema version");

Result<void> tighten_mode(const std::filesystem::path& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  if (create) flags |= O_CREAT;
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (!create && errno == ENOENT) return {};
    return Error(Errc::ledger_io, fmt::format("cannot open ledger file {}: {}; check its ownership and permissions",
                                              path.string(), errno_text(errno)));
  }
  struct stat st {};
  int rc = ::fstat(fd, &st);
  if (rc == 0 && (st.st_mode & 07777) != 0600) rc = ::fchmod(fd, 0600);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Error(Errc::ledger_io,
                 fmt::format("cannot make ledger file {} private (mode 0600): {}", path.string(), errno_text(err)));
  }
  return {};
}

Result<std::int64_t> pragma_int(Database& db, const char* sql) {
  Stmt s;
  if (const int rc = db.prepare(s, sql); rc != SQLITE_OK) return db.error(rc, "read");
  const int rc = s.step();
  if (rc == SQLITE_ROW) return s.int64(0);
  if (rc == SQLITE_DONE) return 0;
  return db.error(rc, "read");
}

Result<std::string> pragma_text(Database& db, const char* sql) {
  Stmt s;
  if (const int rc = db.prepare(s, sql); rc != SQLITE_OK) return db.error(rc, "read");
  const int rc = s.step();
  if (rc == SQLITE_ROW) return s.text(0);
  if (rc == SQLITE_DONE) return std::string();
  return db.error(rc, "read");
}

Result<void> exec(Database& db, const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db.error(rc, what);
  return {};
}

Result<void> quick_check(Database& db) {
  Stmt s;
  if (const int rc = db.prepare(s, "PRAGMA quick_check(5)"); rc != SQLITE_OK) return db.error(rc, "check");
  std::vector<std::string> problems;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) problems.push_back(s.text(0));
  if (rc != SQLITE_DONE) return db.error(rc, "check");
  if (problems.size() == 1 && problems.front() == "ok") return {};
  std::string listed;
  for (const auto& p : problems) listed += (listed.empty() ? "" : "; ") + p;
  return Error(Errc::ledger_corrupt,
               fmt::format("ledger {} failed its integrity check ({}); stop nicsyncd, move the file aside and "
                           "restore a backup (without a ledger every credential is pushed once more)",
                           db.path.string(), listed));
}

Result<void> migrate(Database& db) {
  auto app_id = pragma_int(db, "PRAGMA application_id");
  if (!app_id) return app_id.error();
  auto version = pragma_int(db, "PRAGMA user_version");
  if (!version) return version.error();
  const auto& path = db.path.string();
  if (*app_id != 0 && *app_id != kApplicationId) {
    return Error(Errc::ledger_schema,
                 fmt::format("{} is an SQLite database of another program (application_id {:#x}), not a nicsync "
                             "ledger; point state_dir elsewhere",
                             path, *app_id));
  }
  if (*version > SqliteStore::kSchemaVersion) {
    return Error(Errc::ledger_schema,
                 fmt::format("ledger {} has schema version {}, but this nicsyncd understands up to version {}: it "
                             "was written by a newer nicsyncd; run that version (or restore a backup made before "
                             "the upgrade)",
                             path, *version, SqliteStore::kSchemaVersion));
  }
  if (*version == 0) {
    auto objects = pragma_int(db, "SELECT count(*) FROM sqlite_schema");
    if (!objects) return objects.error();
    if (*objects != 0) {
      return Error(Errc::ledger_schema,
                   fmt::format("{} holds tables but is not a nicsync ledger (no schema version); point state_dir "
                               "elsewhere",
                               path));
    }
  }
  for (auto v = *version; v < SqliteStore::kSchemaVersion; ++v) {
    if (auto r = exec(db, "BEGIN IMMEDIATE", "migrate"); !r) return r;
    int rc = kMigrations[v](db.get());
    if (rc == SQLITE_OK) {
      rc = sqlite3_exec(
          db.get(), fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId, v + 1).c_str(),
          nullptr, nullptr, nullptr);
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      Error e = db.error(rc, fmt::format("migrate to schema version {} of", v + 1));
      sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
  }
  return {};
}

}  // namespace

Result<void> open_database(Database& db, const SqliteStoreOptions& options) {
  const auto& path = db.path;
  // Create the file ourselves so that it is 0600 from the first byte: SQLite gives the -wal
  // and -shm files the mode of the database file.
  if (auto r = tighten_mode(path, true); !r) return r;
  // The file's name must outlive a power cut as much as the commits in it.
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    if (auto r = tighten_mode(path.string() + suffix, false); !r) return r;
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  db.handle.reset(raw);
  if (rc != SQLITE_OK) return db.error(rc, "open");
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), static_cast<int>(std::min<std::int64_t>(options.busy_timeout.count(), INT_MAX)));

  // A file that is not a database fails here, before anything is written to it.
  auto mode = pragma_text(db, "PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") {
    return Error(Errc::ledger_io, fmt::format("ledger {} cannot use write-ahead logging (journal mode stays '{}'); "
                                              "put the state directory on a local file system",
                                              path.string(), *mode));
  }
  // FULL: a commit is on disk (WAL fsynced) before write() completes.
  if (auto r =
          exec(db, "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA trusted_schema = OFF;", "configure");
      !r) {
    return r;
  }
  if (auto r = exec(db, fmt::format("PRAGMA journal_size_limit = {}", kJournalSizeLimit).c_str(), "configure"); !r) {
    return r;
  }
  if (options.max_size_bytes > 0) {
    auto page_size = pragma_int(db, "PRAGMA page_size");
    if (!page_size) return page_size.error();
    const std::int64_t pages =
        std::max<std::int64_t>(1, options.max_size_bytes / std::max<std::int64_t>(*page_size, 512));
    if (auto r = exec(db, fmt::format("PRAGMA max_page_count = {}", pages).c_str(), "configure"); !r) return r;
  }
  if (options.quick_check) {
    if (auto r = quick_check(db); !r) return r;
  }
  return migrate(db);
}

}  // namespace nicsync::ledger::detail
