// The PostgreSQL ledger's statements, their parameters and the rows read back. Text goes
// through encode_text/decode_text (pg_conn.hpp) so that any bytes survive a `text` column;
// times are nanoseconds since the epoch, as in the SQLite ledger.
#include "ledger/pg_statements.hpp"

#include <charconv>
#include <utility>

#include <fmt/format.h>

namespace nicsync::ledger::detail {
namespace {

std::int64_t to_ns(SystemTime t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
SystemTime from_ns(std::int64_t ns) noexcept {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(ns)));
}

constexpr const char* kPairColumns =
    "destination, gstin, vault_path, state, applied_version, applied_lineage, applied_fingerprint, applied_at_ns, "
    "pending_version, pending_lineage, pending_fingerprint, push_in_flight, attempts, first_attempt_at_ns, "
    "next_attempt_at_ns, last_error_class, last_error_code, last_error_provider, last_error_message, updated_at_ns";

constexpr const char* kHistoryColumns =
    "at_ns, destination, gstin, version, lineage, outcome, attempt, error_class, error_code, error_provider, "
    "message, duration_ms";

std::int64_t int_at(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  std::int64_t out = 0;
  std::from_chars(v, v + PQgetlength(r, row, col), out);
  return out;
}

std::string text_at(const PGresult* r, int row, int col) {
  return decode_text(std::string_view(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))));
}

}  // namespace

void PgParams::text(std::string v) {
  values_.push_back(std::move(v));
  is_null_.push_back(false);
  formats_.push_back(0);
}

void PgParams::integer(std::int64_t v) { text(fmt::format("{}", v)); }

void PgParams::null() {
  values_.emplace_back();
  is_null_.push_back(true);
  formats_.push_back(0);
}

void PgParams::bytes(std::string v) {
  values_.push_back(std::move(v));
  is_null_.push_back(false);
  formats_.push_back(1);
}

void PgParams::clear() {
  values_.clear();
  is_null_.clear();
  formats_.clear();
}

bool PgParams::send(PGconn* conn, const char* name, bool binary_result) {
  // libpq copies the values into its output buffer before returning.
  std::vector<const char*> ptrs(values_.size());
  std::vector<int> lengths(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i) {
    ptrs[i] = is_null_[i] ? nullptr : values_[i].data();
    lengths[i] = static_cast<int>(values_[i].size());
  }
  const int ok = PQsendQueryPrepared(conn, name, static_cast<int>(values_.size()), ptrs.data(), lengths.data(),
                                     formats_.data(), binary_result ? 1 : 0);
  clear();
  return ok == 1;
}

Result<void> prepare_statements(PGconn* conn, const PgTarget& target, Deadline deadline) {
  const auto& s = target.schema;
  const std::string pairs = qualified(s, "pairs");
  const std::string history = qualified(s, "history");
  const std::string sealed = qualified(s, "sealed");
  const std::pair<const char*, std::string> all[] = {
      {pg_stmt::kUpsertPair,
       fmt::format("INSERT INTO {} ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
                   "$17, $18, $19, $20) ON CONFLICT (destination, gstin) DO UPDATE SET vault_path = "
                   "EXCLUDED.vault_path, state = EXCLUDED.state, applied_version = EXCLUDED.applied_version, "
                   "applied_lineage = EXCLUDED.applied_lineage, applied_fingerprint = EXCLUDED.applied_fingerprint, "
                   "applied_at_ns = EXCLUDED.applied_at_ns, pending_version = EXCLUDED.pending_version, "
                   "pending_lineage = EXCLUDED.pending_lineage, pending_fingerprint = EXCLUDED.pending_fingerprint, "
                   "push_in_flight = EXCLUDED.push_in_flight, attempts = EXCLUDED.attempts, first_attempt_at_ns = "
                   "EXCLUDED.first_attempt_at_ns, next_attempt_at_ns = EXCLUDED.next_attempt_at_ns, "
                   "last_error_class = EXCLUDED.last_error_class, last_error_code = EXCLUDED.last_error_code, "
                   "last_error_provider = EXCLUDED.last_error_provider, last_error_message = "
                   "EXCLUDED.last_error_message, updated_at_ns = EXCLUDED.updated_at_ns",
                   pairs, kPairColumns)},
      {pg_stmt::kInsertHistory,
       fmt::format("INSERT INTO {} ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", history,
                   kHistoryColumns)},
      {pg_stmt::kDeletePair, fmt::format("DELETE FROM {} WHERE destination = $1 AND gstin = $2", pairs)},
      {pg_stmt::kTrimChunk, fmt::format("DELETE FROM {0} WHERE id IN (SELECT id FROM {0} WHERE at_ns < $1 ORDER BY "
                                        "at_ns LIMIT $2)",
                                        history)},
      {pg_stmt::kHistoryAll,
       fmt::format("SELECT {} FROM {} ORDER BY at_ns DESC, id DESC LIMIT $1", kHistoryColumns, history)},
      {pg_stmt::kHistoryGstin, fmt::format("SELECT {} FROM {} WHERE gstin = $1 ORDER BY at_ns DESC, id DESC LIMIT $2",
                                           kHistoryColumns, history)},
      {pg_stmt::kLoadAll, fmt::format("SELECT {} FROM {} ORDER BY destination, gstin", kPairColumns, pairs)},
      {pg_stmt::kUpsertSealed, fmt::format("INSERT INTO {} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
                                           "SET value = EXCLUDED.value",
                                           sealed)},
      {pg_stmt::kSelectSealed, fmt::format("SELECT value FROM {} WHERE name = $1", sealed)},
      {pg_stmt::kFence, fmt::format("SELECT {}($1)", qualified(target.schema, "fence"))},
  };
  for (const auto& [name, sql] : all) {
    if (PQsendPrepare(conn, name, sql.c_str(), 0, nullptr) == 0) {
      return result_error(conn, nullptr, target, "prepare statements for", "");
    }
    PgResult last;
    for (;;) {
      while (PQisBusy(conn) != 0) {
        if (!wait_socket(conn, false, deadline) || PQconsumeInput(conn) == 0) {
          return result_error(conn, nullptr, target, "prepare statements for", "");
        }
      }
      PgResult r(PQgetResult(conn));
      if (!r) break;
      last = std::move(r);
    }
    if (!ok(last.get())) return result_error(conn, last.get(), target, "prepare statements for", "");
  }
  return {};
}

void pair_params(const PairRecord& r, PgParams& p) {
  p.text(encode_text(r.destination));
  p.text(encode_text(r.gstin));
  p.text(encode_text(r.vault_path));
  p.text(std::string(to_string(r.state)));
  const auto version = [&](const std::optional<VersionRef>& v) {
    if (v) {
      p.integer(v->version.number);
      p.text(encode_text(v->version.lineage.text()));
      p.text(v->fingerprint ? v->fingerprint->hex() : std::string());
    } else {
      p.null();
      p.null();
      p.null();
    }
  };
  version(r.applied);
  p.integer(to_ns(r.applied_at));
  version(r.pending);
  p.boolean(r.push_in_flight);
  p.integer(r.attempts);
  p.integer(to_ns(r.first_attempt_at));
  p.integer(to_ns(r.next_attempt_at));
  p.text(encode_text(r.last_error_class));
  p.text(encode_text(r.last_error_code));
  p.text(encode_text(r.last_error_provider));
  p.text(encode_text(r.last_error_message));
  p.integer(to_ns(r.updated_at));
}

void history_params(const HistoryEntry& h, PgParams& p) {
  p.integer(to_ns(h.at));
  p.text(encode_text(h.destination));
  p.text(encode_text(h.gstin));
  p.integer(h.version.number);
  p.text(encode_text(h.version.lineage.text()));
  p.text(std::string(to_string(h.outcome)));
  p.integer(h.attempt);
  p.text(encode_text(h.error_class));
  p.text(encode_text(h.error_code));
  p.text(encode_text(h.error_provider));
  p.text(encode_text(h.message));
  p.integer(h.duration.count());
}

Result<std::vector<HistoryEntry>> history_rows(const PGresult* r, const PgTarget& target) {
  std::vector<HistoryEntry> out;
  const int rows = PQntuples(r);
  out.reserve(static_cast<std::size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    HistoryEntry h;
    h.at = from_ns(int_at(r, i, 0));
    h.destination = text_at(r, i, 1);
    h.gstin = text_at(r, i, 2);
    h.version.number = int_at(r, i, 3);
    h.version.lineage = Lineage(text_at(r, i, 4));
    const std::string outcome = PQgetvalue(r, i, 5);
    const auto o = outcome_from_string(outcome);
    if (!o) {
      return Error(Errc::ledger_corrupt,
                   fmt::format("the ledger in schema {} ({}) holds a history entry with unknown outcome '{}'; was it "
                               "written by a newer nicsyncd?",
                               target.schema, target.where, outcome));
    }
    h.outcome = *o;
    h.attempt = static_cast<int>(int_at(r, i, 6));
    h.error_class = text_at(r, i, 7);
    h.error_code = text_at(r, i, 8);
    h.error_provider = text_at(r, i, 9);
    h.message = text_at(r, i, 10);
    h.duration = std::chrono::milliseconds(int_at(r, i, 11));
    out.push_back(std::move(h));
  }
  return out;
}

Result<std::vector<PairRecord>> pair_rows(const PGresult* r, const PgTarget& target) {
  std::vector<PairRecord> out;
  const int rows = PQntuples(r);
  out.reserve(static_cast<std::size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    const auto version_at = [&](int at) -> std::optional<VersionRef> {
      if (PQgetisnull(r, i, at) != 0) return std::nullopt;
      // The fingerprint's text is nothing where it is not 64 hex digits (not known yet).
      return VersionRef{VersionId{int_at(r, i, at), Lineage(text_at(r, i, at + 1)), SourceState::present},
                        Fingerprint::from_hex(PQgetvalue(r, i, at + 2))};
    };
    PairRecord p;
    p.destination = text_at(r, i, 0);
    p.gstin = text_at(r, i, 1);
    p.vault_path = text_at(r, i, 2);
    const std::string state = PQgetvalue(r, i, 3);
    const auto st = pair_state_from_string(state);
    if (!st) {
      return Error(Errc::ledger_corrupt,
                   fmt::format("the ledger in schema {} ({}) holds pair ({}, {}) in unknown state '{}'; was it "
                               "written by a newer nicsyncd?",
                               target.schema, target.where, p.destination, p.gstin, state));
    }
    p.state = *st;
    p.applied = version_at(4);
    p.applied_at = from_ns(int_at(r, i, 7));
    p.pending = version_at(8);
    p.push_in_flight = std::string_view(PQgetvalue(r, i, 11)) == "t";
    p.attempts = static_cast<int>(int_at(r, i, 12));
    p.first_attempt_at = from_ns(int_at(r, i, 13));
    p.next_attempt_at = from_ns(int_at(r, i, 14));
    p.last_error_class = text_at(r, i, 15);
    p.last_error_code = text_at(r, i, 16);
    p.last_error_provider = text_at(r, i, 17);
    p.last_error_message = text_at(r, i, 18);
    p.updated_at = from_ns(int_at(r, i, 19));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace nicsync::ledger::detail
