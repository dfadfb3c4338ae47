// Where a key lives: mounts detected once and remembered, so the watcher, the credential reader
// and the destinations' secret sources share one answer instead of keeping copies.
#include <spdlog/spdlog.h>

#include "nicsync/vault/client.hpp"
#include "vault/client_impl.hpp"

namespace nicsync::vault {
namespace asio = boost::asio;

asio::awaitable<Result<KvLocation>> Client::locate(std::string_view path) {
  auto vp = VaultPath::parse(path);
  if (!vp) co_return vp.error();
  co_return co_await locate(std::move(*vp));
}

namespace {

// The longest remembered mount that holds `path`.
const MountInfo* longest_mount(const std::vector<MountInfo>& mounts, const VaultPath& path) {
  const MountInfo* known = nullptr;
  for (const auto& m : mounts) {
    if (path.starts_with(m.path) && (known == nullptr || m.path.str().size() > known->path.str().size())) known = &m;
  }
  return known;
}

}  // namespace

std::optional<KvLocation> Client::known_location(std::string_view text) const {
  auto path = VaultPath::parse(text);
  if (!path) return std::nullopt;
  const MountInfo* known = longest_mount(impl_->mounts, *path);
  if (known == nullptr) return std::nullopt;
  auto split = known->split(*path);
  if (!split) return std::nullopt;
  return KvLocation{std::move(*split), known->version};
}

asio::awaitable<Result<KvLocation>> Client::locate(VaultPath path) {
  auto self = impl_;
  if (const MountInfo* known = longest_mount(self->mounts, path)) {
    auto split = known->split(path);
    if (!split) co_return split.error();
    co_return KvLocation{std::move(*split), known->version};
  }
  auto info = co_await detect_mount(path);
  if (!info) co_return info.error();
  auto split = info->split(path);
  if (!split) co_return split.error();
  const KvVersion kv = info->version;
  if (!info->path.empty()) {
    // Another read may have detected it meanwhile.
    const bool have =
        std::any_of(self->mounts.begin(), self->mounts.end(), [&](const MountInfo& m) { return m.path == info->path; });
    if (!have) {
      spdlog::info("vault: {} is on mount {} (KV v{})", path.str(), info->path.str(), static_cast<int>(kv));
      self->mounts.push_back(std::move(*info));
    }
  }
  co_return KvLocation{std::move(*split), kv};
}

}  // namespace nicsync::vault
