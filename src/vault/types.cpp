#include "nicsync/vault/types.hpp"

#include <fmt/format.h>

namespace nicsync::vault {

Result<VaultPath> VaultPath::parse(std::string_view text) {
  std::string_view s = text;
  if (s.starts_with('/')) s.remove_prefix(1);
  if (s.ends_with('/')) s.remove_suffix(1);
  auto fail = [&](std::string_view why) {
    return Error(Errc::invalid_argument, fmt::format("Vault path \"{}\" {}", text, why));
  };
  if (text.find("//") != std::string_view::npos) return fail("has an empty segment (\"//\")");
  if (s.empty()) return VaultPath();
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto end = s.find('/', start);
    const auto segment = s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (segment.empty()) return fail("has an empty segment (\"//\")");
    if (segment == "." || segment == "..") return fail("has a \".\" or \"..\" segment");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return fail("contains a control character");
    if (c == '?' || c == '#') return fail("contains '?' or '#'");
  }
  return VaultPath(std::string(s));
}

VaultPath operator/(const VaultPath& a, const VaultPath& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return VaultPath(a.value_ + "/" + b.value_);
}

bool VaultPath::starts_with(const VaultPath& prefix) const noexcept {
  if (prefix.empty()) return true;
  if (!std::string_view(value_).starts_with(prefix.value_)) return false;
  return value_.size() == prefix.value_.size() || value_[prefix.value_.size()] == '/';
}

VaultPath VaultPath::strip_prefix(const VaultPath& prefix) const {
  if (prefix.empty()) return *this;
  if (value_.size() <= prefix.value_.size() + 1) return VaultPath();
  return VaultPath(value_.substr(prefix.value_.size() + 1));
}

Result<Namespace> Namespace::parse(std::string_view text) {
  auto p = VaultPath::parse(text);
  if (!p)
    return Error(Errc::invalid_argument,
                 fmt::format("Vault namespace \"{}\" is not valid: {}", text, p.error().message));
  Namespace ns;
  ns.value_ = std::move(*p);
  return ns;
}

SourceState KvVersionInfo::state(Clock::system_time now) const noexcept {
  if (destroyed) return SourceState::destroyed;
  if (deletion_at && *deletion_at <= now) return SourceState::deleted;
  return SourceState::present;
}

const KvVersionInfo* KvMetadata::current() const noexcept {
  auto it = versions.find(current_version);
  return it == versions.end() ? nullptr : &it->second;
}

SourceState KvMetadata::current_state(Clock::system_time now) const noexcept {
  const auto* v = current();
  if (current_version == 0 || v == nullptr) return SourceState::missing;
  return v->state(now);
}

Result<const Secret*> KvData::field(std::string_view name) const {
  if (auto it = fields_.find(name); it != fields_.end()) return &it->second;
  std::string present;
  for (const auto& [k, v] : fields_) present += (present.empty() ? "" : ", ") + k;
  for (const auto& [k, kind] : non_string_) present += (present.empty() ? "" : ", ") + k;
  if (auto it = non_string_.find(std::string(name)); it != non_string_.end()) {
    const std::string_view kind = it->second;
    const std::string_view article = kind == "null" ? "" : (kind == "object" || kind == "array") ? "an " : "a ";
    return Error(Errc::vault_secret_malformed,
                 fmt::format("field \"{}\" of {} is {}{}, not a string; store it as a string (vault kv put {} {}=...)",
                             name, path_, article, kind, path_, name));
  }
  return Error(Errc::vault_secret_malformed,
               fmt::format("{} has no field \"{}\" (fields: {}); add it (vault kv patch {} {}=...) or map the right "
                           "key name",
                           path_, name, present.empty() ? "none" : present, path_, name));
}

Result<KvPath> MountInfo::split(const VaultPath& full) const {
  if (!full.starts_with(path)) {
    return Error(Errc::invalid_argument, fmt::format("{} is not below the mount {}", full.str(), path.str()));
  }
  KvPath out{path, full.strip_prefix(path)};
  if (out.key.empty()) return Error(Errc::invalid_argument, fmt::format("{} names the mount, not a key", full.str()));
  return out;
}

bool directly_in_folder(std::string_view path, std::string_view folder) noexcept {
  return path.size() > folder.size() && path.starts_with(folder) &&
         path.find('/', folder.size()) == std::string_view::npos;
}

}  // namespace nicsync::vault
