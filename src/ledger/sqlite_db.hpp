#pragma once
// Thin RAII over SQLite's C API (a connection, a prepared statement) and how SQLite's failures
// become project errors that tell the operator what to do.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "nicsync/core/error.hpp"
#include "nicsync/ledger/store.hpp"

#include <sqlite3.h>

namespace nicsync::ledger::detail {

/// A prepared statement. Binding records the first failure so that `run`/`step` report it.
class Stmt {
 public:
  Stmt() noexcept = default;
  explicit Stmt(sqlite3_stmt* s) noexcept : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)), bind_rc_(o.bind_rc_) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    std::swap(bind_rc_, o.bind_rc_);
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  void bind(int i, std::int64_t v) noexcept { note(sqlite3_bind_int64(s_, i, v)); }
  void bind(int i, bool v) noexcept { bind(i, static_cast<std::int64_t>(v ? 1 : 0)); }
  void bind(int i, std::string_view v) noexcept {
    // A null data pointer would bind NULL; an empty string must stay an empty string. The
    // bound text must outlive the step (it does: it belongs to the job being run).
    note(sqlite3_bind_text64(s_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void bind_blob(int i, std::string_view v) noexcept {
    // Never a null pointer: that would bind NULL instead of an empty blob.
    note(sqlite3_bind_blob64(s_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC));
  }
  void bind_null(int i) noexcept { note(sqlite3_bind_null(s_, i)); }

  /// Steps once; SQLITE_ROW, SQLITE_DONE or an error (including a failed bind).
  int step() noexcept { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }
  /// Runs a statement that returns no rows; SQLITE_OK or the error. Resets it.
  int run() noexcept {
    int rc = step();
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
    reset();
    return rc;
  }
  void reset() noexcept {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    bind_rc_ = SQLITE_OK;
  }

  [[nodiscard]] bool is_null(int col) const noexcept { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
  }
  [[nodiscard]] std::string blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
  }
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  void note(int rc) noexcept {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

/// Resets a statement when a scope that reads rows ends (an unreset SELECT keeps a read
/// transaction open and would pin the WAL).
struct ResetOnExit {
  Stmt& s;
  ~ResetOnExit() { s.reset(); }
};

/// The ledger's one connection and the file it is on (for messages).
struct Database {
  struct Closer {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };

  std::unique_ptr<sqlite3, Closer> handle;
  std::filesystem::path path;

  [[nodiscard]] sqlite3* get() const noexcept { return handle.get(); }
  /// The error for `rc`, saying what could not be done ("write", "open", …) to the ledger.
  [[nodiscard]] Error error(int rc, std::string_view what) const;
  /// Prepares `sql` (kept for reuse) into `s`; SQLITE_OK or the error.
  int prepare(Stmt& s, const char* sql) const;
};

inline std::int64_t to_ns(SystemTime t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline SystemTime from_ns(std::int64_t ns) noexcept {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(ns)));
}

/// The system's words for an errno value.
std::string errno_text(int err);

/// Errors that concern one statement's data; the transaction and the other writes go on.
bool is_data_error(int rc) noexcept;

}  // namespace nicsync::ledger::detail
