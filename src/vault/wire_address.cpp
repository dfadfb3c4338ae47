// Requests to Vault: VAULT_ADDR parsed once, each call's URL (its path escaped as Go's client
// does) and the headers every call carries.
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "vault/wire.hpp"

namespace nicsync::vault::wire {

Result<BaseAddress> parse_address(std::string_view address, std::string_view server_name) {
  auto fail = [&](std::string_view why) {
    return Error(Errc::config_invalid,
                 fmt::format("Vault address \"{}\" {}; write it like https://vault.example.com:8200", address, why));
  };
  if (address.starts_with("unix://")) return fail("is a unix socket, which this client does not support");
  auto parsed = boost::urls::parse_uri(address);
  if (!parsed) return fail("is not a URL");
  const auto& u = *parsed;
  BaseAddress out;
  if (u.scheme() == "https") {
    out.tls = true;
  } else if (u.scheme() != "http") {
    return fail("must start with http:// or https://");
  }
  if (u.has_userinfo()) return fail("must not contain a user name or password");
  if (u.has_query() || u.has_fragment()) return fail("must not contain a query or fragment");
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return fail("must not contain a path");
  out.host = std::string(u.encoded_host());  // IPv6 literals keep their brackets
  if (out.host.empty()) return fail("has no host");
  if (u.has_port()) {
    if (u.port_number() == 0) return fail("has an invalid port");
    out.port = u.port_number();
  } else {
    out.port = out.tls ? 443 : 80;
  }
  const std::string scheme = out.tls ? "https" : "http";
  out.display = fmt::format("{}://{}:{}", scheme, out.host, out.port);
  if (server_name.empty()) {
    out.url_base = out.display;
  } else {
    if (server_name.find_first_of(":/@ \t\r\n") != std::string_view::npos) {
      return Error(
          Errc::config_invalid,
          fmt::format("TLS server name \"{}\" must be a plain host name (VAULT_TLS_SERVER_NAME)", server_name));
    }
    out.url_base = fmt::format("{}://{}:{}", scheme, server_name, out.port);
    out.connect_to = fmt::format("{}:{}:{}:{}", server_name, out.port, out.host, out.port);
  }
  return out;
}

std::string encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size() + 8);
  for (unsigned char c : path) {
    // Go's url.URL.EscapedPath (what the official client sends): unreserved characters and
    // "$&+,/:;=@" stay, everything else is escaped.
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '@' || c == '$' || c == '&' ||
                      c == '+' || c == ',' || c == ';' || c == '=';
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string make_url(std::string_view url_base, std::string_view api_path, std::string_view query) {
  std::string url;
  url.reserve(url_base.size() + api_path.size() + query.size() + 8);
  url.append(url_base);
  url.append("/v1/");
  url.append(encode_path(api_path));
  if (!query.empty()) {
    url += '?';
    url.append(query);
  }
  return url;
}

std::vector<http::Header> make_headers(const Token* token, const Namespace& ns, bool has_body) {
  std::vector<http::Header> headers;
  headers.reserve(4);
  // Vault Agent/Proxy listeners with require_request_header refuse requests without it.
  headers.push_back({"X-Vault-Request", "true"});
  if (token != nullptr && !token->empty()) headers.push_back({"X-Vault-Token", std::string(token->secret().expose())});
  if (!ns.empty()) headers.push_back({"X-Vault-Namespace", ns.str()});
  if (has_body) headers.push_back({"Content-Type", "application/json"});
  return headers;
}

}  // namespace nicsync::vault::wire
