// Fuzz target: one line of a Vault audit device as the daemon reads it (`watch::parse_audit_entry`,
// reference vault-audit.md §1–§2). Anything gives a hint or a vault_bad_response error; the
// quick read (stopping once an entry is known to be ignored) never disagrees with the whole
// read, what is kept is what a document parser finds at those places, and errors quote nothing.
#include "nicsync/watch/audit_entry.hpp"

#include <array>

#include <boost/json/parse.hpp>

#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"

namespace {

using namespace nicsync;
using watch::AuditHint;

// Seeds put this in data values (as log_raw writes them); no error message may quote it.
constexpr std::string_view kPlanted = "Pl4nted-Secret";

// What is kept is exactly the routing strings, as a document parser finds them (so nothing of
// a value is): compared wherever the document has a string there.
void check_against_document(std::string_view line, const AuditHint& h) {
  boost::system::error_code ec;
  const auto doc = boost::json::parse(line.substr(line.find('{')), ec);
  if (ec || !doc.is_object()) return;            // deeper than the document parser's default, say
  using Path = std::array<std::string_view, 3>;  // member names, "" after the last
  auto at = [&](const Path& path) {
    const boost::json::value* v = &doc;
    for (std::string_view key : path) {
      if (key.empty()) break;
      if (v == nullptr || !v->is_object()) return static_cast<const boost::json::value*>(nullptr);
      v = v->as_object().if_contains(key);
    }
    return v;
  };
  const std::pair<Path, const std::string*> fields[] = {
      {{"time"}, &h.time},
      {{"request", "id"}, &h.request_id},
      {{"request", "path"}, &h.path},
      {{"request", "mount_point"}, &h.mount_point},
      {{"request", "mount_type"}, &h.mount_type},
      {{"request", "namespace", "path"}, &h.namespace_path},
  };
  for (const auto& [path, kept] : fields) {
    const auto* v = at(path);
    if (v != nullptr && v->is_string()) NICSYNC_FUZZ_CHECK(audit_entry, std::string_view(v->as_string()) == *kept);
  }
  if (const auto* type = at({"type"}); type != nullptr && h.kv_change()) {
    NICSYNC_FUZZ_CHECK(audit_entry, type->is_string() && type->as_string() == "response");
  }
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
  check_against_document(line, *whole);
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
