#include "testing/pki.hpp"

#include <cstdio>
#include <memory>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace nicsync::testing {
namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

void ok(int rc, const char* what) {
  if (rc <= 0) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

Key new_key() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("test PKI: EVP_EC_gen failed");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("test PKI: bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer_cert, EVP_PKEY* issuer_key, bool ca, long serial,
               const std::string& san, bool server) {
  Cert cert(X509_new());
  ok(X509_set_version(cert.get(), 2), "set_version");
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600);
  ok(X509_set_pubkey(cert.get(), key), "set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("nicsync tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer = issuer_cert != nullptr ? issuer_cert : cert.get();
  ok(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)), "set_issuer");
  if (ca) {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert.get(), issuer, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  }
  add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (!san.empty()) add_ext(cert.get(), issuer, NID_subject_alt_name, san);
  ok(X509_sign(cert.get(), issuer_key, EVP_sha256()), "sign");
  return cert;
}

void write_pem_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("test PKI: cannot write " + path);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

void write_pem_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("test PKI: cannot write " + path);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

}  // namespace

TestPki make_test_pki(const std::string& dir, const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ips) {
  TestPki p;
  p.ca_cert = dir + "/ca.pem";
  p.ca_key = dir + "/ca-key.pem";
  p.server_cert = dir + "/server.pem";
  p.server_key = dir + "/server-key.pem";
  p.client_cert = dir + "/client.pem";
  p.client_key = dir + "/client-key.pem";
  p.other_ca_cert = dir + "/other-ca.pem";

  Key ca_key = new_key();
  Cert ca = make_cert(ca_key.get(), "nicsync test CA", nullptr, ca_key.get(), true, 1, "", false);
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  Key server_key = new_key();
  Cert server = make_cert(server_key.get(), dns_names.empty() ? "server" : dns_names.front(), ca.get(), ca_key.get(),
                          false, 2, san, true);
  Key client_key = new_key();
  Cert client = make_cert(client_key.get(), "nicsync-test-client", ca.get(), ca_key.get(), false, 3, "", false);
  Key other_key = new_key();
  Cert other = make_cert(other_key.get(), "unrelated CA", nullptr, other_key.get(), true, 4, "", false);

  write_pem_cert(p.ca_cert, ca.get());
  write_pem_key(p.ca_key, ca_key.get());
  write_pem_cert(p.server_cert, server.get());
  write_pem_key(p.server_key, server_key.get());
  write_pem_cert(p.client_cert, client.get());
  write_pem_key(p.client_key, client_key.get());
  write_pem_cert(p.other_ca_cert, other.get());
  return p;
}

}  // namespace nicsync::testing
