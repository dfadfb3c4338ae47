// The ledger's SQL: the statements the writer thread prepares once, the parameters a pair or a
// history entry binds, and the rows read back into records.
#include "ledger/sqlite_statements.hpp"

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace nicsync::ledger::detail {
namespace {

constexpr const char* kPairColumns =
    "destination, gstin, vault_path, state, applied_version, applied_lineage, applied_fingerprint, applied_at_ns, "
    "pending_version, pending_lineage, pending_fingerprint, push_in_flight, attempts, first_attempt_at_ns, "
    "next_attempt_at_ns, last_error_class, last_error_code, last_error_provider, last_error_message, updated_at_ns";

constexpr const char* kUpsertPair =
    "INSERT INTO pairs (destination, gstin, vault_path, state, applied_version, applied_lineage, "
    "applied_fingerprint, applied_at_ns, pending_version, pending_lineage, pending_fingerprint, push_in_flight, "
    "attempts, first_attempt_at_ns, next_attempt_at_ns, last_error_class, last_error_code, last_error_provider, "
    "last_error_message, updated_at_ns) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
    "ON CONFLICT (destination, gstin) DO UPDATE SET vault_path = excluded.vault_path, state = excluded.state, "
    "applied_version = excluded.applied_version, applied_lineage = excluded.applied_lineage, "
    "applied_fingerprint = excluded.applied_fingerprint, applied_at_ns = excluded.applied_at_ns, "
    "pending_version = excluded.pending_version, pending_lineage = excluded.pending_lineage, "
    "pending_fingerprint = excluded.pending_fingerprint, push_in_flight = excluded.push_in_flight, "
    "attempts = excluded.attempts, first_attempt_at_ns = excluded.first_attempt_at_ns, "
    "next_attempt_at_ns = excluded.next_attempt_at_ns, last_error_class = excluded.last_error_class, "
    "last_error_code = excluded.last_error_code, last_error_provider = excluded.last_error_provider, "
    "last_error_message = excluded.last_error_message, updated_at_ns = excluded.updated_at_ns";

constexpr const char* kInsertHistory =
    "INSERT INTO history (at_ns, destination, gstin, version, lineage, outcome, attempt, error_class, error_code, "
    "error_provider, message, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

constexpr const char* kHistoryColumns =
    "at_ns, destination, gstin, version, lineage, outcome, attempt, error_class, error_code, error_provider, "
    "message, duration_ms";

}  // namespace

Result<void> Statements::prepare(const Database& db) {
  const std::pair<Stmt*, std::string> all[] = {
      {&begin, "BEGIN IMMEDIATE"},
      {&commit, "COMMIT"},
      {&rollback, "ROLLBACK"},
      {&savepoint, "SAVEPOINT job"},
      {&release, "RELEASE job"},
      {&rollback_to, "ROLLBACK TO job"},
      {&upsert_pair, kUpsertPair},
      {&insert_history, kInsertHistory},
      {&delete_pair, "DELETE FROM pairs WHERE destination = ?1 AND gstin = ?2"},
      {&trim_chunk,
       "DELETE FROM history WHERE id IN (SELECT id FROM history WHERE at_ns < ?1 ORDER BY at_ns LIMIT "
       "?2)"},
      {&history_all, fmt::format("SELECT {} FROM history ORDER BY at_ns DESC, id DESC LIMIT ?1", kHistoryColumns)},
      {&history_gstin,
       fmt::format("SELECT {} FROM history WHERE gstin = ?1 ORDER BY at_ns DESC, id DESC LIMIT ?2", kHistoryColumns)},
      {&load_all, fmt::format("SELECT {} FROM pairs ORDER BY destination, gstin", kPairColumns)},
      {&upsert_sealed,
       "INSERT INTO sealed (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value"},
      {&select_sealed, "SELECT value FROM sealed WHERE name = ?1"},
  };
  for (const auto& [stmt, sql] : all) {
    if (const int rc = db.prepare(*stmt, sql.c_str()); rc != SQLITE_OK) return db.error(rc, "prepare statements for");
  }
  return {};
}

void Statements::finalize() {
  // Before the connection closes: sqlite3_close_v2 would otherwise keep it as a zombie.
  for (Stmt* s : {&begin, &commit, &rollback, &savepoint, &release, &rollback_to, &upsert_pair, &insert_history,
                  &delete_pair, &trim_chunk, &history_all, &history_gstin, &load_all, &upsert_sealed, &select_sealed}) {
    *s = Stmt();
  }
}

int Statements::write_pair(const PairRecord& r) {
  Stmt& s = upsert_pair;
  s.bind(1, r.destination);
  s.bind(2, r.gstin);
  s.bind(3, r.vault_path);
  s.bind(4, to_string(r.state));
  // The texts are bound without a copy: they must live until the statement has run.
  const std::string applied_fp = r.applied && r.applied->fingerprint ? r.applied->fingerprint->hex() : std::string();
  const std::string pending_fp = r.pending && r.pending->fingerprint ? r.pending->fingerprint->hex() : std::string();
  const auto bind_version = [&](int at, const std::optional<VersionRef>& v, const std::string& fingerprint) {
    if (v) {
      s.bind(at, v->version.number);
      s.bind(at + 1, v->version.lineage.text());
      s.bind(at + 2, fingerprint);
    } else {
      s.bind_null(at);
      s.bind_null(at + 1);
      s.bind_null(at + 2);
    }
  };
  bind_version(5, r.applied, applied_fp);
  s.bind(8, to_ns(r.applied_at));
  bind_version(9, r.pending, pending_fp);
  s.bind(12, r.push_in_flight);
  s.bind(13, static_cast<std::int64_t>(r.attempts));
  s.bind(14, to_ns(r.first_attempt_at));
  s.bind(15, to_ns(r.next_attempt_at));
  s.bind(16, r.last_error_class);
  s.bind(17, r.last_error_code);
  s.bind(18, r.last_error_provider);
  s.bind(19, r.last_error_message);
  s.bind(20, to_ns(r.updated_at));
  return s.run();
}

int Statements::append_history(const HistoryEntry& h) {
  Stmt& s = insert_history;
  s.bind(1, to_ns(h.at));
  s.bind(2, h.destination);
  s.bind(3, h.gstin);
  s.bind(4, h.version.number);
  s.bind(5, h.version.lineage.text());
  s.bind(6, to_string(h.outcome));
  s.bind(7, static_cast<std::int64_t>(h.attempt));
  s.bind(8, h.error_class);
  s.bind(9, h.error_code);
  s.bind(10, h.error_provider);
  s.bind(11, h.message);
  s.bind(12, static_cast<std::int64_t>(h.duration.count()));
  return s.run();
}

int Statements::remove_pair(std::string_view destination, std::string_view gstin) {
  delete_pair.bind(1, destination);
  delete_pair.bind(2, gstin);
  return delete_pair.run();
}

int Statements::trim_history(std::int64_t cutoff_ns, std::int64_t limit) {
  trim_chunk.bind(1, cutoff_ns);
  trim_chunk.bind(2, limit);
  return trim_chunk.run();
}

int Statements::write_sealed(std::string_view name, std::string_view sealed) {
  upsert_sealed.bind(1, name);
  upsert_sealed.bind_blob(2, sealed);
  return upsert_sealed.run();
}

Result<std::optional<std::string>> Statements::read_sealed(const Database& db, std::string_view name) {
  Stmt& s = select_sealed;
  ResetOnExit reset{s};
  s.bind(1, name);
  const int rc = s.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.blob(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return db.error(rc, "read a sealed value from");
}

Result<std::vector<HistoryEntry>> Statements::read_history(const Database& db, std::string_view gstin,
                                                           std::size_t limit) {
  Stmt& s = gstin.empty() ? history_all : history_gstin;
  ResetOnExit reset{s};
  const auto max_rows = static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
  if (gstin.empty()) {
    s.bind(1, max_rows);
  } else {
    s.bind(1, gstin);
    s.bind(2, max_rows);
  }
  std::vector<HistoryEntry> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    HistoryEntry h;
    h.at = from_ns(s.int64(0));
    h.destination = s.text(1);
    h.gstin = s.text(2);
    h.version.number = s.int64(3);
    h.version.lineage = Lineage(s.text(4));
    const std::string outcome = s.text(5);
    const auto o = outcome_from_string(outcome);
    if (!o) {
      return Error(Errc::ledger_corrupt,
                   fmt::format("ledger {} holds a history entry with unknown outcome '{}'; was it written by a "
                               "newer nicsyncd?",
                               db.path.string(), outcome));
    }
    h.outcome = *o;
    h.attempt = static_cast<int>(s.int64(6));
    h.error_class = s.text(7);
    h.error_code = s.text(8);
    h.error_provider = s.text(9);
    h.message = s.text(10);
    h.duration = std::chrono::milliseconds(s.int64(11));
    out.push_back(std::move(h));
  }
  if (rc != SQLITE_DONE) return db.error(rc, "read the history of");
  return out;
}

Result<std::vector<PairRecord>> Statements::read_pairs(const Database& db) {
  Stmt& s = load_all;
  ResetOnExit reset{s};
  std::vector<PairRecord> out;
  int rc;
  const auto version_at = [&](int at) -> std::optional<VersionRef> {
    if (s.is_null(at)) return std::nullopt;
    // The fingerprint's text is nothing where it is not 64 hex digits (not known yet).
    return VersionRef{VersionId{s.int64(at), Lineage(s.text(at + 1)), SourceState::present},
                      Fingerprint::from_hex(s.text(at + 2))};
  };
  while ((rc = s.step()) == SQLITE_ROW) {
    PairRecord r;
    r.destination = s.text(0);
    r.gstin = s.text(1);
    r.vault_path = s.text(2);
    const std::string state = s.text(3);
    const auto st = pair_state_from_string(state);
    if (!st) {
      return Error(Errc::ledger_corrupt,
                   fmt::format("ledger {} holds pair ({}, {}) in unknown state '{}'; was it written by a newer "
                               "nicsyncd?",
                               db.path.string(), r.destination, r.gstin, state));
    }
    r.state = *st;
    r.applied = version_at(4);
    r.applied_at = from_ns(s.int64(7));
    r.pending = version_at(8);
    r.push_in_flight = s.int64(11) != 0;
    r.attempts = static_cast<int>(s.int64(12));
    r.first_attempt_at = from_ns(s.int64(13));
    r.next_attempt_at = from_ns(s.int64(14));
    r.last_error_class = s.text(15);
    r.last_error_code = s.text(16);
    r.last_error_provider = s.text(17);
    r.last_error_message = s.text(18);
    r.updated_at = from_ns(s.int64(19));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return db.error(rc, "read");
  return out;
}

}  // namespace nicsync::ledger::detail
