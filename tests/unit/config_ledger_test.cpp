// [ledger]: the backend, where PostgreSQL is and how its password stays out of the config file.
#include <gtest/gtest.h>

#include "app/runtime.hpp"
#include "nicsync/app/config.hpp"

namespace nicsync::app {
namespace {

Result<Config> parse(const std::string& ledger, ConfigEnvironment env = {}) {
  return parse_config("state_dir = \"/var/lib/nicsync-test\"\n" + ledger, "t.toml", env);
}

std::string errors_of(const std::string& ledger, ConfigEnvironment env = {}) {
  auto c = parse(ledger, env);
  EXPECT_FALSE(c) << ledger;
  return c ? std::string() : c.error().message;
}

TEST(ConfigLedger, SqliteIsTheDefaultAndNeedsNothing) {
  auto c = parse("");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ledger.backend, LedgerBackend::sqlite);
  EXPECT_EQ(c->ledger.schema, "nicsync");
  auto explicit_sqlite = parse("[ledger]\nbackend = \"sqlite\"\n");
  ASSERT_TRUE(explicit_sqlite) << explicit_sqlite.error().message;
  EXPECT_EQ(explicit_sqlite->ledger.backend, LedgerBackend::sqlite);
}

TEST(ConfigLedger, PostgresqlWithAUrlOrAUrlFile) {
  auto c = parse(
      "[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = \"host=db1 dbname=nicsync "
      "user=nicsync\"\nschema = "
      "\"ledger_2\"\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ledger.backend, LedgerBackend::postgresql);
  EXPECT_EQ(c->ledger.url, "host=db1 dbname=nicsync user=nicsync");
  EXPECT_EQ(c->ledger.schema, "ledger_2");
  auto options = postgres_options(*c);
  ASSERT_TRUE(options);
  EXPECT_EQ(options->schema, "ledger_2");
  EXPECT_EQ(options->conninfo.expose(), "host=db1 dbname=nicsync user=nicsync");

  // A relative url_file is under $CREDENTIALS_DIRECTORY, like the Vault credential files.
  auto f =
      parse("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl_file = \"ledger-url\"\n",
            {.credentials_directory = "/run/credentials/nicsyncd.service"});
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->ledger.url_file_path(), "/run/credentials/nicsyncd.service/ledger-url");
  EXPECT_EQ(postgres_options(*f)->conninfo_file, "/run/credentials/nicsyncd.service/ledger-url");
  auto absolute = parse(
      "[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl_file = "
      "\"/etc/nicsync/ledger-url\"\n");
  ASSERT_TRUE(absolute);
  EXPECT_EQ(absolute->ledger.url_file_path(), "/etc/nicsync/ledger-url");
  // Relative without the directory: found out when the store is opened, with what to do.
  auto lost = parse(
      "[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl_file = \"ledger-url\"\n");
  ASSERT_TRUE(lost);
  auto no_dir = postgres_options(*lost);
  ASSERT_FALSE(no_dir);
  EXPECT_NE(no_dir.error().message.find("CREDENTIALS_DIRECTORY"), std::string::npos) << no_dir.error().message;
  EXPECT_NE(no_dir.error().message.find("t.toml:5: ledger.url_file"), std::string::npos) << no_dir.error().message;
}

TEST(ConfigLedger, PostgresqlFromPgVariablesAlone) {
  EXPECT_NE(errors_of("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\n")
                .find("needs url, url_file or PG*"),
            std::string::npos);
  auto c = parse("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\n",
                 {.postgres_environment = true});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->ledger.url.empty());
}

TEST(ConfigLedger, APasswordInUrlIsRefusedWithoutBeingRepeated) {
  for (const std::string url : {"host=db1 user=nicsync password=Pw-In-Config-1",
                                "postgresql://nicsync:Pw-In-Config-1@db1/n", "host=db1 password Pw-In-Config-1"}) {
    const auto e = errors_of("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = \"" +
                             url + "\"\n");
    EXPECT_NE(e.find("t.toml:5: ledger.url"), std::string::npos) << e;
    EXPECT_NE(e.find("url_file"), std::string::npos) << e;
    EXPECT_EQ(e.find("Pw-In-Config-1"), std::string::npos) << e;
  }
}

TEST(ConfigLedger, MistakesNameTheirKey) {
  EXPECT_NE(errors_of("[ledger]\nbackend = \"mysql\"\n").find("ledger.backend: \"mysql\" is not a ledger backend"),
            std::string::npos);
  EXPECT_NE(errors_of("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = "
                      "\"host=a\"\nurl_file = \"/f\"\n")
                .find("ledger.url_file: set url or url_file, not both"),
            std::string::npos);
  for (const char* bad : {"Nicsync", "pg_catalog", "1x", "a-b", "public.x"}) {
    EXPECT_NE(errors_of(fmt::format("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl "
                                    "= \"host=a\"\nschema = \"{}\"\n",
                                    bad))
                  .find("ledger.schema: must be a plain SQL identifier"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(errors_of("[ledger]\nurl = \"host=a\"\n").find("ledger.url: is only read with backend = \"postgresql\""),
            std::string::npos);
  EXPECT_NE(errors_of("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = "
                      "\"host=a\"\nkeyfile = \"x\"\n")
                .find("ledger.keyfile: unknown key"),
            std::string::npos);
}

TEST(ConfigLedger, ChangingTheLedgerNeedsARestart) {
  auto a = parse("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = \"host=a\"\n");
  auto b = parse("[ledger]\nbackend = \"postgresql\"\nkeys_file = \"/etc/nicsync/ledger-keys\"\nurl = \"host=b\"\n");
  auto c = parse("");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(restart_only_change(*a, *b), "[ledger]");
  EXPECT_EQ(restart_only_change(*a, *c), "[ledger]");
  EXPECT_EQ(restart_only_change(*a, *a), std::nullopt);
}

TEST(ConfigLedger, PostgresqlNeedsTheSharedKeysFile) {
  const auto e = errors_of("[ledger]\nbackend = \"postgresql\"\nurl = \"host=a\"\n");
  EXPECT_NE(e.find("ledger.keys_file: is required"), std::string::npos) << e;
  EXPECT_NE(e.find("nicsyncd ledger keys --out"), std::string::npos) << e;
  // With SQLite it is optional; relative paths are under $CREDENTIALS_DIRECTORY.
  auto c = parse("[ledger]\nkeys_file = \"ledger-keys\"\n", {.credentials_directory = "/run/credentials/x"});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ledger.keys_file_path(), "/run/credentials/x/ledger-keys");
  auto d = parse("[ledger]\nkeys_file = \"/etc/nicsync/ledger-keys\"\n");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->ledger.keys_file_path(), "/etc/nicsync/ledger-keys");
  auto c2 = parse("[ledger]\nkeys_file = \"other-keys\"\n", {.credentials_directory = "/run/credentials/x"});
  ASSERT_TRUE(c2);
  EXPECT_EQ(restart_only_change(*c, *c2), "[ledger]");
}

}  // namespace
}  // namespace nicsync::app
