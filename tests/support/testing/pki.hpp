#pragma once
// A throwaway PKI for TLS tests: a CA, a server certificate for localhost/127.0.0.1/::1, a
// client certificate, and an unrelated CA (for "wrong CA" tests). Generated with OpenSSL at
// test time; nothing is checked in.

#include <string>
#include <vector>

namespace nicsync::testing {

struct TestPki {
  std::string ca_cert;  ///< PEM of the CA that signed server and client certs
  std::string ca_key;
  std::string server_cert;  ///< CN/SAN: the names given (default localhost, 127.0.0.1, ::1)
  std::string server_key;
  std::string client_cert;  ///< CN "nicsync-test-client", signed by the CA
  std::string client_key;
  std::string other_ca_cert;  ///< an unrelated CA
};

/// Writes the PKI into `dir` and returns the file paths. `dns_names` and `ips` go into the
/// server certificate's subjectAltName.
TestPki make_test_pki(const std::string& dir, const std::vector<std::string>& dns_names = {"localhost"},
                      const std::vector<std::string>& ips = {"127.0.0.1", "::1"});

}  // namespace nicsync::testing
