// The PostgreSQL ledger's schema and its migrations, and `check_postgres` for
// `nicsyncd check --online`. A migration takes the schema from version N-1 to N; the runner
// applies those above the schema's version in order, all in one transaction that holds the
// migration lock, so that two daemons starting at once cannot both migrate. To change the
// schema: add migrate_to_vN, append it to kMigrations and raise PostgresStore::kSchemaVersion.
#include "ledger/pg_schema.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "nicsync/ledger/postgres_store.hpp"

namespace nicsync::ledger::detail {
namespace {

// Text columns that are keys or sorted on use the "C" collation: byte order, as in SQLite,
// and no dependence on the database's locale. Times are nanoseconds since the epoch (bigint),
// as in the SQLite ledger: timestamptz holds only microseconds.
std::string v1_sql(std::string_view s) {
  return fmt::format(R"sql(
    CREATE TABLE "{0}".pairs (
      destination          text COLLATE "C" NOT NULL,
      gstin                text COLLATE "C" NOT NULL,
      vault_path           text    NOT NULL,
      state                text    NOT NULL,
      applied_version      bigint,
      applied_lineage      text,
      applied_fingerprint  text,
      applied_at_ns        bigint  NOT NULL,
      pending_version      bigint,
      pending_lineage      text,
      pending_fingerprint  text,
      push_in_flight       boolean NOT NULL,
      attempts             integer NOT NULL,
      first_attempt_at_ns  bigint  NOT NULL,
      next_attempt_at_ns   bigint  NOT NULL,
      last_error_class     text    NOT NULL,
      last_error_code      text    NOT NULL,
      last_error_provider  text    NOT NULL,
      last_error_message   text    NOT NULL,
      updated_at_ns        bigint  NOT NULL,
      PRIMARY KEY (destination, gstin)
    );
    CREATE TABLE "{0}".history (
      id              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at_ns           bigint  NOT NULL,
      destination     text COLLATE "C" NOT NULL,
      gstin           text COLLATE "C" NOT NULL,
      version         bigint  NOT NULL,
      lineage         text    NOT NULL,
      outcome         text    NOT NULL,
      attempt         integer NOT NULL,
      error_class     text    NOT NULL,
      error_code      text    NOT NULL,
      error_provider  text    NOT NULL,
      message         text    NOT NULL,
      duration_ms     bigint  NOT NULL
    );
    CREATE INDEX history_by_gstin ON "{0}".history (gstin, at_ns);
    CREATE INDEX history_by_time ON "{0}".history (at_ns);
    CREATE FUNCTION "{0}".history_append_only() RETURNS trigger LANGUAGE plpgsql
      AS $$BEGIN RAISE EXCEPTION 'the history is append-only'; END$$;
    CREATE TRIGGER history_append_only BEFORE UPDATE ON "{0}".history
      FOR EACH ROW EXECUTE FUNCTION "{0}".history_append_only();
    CREATE TABLE "{0}".sealed (
      name   text COLLATE "C" NOT NULL PRIMARY KEY,
      value  bytea NOT NULL
    );
  )sql",
                     s);
}

// Replicas: the leader lease (one row; the database's clock decides when it runs out) and the
// fence a leader's transactions pass first, holding the lease row FOR SHARE until they commit,
// so that a takeover (which updates the row) waits for them, and a transaction of a replica
// whose lease is gone or ran out fails before it changes anything.
std::string v2_sql(std::string_view s) {
  return fmt::format(R"sql(
    CREATE TABLE "{0}".lease (
      name        text COLLATE "C" NOT NULL PRIMARY KEY,
      holder      text        NOT NULL DEFAULT '',
      epoch       bigint      NOT NULL DEFAULT 0,
      expires_at  timestamptz NOT NULL DEFAULT '-infinity',
      url         text        NOT NULL DEFAULT '',
      changed_at  timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO "{0}".lease (name) VALUES ('leader');
    CREATE FUNCTION "{0}".fence(writer_epoch bigint) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM 1 FROM "{0}".lease WHERE name = 'leader' AND epoch = writer_epoch AND expires_at > now() FOR SHARE;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'the leader lease of epoch % is not the current one', writer_epoch USING ERRCODE = '{1}';
      END IF;
    END$$;
  )sql",
                     s, kFencedState);
}

using Migration = std::string (*)(std::string_view schema);
constexpr Migration kMigrations[] = {&v1_sql, &v2_sql};
static_assert(std::size(kMigrations) == PostgresStore::kSchemaVersion, "one migration per schema version");

int to_int(const char* text) {
  int v = 0;
  const std::string_view t(text);
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

}  // namespace

Error newer_schema_error(const PgTarget& target, int version) {
  return Error(Errc::ledger_schema,
               fmt::format("the ledger in schema {} ({}) has schema version {}, but this nicsyncd understands up to "
                           "version {}: it was written by a newer nicsyncd; run that version (or restore a backup "
                           "made before the upgrade)",
                           target.schema, target.where, version, PostgresStore::kSchemaVersion));
}

Result<int> schema_version(PGconn* conn, const PgTarget& target, Deadline deadline) {
  PgResult r =
      exec(conn, "SELECT to_regclass(quote_ident($1) || '.schema_version') IS NOT NULL", {target.schema}, deadline);
  if (!ok(r.get())) return result_error(conn, r.get(), target, "read the schema version of", "");
  if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") return 0;
  r = exec(conn, fmt::format("SELECT version FROM {}", qualified(target.schema, "schema_version")), {}, deadline);
  if (!ok(r.get())) return result_error(conn, r.get(), target, "read the schema version of", "");
  if (PQntuples(r.get()) != 1) return 0;
  return to_int(PQgetvalue(r.get(), 0, 0));
}

Result<void> migrate(PGconn* conn, const PgTarget& target, Deadline deadline) {
  const auto& s = target.schema;
  auto failed = [&](const PgResult& r, std::string_view what) -> Error {
    Error e = result_error(conn, r.get(), target, what, "");
    exec(conn, "ROLLBACK", {}, deadline);
    return e;
  };
  // Quick path: a current schema needs no lock (and no CREATE privilege).
  auto current = schema_version(conn, target, deadline);
  if (!current) return current.error();
  if (*current > PostgresStore::kSchemaVersion) return newer_schema_error(target, *current);
  if (*current == PostgresStore::kSchemaVersion) return {};

  PgResult r = exec(conn, "BEGIN", {}, deadline);
  if (!ok(r.get())) return failed(r, "begin a migration of");
  r = exec(conn, fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey), {}, deadline);
  if (!ok(r.get())) return failed(r, "lock for a migration");
  // Under the lock: another daemon may have migrated while this one waited.
  r = exec(conn, "SELECT 1 FROM pg_namespace WHERE nspname = $1", {s}, deadline);
  if (!ok(r.get())) return failed(r, "look for the schema of");
  if (PQntuples(r.get()) == 0) {
    // CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even for an existing one.
    r = exec(conn, fmt::format("CREATE SCHEMA \"{}\"", s), {}, deadline);
    if (!ok(r.get())) return failed(r, "create the schema of");
  } else {
    // Without USAGE the tables are invisible: say so rather than take the schema for empty.
    r = exec(conn, "SELECT has_schema_privilege($1, 'USAGE')", {s}, deadline);
    if (!ok(r.get())) return failed(r, "look into the schema of");
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
      exec(conn, "ROLLBACK", {}, deadline);
      return pg_error("42501", fmt::format("permission denied for schema {}", s), target, "open", "");
    }
  }
  auto version = schema_version(conn, target, deadline);
  if (!version) {
    exec(conn, "ROLLBACK", {}, deadline);
    return version.error();
  }
  if (*version > PostgresStore::kSchemaVersion) {
    exec(conn, "ROLLBACK", {}, deadline);
    return newer_schema_error(target, *version);
  }
  if (*version == 0) {
    r = exec(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
             {s}, deadline);
    if (!ok(r.get())) return failed(r, "look into the schema of");
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "0") {
      exec(conn, "ROLLBACK", {}, deadline);
      return Error(Errc::ledger_schema,
                   fmt::format("schema {} ({}) holds tables but no nicsync ledger (no schema_version table): set "
                               "[ledger] schema to a schema of nicsync's own",
                               s, target.where));
    }
    r = exec(conn,
             fmt::format("CREATE TABLE {} (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT "
                         "NULL, written_by text NOT NULL); INSERT INTO {} (version, written_by) VALUES (0, 'nicsyncd')",
                         qualified(s, "schema_version"), qualified(s, "schema_version")),
             {}, deadline);
    if (!ok(r.get())) return failed(r, "create the version table of");
  }
  for (int v = *version; v < PostgresStore::kSchemaVersion; ++v) {
    r = exec(conn, kMigrations[v](s), {}, deadline);
    if (!ok(r.get())) return failed(r, fmt::format("migrate to schema version {}", v + 1));
    r = exec(conn, fmt::format("UPDATE {} SET version = {}", qualified(s, "schema_version"), v + 1), {}, deadline);
    if (!ok(r.get())) return failed(r, "record the schema version of");
  }
  r = exec(conn, "COMMIT", {}, deadline);
  if (!ok(r.get())) return failed(r, "commit the migration of");
  return {};
}

}  // namespace nicsync::ledger::detail

namespace nicsync::ledger {

std::vector<PostgresCheckLine> check_postgres(const PostgresStoreOptions& options) {
  using namespace detail;
  std::vector<PostgresCheckLine> out;
  const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
  std::string conninfo(options.conninfo.expose());
  if (!options.conninfo_file.empty()) {
    auto text = read_conninfo_file(options.conninfo_file);
    if (!text) {
      out.push_back({"connection", text.error().message, false});
      return out;
    }
    conninfo = std::string(text->expose());
  }
  auto attempt = connect(conninfo, options.schema, deadline);
  secure_wipe(conninfo);
  if (auto* f = std::get_if<ConnectFailure>(&attempt)) {
    out.push_back({"connection", f->error.message, false});
    return out;
  }
  auto& c = std::get<Connected>(attempt);
  PGconn* conn = c.conn.get();
  const auto& t = c.target;
  out.push_back({"connection",
                 fmt::format("ok: {} (server {}), writable, UTF-8, durable commits", t.where,
                             PQparameterStatus(conn, "server_version")),
                 true});

  const auto query = [&](const std::string& sql, std::initializer_list<std::string_view> params) -> Result<PgResult> {
    PgResult r = exec(conn, sql, params, deadline);
    if (!ok(r.get())) return result_error(conn, r.get(), t, "check", "");
    return r;
  };
  auto schema = query(
      "SELECT has_schema_privilege(current_user, n.oid, 'USAGE'), has_schema_privilege(current_user, "
      "n.oid, 'CREATE') FROM pg_namespace n WHERE n.nspname = $1",
      {options.schema});
  if (!schema) {
    out.push_back({"grants", schema.error().message, false});
    return out;
  }
  const std::string grant_advice = fmt::format(
      "GRANT USAGE, CREATE ON SCHEMA {0} TO {1}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
      "SCHEMA {0} TO {1} (or make {1} the schema's owner)",
      options.schema, t.role);
  if (PQntuples(schema->get()) == 0) {
    auto db = query("SELECT has_database_privilege(current_user, current_database(), 'CREATE')", {});
    const bool can = db && std::string_view(PQgetvalue(db->get(), 0, 0)) == "t";
    out.push_back({"grants",
                   can ? fmt::format("ok: schema {} does not exist yet; role {} may create it (nicsyncd does at start)",
                                     options.schema, t.role)
                       : fmt::format("schema {} does not exist and role {} may not create it: CREATE SCHEMA {} "
                                     "AUTHORIZATION {} (as a superuser or the database's owner)",
                                     options.schema, t.role, options.schema, t.role),
                   can});
    out.push_back({"schema version",
                   fmt::format("ok: none yet; nicsyncd creates version {}", PostgresStore::kSchemaVersion), true});
    return out;
  }
  const bool usage = std::string_view(PQgetvalue(schema->get(), 0, 0)) == "t";
  const bool create = std::string_view(PQgetvalue(schema->get(), 0, 1)) == "t";
  std::vector<std::string> missing;
  if (!usage) missing.push_back("USAGE on the schema");
  if (!create) missing.push_back("CREATE on the schema");
  if (usage) {
    // has_table_privilege with a list is true when any one is held: each on its own.
    auto tables = query(
        "SELECT c.relname, has_table_privilege(current_user, c.oid, 'SELECT') AND "
        "has_table_privilege(current_user, c.oid, 'INSERT') AND has_table_privilege(current_user, c.oid, 'UPDATE') AND "
        "has_table_privilege(current_user, c.oid, 'DELETE') FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname",
        {options.schema});
    if (!tables) {
      out.push_back({"grants", tables.error().message, false});
      return out;
    }
    for (int i = 0; i < PQntuples(tables->get()); ++i) {
      if (std::string_view(PQgetvalue(tables->get(), i, 1)) != "t") {
        missing.push_back(
            fmt::format("SELECT, INSERT, UPDATE, DELETE on {}.{}", options.schema, PQgetvalue(tables->get(), i, 0)));
      }
    }
  }
  if (missing.empty()) {
    out.push_back({"grants", fmt::format("ok: role {} may use and change schema {}", t.role, options.schema), true});
  } else {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    out.push_back({"grants", fmt::format("role {} lacks {}: {}", t.role, list, grant_advice), false});
  }
  if (!usage) return out;
  auto version = schema_version(conn, t, deadline);
  if (!version) {
    out.push_back({"schema version", version.error().message, false});
  } else if (*version > PostgresStore::kSchemaVersion) {
    out.push_back({"schema version", newer_schema_error(t, *version).message, false});
  } else if (*version == PostgresStore::kSchemaVersion) {
    out.push_back({"schema version", fmt::format("ok: {} (this nicsyncd writes {})", *version, *version), true});
  } else {
    out.push_back({"schema version",
                   fmt::format("ok: {}; nicsyncd migrates it to {} at start", *version, PostgresStore::kSchemaVersion),
                   true});
  }
  return out;
}

}  // namespace nicsync::ledger
