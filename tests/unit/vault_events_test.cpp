// Parsing Vault's CloudEvents messages (reference §6.4–§6.5) into KvEvent.
#include <gtest/gtest.h>

#include "nicsync/vault/events.hpp"

namespace nicsync::vault {
namespace {

// §6.5, one line as sent in a text frame.
constexpr std::string_view kDataWrite =
    R"({"id":"3f2c9a1e-77b4-4c2e-9d0a-5b6c7d8e9f01","source":"vault://vault-node-1","specversion":"1.0",)"
    R"("type":"*","data":{"event":{"id":"3f2c9a1e-77b4-4c2e-9d0a-5b6c7d8e9f01","metadata":{"current_version":"4",)"
    R"("data_path":"secret/data/app/db","modified":"true","oldest_version":"0","operation":"data-write",)"
    R"("path":"secret/data/app/db","vault_index":"djE6Y2x1c3Rlci0xOjQ0OjQ0OmFiY2RlZg=="}},)"
    R"("event_type":"kv-v2/data-write","plugin_info":{"mount_class":"secret","mount_accessor":"kv_1a2b3c4d",)"
    R"("mount_path":"secret/","plugin":"kv"}},"datacontentype":"application/cloudevents",)"
    R"("time":"2025-03-05T09:00:00.123456-08:00"})";

std::string event(std::string_view type, std::string_view metadata, std::string_view mount_path = "secret/",
                  std::string_view extra = "") {
  return fmt::format(R"({{"id":"e1","source":"vault://n","specversion":"1.0","type":"*","data":{{"event":{{"id":"e1",)"
                     R"("metadata":{{{}}}}},"event_type":"{}","plugin_info":{{"mount_path":"{}","plugin":"kv"}}{}}},)"
                     R"("datacontentype":"application/cloudevents","time":"2025-03-05T09:00:00Z"}})",
                     metadata, type, mount_path, extra);
}

TEST(VaultEvents, DataWriteFromTheReference) {
  auto ev = parse_kv_event(kDataWrite);
  ASSERT_TRUE(ev) << ev.error().describe();
  EXPECT_EQ(ev->id, "3f2c9a1e-77b4-4c2e-9d0a-5b6c7d8e9f01");
  EXPECT_EQ(ev->event_type, "kv-v2/data-write");
  EXPECT_EQ(ev->operation, "data-write");
  EXPECT_EQ(ev->mount, "secret");
  EXPECT_EQ(ev->key, "app/db");
  EXPECT_EQ(ev->data_path, "secret/data/app/db");
  EXPECT_EQ(ev->current_version, 4);
  EXPECT_EQ(ev->oldest_version, 0);
  EXPECT_EQ(ev->vault_index, "djE6Y2x1c3Rlci0xOjQ0OjQ0OmFiY2RlZg==");
  EXPECT_EQ(ev->time, "2025-03-05T09:00:00.123456-08:00");
  EXPECT_TRUE(ev->vault_namespace.empty());
}

TEST(VaultEvents, EveryKvV2EventTypeGivesMountAndKey) {
  struct Case {
    std::string type;
    std::string metadata;
    std::vector<std::int64_t> versions;
  };
  const Case cases[] = {
      {"kv-v2/data-patch",
       R"("current_version":"5","data_path":"secret/data/nic/X","modified":"true","oldest_version":"0",)"
       R"("operation":"data-patch","path":"secret/data/nic/X")",
       {}},
      {"kv-v2/data-delete",
       R"("current_version":"5","modified":"true","oldest_version":"0","operation":"data-delete",)"
       R"("path":"secret/data/nic/X")",
       {}},
      {"kv-v2/delete",
       R"("current_version":"5","deleted_versions":"[1,2]","modified":"true","oldest_version":"0",)"
       R"("operation":"delete","path":"secret/delete/nic/X")",
       {1, 2}},
      {"kv-v2/undelete",
       R"("current_version":"5","data_path":"secret/data/nic/X","modified":"true","oldest_version":"0",)"
       R"("operation":"undelete","path":"secret/undelete/nic/X","undeleted_versions":"[2]")",
       {2}},
      {"kv-v2/destroy",
       R"("current_version":"5","destroyed_versions":"[3]","modified":"true","oldest_version":"0",)"
       R"("operation":"destroy","path":"secret/destroy/nic/X")",
       {3}},
      {"kv-v2/metadata-write",
       R"("data_path":"secret/metadata/nic/X","modified":"true","operation":"metadata-write",)"
       R"("path":"secret/metadata/nic/X")",
       {}},
      {"kv-v2/metadata-patch",
       R"("data_path":"secret/metadata/nic/X","modified":"true","operation":"metadata-patch",)"
       R"("path":"secret/metadata/nic/X")",
       {}},
      {"kv-v2/metadata-delete",
       R"("modified":"true","operation":"metadata-delete","path":"secret/metadata/nic/X")",
       {}},
  };
  for (const auto& c : cases) {
    auto ev = parse_kv_event(event(c.type, c.metadata));
    ASSERT_TRUE(ev) << c.type << ": " << ev.error().describe();
    EXPECT_EQ(ev->event_type, c.type);
    EXPECT_EQ(ev->operation, c.type.substr(6));
    EXPECT_EQ(ev->mount, "secret") << c.type;
    EXPECT_EQ(ev->key, "nic/X") << c.type;
    EXPECT_EQ(ev->versions, c.versions) << c.type;
  }
  auto config = parse_kv_event(event("kv-v2/config-write",
                                     R"("data_path":"secret/config","modified":"true","operation":"config-write",)"
                                     R"("path":"secret/config")"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->key, "");
}

TEST(VaultEvents, NestedMountsNamespacesKvV1AndOldMountRelativePaths) {
  auto nested = parse_kv_event(event("kv-v2/data-write",
                                     R"("current_version":"1","data_path":"kv/team-a/data/nic/X",)"
                                     R"("operation":"data-write","path":"kv/team-a/data/nic/X")",
                                     "kv/team-a/", R"(,"namespace":"ns1/")"));
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->mount, "kv/team-a");
  EXPECT_EQ(nested->key, "nic/X");
  EXPECT_EQ(nested->vault_namespace, "ns1/");

  auto v1 = parse_kv_event(event(
      "kv-v1/write", R"("data_path":"kv1/nic/X","modified":"true","operation":"write","path":"kv1/nic/X")", "kv1/"));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->key, "nic/X");
  EXPECT_FALSE(v1->current_version);

  // 1.13/1.14: mount-relative paths and no "operation".
  auto old = parse_kv_event(event("kv-v2/data-write", R"("current_version":"2","path":"data/nic/X")"));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->key, "nic/X");
  EXPECT_EQ(old->operation, "data-write");
}

TEST(VaultEvents, MalformedMessages) {
  for (std::string_view bad : {std::string_view("not json"), std::string_view("[]"), std::string_view(R"({"id":"x"})"),
                               std::string_view(R"({"data":{"event_type":"kv-v2/data-write"}})"),
                               std::string_view(R"({"data":{"event":{"metadata":{}}}})")}) {
    auto ev = parse_kv_event(bad);
    ASSERT_FALSE(ev) << bad;
    EXPECT_TRUE(ev.error().is(Errc::vault_bad_response));
  }
  EXPECT_FALSE(parse_kv_event(event("kv-v2/data-write", R"("current_version":"four","path":"secret/data/x")")));
  EXPECT_FALSE(parse_kv_event(event("kv-v2/delete", R"("deleted_versions":"1,2","path":"secret/delete/x")")));
}

}  // namespace
}  // namespace nicsync::vault
