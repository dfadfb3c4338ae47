// Audit lines (reference vault-audit.md §1–§2) read into hints: every example of the reference
// in the three field orders, each KV operation, namespaces, failures, other mounts, prefixes,
// broken and oversized lines.
#include "nicsync/watch/audit_entry.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "testing/vault_audit_examples.hpp"

namespace nicsync::watch {
namespace {

namespace ex = nicsync::testing::vault_audit;

constexpr std::string_view kKv2Path = "secret/nic/07AAFCD5862R1ZX";

/// `s` with every `from` replaced; fails the test when there is none (a typo in a test must
/// not pass as an unchanged line).
std::string replaced(std::string_view s, std::string_view from, std::string_view to) {
  std::string out(s);
  std::size_t at = out.find(from);
  EXPECT_NE(at, std::string::npos) << "no " << from;
  while (at != std::string::npos) {
    out.replace(at, from.size(), to);
    at = out.find(from, at + to.size());
  }
  return out;
}

AuditHint parsed(std::string_view line, AuditScan scan, std::string_view prefix = {}) {
  auto r = parse_audit_entry(line, prefix, scan);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? *r : AuditHint{};
}

/// Both ways of reading a line agree on the verdict, and on everything for a change.
AuditHint both(std::string_view line, std::string_view prefix = {}) {
  const AuditHint whole = parsed(line, AuditScan::whole, prefix);
  const AuditHint quick = parsed(line, AuditScan::until_decided, prefix);
  EXPECT_EQ(quick.verdict, whole.verdict);
  if (whole.kv_change()) {
    EXPECT_EQ(quick.reason, whole.reason);
    EXPECT_EQ(quick.path, whole.path);
    EXPECT_EQ(quick.kv.kv2_path, whole.kv.kv2_path);
    EXPECT_EQ(quick.kv.kv1_path, whole.kv.kv1_path);
    EXPECT_EQ(quick.kv.mount, whole.kv.mount);
    EXPECT_EQ(quick.request_id, whole.request_id);
  }
  return whole;
}

// --- the reference's examples, three field orders --------------------------------------------

struct Expected {
  std::string_view name;
  std::string_view legacy, sorted, time_first;
  AuditIgnoreReason reason;
  AuditOperation operation;
  KvSegment segment;
  std::string_view kv1_path;
  std::string_view mount = "secret";
};

const Expected kExpected[] = {
    {"write request", ex::kLegacyWriteRequest, ex::kSortedWriteRequest, ex::kTimeFirstWriteRequest,
     AuditIgnoreReason::not_response, AuditOperation::update, KvSegment::none, ""},
    {"write", ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse, AuditIgnoreReason::none,
     AuditOperation::update, KvSegment::data, "secret/data/nic/07AAFCD5862R1ZX"},
    {"delete latest", ex::kLegacyDeleteLatest, ex::kSortedDeleteLatest, ex::kTimeFirstDeleteLatest,
     AuditIgnoreReason::none, AuditOperation::del, KvSegment::data, "secret/data/nic/07AAFCD5862R1ZX"},
    {"delete versions", ex::kLegacyDeleteVersions, ex::kSortedDeleteVersions, ex::kTimeFirstDeleteVersions,
     AuditIgnoreReason::none, AuditOperation::update, KvSegment::delete_versions, "secret/delete/nic/07AAFCD5862R1ZX"},
    {"undelete", ex::kLegacyUndelete, ex::kSortedUndelete, ex::kTimeFirstUndelete, AuditIgnoreReason::none,
     AuditOperation::update, KvSegment::undelete, "secret/undelete/nic/07AAFCD5862R1ZX"},
    {"destroy", ex::kLegacyDestroy, ex::kSortedDestroy, ex::kTimeFirstDestroy, AuditIgnoreReason::none,
     AuditOperation::update, KvSegment::destroy, "secret/destroy/nic/07AAFCD5862R1ZX"},
    {"delete metadata", ex::kLegacyDeleteMetadata, ex::kSortedDeleteMetadata, ex::kTimeFirstDeleteMetadata,
     AuditIgnoreReason::none, AuditOperation::del, KvSegment::metadata, "secret/metadata/nic/07AAFCD5862R1ZX"},
    {"kv1 write", ex::kLegacyKv1Write, ex::kSortedKv1Write, ex::kTimeFirstKv1Write, AuditIgnoreReason::none,
     AuditOperation::update, KvSegment::none, "kv1/nic/07AAFCD5862R1ZX", "kv1"},
    {"test probe", ex::kLegacyTestProbe, ex::kSortedTestProbe, ex::kTimeFirstTestProbe, AuditIgnoreReason::not_response,
     AuditOperation::update, KvSegment::none, ""},
};

TEST(AuditEntry, EveryReferenceExampleInEveryFieldOrder) {
  for (const auto& e : kExpected) {
    for (std::string_view line : {e.legacy, e.sorted, e.time_first}) {
      SCOPED_TRACE(fmt::format("{}: {}", e.name, line.substr(0, 60)));
      const AuditHint h = both(line);
      EXPECT_EQ(h.reason, e.reason) << to_string(h.reason);
      EXPECT_EQ(h.operation, e.operation) << to_string(h.operation);
      EXPECT_FALSE(h.error);
      EXPECT_EQ(h.namespace_path, "");
      if (e.reason != AuditIgnoreReason::none) {
        EXPECT_FALSE(h.kv_change());
        EXPECT_NE(h.type, AuditEntryType::response);
        continue;
      }
      ASSERT_TRUE(h.kv_change());
      EXPECT_EQ(h.type, AuditEntryType::response);
      EXPECT_EQ(h.request_id, ex::kRequestId);
      EXPECT_EQ(h.path, e.kv1_path);
      EXPECT_EQ(h.mount_point, std::string(e.mount) + "/");
      EXPECT_EQ(h.mount_type, "kv");
      EXPECT_EQ(h.kv.mount, e.mount);
      EXPECT_EQ(h.kv.kv1_path, e.kv1_path);
      EXPECT_EQ(h.kv.kv2_segment, e.segment);
      EXPECT_EQ(h.kv.kv2_path, e.segment == KvSegment::none ? std::string_view() : kKv2Path);
    }
  }
}

TEST(AuditEntry, OpenBaoWriteIsAChange) {
  const AuditHint h = both(ex::kOpenBaoWriteResponse);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
  EXPECT_EQ(h.kv.kv2_segment, KvSegment::data);
}

TEST(AuditEntry, EveryExampleOfTheSharedListParses) {
  for (const auto& e : ex::kAll) {
    SCOPED_TRACE(e.name);
    both(e.line);
  }
}

TEST(AuditEntry, RequestEntriesAreNotChangesWhateverTheirOperation) {
  for (std::string_view line : {ex::kLegacyWriteRequest, ex::kSortedWriteRequest, ex::kTimeFirstWriteRequest}) {
    for (std::string_view op : {"create", "patch", "delete", "read"}) {
      const AuditHint h = both(replaced(line, R"("operation":"update")", fmt::format(R"("operation":"{}")", op)));
      EXPECT_EQ(h.reason, AuditIgnoreReason::not_response) << "whole reads give the first reason in order";
    }
  }
}

// --- operations -----------------------------------------------------------------------------

TEST(AuditEntry, CreateAndPatchAreChanges) {
  for (std::string_view line : {ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse}) {
    for (auto [text, op] : {std::pair{"create", AuditOperation::create}, std::pair{"patch", AuditOperation::patch}}) {
      const AuditHint h = both(replaced(line, R"("operation":"update")", fmt::format(R"("operation":"{}")", text)));
      ASSERT_TRUE(h.kv_change());
      EXPECT_EQ(h.operation, op);
      EXPECT_EQ(h.kv.kv2_path, kKv2Path);
    }
  }
}

TEST(AuditEntry, ReadsListsAndOtherOperationsAreNotChanges) {
  for (std::string_view line : {ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse}) {
    for (auto [text, op] : {std::pair{"read", AuditOperation::read}, std::pair{"list", AuditOperation::list},
                            std::pair{"help", AuditOperation::other}, std::pair{"renew", AuditOperation::other},
                            std::pair{"", AuditOperation::unknown}}) {
      const AuditHint h = both(replaced(line, R"("operation":"update")", fmt::format(R"("operation":"{}")", text)));
      EXPECT_FALSE(h.kv_change()) << text;
      EXPECT_EQ(h.reason, AuditIgnoreReason::not_a_change) << text;
      EXPECT_EQ(h.operation, op) << text;
    }
    // No operation at all.
    const AuditHint h = both(replaced(line, R"("operation":"update",)", ""));
    EXPECT_EQ(h.reason, AuditIgnoreReason::not_a_change);
  }
}

// The daemon knows its own reads of a watched key when they come back through the feed (the
// feed's health): a read is read through to the end of its request object, even quickly.
TEST(AuditEntry, AReadKeepsItsPathEvenReadQuickly) {
  for (std::string_view line : {ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse,
                                ex::kLegacyWriteRequest, ex::kSortedWriteRequest, ex::kTimeFirstWriteRequest}) {
    std::string read = replaced(line, R"("operation":"update")", R"("operation":"read")");
    read = replaced(read, R"("path":"secret/data/nic/07AAFCD5862R1ZX")",
                    R"("path":"secret/metadata/nic/07AAFCD5862R1ZX")");
    const bool legacy_request = line == ex::kLegacyWriteRequest;
    const AuditHint quick = parsed(read, AuditScan::until_decided);
    EXPECT_FALSE(quick.kv_change());
    if (legacy_request) {
      // `type` comes first in this order: a request entry is decided before its request.
      EXPECT_EQ(quick.reason, AuditIgnoreReason::not_response);
      continue;
    }
    EXPECT_EQ(quick.reason, AuditIgnoreReason::not_a_change);
    EXPECT_EQ(quick.operation, AuditOperation::read);
    EXPECT_EQ(quick.path, "secret/metadata/nic/07AAFCD5862R1ZX");
    EXPECT_EQ(quick.mount_point, "secret/");
    EXPECT_EQ(quick.request_id, ex::kRequestId);
  }
  // A list is still decided at its operation.
  const AuditHint list = parsed(replaced(ex::kSortedWriteResponse, R"("operation":"update")", R"("operation":"list")"),
                                AuditScan::until_decided);
  EXPECT_EQ(list.reason, AuditIgnoreReason::not_a_change);
  EXPECT_TRUE(list.path.empty()) << "read no further than its operation";
}

TEST(AuditEntry, TheTimeIsKeptAsSent) {
  EXPECT_EQ(both(ex::kLegacyWriteResponse).time, "2025-06-05T16:10:22.29241Z");
  EXPECT_EQ(both(ex::kSortedWriteResponse).time, "2025-06-05T16:10:22.29241Z");
  EXPECT_EQ(both(ex::kTimeFirstWriteResponse).time, "2025-06-05T16:10:22.29241Z");
}

TEST(AuditEntry, KvV2PathsThatNameNoKeyGiveOnlyTheV1Reading) {
  // On a KV v2 mount these change no key the daemon reads; on a KV v1 mount they are keys.
  for (std::string_view sub : {"config", "subkeys/nic/X", "detailed-metadata/nic/X", "data/", "nic/X"}) {
    const std::string path = fmt::format("secret/{}", sub);
    const AuditHint h = both(replaced(ex::kLegacyWriteResponse, "secret/data/nic/07AAFCD5862R1ZX", path));
    ASSERT_TRUE(h.kv_change()) << sub;
    EXPECT_EQ(h.kv.kv2_path, "") << sub;
    EXPECT_EQ(h.kv.kv2_segment, KvSegment::none);
    EXPECT_EQ(h.kv.kv1_path, path);
  }
  for (std::string_view path : {"secret", "secret/"}) {
    const AuditHint h = both(replaced(ex::kLegacyWriteResponse, R"("path":"secret/data/nic/07AAFCD5862R1ZX")",
                                      fmt::format(R"("path":"{}")", path)));
    EXPECT_EQ(h.reason, AuditIgnoreReason::no_key) << path;
  }
}

TEST(AuditEntry, KeysWithSlashesAndEscapesKeepTheirWholePath) {
  // Go's encoder writes & < > as \u0026 \u003c \u003e; the path is compared decoded.
  const AuditHint h = both(replaced(ex::kSortedWriteResponse, "secret/data/nic/07AAFCD5862R1ZX",
                                    R"(secret/data/a\u0026b/\u003cc\u003e/d\u00e9j\u00e0)"));
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, "secret/a&b/<c>/d\u00e9j\u00e0");
}

// --- namespaces and mounts ------------------------------------------------------------------

std::string in_namespace(std::string_view line, std::string_view ns_path, std::string_view mount = "secret/") {
  std::string out = replaced(line, R"("namespace":{"id":"root"})",
                             fmt::format(R"("namespace":{{"id":"Xq3vB","path":"{}"}})", ns_path));
  return replaced(out, R"("mount_point":"secret/")", fmt::format(R"("mount_point":"{}{}")", ns_path, mount));
}

TEST(AuditEntry, NamespacePrefixIsTakenOffTheMount) {
  for (std::string_view line :
       {ex::kLegacyWriteResponse, ex::kSortedWriteResponse, ex::kTimeFirstWriteResponse, ex::kSortedDeleteLatest}) {
    const AuditHint h = both(in_namespace(line, "team1/app/"));
    ASSERT_TRUE(h.kv_change());
    EXPECT_EQ(h.namespace_path, "team1/app/");
    EXPECT_EQ(h.mount_point, "team1/app/secret/");
    EXPECT_EQ(h.kv.mount, "secret");
    EXPECT_EQ(h.kv.kv2_path, kKv2Path);
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, "team1/app"), kKv2Path);
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, "/team1/app/"), kKv2Path);
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, "team1"), "app/secret/nic/07AAFCD5862R1ZX");
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, ""), "team1/app/secret/nic/07AAFCD5862R1ZX");
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, "team2"), std::nullopt);
    EXPECT_EQ(path_in_namespace(h.namespace_path, h.kv.kv2_path, "team1/ap"), std::nullopt);
  }
  // The root namespace's keys are not those of a watched child namespace.
  EXPECT_EQ(path_in_namespace("", kKv2Path, "team1"), std::nullopt);
  EXPECT_EQ(path_in_namespace("", kKv2Path, ""), kKv2Path);
}

TEST(AuditEntry, MountPointWithoutItsNamespaceStillCutsThePath) {
  // Should a Vault send the mount relative to the namespace, it is used as it is.
  const std::string line = replaced(ex::kLegacyWriteResponse, R"("namespace":{"id":"root"})",
                                    R"("namespace":{"id":"Xq3vB","path":"team1/"})");
  const AuditHint h = both(line);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
}

TEST(AuditEntry, WithoutMountPointThePathIsAllThereIs) {
  // Vault 1.13 has no mount_point: the caller splits the path at a mount it knows.
  const std::string line = replaced(ex::kLegacyWriteResponse, R"("mount_point":"secret/",)", "");
  const AuditHint h = both(line);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.mount, "");
  EXPECT_EQ(h.kv.kv2_path, "");
  EXPECT_EQ(h.kv.kv1_path, "secret/data/nic/07AAFCD5862R1ZX");
  const AuditKvTarget t = kv_target_below(h.path, "secret/");
  EXPECT_EQ(t.mount, "secret");
  EXPECT_EQ(t.kv2_path, kKv2Path);
  EXPECT_EQ(t.kv2_segment, KvSegment::data);
  EXPECT_EQ(kv_target_below(h.path, "secre").mount, "");
  EXPECT_EQ(kv_target_below(h.path, "other").mount, "");
  EXPECT_EQ(kv_target_below("secret", "secret").mount, "");
  // A mount of several segments.
  EXPECT_EQ(kv_target_below("team/kv/data/a/b", "team/kv").kv2_path, "team/kv/a/b");
}

TEST(AuditEntry, MountPointThePathDoesNotLieBelowLeavesTheMountOpen) {
  const AuditHint h = both(replaced(ex::kLegacyWriteResponse, R"("mount_point":"secret/")", R"("mount_point":"x/")"));
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.mount, "");
  EXPECT_EQ(h.kv.kv1_path, h.path);
}

TEST(AuditEntry, OtherEnginesAreNotKv) {
  for (std::string_view type : {"system", "token", "approle", "identity", "cubbyhole", "transit"}) {
    const AuditHint h =
        both(replaced(ex::kSortedWriteResponse, R"("mount_type":"kv")", fmt::format(R"("mount_type":"{}")", type)));
    EXPECT_EQ(h.reason, AuditIgnoreReason::not_kv) << type;
  }
  // Very old KV v1 mounts may call themselves "generic".
  EXPECT_TRUE(both(replaced(ex::kLegacyKv1Write, R"("mount_type":"kv")", R"("mount_type":"generic")")).kv_change());
  // Without a mount type, the system paths are known by their first segment.
  const std::string untyped = replaced(ex::kLegacyWriteResponse, R"("mount_type":"kv",)", "");
  EXPECT_TRUE(both(untyped).kv_change());
  for (std::string_view path : {"sys/audit/test", "auth/approle/login", "identity/entity", "cubbyhole/x"}) {
    const AuditHint h = both(replaced(untyped, "secret/data/nic/07AAFCD5862R1ZX", path));
    EXPECT_EQ(h.reason, AuditIgnoreReason::not_kv) << path;
  }
}

// A login's response entry as Vault 1.14 writes it (values HMAC'd): not KV.
constexpr std::string_view kLogin =
    R"({"time":"2025-06-05T16:05:10.1Z","type":"response","auth":{"client_token":"hmac-sha256:aa","accessor":)"
    R"("hmac-sha256:bb","display_name":"approle","policies":["default","nic-writer"],"token_policies":["default",)"
    R"("nic-writer"],"metadata":{"role_name":"nic-writer"},"entity_id":"e","token_type":"service","token_ttl":3600},)"
    R"("request":{"id":"r","operation":"update","mount_point":"auth/approle/","mount_type":"approle","mount_accessor":)"
    R"("auth_approle_1","mount_class":"auth","namespace":{"id":"root"},"path":"auth/approle/login","data":)"
    R"({"role_id":"hmac-sha256:cc","secret_id":"hmac-sha256:dd"},"remote_address":"127.0.0.1"},"response":{"auth":)"
    R"({"client_token":"hmac-sha256:aa"},"mount_point":"auth/approle/","mount_type":"approle"}})";

TEST(AuditEntry, LoginIsNotKv) { EXPECT_EQ(both(kLogin).reason, AuditIgnoreReason::not_kv); }

// --- failures -------------------------------------------------------------------------------

constexpr std::string_view kDenied = R"("1 error occurred:\n\t* permission denied\n\n")";

TEST(AuditEntry, AnErrorMakesAnyEntryAFailure) {
  // Legacy: error after response; sorted and time-first: right after auth.
  const std::string legacy = std::string(ex::kLegacyWriteResponse.substr(0, ex::kLegacyWriteResponse.size() - 1)) +
                             R"(,"error":)" + std::string(kDenied) + "}";
  const std::string sorted = replaced(ex::kSortedWriteResponse, R"(},"request":{"client_id")",
                                      fmt::format(R"(}},"error":{},"request":{{"client_id")", kDenied));
  const std::string time_first = replaced(ex::kTimeFirstWriteResponse, R"(},"request":{"client_id")",
                                          fmt::format(R"(}},"error":{},"request":{{"client_id")", kDenied));
  for (const std::string& line : {legacy, sorted, time_first}) {
    const AuditHint h = both(line);
    EXPECT_EQ(h.reason, AuditIgnoreReason::failed);
    EXPECT_TRUE(h.error);
  }
  // An empty or null error is none.
  EXPECT_TRUE(both(replaced(sorted, kDenied, R"("")")).kv_change());
  EXPECT_TRUE(both(replaced(sorted, kDenied, "null")).kv_change());
  // Not a string, still an error.
  EXPECT_EQ(both(replaced(sorted, kDenied, R"(["denied"])")).reason, AuditIgnoreReason::failed);
  EXPECT_EQ(both(replaced(sorted, kDenied, R"({"a":1})")).reason, AuditIgnoreReason::failed);
  EXPECT_EQ(both(replaced(sorted, kDenied, "1")).reason, AuditIgnoreReason::failed);
}

TEST(AuditEntry, AnErrorKeyInResponseDataIsAFailure) {
  // A backend's error response: {"error": <HMAC of the message>}.
  for (std::string_view line : {ex::kLegacyWriteResponse, ex::kSortedWriteResponse}) {
    const AuditHint h = both(replaced(line, R"("data":{"created_time")", R"("data":{"error":"hmac-sha256:0f","x")"));
    EXPECT_EQ(h.reason, AuditIgnoreReason::failed);
    EXPECT_TRUE(h.error);
  }
  // The same key anywhere else is data like any other.
  const AuditHint h =
      both(replaced(ex::kSortedWriteResponse, R"("data":{"data":{"legal_name")", R"("data":{"data":{"error")"));
  EXPECT_TRUE(h.kv_change());
}

// --- field lookup by name -------------------------------------------------------------------

TEST(AuditEntry, LookalikeKeysElsewhereDoNotCount) {
  // Keys named like the ones looked for, inside data, auth metadata and unknown objects.
  const std::string tricky =
      replaced(ex::kSortedWriteResponse, R"("data":{"data":{"legal_name")",
               R"("data":{"type":"request","operation":"read","path":"sys/x","mount_type":"system","namespace":)"
               R"({"path":"evil/"},"error":"x","request":{"path":"y"},"data":{"legal_name")");
  const std::string more = replaced(tricky, R"("metadata":{"role_name":"nic-writer"})",
                                    R"("metadata":{"role_name":"nic-writer","type":"request","error":"e"})");
  const std::string unknown = replaced(more, R"("time":"2025-06-05T16:10:22.29241Z")",
                                       R"("time":"2025-06-05T16:10:22.29241Z","extra":{"type":"request",)"
                                       R"("error":"e","request":{"operation":"read"}},"list":[{"type":"x"}])");
  const AuditHint h = both(unknown);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
  EXPECT_EQ(h.namespace_path, "");
}

TEST(AuditEntry, EscapedKeysAreFoundByName) {
  const std::string line =
      replaced(replaced(ex::kSortedWriteResponse, R"("type":"response")", R"("t\u0079pe":"respons\u0065")"),
               R"("path":"secret/data/)", R"("p\u0061th":"secret\/data\/)");
  const AuditHint h = both(line);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
}

TEST(AuditEntry, ARepeatedMemberCannotUndoAVerdict) {
  // Go never repeats a member; if a line does, "request" anywhere keeps it out.
  const std::string twice =
      replaced(ex::kLegacyWriteResponse, R"("type":"response")", R"("type":"request","type":"response")");
  EXPECT_FALSE(both(twice).kv_change());
  const std::string ops =
      replaced(ex::kLegacyWriteResponse, R"("operation":"update")", R"("operation":"read","operation":"update")");
  EXPECT_FALSE(both(ops).kv_change());
  // An object or array where a string belongs counts against the entry too, repeated or not
  // (a reader that keeps the last member would see no "response" there).
  const std::string object_type =
      replaced(ex::kLegacyWriteResponse, R"("type":"response")", R"("type":"response","type":{"a":"response"})");
  EXPECT_EQ(both(object_type).reason, AuditIgnoreReason::not_response);
  EXPECT_EQ(both(replaced(ex::kSortedWriteResponse, R"("operation":"update")", R"("operation":["update"])")).reason,
            AuditIgnoreReason::not_a_change);
}

TEST(AuditEntry, MissingOptionalPartsAreFine) {
  // 1.18+: no auth at all (an unauthenticated request), no response (nil), no namespace path.
  const std::string no_auth =
      "{" + std::string(ex::kSortedDeleteLatest.substr(ex::kSortedDeleteLatest.find("\"request\"")));
  const AuditHint h = both(no_auth);
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
  // Only what the verdict needs.
  const AuditHint minimal =
      both(R"({"type":"response","request":{"operation":"update","path":"secret/data/a","mount_point":"secret/"}})");
  ASSERT_TRUE(minimal.kv_change());
  EXPECT_EQ(minimal.kv.kv2_path, "secret/a");
  EXPECT_EQ(both(R"({})").reason, AuditIgnoreReason::not_response);
  EXPECT_EQ(both(R"({"type":"response"})").reason, AuditIgnoreReason::not_a_change);
  EXPECT_EQ(both(R"({"type":"response","request":{"operation":"update"}})").reason, AuditIgnoreReason::no_key);
  EXPECT_EQ(both(R"({"type":"secret-response","request":{"operation":"update","path":"a/b"}})").reason,
            AuditIgnoreReason::not_response);
  EXPECT_EQ(both(R"({"type":7,"request":{"operation":"update","path":"a/b"}})").reason,
            AuditIgnoreReason::not_response);
}

// --- framing: prefix, newline ---------------------------------------------------------------

TEST(AuditEntry, PrefixAndNewline) {
  const std::string line = std::string(ex::kSortedWriteResponse);
  for (const std::string& framed : {line + "\n", line + "\r\n", line + " \n", "vault-audit: " + line + "\n"}) {
    EXPECT_TRUE(both(framed, "vault-audit: ").kv_change()) << framed.substr(0, 20);
    EXPECT_TRUE(both(framed).kv_change()) << "without the prefix named, the JSON starts at the first {";
  }
  // A prefix with a brace of its own is found only when named.
  const std::string braced = "{audit} " + line + "\n";
  EXPECT_TRUE(both(braced, "{audit} ").kv_change());
  EXPECT_FALSE(parse_audit_entry(braced, "", AuditScan::whole));
  // The prefix given but not on the line: the first { again.
  EXPECT_TRUE(both(line, "other: ").kv_change());
}

// --- broken lines ---------------------------------------------------------------------------

void expect_malformed(std::string_view line) {
  for (AuditScan scan : {AuditScan::whole, AuditScan::until_decided}) {
    auto r = parse_audit_entry(line, {}, scan);
    ASSERT_FALSE(r) << line.substr(0, 80);
    EXPECT_TRUE(r.error().is(Errc::vault_bad_response));
    EXPECT_NE(r.error().message.find("audit entry is"), std::string::npos) << r.error().message;
  }
}

TEST(AuditEntry, GarbageIsAnErrorNeverAThrow) {
  for (std::string_view line : {"", "\n", "hello", "[1,2]", "\"string\"", "42", "{", "}", "{]", "{\"type\"}",
                                "{\"type\":\"response\",}", "{'type':'response'}", "{\"a\":1}{\"b\":2}", "{\"a\":1} x",
                                "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\\x\"}", "nothing {"}) {
    expect_malformed(line);
  }
}

TEST(AuditEntry, ErrorsQuoteNothingOfTheLine) {
  const std::string line = replaced(ex::kLegacyWriteResponse, "hmac-sha256:4666db5c", "s3cr3t-pass\x01word");
  auto r = parse_audit_entry(line, {}, AuditScan::whole);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("s3cr3t"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(fmt::format("of {}", line.size())), std::string::npos) << r.error().message;
}

TEST(AuditEntry, EveryTruncationIsAnErrorOrIgnoredNeverAChange) {
  for (const auto& e : ex::kAll) {
    for (std::size_t cut = 0; cut < e.line.size(); ++cut) {
      const std::string_view part = e.line.substr(0, cut);
      auto whole = parse_audit_entry(part, {}, AuditScan::whole);
      ASSERT_FALSE(whole) << e.name << " cut at " << cut;
      auto quick = parse_audit_entry(part, {}, AuditScan::until_decided);
      if (quick) {
        // Decided before the cut: a request entry, the probe.
        EXPECT_FALSE(quick->kv_change()) << e.name << " cut at " << cut;
      }
    }
  }
}

TEST(AuditEntry, NestingAsDeepAsGoAllows) {
  std::string deep = R"({"type":"response","request":{"operation":"update","path":"secret/data/a",)"
                     R"("mount_point":"secret/","data":)";
  const std::size_t levels = 9'990;
  deep += std::string(levels, '[') + std::string(levels, ']') + "}}";
  EXPECT_TRUE(both(deep).kv_change());
  std::string deeper = R"({"a":)" + std::string(10'001, '[') + std::string(10'001, ']') + "}";
  expect_malformed(deeper);
}

// --- size -----------------------------------------------------------------------------------

/// A response entry of a LIST with `keys` keys of 80 bytes (HMAC'd, as Vault writes them).
std::string list_entry(std::size_t keys) {
  std::string line = replaced(ex::kLegacyWriteResponse, R"("operation":"update")", R"("operation":"list")");
  line = replaced(line, "secret/data/nic/07AAFCD5862R1ZX", "secret/metadata/nic/");
  const std::string key = R"("hmac-sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")";
  std::string data = R"("data":{"keys":[)";
  for (std::size_t i = 0; i < keys; ++i) {
    if (i) data += ',';
    data += key;
  }
  data += "]}";
  const auto at = line.find(R"("data":{"created_time")");
  const auto end = line.find("}}}", at);
  return line.substr(0, at) + data + line.substr(end + 1);
}

TEST(AuditEntry, LargeListIsIgnoredBeforeItsDataIsRead) {
  const std::string list = list_entry(10'000);
  ASSERT_GT(list.size(), 750'000u);
  EXPECT_EQ(both(list).reason, AuditIgnoreReason::not_a_change);
  // Proof that the quick read stops at the operation: a broken tail goes unnoticed there.
  const std::string broken = list.substr(0, list.size() - 40);
  EXPECT_FALSE(parse_audit_entry(broken, {}, AuditScan::whole));
  auto quick = parse_audit_entry(broken, {}, AuditScan::until_decided);
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->reason, AuditIgnoreReason::not_a_change);
}

/// A KV write whose request data holds one value of `bytes` characters (plain, as log_raw writes it).
std::string write_of(std::size_t bytes, std::string_view scan_from = ex::kSortedWriteResponse) {
  std::string line(scan_from);
  const std::string old =
      R"("legal_name":"hmac-sha256:4666db5cf5113266c28f631fef3420c3d4a32e4da7240f8f36bb4c90b64f3109")";
  return replaced(line, old, fmt::format(R"("legal_name":"{}")", std::string(bytes, 'v')));
}

TEST(AuditEntry, LinesUpToTheLimitAreReadLongerOnesAreNot) {
  const std::size_t base = write_of(0).size();
  const std::string at_limit = write_of(kMaxAuditLineBytes - base);
  ASSERT_EQ(at_limit.size(), kMaxAuditLineBytes);
  const AuditHint h = both(at_limit + "\n");
  ASSERT_TRUE(h.kv_change());
  EXPECT_EQ(h.kv.kv2_path, kKv2Path);
  const std::string over = write_of(kMaxAuditLineBytes - base + 1);
  for (AuditScan scan : {AuditScan::whole, AuditScan::until_decided}) {
    auto r = parse_audit_entry(over, {}, scan);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->kv_change());
    EXPECT_EQ(r->reason, AuditIgnoreReason::too_large);
    // Even garbage of that size is not looked at.
    auto g = parse_audit_entry(std::string(kMaxAuditLineBytes + 1, 'x'), {}, scan);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->reason, AuditIgnoreReason::too_large);
  }
}

// --- nothing of the values is kept ----------------------------------------------------------

std::string everything_kept(const AuditHint& h) {
  return h.request_id + "|" + h.path + "|" + h.mount_point + "|" + h.mount_type + "|" + h.namespace_path + "|" +
         h.kv.mount + "|" + h.kv.kv1_path + "|" + h.kv.kv2_path;
}

TEST(AuditEntry, ValuesOfTheEntryAreNeverKept) {
  // log_raw: values in clear, in request and response data, auth and headers.
  std::string raw =
      replaced(ex::kSortedWriteResponse, "hmac-sha256:4666db5cf5113266c28f631fef3420c3d4a32e4da7240f8f36bb4c90b64f3109",
               "P@ssw0rd-raw-1");
  raw =
      replaced(raw, "hmac-sha256:42a6ed19fa2a9cd0cc559b8303e97d534767278644b8bff565fea17aede841e5", "hvs.raw-token-2");
  raw = replaced(raw, R"("destroyed":false)", R"("destroyed":false,"password":"P@ssw0rd-raw-3")");
  for (AuditScan scan : {AuditScan::whole, AuditScan::until_decided}) {
    auto h = parse_audit_entry(raw, {}, scan);
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->kv_change());
    const std::string kept = everything_kept(*h);
    EXPECT_EQ(kept.find("raw-"), std::string::npos) << kept;
    EXPECT_EQ(kept.find("hmac"), std::string::npos) << kept;
  }
}

// --- cost -----------------------------------------------------------------------------------

// Not a benchmark (the dev build is -O0): a guard against a parser that becomes quadratic or
// builds a document of the whole line. Figures: tests/bench/audit_entry_bench.cpp.
TEST(AuditEntry, HugeLinesStayCheap) {
  const std::string list = list_entry(50'000);  // ~4 MiB
  ASSERT_LT(list.size(), kMaxAuditLineBytes);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(parse_audit_entry(list, {}, AuditScan::whole));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(3)) << "three whole reads of a 4 MiB line";
}

}  // namespace
}  // namespace nicsync::watch
