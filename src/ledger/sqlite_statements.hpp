#pragma once
// The ledger's prepared statements, and how pair and history records map to their parameters
// and rows. Used by the writer thread only.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ledger/sqlite_db.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger::detail {

struct Statements {
  // Transactions: one per batch, a savepoint per job so that a job's bad data fails it alone.
  Stmt begin, commit, rollback, savepoint, release, rollback_to;
  Stmt upsert_pair, insert_history, delete_pair, trim_chunk, history_all, history_gstin, load_all;
  Stmt upsert_sealed, select_sealed;

  /// Prepares every statement on `db` (once, after the schema is current).
  Result<void> prepare(const Database& db);
  /// Finalizes every statement (before the connection closes).
  void finalize();

  /// Inserts or replaces the pair; SQLITE_OK or the error.
  int write_pair(const PairRecord& r);
  /// Appends to the history; SQLITE_OK or the error.
  int append_history(const HistoryEntry& h);
  /// Deletes the pair; SQLITE_OK or the error.
  int remove_pair(std::string_view destination, std::string_view gstin);
  /// Deletes up to `limit` history entries older than `cutoff_ns`, oldest first; SQLITE_OK or
  /// the error (`sqlite3_changes64` tells how many went).
  int trim_history(std::int64_t cutoff_ns, std::int64_t limit);

  /// Stores a sealed blob under `name`; SQLITE_OK or the error.
  int write_sealed(std::string_view name, std::string_view sealed);
  /// The sealed blob under `name`, if any.
  Result<std::optional<std::string>> read_sealed(const Database& db, std::string_view name);

  /// The newest `limit` history entries, of one GSTIN or (empty) of all.
  Result<std::vector<HistoryEntry>> read_history(const Database& db, std::string_view gstin, std::size_t limit);
  /// Every pair, ordered by destination and GSTIN.
  Result<std::vector<PairRecord>> read_pairs(const Database& db);
};

}  // namespace nicsync::ledger::detail
