#pragma once
// Opening the ledger file: its mode, the connection's settings, the integrity check and the
// schema migrations.

#include "ledger/sqlite_db.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/sqlite_store.hpp"

namespace nicsync::ledger::detail {

/// Opens `db.path` (created 0600), sets WAL and `synchronous=FULL`, runs the quick check when
/// `options` ask for it and brings the schema up to `SqliteStore::kSchemaVersion`. Blocks.
Result<void> open_database(Database& db, const SqliteStoreOptions& options);

}  // namespace nicsync::ledger::detail
