#include "app/vault_sources.hpp"

#include <fmt/format.h>

namespace nicsync::app {
namespace asio = boost::asio;

namespace {

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(len) > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += static_cast<std::size_t>(len);
  }
  return true;
}

}  // namespace

Result<void> check_credential_field(std::string_view path, std::string_view field, std::string_view value,
                                    std::size_t max_bytes) {
  auto bad = [&](std::string why) {
    return Error(Errc::vault_secret_malformed,
                 fmt::format("{}: field \"{}\" {}; write a corrected version to Vault", path, field, why));
  };
  if (value.empty()) return bad("is empty");
  if (value.size() > max_bytes)
    return bad(fmt::format("is {} bytes long (at most {} are accepted)", value.size(), max_bytes));
  if (!valid_utf8(value)) return bad("is not valid UTF-8");
  // Vault (Go) stores every byte sequence that is not UTF-8 as U+FFFD: a value written from a
  // Latin-1 file arrives as a different password, and pushing it would only fail at NIC (and
  // count towards the failures that get an account blocked).
  if (value.find("\xEF\xBF\xBD") != std::string_view::npos) {
    return bad(
        "contains U+FFFD, the character Vault stores in place of bytes that are not UTF-8 (was it written "
        "from a file in another encoding?)");
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7F) return bad("contains a control character");
  }
  return {};
}

asio::awaitable<Result<destinations::Credential>> VaultCredentialReader::read(sync::SourceRef source,
                                                                              std::int64_t version) {
  std::optional<vault::KvLocation> where = vault_.known_location(source.path);
  if (!where) {
    auto located = co_await vault_.locate(std::string_view(source.path));
    if (!located) co_return located.error();
    where = std::move(*located);
  }
  std::optional<std::int64_t> v;
  if (where->kv == KvVersion::v2 && version > 0) v = version;
  auto secret = co_await vault_.read(where->path, where->kv, v);
  if (!secret) co_return secret.error();
  const std::string where_text =
      where->kv == KvVersion::v2 ? fmt::format("{} version {}", source.path, secret->version) : source.path;
  auto user = secret->data.field(source.username_field);
  if (!user) co_return user.error();
  auto pass = secret->data.field(source.password_field);
  if (!pass) co_return pass.error();
  // NIC usernames are short alphanumerics and passwords a few dozen characters at most.
  if (auto r = check_credential_field(where_text, source.username_field, (*user)->expose(), 256); !r) {
    co_return r.error();
  }
  if (auto r = check_credential_field(where_text, source.password_field, (*pass)->expose(), 1024); !r) {
    co_return r.error();
  }
  co_return destinations::Credential{std::string((*user)->expose()), **pass};
}

destinations::SecretProvider VaultSecretSource::provider(VaultSecretRef ref) {
  return [this, ref]() -> asio::awaitable<Result<Secret>> { return read(ref); };
}

asio::awaitable<Result<Secret>> VaultSecretSource::read(VaultSecretRef ref) {
  auto where = co_await vault_.locate(std::string_view(ref.path));
  if (!where) co_return where.error();
  auto secret = co_await vault_.read(where->path, where->kv);
  if (!secret) co_return secret.error();
  auto field = secret->data.field(ref.key);
  if (!field) co_return field.error();
  if ((*field)->empty()) {
    co_return Error(Errc::vault_secret_malformed,
                    fmt::format("{}: field \"{}\" is empty; store the provider secret there", ref.path, ref.key));
  }
  co_return **field;
}

}  // namespace nicsync::app
