// Vault's failures as classified errors: which statuses and transport failures are worth
// another attempt, the `errors` of a body flattened to one line, and each status mapped to the
// code the engine acts on, with what the operator should do.
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "vault/wire.hpp"
#include "vault/wire_reader.hpp"

namespace nicsync::vault::wire {
namespace json = boost::json;

bool is_retryable_status(int status) noexcept {
  return status == 412 || status == 429 || (status >= 500 && status != 501);
}

bool is_retryable_error(const Error& e) noexcept {
  if (e.code.category() != nicsync_category()) return false;
  switch (static_cast<Errc>(e.code.value())) {
    case Errc::http_timeout:
    case Errc::http_connect_timeout:
    case Errc::http_connection_refused:
    case Errc::http_resolve_failed:
    case Errc::http_network:
    case Errc::http_tls:
    case Errc::http_protocol: return true;
    default: return false;
  }
}

std::string flatten_error(std::string_view message) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
      s.remove_suffix(1);
    }
    return s;
  };
  // Go's hashicorp/go-multierror: "2 errors occurred:\n\t* a\n\t* b\n\n".
  const auto header_end = message.find(" occurred:");
  if (header_end != std::string_view::npos && message.find("\t* ") != std::string_view::npos) {
    std::string out;
    std::size_t pos = header_end;
    while ((pos = message.find("\t* ", pos)) != std::string_view::npos) {
      pos += 3;
      auto end = message.find("\n\t* ", pos);
      auto item = trim(message.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
      if (!item.empty()) {
        if (!out.empty()) out += "; ";
        out.append(item);
      }
      if (end == std::string_view::npos) break;
      pos = end;
    }
    return out;
  }
  return std::string(trim(message));
}

namespace {

constexpr std::size_t kMaxErrorMessages = 5;

}  // namespace

std::vector<std::string> error_messages(std::string_view body) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16;
  auto v = json::parse(body, ec, {}, options);
  if (ec || !v.is_object()) return out;
  const auto* errors = v.as_object().if_contains("errors");
  if (errors == nullptr || !errors->is_array()) return out;
  for (const auto& e : errors->as_array()) {
    if (out.size() == kMaxErrorMessages) break;
    if (e.is_string()) {
      auto flat = vault_text(flatten_error(std::string_view(e.as_string())));
      if (!flat.empty()) out.push_back(std::move(flat));
    }
  }
  return out;
}

bool says_invalid_token(std::string_view body) {
  for (const auto& m : error_messages(body)) {
    if (m.find("invalid token") != std::string::npos) return true;
  }
  return false;
}

namespace {

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out.append(sep);
    out += p;
  }
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

Error error_from_response(const CallContext& ctx, int status, std::string_view body,
                          std::optional<std::chrono::milliseconds> retry_after, bool dead_token) {
  const auto messages = error_messages(body);
  const std::string said = join(messages, "; ");
  const std::string where = fmt::format("{} {}", ctx.method, ctx.api_path);
  const std::string vault_says = said.empty() ? std::string() : ": " + said;
  Error e;
  switch (status) {
    case 400:
      e = Error(Errc::vault_bad_request,
                fmt::format("Vault refused to {} {} (400{})", ctx.action, ctx.api_path, vault_says));
      break;
    case 403:
      if (dead_token) {
        e = Error(Errc::vault_token_invalid,
                  fmt::format("Vault token is invalid, expired or revoked ({} answered 403{}); the client logs in "
                              "again where it can, otherwise provide a new token",
                              where, vault_says));
      } else {
        const std::string advice = !ctx.denied_hint.empty()
                                       ? ctx.denied_hint
                                       : fmt::format("grant the token's policy the \"{}\" capability on path \"{}\"",
                                                     ctx.capability, ctx.api_path);
        e = Error(Errc::vault_permission_denied,
                  fmt::format("Vault denied {} {} (403{}); {}", ctx.action, ctx.api_path, vault_says, advice));
      }
      break;
    case 404:
      e = Error(
          Errc::vault_not_found,
          fmt::format("{} (404{})", ctx.not_found.empty() ? "nothing at " + ctx.api_path : ctx.not_found, vault_says));
      break;
    case 405:
      e = Error(
          Errc::vault_bad_request,
          fmt::format("Vault does not support {} (405{}); check the mount type and KV version", where, vault_says));
      break;
    case 412:
      e = Error(Errc::vault_precondition,
                fmt::format("Vault node lacks the index state for {} (412{}); retry, or send requests to the active "
                            "node",
                            where, vault_says));
      break;
    case 429:
      e = Error(Errc::vault_rate_limited,
                fmt::format("Vault rate limit quota exceeded for {} (429{}); raise the quota or lower the poll rate",
                            where, vault_says));
      break;
    case 501:
      e = Error(
          Errc::vault_unavailable,
          fmt::format("Vault is not initialised ({} answered 501{}); run `vault operator init`", where, vault_says));
      break;
    case 503:
      if (contains(said, "sealed")) {
        e = Error(
            Errc::vault_sealed,
            fmt::format("Vault is sealed ({} answered 503{}); unseal it (`vault operator unseal`)", where, vault_says));
      } else if (contains(said, "active") || contains(said, "standby")) {
        e = Error(Errc::vault_unavailable,
                  fmt::format("Vault has no active node ({} answered 503{}); wait for leader election or check the "
                              "cluster",
                              where, vault_says));
      } else {
        e = Error(Errc::vault_unavailable, fmt::format("Vault is unavailable ({} answered 503{})", where, vault_says));
      }
      break;
    default:
      if (status >= 500) {
        e = Error(Errc::vault_unavailable,
                  fmt::format("Vault failed to {} {} ({}{}{})", ctx.action, ctx.api_path, status, vault_says,
                              messages.empty() ? "; the body is not Vault's JSON error" : ""));
      } else if (status >= 400) {
        e = Error(Errc::vault_bad_request, fmt::format("Vault refused {} ({}{})", where, status, vault_says));
      } else {
        e = Error(Errc::vault_bad_response,
                  fmt::format("Vault answered {} with unexpected HTTP status {}", where, status));
      }
  }
  e.http_status = status;
  e.retry_after = retry_after;
  return e;
}

}  // namespace nicsync::vault::wire
