// The Vault client's KV calls: the mount preflight, v2 data and metadata reads, v1 reads and
// folder lists, each made with the current token and counted in the client's stats.
#include <fmt/format.h>

#include "nicsync/vault/client.hpp"
#include "vault/client_impl.hpp"

namespace nicsync::vault {
namespace asio = boost::asio;

namespace {

std::string kv2_api(const KvPath& p, std::string_view part) {
  std::string out = p.mount.str();
  if (!out.empty()) out += '/';
  out.append(part);
  if (!p.key.empty()) {
    out += '/';
    out += p.key.str();
  }
  return out;
}

}  // namespace

asio::awaitable<Result<MountInfo>> Client::detect_mount(VaultPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = "sys/internal/ui/mounts/" + path.str();
  call.ctx = {"GET",
              call.api_path,
              "the mount preflight for",
              "read",
              "",
              fmt::format("give the token's policy at least one capability on a path under the mount that holds {} "
                          "(e.g. \"read\" on <mount>/data/<key>), and check that the mount exists",
                          path.str())};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<MountInfo>(r.error()));
  if (r->status == 404) co_return MountInfo{};  // very old Vault: no preflight, assume KV v1 (the CLI's rule)
  if (r->status != 200) {
    co_return self->finish_call(
        Result<MountInfo>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
  }
  auto info = wire::parse_mount("GET " + call.api_path, r->body);
  if (!info) co_return self->finish_call(std::move(info));
  if (info->type != "kv" && info->type != "generic") {
    co_return self->finish_call(Result<MountInfo>(
        Error(Errc::invalid_argument, fmt::format("{} is on a \"{}\" mount at {}/, not a KV mount; map a KV path",
                                                  path.str(), info->type, info->path.str()))));
  }
  co_return info;
}

asio::awaitable<Result<KvSecret>> Client::read_kv2(KvPath path, std::optional<std::int64_t> version) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = kv2_api(path, "data");
  if (version && *version > 0) call.query = fmt::format("version={}", *version);
  call.ctx = {"GET", call.api_path, "read", "read",
              version ? fmt::format("no version {} of {}", *version, path.str()) : "no secret at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvSecret>(r.error()));
  WipeOnExit wipe{r->body};
  if (r->status == 200 || r->status == 404) {
    co_return self->finish_call(wire::parse_kv2_data(path, r->status, r->body));
  }
  co_return self->finish_call(
      Result<KvSecret>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

asio::awaitable<Result<KvMetadata>> Client::read_kv2_metadata(KvPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = kv2_api(path, "metadata");
  call.ctx = {"GET", call.api_path, "read", "read", "no key at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvMetadata>(r.error()));
  if (r->status == 200) co_return self->finish_call(wire::parse_kv2_metadata(path, r->body));
  co_return self->finish_call(
      Result<KvMetadata>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

namespace {

asio::awaitable<Result<std::vector<std::string>>> list_at(std::shared_ptr<Client::Impl> self, std::string api_path,
                                                          std::string display) {
  ++self->stats.calls;
  Call call;
  call.api_path = std::move(api_path);
  call.query = "list=true";
  call.ctx = {"GET", call.api_path, "list", "list", "no folder " + display};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<std::vector<std::string>>(r.error()));
  if (r->status == 200) co_return self->finish_call(wire::parse_list("LIST " + call.api_path, r->body));
  // An empty or absent folder is a 404 with an empty error list.
  if (r->status == 404 && wire::error_messages(r->body).empty() && !wire::parse_json(r->body, "").has_error()) {
    co_return std::vector<std::string>{};
  }
  co_return self->finish_call(
      Result<std::vector<std::string>>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

}  // namespace

asio::awaitable<Result<std::vector<std::string>>> Client::list_kv2(VaultPath mount, VaultPath dir) {
  auto self = impl_;
  KvPath p{std::move(mount), std::move(dir)};
  co_return co_await list_at(self, kv2_api(p, "metadata"), p.str());
}

asio::awaitable<Result<KvSecret>> Client::read_kv1(KvPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = path.str();
  call.ctx = {"GET", call.api_path, "read", "read", "no secret at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvSecret>(r.error()));
  WipeOnExit wipe{r->body};
  if (r->status == 200) co_return self->finish_call(wire::parse_kv1_data(path, r->body));
  co_return self->finish_call(
      Result<KvSecret>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

asio::awaitable<Result<std::vector<std::string>>> Client::list_kv1(VaultPath mount, VaultPath dir) {
  auto self = impl_;
  KvPath p{std::move(mount), std::move(dir)};
  co_return co_await list_at(self, p.str(), p.str());
}

asio::awaitable<Result<KvSecret>> Client::read(KvPath path, KvVersion kv, std::optional<std::int64_t> version) {
  if (kv == KvVersion::v1) return read_kv1(std::move(path));
  return read_kv2(std::move(path), version);
}

}  // namespace nicsync::vault
