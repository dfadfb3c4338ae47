// KV answers: a v2 data read (with the 404 forms of a deleted or destroyed version), v2 metadata,
// a v1 read, folder lists and the mount preflight. Secret values go straight from the wiping
// JSON storage into Secrets.
#include <charconv>

#include <fmt/format.h>

#include "vault/wire.hpp"
#include "vault/wire_reader.hpp"

namespace nicsync::vault::wire {
namespace json = boost::json;

namespace {

std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

Result<KvVersionInfo> read_version_info(const Reader& r, const json::object& o, Name name,
                                        std::optional<std::int64_t> version) {
  KvVersionInfo info;
  if (version) {
    info.version = *version;
  } else {
    auto v = r.integer(o, "version", name / "version");
    if (!v) return v.error();
    info.version = *v;
  }
  auto created = r.string(o, "created_time", name / "created_time");
  if (!created) return created.error();
  info.created_time = std::move(*created);
  auto deletion = r.string(o, "deletion_time", name / "deletion_time");
  if (!deletion) return deletion.error();
  info.deletion_time = std::move(*deletion);
  auto destroyed = r.boolean(o, "destroyed", name / "destroyed");
  if (!destroyed) return destroyed.error();
  info.destroyed = *destroyed;
  if (!info.created_time.empty()) {
    auto t = parse_time(info.created_time);
    if (!t) return r.shape(fmt::format("\"{}.created_time\" is not an RFC 3339 time", name));
    info.created_at = *t;
  }
  if (!info.deletion_time.empty()) {
    info.deletion_at = parse_time(info.deletion_time);
    if (!info.deletion_at) return r.shape(fmt::format("\"{}.deletion_time\" is not an RFC 3339 time", name));
  }
  return info;
}

Result<KvData> read_fields(const json::object& data, const KvPath& path) {
  KvData::Fields fields;
  std::map<std::string, std::string> non_string;
  for (const auto& [k, v] : data) {
    std::string name{std::string_view(k)};
    if (v.is_string()) {
      // Straight from the (wiping) JSON storage into the Secret: no plain copy in between.
      fields.emplace(std::move(name), Secret(std::string_view(v.get_string())));
    } else {
      non_string.emplace(std::move(name), std::string(kind_name(v.kind())));
    }
  }
  return KvData(path.str(), std::move(fields), std::move(non_string));
}

std::string kv_what(std::string_view method, const KvPath& path, std::string_view infix) {
  if (path.mount.empty()) return fmt::format("{} {}", method, path.key.str());
  return fmt::format("{} {}/{}{}", method, path.mount.str(), infix, path.key.str());
}

}  // namespace

Result<KvSecret> parse_kv2_data(const KvPath& path, int status, std::string_view body) {
  const std::string what = kv_what("GET", path, "data/");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  const json::object& envelope = **top;

  if (status == 404) {
    // Deleted or destroyed: Vault writes a success-shaped envelope with data.data == null.
    const auto* data = envelope.if_contains("data");
    if (data != nullptr && data->is_object()) {
      const auto& d = data->get_object();
      const auto* md = d.if_contains("metadata");
      const auto* dd = d.if_contains("data");
      if (md != nullptr && md->is_object() && (dd == nullptr || dd->is_null())) {
        auto info = read_version_info(r, md->get_object(), "data.metadata", std::nullopt);
        if (!info) return info.error();
        Error e;
        if (info->destroyed) {
          e = Error(Errc::vault_version_destroyed,
                    fmt::format("{} version {} is destroyed; write a new version (vault kv put {} ...)", path.str(),
                                info->version, path.str()));
        } else if (!info->deletion_time.empty()) {
          e = Error(Errc::vault_version_deleted,
                    fmt::format("{} version {} was deleted at {}; undelete it (vault kv undelete -versions={} {}) or "
                                "write a new version",
                                path.str(), info->version, info->deletion_time, info->version, path.str()));
        } else {
          e = Error(Errc::vault_not_found, fmt::format("{} version {} has no data (404)", path.str(), info->version));
        }
        e.http_status = 404;
        return e;
      }
    }
    auto warnings = r.strings(envelope, "warnings", "warnings");
    std::string detail;
    if (warnings && !warnings->empty()) detail = ": " + vault_text((*warnings)[0]);
    for (const auto& m : error_messages(body)) detail += ": " + m;
    Error e(Errc::vault_not_found,
            fmt::format("no secret at {} (KV v2 {} answered 404{}); check the mount, the path and the version",
                        path.str(), what, detail));
    e.http_status = 404;
    return e;
  }

  auto data = r.object(envelope, "data", "data");
  if (!data) return data.error();
  const auto* inner = (*data)->if_contains("data");
  if (inner == nullptr || inner->is_null()) {
    return r.shape("\"data.data\" is missing or null in a 200 response (is this a KV v1 mount?)");
  }
  if (!inner->is_object()) return r.shape("\"data.data\" is not an object");
  auto md = r.object(**data, "metadata", "data.metadata");
  if (!md) return md.error();
  auto info = read_version_info(r, **md, "data.metadata", std::nullopt);
  if (!info) return info.error();
  auto custom = r.string_map(**md, "custom_metadata", "data.metadata.custom_metadata");
  if (!custom) return custom.error();
  auto fields = read_fields(inner->get_object(), path);
  if (!fields) return fields.error();

  KvSecret out;
  out.path = path;
  out.kv = KvVersion::v2;
  out.version = info->version;
  out.metadata = std::move(*info);
  out.custom_metadata = std::move(*custom);
  out.data = std::move(*fields);
  return out;
}

Result<KvMetadata> parse_kv2_metadata(const KvPath& path, std::string_view body) {
  const std::string what = kv_what("GET", path, "metadata/");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  const json::object& d = **data;

  KvMetadata m;
  m.path = path;
  auto current = r.integer(d, "current_version", "data.current_version");
  if (!current) return current.error();
  m.current_version = *current;
  auto oldest = r.integer(d, "oldest_version", "data.oldest_version", 0);
  if (!oldest) return oldest.error();
  m.oldest_version = *oldest;
  auto max_versions = r.integer(d, "max_versions", "data.max_versions", 0);
  if (!max_versions) return max_versions.error();
  m.max_versions = *max_versions;
  auto cas = r.boolean(d, "cas_required", "data.cas_required");
  if (!cas) return cas.error();
  m.cas_required = *cas;
  auto dva = r.string(d, "delete_version_after", "data.delete_version_after");
  if (!dva) return dva.error();
  m.delete_version_after = std::move(*dva);
  auto created = r.string(d, "created_time", "data.created_time");
  if (!created) return created.error();
  m.created_time = std::move(*created);
  auto updated = r.string(d, "updated_time", "data.updated_time");
  if (!updated) return updated.error();
  m.updated_time = std::move(*updated);
  if (!m.created_time.empty()) {
    auto t = parse_time(m.created_time);
    if (!t) return r.shape("\"data.created_time\" is not an RFC 3339 time");
    m.created_at = *t;
  }
  if (!m.updated_time.empty()) {
    auto t = parse_time(m.updated_time);
    if (!t) return r.shape("\"data.updated_time\" is not an RFC 3339 time");
    m.updated_at = *t;
  }
  auto custom = r.string_map(d, "custom_metadata", "data.custom_metadata");
  if (!custom) return custom.error();
  m.custom_metadata = std::move(*custom);

  auto versions = r.nullable_object(d, "versions", "data.versions");
  if (!versions) return versions.error();
  if (*versions != nullptr) {
    for (const auto& [k, v] : **versions) {
      const std::string_view key(k);
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), n);
      if (ec != std::errc() || end != key.data() + key.size() || n <= 0) {
        return r.shape(
            fmt::format("\"data.versions\" has a key that is not a version number: \"{}\"", vault_text(key, 40)));
      }
      const Name name("data.versions", key);
      auto obj = r.object(v, name);
      if (!obj) return obj.error();
      auto info = read_version_info(r, **obj, name, n);
      if (!info) return info.error();
      m.versions.emplace(n, std::move(*info));
    }
  }
  return m;
}

Result<KvSecret> parse_kv1_data(const KvPath& path, std::string_view body) {
  const std::string what = kv_what("GET", path, "");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  auto fields = read_fields(**data, path);
  if (!fields) return fields.error();
  KvSecret out;
  out.path = path;
  out.kv = KvVersion::v1;
  out.data = std::move(*fields);
  return out;
}

Result<std::vector<std::string>> parse_list(std::string_view what, std::string_view body) {
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  if ((*data)->if_contains("keys") == nullptr) return r.shape("\"data.keys\" is missing");
  return r.strings(**data, "keys", "data.keys");
}

Result<MountInfo> parse_mount(std::string_view what, std::string_view body) {
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  auto mount_path = r.string(**data, "path", "data.path", true);
  if (!mount_path) return mount_path.error();
  auto type = r.string(**data, "type", "data.type");
  if (!type) return type.error();
  auto path = VaultPath::parse(*mount_path);
  if (!path || path->empty()) {
    return r.shape(fmt::format("\"data.path\" is not a mount path: \"{}\"", vault_text(*mount_path, 100)));
  }
  MountInfo info;
  info.path = std::move(*path);
  info.type = std::move(*type);
  // The CLI's rule (command/kv_helpers.go): options.version "2" is v2, anything else v1.
  info.version = KvVersion::v1;
  auto options = r.nullable_object(**data, "options", "data.options");
  if (!options) return options.error();
  if (*options != nullptr) {
    const auto* v = (*options)->if_contains("version");
    if (v != nullptr && v->is_string() && std::string_view(v->get_string()) == "2") info.version = KvVersion::v2;
  }
  return info;
}

}  // namespace nicsync::vault::wire
