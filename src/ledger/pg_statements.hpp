#pragma once
// The PostgreSQL ledger's SQL: the statements prepared on every connection, how a pair, a
// history entry or a sealed blob becomes their parameters, and how rows become records.
// Used by the writer thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/pg_conn.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger::detail {

/// Names of the prepared statements.
namespace pg_stmt {
inline constexpr const char* kUpsertPair = "nicsync_upsert_pair";
inline constexpr const char* kInsertHistory = "nicsync_insert_history";
inline constexpr const char* kDeletePair = "nicsync_delete_pair";
inline constexpr const char* kTrimChunk = "nicsync_trim_chunk";
inline constexpr const char* kHistoryAll = "nicsync_history_all";
inline constexpr const char* kHistoryGstin = "nicsync_history_gstin";
inline constexpr const char* kLoadAll = "nicsync_load_all";
inline constexpr const char* kUpsertSealed = "nicsync_upsert_sealed";
inline constexpr const char* kSelectSealed = "nicsync_select_sealed";
inline constexpr const char* kFence = "nicsync_fence";
}  // namespace pg_stmt

/// Parameters of one statement: text, NULL, or raw bytes (binary format, for bytea).
class PgParams {
 public:
  void text(std::string v);
  void integer(std::int64_t v);
  void boolean(bool v) { text(v ? "t" : "f"); }
  void null();
  void bytes(std::string v);

  /// Queues the prepared statement `name` with these parameters on a connection in pipeline
  /// mode; `binary_result` asks for the rows in binary. False if libpq refused (broken).
  bool send(PGconn* conn, const char* name, bool binary_result = false);
  void clear();

 private:
  std::vector<std::string> values_;
  std::vector<bool> is_null_;
  std::vector<int> formats_;
};

/// Prepares every statement on `conn` (not yet in pipeline mode).
Result<void> prepare_statements(PGconn* conn, const PgTarget& target, Deadline deadline);

/// The parameters of kUpsertPair for `r`.
void pair_params(const PairRecord& r, PgParams& p);
/// The parameters of kInsertHistory for `h`.
void history_params(const HistoryEntry& h, PgParams& p);

/// Rows of kHistoryAll / kHistoryGstin as entries.
Result<std::vector<HistoryEntry>> history_rows(const PGresult* r, const PgTarget& target);
/// Rows of kLoadAll as records.
Result<std::vector<PairRecord>> pair_rows(const PGresult* r, const PgTarget& target);

}  // namespace nicsync::ledger::detail
