#pragma once
// The PostgreSQL ledger's schema: created and migrated by the daemon under an advisory lock,
// its version kept in a table of its own, and a newer version refused.

#include <string_view>

#include "ledger/pg_conn.hpp"
#include "nicsync/core/result.hpp"

namespace nicsync::ledger::detail {

/// The lock every nicsyncd takes (transaction-scoped) while it creates or migrates a schema.
constexpr std::int64_t kMigrationLockKey = 0x4E4353594C454447;  // "NCSYLEDG"

/// Creates the schema if it is missing and brings it to `PostgresStore::kSchemaVersion`, in
/// one transaction holding the migration lock. Errors: `ledger_schema` (newer, or a schema of
/// another program), `ledger_io` (grants, the server).
Result<void> migrate(PGconn* conn, const PgTarget& target, Deadline deadline);

/// The schema's version: 0 when the schema or its version table does not exist yet.
Result<int> schema_version(PGconn* conn, const PgTarget& target, Deadline deadline);

/// The error for a schema newer than this binary.
Error newer_schema_error(const PgTarget& target, int version);

}  // namespace nicsync::ledger::detail
