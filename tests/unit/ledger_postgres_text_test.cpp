// The PostgreSQL ledger's pieces that need no server: the text encoding of `text` columns,
// connection strings described without their password, schema names, and the advice each
// server failure gets (the fault table of the README).
#include <gtest/gtest.h>

#include "ledger/pg_conn.hpp"
#include "nicsync/ledger/postgres_store.hpp"

namespace nicsync::ledger {
namespace {

using detail::decode_text;
using detail::encode_text;

TEST(PostgresText, PlainTextIsStoredAsItIs) {
  for (std::string_view s : {"", "07AAFCD5862R1ZX", "réessayez — 🔑", "\x01\x1f\x7f controls but no NUL",
                             "\xEF\xBB\xBF bom", "U+FFFF in the middle \xEF\xBF\xBF is fine"}) {
    EXPECT_EQ(encode_text(s), s);
    EXPECT_EQ(decode_text(encode_text(s)), s);
  }
}

TEST(PostgresText, WhatATextColumnCannotHoldIsEncodedAndComesBack) {
  const std::string nul("a\0b", 3);
  const std::string cases[] = {nul,
                               "\xff",
                               "\x80 lone continuation",
                               "\xC0\xAF overlong",
                               "\xED\xA0\x80 surrogate",
                               "\xF4\x90\x80\x80 above U+10FFFF",
                               "\xE2\x82 cut short",
                               "\xEF\xBF\xBF starts with the marker",
                               "\xEF\xBF\xBF"};
  for (const auto& s : cases) {
    const auto stored = encode_text(s);
    EXPECT_NE(stored, s);
    EXPECT_TRUE(stored.starts_with("\xEF\xBF\xBF")) << stored;
    EXPECT_EQ(stored.find('\0'), std::string::npos);
    EXPECT_EQ(decode_text(stored), s);
  }
  // Text after the marker that is not hex (not written by nicsyncd) is read as it is.
  EXPECT_EQ(decode_text("\xEF\xBF\xBFzz"), "\xEF\xBF\xBFzz");
}

TEST(PostgresConnInfo, DescriptionsNeverHoldThePassword) {
  const std::string secret = "S3cret-pw-91";
  for (const std::string& c : {"host=db1 port=5433 dbname=ledger user=nicsync password=" + secret,
                               "host=db1 password='" + secret + "' user=nicsync",
                               "postgresql://nicsync:" + secret + "@db1:5433/ledger?sslmode=verify-full",
                               "postgresql://db1/ledger?user=nicsync&password=" + secret}) {
    const auto d = describe_conninfo(c);
    EXPECT_EQ(d.find(secret), std::string::npos) << d;
    EXPECT_NE(d.find("db1"), std::string::npos) << d;
    EXPECT_TRUE(conninfo_has_password(c)) << d;
  }
  EXPECT_EQ(describe_conninfo("host=db1 port=5432 dbname=nicsync user=nicsync sslmode=verify-full"),
            "host=db1 port=5432 dbname=nicsync user=nicsync sslmode=verify-full");
  EXPECT_FALSE(conninfo_has_password("host=db1 dbname=nicsync user=nicsync"));
  EXPECT_FALSE(conninfo_has_password(""));
  // Text libpq cannot parse is never quoted; one that may hold a password counts as holding one.
  EXPECT_EQ(describe_conninfo("host=db1 password " + secret).find(secret), std::string::npos);
  EXPECT_TRUE(conninfo_has_password("host=db1 password " + secret));
  EXPECT_NE(describe_conninfo("").find("PG*"), std::string::npos);
}

TEST(PostgresConnInfo, ABadConnectionStringIsReportedWithoutItsText) {
  const std::string secret = "S3cret-pw-91";
  auto r = detail::connect("host=db1 password " + secret, "nicsync",
                           std::chrono::steady_clock::now() + std::chrono::seconds(1));
  auto* f = std::get_if<detail::ConnectFailure>(&r);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->error.is(Errc::config_invalid));
  EXPECT_EQ(f->error.message.find(secret), std::string::npos) << f->error.message;
  EXPECT_NE(f->error.message.find("postgresql://"), std::string::npos) << f->error.message;
}

TEST(PostgresConnInfo, SchemaNamesArePlainIdentifiers) {
  for (std::string_view ok : {"nicsync", "_x", "ledger_2", "a"}) EXPECT_TRUE(valid_schema_name(ok)) << ok;
  for (std::string_view bad : {"", "Nicsync", "1x", "pg_x", "information_schema", "a-b", "a.b", "a\"b", "ä"}) {
    EXPECT_FALSE(valid_schema_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_schema_name(std::string(64, 'a')));
}

// Each failure the server can give: the project code the engine acts on, and advice that
// names what to do. This is the README's table of PostgreSQL faults.
TEST(PostgresFaults, EachSaysWhatToDo) {
  const detail::PgTarget t{"PostgreSQL at db1:5432, database nicsync, role nicsync", "nicsync", "nicsync"};
  struct Case {
    std::string_view state;
    Errc code;
    std::string_view advice;
    detail::PgFault fault;
  };
  const Case cases[] = {
      {"", Errc::ledger_io, "check that the server is up", detail::PgFault::connection},
      {"08006", Errc::ledger_io, "reconnects by itself", detail::PgFault::connection},
      {"57P01", Errc::ledger_io, "reconnects by itself", detail::PgFault::connection},
      {"57P03", Errc::ledger_io, "reconnects by itself", detail::PgFault::connection},
      {"28P01", Errc::ledger_io, "url_file", detail::PgFault::connection},
      {"28000", Errc::ledger_io, "pg_hba.conf", detail::PgFault::connection},
      {"3D000", Errc::ledger_io, "CREATE DATABASE", detail::PgFault::connection},
      {"42501", Errc::ledger_io, "GRANT USAGE, CREATE ON SCHEMA nicsync TO nicsync", detail::PgFault::statement},
      {"25006", Errc::ledger_io, "not a hot standby", detail::PgFault::connection},
      {"53100", Errc::ledger_full, "free space", detail::PgFault::statement},
      {"53300", Errc::ledger_io, "max_connections", detail::PgFault::connection},
      {"42P01", Errc::ledger_io, "restore them from a backup", detail::PgFault::statement},
      {"57014", Errc::ledger_io, "statement_timeout", detail::PgFault::statement},
      {"22021", Errc::ledger_io, "SQLSTATE 22021", detail::PgFault::data},
      {"23505", Errc::ledger_io, "SQLSTATE 23505", detail::PgFault::data},
  };
  for (const auto& c : cases) {
    const Error e = detail::pg_error(c.state, "server said: no\nsecond line", t, "write to", "");
    EXPECT_TRUE(e.is(c.code)) << c.state << ": " << e.describe();
    EXPECT_NE(e.message.find(c.advice), std::string::npos) << c.state << ": " << e.message;
    EXPECT_NE(e.message.find("server said: no second line"), std::string::npos) << e.message;
    EXPECT_EQ(detail::fault_of(c.state), c.fault) << c.state;
  }
  // A password that shows up anyway is scrubbed.
  const Error leak = detail::pg_error("28P01", "for user nicsync with Pw-123456", t, "connect to", "Pw-123456");
  EXPECT_EQ(leak.message.find("Pw-123456"), std::string::npos) << leak.message;
}

}  // namespace
}  // namespace nicsync::ledger
