// The audit feed's matching (an entry's KV readings against what is watched: KV v1 and v2,
// namespaces, Vault 1.13 without mount_point, mapping-set folders, the daemon's own reads) and
// its bookkeeping: what reaches the loop, repeats, overflow, connections, the http device.
#include "nicsync/watch/audit_feed.hpp"

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "nicsync/watch/audit_listener.hpp"
#include "testing/vault_audit_examples.hpp"

namespace nicsync::watch {
namespace {

namespace ex = nicsync::testing::vault_audit;

struct Entry {
  std::string type = "response";
  std::string operation = "update";
  std::string path = "secret/data/nic/07AAFCD5862R1ZX";
  std::optional<std::string> mount_point = "secret/";
  std::string ns;  // namespace path, "" = root
  std::string id = "id-1";
  std::string time = "2025-06-05T16:10:22.29241Z";
};

// An entry as Vault 1.18-1.20 writes it (members sorted), reduced to what matters here.
std::string line(const Entry& e) {
  std::string ns = e.ns.empty() ? R"({"id":"root"})" : fmt::format(R"({{"id":"n1","path":"{}"}})", e.ns);
  std::string mount = e.mount_point ? fmt::format(R"("mount_point":"{}",)", *e.mount_point) : std::string();
  return fmt::format(R"({{"auth":{{"token_type":"service"}},"request":{{"id":"{}",{}"mount_type":"kv","namespace":{},)"
                     R"("operation":"{}","path":"{}","remote_address":"127.0.0.1"}},"time":"{}","type":"{}"}})",
                     e.id, mount, ns, e.operation, e.path, e.time, e.type);
}

AuditHint hint_of(const Entry& e) {
  auto h = parse_audit_entry(line(e), {}, AuditScan::whole);
  EXPECT_TRUE(h) << h.error().describe();
  return h ? *h : AuditHint{};
}

AuditRoutes routes(std::vector<std::string> keys, std::map<std::string, KvVersion, std::less<>> mounts = {},
                   std::vector<std::string> folders = {}, std::string ns = {}) {
  AuditRoutes r;
  r.keys.insert(keys.begin(), keys.end());
  r.mounts = std::move(mounts);
  r.folders = std::move(folders);
  r.vault_namespace = std::move(ns);
  return r;
}

constexpr std::string_view kKey = "secret/nic/07AAFCD5862R1ZX";

// --- matching -------------------------------------------------------------------------------

TEST(AuditFeedMatch, BothReadingsWhileTheMountIsUnknownOneOnceItIsKnown) {
  const AuditHint h = hint_of({});
  auto unknown = key_readings(h, routes({}));
  EXPECT_EQ(unknown.kv2, std::optional<std::string>(kKey));
  EXPECT_EQ(unknown.kv2_segment, KvSegment::data);
  EXPECT_EQ(unknown.kv1, std::optional<std::string>("secret/data/nic/07AAFCD5862R1ZX"));
  auto v2 = key_readings(h, routes({}, {{"secret", KvVersion::v2}}));
  EXPECT_EQ(v2.kv2, std::optional<std::string>(kKey));
  EXPECT_FALSE(v2.kv1);
  auto v1 = key_readings(h, routes({}, {{"secret", KvVersion::v1}}));
  EXPECT_FALSE(v1.kv2);
  EXPECT_EQ(v1.kv1, std::optional<std::string>("secret/data/nic/07AAFCD5862R1ZX"));
}

TEST(AuditFeedMatch, EveryKvOperationOfAWatchedKeyMatches) {
  const auto r = routes({std::string(kKey), "kv/nic/07AAFCD5862R1ZX"}, {{"kv", KvVersion::v1}});
  for (std::string_view sub : {"data", "metadata", "delete", "undelete", "destroy"}) {
    Entry e;
    e.path = fmt::format("secret/{}/nic/07AAFCD5862R1ZX", sub);
    const auto m = match_change(hint_of(e), r);
    EXPECT_EQ(m.kind, AuditMatch::Kind::key) << sub;
    EXPECT_EQ(m.path, kKey) << sub;
  }
  Entry v1;
  v1.path = "kv/nic/07AAFCD5862R1ZX";
  v1.mount_point = "kv/";
  EXPECT_EQ(match_change(hint_of(v1), r).path, "kv/nic/07AAFCD5862R1ZX");
  // The reference's examples, every field order.
  for (std::string_view l : {ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse,
                             ex::kOpenBaoWriteResponse, ex::kSortedDeleteLatest, ex::kLegacyDestroy}) {
    auto h = parse_audit_entry(l);
    ASSERT_TRUE(h);
    EXPECT_EQ(match_change(*h, r).path, kKey) << l.substr(0, 40);
  }
}

TEST(AuditFeedMatch, OtherKeysFailuresAndReadsDoNotMatch) {
  const auto r = routes({std::string(kKey)});
  Entry other;
  other.path = "secret/data/nic/27AAPFU0939F1ZV";
  EXPECT_EQ(match_change(hint_of(other), r).kind, AuditMatch::Kind::none);
  Entry request;
  request.type = "request";
  EXPECT_EQ(match_change(hint_of(request), r).kind, AuditMatch::Kind::none);
  Entry read;
  read.operation = "read";
  EXPECT_EQ(match_change(hint_of(read), r).kind, AuditMatch::Kind::none);
  Entry deeper;  // a key below the watched one is another key
  deeper.path = "secret/data/nic/07AAFCD5862R1ZX/old";
  EXPECT_EQ(match_change(hint_of(deeper), r).kind, AuditMatch::Kind::none);
}

TEST(AuditFeedMatch, KeysUnderAMappingSetFolderMatchTheFolder) {
  const auto r = routes({}, {}, {"secret/nic/"});
  const auto m = match_change(hint_of({}), r);
  EXPECT_EQ(m.kind, AuditMatch::Kind::folder);
  EXPECT_EQ(m.path, kKey);
  Entry nested;
  nested.path = "secret/data/nic/sub/07AAFCD5862R1ZX";
  EXPECT_EQ(match_change(hint_of(nested), r).kind, AuditMatch::Kind::none) << "not directly in the folder";
}

TEST(AuditFeedMatch, NamespacesOfTheEntryAndOfTheClient) {
  Entry e;
  e.ns = "team1/";
  e.mount_point = "team1/secret/";
  // Client in team1: the key is named without the namespace.
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)}, {}, {}, "team1")).path, kKey);
  // Client in the root namespace: the key is named with it.
  EXPECT_EQ(match_change(hint_of(e), routes({"team1/secret/nic/07AAFCD5862R1ZX"})).path,
            "team1/secret/nic/07AAFCD5862R1ZX");
  // Another namespace's key of the same name is not ours.
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)}, {}, {}, "team2")).kind, AuditMatch::Kind::none);
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)})).kind, AuditMatch::Kind::none);
  // mount_point without the namespace (as some versions send it) cuts the path the same way.
  e.mount_point = "secret/";
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)}, {}, {}, "team1")).path, kKey);
}

TEST(AuditFeedMatch, WithoutMountPointTheLocatedMountsCutThePath) {
  Entry e;  // Vault 1.13
  e.mount_point.reset();
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)})).kind, AuditMatch::Kind::none)
      << "no mount known yet: only the path itself";
  EXPECT_EQ(match_change(hint_of(e), routes({std::string(kKey)}, {{"secret", KvVersion::v2}})).path, kKey);
  // The longest mount wins.
  e.path = "team/secret/data/nic/07AAFCD5862R1ZX";
  const auto r = routes({"team/secret/nic/07AAFCD5862R1ZX"}, {{"team", KvVersion::v1}, {"team/secret", KvVersion::v2}});
  EXPECT_EQ(match_change(hint_of(e), r).path, "team/secret/nic/07AAFCD5862R1ZX");
}

TEST(AuditFeedMatch, TheDaemonsOwnReadsAreKnownByTheirPath) {
  const auto r = routes({std::string(kKey)}, {{"secret", KvVersion::v2}, {"kv", KvVersion::v1}});
  Entry md;
  md.operation = "read";
  md.path = "secret/metadata/nic/07AAFCD5862R1ZX";
  auto quick = parse_audit_entry(line(md));  // read quickly, as the feed does
  ASSERT_TRUE(quick);
  EXPECT_TRUE(is_read_of(*quick, kKey, r));
  EXPECT_FALSE(is_read_of(*quick, "secret/nic/27AAPFU0939F1ZV", r));
  md.path = "secret/data/nic/07AAFCD5862R1ZX";
  EXPECT_TRUE(is_read_of(hint_of(md), kKey, r));
  md.path = "secret/subkeys/nic/07AAFCD5862R1ZX";
  EXPECT_FALSE(is_read_of(hint_of(md), kKey, r));
  Entry v1;
  v1.operation = "read";
  v1.path = "kv/nic/07AAFCD5862R1ZX";
  v1.mount_point = "kv/";
  EXPECT_TRUE(is_read_of(hint_of(v1), "kv/nic/07AAFCD5862R1ZX", r));
  Entry list = md;
  list.operation = "list";
  list.path = "secret/metadata/nic/07AAFCD5862R1ZX";
  EXPECT_FALSE(is_read_of(hint_of(list), kKey, r));
}

// --- the feed -----------------------------------------------------------------------------------

class AuditFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditFeedOptions o;
    o.queue_limit = 3;
    o.remembered_ids = 2;
    feed_ = AuditFeed::create(io_.get_executor(), o);
    AuditFeedSink sink;
    sink.changed = [this](const std::string& p) { changed_.push_back(p); };
    sink.resync = [this](AuditResyncReason r) { resyncs_.push_back(r); };
    sink.own_read_seen = [this] { ++own_reads_; };
    sink.connections_changed = [this] { ++connection_changes_; };
    feed_->set_sink(std::move(sink));
    feed_->set_routes(std::make_shared<AuditRoutes>(routes({std::string(kKey)}, {{"secret", KvVersion::v2}})));
  }
  void deliver() {
    io_.restart();
    io_.poll();
  }

  boost::asio::io_context io_;
  std::shared_ptr<AuditFeed> feed_;
  std::vector<std::string> changed_;
  std::vector<AuditResyncReason> resyncs_;
  int own_reads_ = 0;
  int connection_changes_ = 0;
};

TEST_F(AuditFeedTest, OnlyChangesOfWatchedKeysReachTheLoop) {
  feed_->take_line(line({}));
  Entry other;
  other.path = "secret/data/nic/27AAPFU0939F1ZV";
  other.id = "id-2";
  feed_->take_line(line(other));
  feed_->take_line("not json at all");
  feed_->take_line(ex::kSortedWriteRequest);
  EXPECT_TRUE(changed_.empty()) << "nothing before the loop runs";
  deliver();
  EXPECT_EQ(changed_, std::vector<std::string>{std::string(kKey)});
  const auto s = feed_->stats();
  EXPECT_EQ(s.entries_matched, 1u);
  EXPECT_EQ(s.entries_ignored, 2u);
  EXPECT_EQ(s.entries_malformed, 1u);
  EXPECT_NE(s.last_entry_at, Clock::system_time{});
  EXPECT_EQ(s.lag.count(), 1u) << "the write's lag is measured";
}

TEST_F(AuditFeedTest, RepeatsOfAnEntryAreDroppedByRequestId) {
  feed_->take_line(line({}));
  feed_->take_line(line({}));  // the same entry from a second node, or written again
  Entry second;
  second.id = "id-2";
  feed_->take_line(line(second));
  deliver();
  EXPECT_EQ(changed_.size(), 2u);
  EXPECT_EQ(feed_->stats().entries_duplicate, 1u);
  // Only the newest ids are remembered (2 here).
  Entry third;
  third.id = "id-3";
  feed_->take_line(line(third));
  feed_->take_line(line({}));
  deliver();
  EXPECT_EQ(changed_.size(), 4u);
}

TEST_F(AuditFeedTest, AFullQueueDropsHintsAndAsksForAResync) {
  for (int i = 0; i < 5; ++i) {
    Entry e;
    e.id = fmt::format("id-{}", i);
    feed_->take_line(line(e));
  }
  deliver();
  EXPECT_EQ(changed_.size(), 3u);
  EXPECT_EQ(resyncs_, std::vector<AuditResyncReason>{AuditResyncReason::overflow});
  EXPECT_EQ(feed_->stats().entries_dropped, 2u);
}

TEST_F(AuditFeedTest, ConnectionsAskForAResyncAndAreCounted) {
  EXPECT_FALSE(feed_->connected());
  feed_->connection_opened();
  feed_->connection_opened();
  EXPECT_TRUE(feed_->connected());
  deliver();
  EXPECT_EQ(resyncs_.size(), 1u) << "coalesced until the loop ran";
  EXPECT_EQ(connection_changes_, 1);
  feed_->connection_closed();
  feed_->connection_closed();
  feed_->connection_refused();
  deliver();
  EXPECT_FALSE(feed_->connected());
  const auto s = feed_->stats();
  EXPECT_EQ(s.connections_accepted, 2u);
  EXPECT_EQ(s.connections_refused, 1u);
  EXPECT_EQ(s.connections_open, 0u);
}

TEST_F(AuditFeedTest, TheExpectedOwnReadIsSeenOnce) {
  Entry read;
  read.operation = "read";
  read.path = "secret/metadata/nic/07AAFCD5862R1ZX";
  feed_->take_line(line(read));
  deliver();
  EXPECT_EQ(own_reads_, 0) << "nothing was expected";
  feed_->expect_own_read(std::string(kKey));
  feed_->take_line(line(read));
  feed_->take_line(line(read));
  deliver();
  EXPECT_EQ(own_reads_, 1);
  EXPECT_EQ(feed_->stats().own_reads_seen, 1u);
  EXPECT_EQ(feed_->stats().entries_ignored, 3u) << "reads are ignored entries all the same";
}

TEST_F(AuditFeedTest, TheHttpDeviceNeedsItsTokenAndCountsAsConnected) {
  feed_->take_http_entry(line({}), false);
  deliver();
  EXPECT_TRUE(changed_.empty());
  EXPECT_FALSE(feed_->connected());
  EXPECT_EQ(feed_->stats().http_unauthorized, 1u);
  feed_->take_http_entry(line({}) + "\n", true);
  deliver();
  EXPECT_EQ(changed_.size(), 1u);
  EXPECT_TRUE(feed_->connected());
  EXPECT_EQ(resyncs_, std::vector<AuditResyncReason>{AuditResyncReason::connection}) << "its first post";
}

TEST_F(AuditFeedTest, LinesTooLongAndPrefixes) {
  feed_->note_too_large();
  feed_->take_line(std::string(kMaxAuditLineBytes + 1, 'x'));
  feed_->note_truncated();
  EXPECT_EQ(feed_->stats().entries_too_large, 2u);
  EXPECT_EQ(feed_->stats().entries_malformed, 1u);
  AuditFeedOptions o;
  o.prefix = "vault-audit: ";
  auto prefixed = AuditFeed::create(io_.get_executor(), o);
  prefixed->set_routes(std::make_shared<AuditRoutes>(routes({std::string(kKey)})));
  std::vector<std::string> seen;
  prefixed->set_sink({.changed = [&](const std::string& p) { seen.push_back(p); }});
  prefixed->take_line("vault-audit: " + line({}));
  deliver();
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(AuditFeedTest, AClosedFeedCallsNothing) {
  feed_->take_line(line({}));
  feed_->close();
  deliver();
  EXPECT_TRUE(changed_.empty());
}

// --- allow_from and listen ---------------------------------------------------------------------

TEST(AuditListenerOptions, AddressRanges) {
  auto r = AddressRanges::parse({"10.0.0.5", "192.168.0.0/16", "fd00::/8", "172.16.0.0/12"});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->contains("10.0.0.5"));
  EXPECT_FALSE(r->contains("10.0.0.6"));
  EXPECT_TRUE(r->contains("192.168.77.1"));
  EXPECT_TRUE(r->contains("::ffff:192.168.1.1")) << "an IPv4 peer of a dual-stack listener";
  EXPECT_TRUE(r->contains("fd12::1"));
  EXPECT_FALSE(r->contains("fe80::1"));
  EXPECT_TRUE(r->contains("172.31.255.255"));
  EXPECT_FALSE(r->contains("172.32.0.0"));
  EXPECT_FALSE(r->contains("not an address"));
  for (const char* bad : {"10.0.0.0/33", "10.0.0/8", "host.example", "::1/129", "10.0.0.0/", ""}) {
    EXPECT_FALSE(AddressRanges::parse({bad})) << bad;
  }
}

TEST(AuditListenerOptions, OffLoopbackNeedsAllowFrom) {
  EXPECT_TRUE(validate(AuditListenerOptions{.listen = "127.0.0.1:9465"}));
  EXPECT_TRUE(validate(AuditListenerOptions{.listen = "[::1]:9465"}));
  EXPECT_TRUE(validate(AuditListenerOptions{.listen = "localhost:9465"}));
  auto open = validate(AuditListenerOptions{.listen = "0.0.0.0:9465"});
  ASSERT_FALSE(open);
  EXPECT_NE(open.error().message.find("allow_from"), std::string::npos);
  EXPECT_TRUE(validate(AuditListenerOptions{.listen = "0.0.0.0:9465", .allow_from = {"10.0.0.0/8"}}));
  EXPECT_TRUE(validate(AuditListenerOptions{.listen = "unix:/run/nicsync/audit.sock"}));
  for (const char* bad :
       {"9465", "127.0.0.1", "127.0.0.1:99999", "vault.example:9465", "unix:relative.sock", "unix:", ":9465"}) {
    EXPECT_FALSE(validate(AuditListenerOptions{.listen = bad})) << bad;
  }
  EXPECT_FALSE(validate(AuditListenerOptions{.listen = "unix:/tmp/a.sock", .allow_from = {"10.0.0.1"}}));
  EXPECT_FALSE(validate(AuditListenerOptions{.listen = "unix:/tmp/a.sock", .socket_group = "no-such-group-x1"}));
}

}  // namespace
}  // namespace nicsync::watch
