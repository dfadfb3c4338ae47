// Audit lines read with Boost.JSON's event parser: every byte is checked as JSON (escapes
// decoded, so a path written as "a\u0026b" is "a&b"), but no document is built. Only the
// strings at the handful of places the verdict needs are copied; everything else, values of
// `data` in particular, passes by without leaving a copy. A line that is decided early (a
// request entry, a read) stops the parse there, so the large `response.data` of a read or a
// LIST is never scanned.
#include "nicsync/watch/audit_entry.hpp"

#include <array>
#include <limits>

#include <boost/json/basic_parser_impl.hpp>
#include <fmt/format.h>

namespace nicsync::watch {
namespace json = boost::json;

namespace {

// Where a value sits: the containers the verdict looks into, and everything else.
enum class Slot : std::uint8_t { other, top, request, request_namespace, response, response_data };

// The member whose value comes next.
enum class Field : std::uint8_t {
  none,
  time,
  type,
  error,
  request,
  response,
  request_id,
  operation,
  path,
  mount_point,
  mount_type,
  namespace_object,
  namespace_path,
  response_data,
};

// Go's decoder refuses deeper nesting; an entry Vault could not have read back is not ours either.
constexpr std::size_t kMaxDepth = 10'000;
// Slots are kept for the first few levels only; every level below is `other` anyway.
constexpr std::size_t kTrackedDepth = 8;
// A key longer than this is none of the keys looked for.
constexpr std::size_t kMaxKey = 16;

bool is_change(AuditOperation op) noexcept {
  return op == AuditOperation::create || op == AuditOperation::update || op == AuditOperation::patch ||
         op == AuditOperation::del;
}

AuditOperation operation_of(std::string_view s) noexcept {
  if (s == "create") return AuditOperation::create;
  if (s == "update") return AuditOperation::update;
  if (s == "patch") return AuditOperation::patch;
  if (s == "delete") return AuditOperation::del;
  if (s == "read") return AuditOperation::read;
  if (s == "list") return AuditOperation::list;
  return AuditOperation::other;
}

bool is_kv_type(std::string_view s) noexcept { return s == "kv" || s == "generic"; }

// Mounts that are never KV engines, by the first segment of a path without a mount type.
bool is_system_path(std::string_view path) noexcept {
  const auto first = path.substr(0, path.find('/'));
  return first == "sys" || first == "auth" || first == "identity" || first == "cubbyhole";
}

// What was seen of one entry. Flags that rule an entry out stay set once set, so a repeated
// member cannot turn a decided entry back into a change.
struct Seen {
  AuditHint* hint = nullptr;
  bool type_seen = false;
  bool type_not_response = false;
  bool operation_not_change = false;
  bool mount_type_not_kv = false;
};

class Handler {
 public:
  static constexpr std::size_t max_array_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_object_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_string_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_key_size = std::numeric_limits<std::size_t>::max();

  Handler() = default;

  void start(AuditHint& hint, bool stop_early) {
    seen_ = Seen{};
    seen_.hint = &hint;
    stop_early_ = stop_early;
    depth_ = 0;
    field_ = Field::none;
    key_size_ = 0;
    in_string_ = false;
    root_object_ = false;
    type_.clear();
    operation_.clear();
    decided_ = AuditIgnoreReason::none;
    read_pending_ = false;
  }
  [[nodiscard]] const Seen& seen() const noexcept { return seen_; }
  [[nodiscard]] bool root_object() const noexcept { return root_object_; }
  [[nodiscard]] AuditIgnoreReason decided() const noexcept { return decided_; }

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }

  bool on_object_begin(boost::system::error_code& ec) {
    if (depth_ == 0) root_object_ = true;
    const Field f = field_;
    push(depth_ == 0 ? Slot::top : slot_for(f));
    return container_value(f, ec);
  }
  bool on_object_end(std::size_t, boost::system::error_code& ec) {
    const bool request_ends = current() == Slot::request;
    pop();
    // A read is decided once its request is read through: its path says whose read it was.
    if (request_ends && read_pending_) {
      read_pending_ = false;
      return decide(AuditIgnoreReason::not_a_change, ec);
    }
    return true;
  }
  bool on_array_begin(boost::system::error_code& ec) {
    const Field f = field_;
    push(Slot::other);
    return container_value(f, ec);
  }
  bool on_array_end(std::size_t, boost::system::error_code&) {
    pop();
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
    append_key(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code& ec) {
    append_key(s);
    const std::string_view key = key_size_ <= kMaxKey ? std::string_view(key_.data(), key_size_) : std::string_view();
    key_size_ = 0;
    field_ = field_of(current(), key);
    if (field_ == Field::error && current() == Slot::response_data) {
      // A backend's error response: the key alone says it (its value is HMAC'd anyway).
      field_ = Field::none;
      return mark_error(ec);
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, boost::system::error_code&) {
    if (std::string* out = target()) {
      if (!in_string_) out->clear();
      out->append(s.data(), s.size());
    }
    in_string_ = true;
    return true;
  }
  bool on_string(json::string_view s, std::size_t total, boost::system::error_code& ec) {
    if (std::string* out = target()) {
      if (!in_string_) out->clear();
      out->append(s.data(), s.size());
    }
    in_string_ = false;
    const Field f = field_;
    field_ = Field::none;
    switch (f) {
      case Field::type: return on_type(ec);
      case Field::error: return total == 0 ? true : mark_error(ec);
      case Field::operation: return on_operation(ec);
      case Field::mount_type: return on_mount_type(ec);
      default: return true;
    }
  }

  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code& ec) { return scalar(true, ec); }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code& ec) { return scalar(true, ec); }
  bool on_double(double, json::string_view, boost::system::error_code& ec) { return scalar(true, ec); }
  bool on_bool(bool b, boost::system::error_code& ec) { return scalar(b, ec); }
  bool on_null(boost::system::error_code& ec) { return scalar(false, ec); }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }

 private:
  [[nodiscard]] Slot current() const noexcept {
    return depth_ == 0 || depth_ > kTrackedDepth ? Slot::other : slots_[depth_ - 1];
  }
  void push(Slot s) {
    if (depth_ < kTrackedDepth) slots_[depth_] = s;
    ++depth_;
    field_ = Field::none;
  }
  void pop() {
    --depth_;
    field_ = Field::none;
  }

  [[nodiscard]] Slot slot_for(Field f) const noexcept {
    switch (f) {
      case Field::request: return Slot::request;
      case Field::response: return Slot::response;
      case Field::namespace_object: return Slot::request_namespace;
      case Field::response_data: return Slot::response_data;
      default: return Slot::other;
    }
  }

  static Field field_of(Slot slot, std::string_view key) noexcept {
    switch (slot) {
      case Slot::top:
        if (key == "time") return Field::time;
        if (key == "type") return Field::type;
        if (key == "error") return Field::error;
        if (key == "request") return Field::request;
        if (key == "response") return Field::response;
        return Field::none;
      case Slot::request:
        if (key == "id") return Field::request_id;
        if (key == "operation") return Field::operation;
        if (key == "path") return Field::path;
        if (key == "mount_point") return Field::mount_point;
        if (key == "mount_type") return Field::mount_type;
        if (key == "namespace") return Field::namespace_object;
        return Field::none;
      case Slot::request_namespace: return key == "path" ? Field::namespace_path : Field::none;
      case Slot::response: return key == "data" ? Field::response_data : Field::none;
      case Slot::response_data: return key == "error" ? Field::error : Field::none;
      case Slot::other: return Field::none;
    }
    return Field::none;
  }

  // Where the string value of the current member goes, if it is one that is kept.
  std::string* target() noexcept {
    AuditHint& h = *seen_.hint;
    switch (field_) {
      case Field::time: return &h.time;
      case Field::type: return &type_;
      case Field::operation: return &operation_;
      case Field::request_id: return &h.request_id;
      case Field::path: return &h.path;
      case Field::mount_point: return &h.mount_point;
      case Field::mount_type: return &h.mount_type;
      case Field::namespace_path: return &h.namespace_path;
      default: return nullptr;
    }
  }

  void append_key(json::string_view s) noexcept {
    if (key_size_ + s.size() <= kMaxKey) std::copy(s.begin(), s.end(), key_.data() + key_size_);
    key_size_ += s.size();
  }

  // An object or array where a string is looked for. `error`: still a failure. `type`,
  // `operation`: neither a response nor a change (so that a repeated member, whichever a
  // reader keeps, cannot make a change of the entry).
  bool container_value(Field f, boost::system::error_code& ec) {
    if (f == Field::error) return mark_error(ec);
    if (f == Field::type) {
      type_.clear();
      return on_type(ec);
    }
    if (f == Field::operation) {
      operation_.clear();
      return on_operation(ec);
    }
    return true;
  }

  // A number, bool or null where a member is looked for: only `error` cares (a non-empty value
  // there means failure); the others stay as if absent.
  bool scalar(bool truthy, boost::system::error_code& ec) {
    const Field f = field_;
    field_ = Field::none;
    if (f == Field::type) return on_type(ec);
    if (f == Field::operation) {
      operation_.clear();
      return on_operation(ec);
    }
    if (f == Field::error && truthy) return mark_error(ec);
    return true;
  }

  bool on_type(boost::system::error_code& ec) {
    AuditHint& h = *seen_.hint;
    seen_.type_seen = true;
    const AuditEntryType t = type_ == "response"  ? AuditEntryType::response
                             : type_ == "request" ? AuditEntryType::request
                                                  : AuditEntryType::unknown;
    type_.clear();
    if (h.type == AuditEntryType::unknown || t != AuditEntryType::response) h.type = t;
    if (t == AuditEntryType::response) return true;
    seen_.type_not_response = true;
    return decide(AuditIgnoreReason::not_response, ec);
  }

  bool on_operation(boost::system::error_code& ec) {
    AuditHint& h = *seen_.hint;
    const AuditOperation op = operation_.empty() ? AuditOperation::unknown : operation_of(operation_);
    operation_.clear();
    if (h.operation == AuditOperation::unknown || !is_change(op)) h.operation = op;
    if (is_change(op)) return true;
    seen_.operation_not_change = true;
    if (op == AuditOperation::read && stop_early_ && current() == Slot::request) {
      read_pending_ = true;  // decided at the end of the request object
      return true;
    }
    return decide(AuditIgnoreReason::not_a_change, ec);
  }

  bool on_mount_type(boost::system::error_code& ec) {
    const std::string& t = seen_.hint->mount_type;
    if (t.empty() || is_kv_type(t)) return true;
    seen_.mount_type_not_kv = true;
    return decide(AuditIgnoreReason::not_kv, ec);
  }

  bool mark_error(boost::system::error_code& ec) {
    seen_.hint->error = true;
    return decide(AuditIgnoreReason::failed, ec);
  }

  bool decide(AuditIgnoreReason reason, boost::system::error_code& ec) {
    if (!stop_early_) return true;
    // Any error stops the parser; `decided_` tells this stop from a real error.
    decided_ = reason;
    ec = boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
    return false;
  }

  Seen seen_;
  bool stop_early_ = true;
  std::size_t depth_ = 0;
  std::array<Slot, kTrackedDepth> slots_{};
  Field field_ = Field::none;
  std::array<char, kMaxKey> key_{};
  std::size_t key_size_ = 0;
  bool in_string_ = false;
  bool root_object_ = false;
  AuditIgnoreReason decided_ = AuditIgnoreReason::none;
  bool read_pending_ = false;  // a read's operation was met; its request is read to the end
  // Compared, then cleared: small enough to stay in the string's own room.
  std::string type_;
  std::string operation_;
};

json::parse_options audit_parse_options() {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  return options;
}

Error malformed(std::string_view what, std::size_t at, std::size_t size) {
  return Error(Errc::vault_bad_response,
               fmt::format("audit entry is {} (at byte {} of {}); the line is skipped", what, at, size));
}

std::string_view json_error_kind(const boost::system::error_code& ec, bool at_end) {
  if (ec == json::error::incomplete || at_end) return "truncated JSON";
  if (ec == json::error::too_deep) return "nested too deeply";
  return "not valid JSON";
}

// The reason an entry is ignored, from what was seen, in the enum's order.
AuditIgnoreReason judge(const Seen& seen) {
  const AuditHint& h = *seen.hint;
  if (!seen.type_seen || seen.type_not_response) return AuditIgnoreReason::not_response;
  if (h.error) return AuditIgnoreReason::failed;
  if (seen.operation_not_change || !is_change(h.operation)) return AuditIgnoreReason::not_a_change;
  if (seen.mount_type_not_kv) return AuditIgnoreReason::not_kv;
  if (h.mount_type.empty() && is_system_path(h.path)) return AuditIgnoreReason::not_kv;
  return AuditIgnoreReason::none;
}

std::string_view trim_slashes(std::string_view s) noexcept {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

// The entry's mount relative to its namespace: `mount_point` carries the namespace prefix.
std::string_view relative_mount(const AuditHint& h) noexcept {
  std::string_view mount = trim_slashes(h.mount_point);
  const std::string_view ns = trim_slashes(h.namespace_path);
  if (!ns.empty() && mount.size() > ns.size() && mount.starts_with(ns) && mount[ns.size()] == '/') {
    mount.remove_prefix(ns.size() + 1);
  }
  return mount;
}

}  // namespace

AuditKvTarget kv_target_below(std::string_view path, std::string_view mount) {
  AuditKvTarget t;
  mount = trim_slashes(mount);
  if (mount.empty() || path.size() <= mount.size() + 1 || !path.starts_with(mount) || path[mount.size()] != '/') {
    return t;
  }
  t.mount = std::string(mount);
  t.kv1_path = std::string(path);
  const std::string_view rest = path.substr(mount.size() + 1);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) return t;
  const std::string_view segment = rest.substr(0, slash);
  KvSegment s = KvSegment::none;
  if (segment == "data") {
    s = KvSegment::data;
  } else if (segment == "metadata") {
    s = KvSegment::metadata;
  } else if (segment == "delete") {
    s = KvSegment::delete_versions;
  } else if (segment == "undelete") {
    s = KvSegment::undelete;
  } else if (segment == "destroy") {
    s = KvSegment::destroy;
  } else {
    return t;
  }
  t.kv2_segment = s;
  t.kv2_path.reserve(mount.size() + rest.size() - slash);
  t.kv2_path.append(mount).append(1, '/').append(rest.substr(slash + 1));
  return t;
}

Result<AuditHint> parse_audit_entry(std::string_view line, std::string_view prefix, AuditScan scan) {
  AuditHint hint;
  std::string_view text = line;
  if (text.ends_with('\n')) text.remove_suffix(1);
  if (text.size() > kMaxAuditLineBytes) {
    hint.reason = AuditIgnoreReason::too_large;
    return hint;
  }
  std::size_t start = 0;
  if (!prefix.empty() && text.starts_with(prefix)) {
    start = prefix.size();
  } else if (!text.starts_with('{')) {
    start = text.find('{');
    if (start == std::string_view::npos) return malformed("not a JSON object", 0, line.size());
  }
  const std::string_view body = text.substr(start);

  // One parser per thread: its nesting stack is kept from line to line.
  thread_local json::basic_parser<Handler> parser(audit_parse_options());
  parser.reset();
  parser.handler().start(hint, scan == AuditScan::until_decided);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  const Handler& h = parser.handler();
  if (ec && h.decided() != AuditIgnoreReason::none) {
    hint.reason = h.decided();
    return hint;
  }
  if (ec) return malformed(json_error_kind(ec, used >= body.size()), start + used, line.size());
  if (!h.root_object()) return malformed("not a JSON object", start, line.size());
  for (std::size_t i = used; i < body.size(); ++i) {
    const char c = body[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
      return malformed("followed by more bytes", start + i, line.size());
  }

  hint.reason = judge(h.seen());
  if (hint.reason != AuditIgnoreReason::none) return hint;
  const std::string_view mount = relative_mount(hint);
  if (!mount.empty() &&
      (hint.path == mount || (hint.path.size() == mount.size() + 1 && std::string_view(hint.path).starts_with(mount) &&
                              hint.path.back() == '/'))) {
    hint.reason = AuditIgnoreReason::no_key;
    return hint;
  }
  hint.kv = kv_target_below(hint.path, mount);
  if (hint.kv.mount.empty()) {
    // No mount in the entry (Vault 1.13), or one the path does not lie below: the path is all
    // there is; the caller can split it at a mount it knows.
    if (trim_slashes(hint.path).empty()) {
      hint.reason = AuditIgnoreReason::no_key;
      return hint;
    }
    hint.kv.kv1_path = hint.path;
  }
  hint.verdict = AuditVerdict::kv_change;
  return hint;
}

std::optional<std::string> path_in_namespace(std::string_view entry_namespace, std::string_view path,
                                             std::string_view watched_namespace) {
  const std::string_view entry_ns = trim_slashes(entry_namespace);
  const std::string_view watched = trim_slashes(watched_namespace);
  std::string full;
  full.reserve(entry_ns.size() + 1 + path.size());
  if (!entry_ns.empty()) full.append(entry_ns).append(1, '/');
  full.append(path);
  if (watched.empty()) return full;
  if (full.size() <= watched.size() + 1 || !full.starts_with(watched) || full[watched.size()] != '/') {
    return std::nullopt;
  }
  return full.substr(watched.size() + 1);
}

std::string_view to_string(AuditIgnoreReason reason) noexcept {
  switch (reason) {
    case AuditIgnoreReason::none: return "none";
    case AuditIgnoreReason::too_large: return "too_large";
    case AuditIgnoreReason::not_response: return "not_response";
    case AuditIgnoreReason::failed: return "failed";
    case AuditIgnoreReason::not_a_change: return "not_a_change";
    case AuditIgnoreReason::not_kv: return "not_kv";
    case AuditIgnoreReason::no_key: return "no_key";
  }
  return "unknown";
}

std::string_view to_string(AuditOperation operation) noexcept {
  switch (operation) {
    case AuditOperation::unknown: return "unknown";
    case AuditOperation::create: return "create";
    case AuditOperation::update: return "update";
    case AuditOperation::patch: return "patch";
    case AuditOperation::del: return "delete";
    case AuditOperation::read: return "read";
    case AuditOperation::list: return "list";
    case AuditOperation::other: return "other";
  }
  return "unknown";
}

}  // namespace nicsync::watch
