// Fuzz target: one line of a Vault audit device as the daemon reads it (`watch::parse_audit_entry`,
// reference vault-audit.md §1–§2). Anything gives a hint or a vault_bad_response error; the
// quick read (stopping once an entry is known to be ignored) never disagrees with the whole
// read, and nothing an entry holds in its values is kept or quoted.
#include "nicsync/watch/audit_entry.hpp"

#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"

namespace {

using namespace nicsync;
using watch::AuditHint;

// Seeds put this in data values (as log_raw writes them); nothing kept or quoted may hold it.
constexpr std::string_view kPlanted = "Pl4nted-Secret";

bool kept_nothing_planted(const AuditHint& h) {
  for (const std::string* s : {&h.request_id, &h.mount_point, &h.mount_type, &h.namespace_path}) {
    if (fuzz::contains(*s, kPlanted)) return false;
  }
  return true;
}

void check_change(const AuditHint& h) {
  NICSYNC_FUZZ_CHECK(audit_entry, h.reason == watch::AuditIgnoreReason::none);
  NICSYNC_FUZZ_CHECK(audit_entry, h.type == watch::AuditEntryType::response);
  NICSYNC_FUZZ_CHECK(audit_entry, !h.error);
  NICSYNC_FUZZ_CHECK(audit_entry,
                     h.operation == watch::AuditOperation::create || h.operation == watch::AuditOperation::update ||
                         h.operation == watch::AuditOperation::patch || h.operation == watch::AuditOperation::del);
  NICSYNC_FUZZ_CHECK(audit_entry, !h.kv.kv1_path.empty());
  NICSYNC_FUZZ_CHECK(audit_entry, h.kv.kv1_path == h.path);
  NICSYNC_FUZZ_CHECK(audit_entry, !h.kv.mount.starts_with('/') && !h.kv.mount.ends_with('/'));
  if (h.kv.kv2_path.empty()) {
    NICSYNC_FUZZ_CHECK(audit_entry, h.kv.kv2_segment == watch::KvSegment::none);
  } else {
    NICSYNC_FUZZ_CHECK(audit_entry, h.kv.kv2_segment != watch::KvSegment::none);
    NICSYNC_FUZZ_CHECK(audit_entry, h.kv.kv2_path.starts_with(h.kv.mount + "/"));
    NICSYNC_FUZZ_CHECK(audit_entry, h.kv.kv2_path.size() < h.path.size());
  }
  // A path found again from the namespace it was written in.
  const auto same = watch::path_in_namespace(h.namespace_path, h.path, h.namespace_path);
  NICSYNC_FUZZ_CHECK(audit_entry, !same || *same == h.path);
}

}  // namespace

NICSYNC_FUZZ_TARGET(audit_entry) {
  const std::string_view line = fuzz::as_text(data, size);
  auto whole = watch::parse_audit_entry(line, {}, watch::AuditScan::whole);
  auto quick = watch::parse_audit_entry(line, {}, watch::AuditScan::until_decided);

  if (!whole) {
    NICSYNC_FUZZ_CHECK(audit_entry, whole.error().is(Errc::vault_bad_response));
    NICSYNC_FUZZ_CHECK(audit_entry, fuzz::clean_text(whole.error().message));
    NICSYNC_FUZZ_CHECK(audit_entry, !fuzz::contains(whole.error().message, kPlanted));
    // The quick read may have stopped before the broken part, but never at a change.
    if (quick) NICSYNC_FUZZ_CHECK(audit_entry, !quick->kv_change());
    return 0;
  }
  NICSYNC_FUZZ_CHECK(audit_entry, quick.has_value());
  NICSYNC_FUZZ_CHECK(audit_entry, quick->verdict == whole->verdict);
  NICSYNC_FUZZ_CHECK(audit_entry, whole->kv_change() == (whole->reason == watch::AuditIgnoreReason::none));
  NICSYNC_FUZZ_CHECK(audit_entry, kept_nothing_planted(*whole));
  if (whole->kv_change()) {
    check_change(*whole);
    NICSYNC_FUZZ_CHECK(audit_entry, quick->path == whole->path && quick->kv.kv2_path == whole->kv.kv2_path &&
                                        quick->kv.mount == whole->kv.mount &&
                                        quick->namespace_path == whole->namespace_path &&
                                        quick->request_id == whole->request_id);
  }

  // The same line behind a prefix reads the same (one that starts with its object: a line with
  // bytes before the "{" reads differently once a prefix is named).
  if (!line.starts_with('{') || line.size() > watch::kMaxAuditLineBytes - 16) return 0;
  std::string framed = "audit: ";
  framed.append(line);
  auto prefixed = watch::parse_audit_entry(framed, "audit: ", watch::AuditScan::whole);
  NICSYNC_FUZZ_CHECK(audit_entry, prefixed.has_value());
  NICSYNC_FUZZ_CHECK(audit_entry, prefixed->verdict == whole->verdict && prefixed->path == whole->path);
  return 0;
}
