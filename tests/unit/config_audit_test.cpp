// [watch.audit]: the audit feed's keys, their defaults and the errors they give.
#include <grp.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "nicsync/app/config.hpp"

namespace nicsync::app {
namespace {

using namespace std::chrono_literals;

TEST(ConfigAudit, OffUnlessListenOrTokenFileIsSet) {
  auto c = parse_config("", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c->watch.audit.enabled());
  EXPECT_EQ(c->watch.audit.socket_mode, 0660u);
  EXPECT_EQ(c->watch.audit.min_resync_gap, 60s);
  auto http_only = parse_config("[watch.audit]\ntoken_file = \"/etc/nicsync/audit-token\"\n", "t.toml");
  ASSERT_TRUE(http_only) << http_only.error().message;
  EXPECT_TRUE(http_only->watch.audit.enabled());
}

TEST(ConfigAudit, ReadsEveryKey) {
  const group* g = ::getgrgid(::getgid());
  ASSERT_NE(g, nullptr);
  const std::string text = std::string("[watch]\npoll_interval = \"10m\"\n[watch.audit]\n") +
                           "listen = \"unix:/run/nicsync/audit.sock\"\nsocket_mode = \"0666\"\nsocket_group = \"" +
                           g->gr_name +
                           "\"\nprefix = \"audit: \"\ntoken_file = \"/etc/nicsync/audit-token\"\n"
                           "min_resync_gap = \"5m\"\n";
  auto c = parse_config(text, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  const auto& a = c->watch.audit;
  EXPECT_EQ(a.listen, "unix:/run/nicsync/audit.sock");
  EXPECT_EQ(a.socket_mode, 0666u);
  EXPECT_EQ(a.socket_group, g->gr_name);
  EXPECT_EQ(a.prefix, "audit: ");
  EXPECT_EQ(a.token_file, "/etc/nicsync/audit-token");
  EXPECT_EQ(a.min_resync_gap, 5min);
  EXPECT_EQ(c->watch.poll_interval, 10min);
  auto tcp = parse_config("[watch.audit]\nlisten = \"0.0.0.0:9465\"\nallow_from = [\"10.0.0.5\", \"10.1.0.0/16\"]\n",
                          "t.toml");
  ASSERT_TRUE(tcp) << tcp.error().message;
  EXPECT_EQ(tcp->watch.audit.allow_from, (std::vector<std::string>{"10.0.0.5", "10.1.0.0/16"}));
}

TEST(ConfigAudit, ErrorsNameTheKey) {
  const std::pair<const char*, const char*> broken[] = {
      {"listen = \"0.0.0.0:9465\"\n", "t.toml:2: watch.audit.listen: 0.0.0.0:9465 is not a loopback address"},
      {"listen = \"vault:9465\"\n", "watch.audit.listen: \"vault:9465\" is not an address to listen on"},
      {"listen = \"unix:audit.sock\"\n", "watch.audit.listen: \"unix:audit.sock\": a unix socket needs an absolute"},
      {"listen = \"0.0.0.0:9465\"\nallow_from = [\"10.0.0.0/40\"]\n", "watch.audit.allow_from: \"10.0.0.0/40\""},
      {"listen = \"unix:/run/a.sock\"\nsocket_mode = \"rw\"\n", "watch.audit.socket_mode: \"rw\" is not an octal mode"},
      {"listen = \"unix:/run/a.sock\"\nsocket_mode = \"4777\"\n", "watch.audit.socket_mode: a socket mode is at most"},
      {"listen = \"unix:/run/a.sock\"\nsocket_group = \"no-such-group-x1\"\n",
       "watch.audit.socket_group: there is no group \"no-such-group-x1\""},
      {"listen = \"127.0.0.1:9465\"\nsocket_mode = \"0600\"\n", "watch.audit.socket_mode: is for a unix socket"},
      {"allow_from = [\"10.0.0.5\"]\n", "watch.audit.allow_from: needs listen"},
      {"listen = \"unix:/run/a.sock\"\nallow_from = [\"10.0.0.5\"]\n", "watch.audit.allow_from: allow_from is for TCP"},
      {"min_resync_gap = \"10ms\"\n", "watch.audit.min_resync_gap"},
      {"lisen = \"127.0.0.1:9465\"\n", "watch.audit.lisen"},
  };
  for (const auto& [body, expected] : broken) {
    auto c = parse_config(std::string("[watch.audit]\n") + body, "t.toml");
    ASSERT_FALSE(c) << body;
    EXPECT_NE(c.error().message.find(expected), std::string::npos)
        << "config:\n"
        << body << "expected: " << expected << "\ngot: " << c.error().message;
  }
}

}  // namespace
}  // namespace nicsync::app
