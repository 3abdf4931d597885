#pragma once
// Where the Kubernetes API server is and how to prove who we are (KUBERNETES.md
// "Talking to the API server"): from a kubeconfig (the usual case for an appliance out
// of the cluster) or from a Pod's service account (in the cluster).
//
// Both loaders read files once, at the call, and return plain data; HttpApiClient
// (control/kube/api_client.h) turns it into connections. Neither throws: failures come
// back as one line naming the file and the key, meant for the operator.

#include <expected>
#include <string>
#include <string_view>

namespace ng::kube {

struct KubeAccess {
  std::string server;          // "https://host:port" (an optional path prefix is kept)
  std::string ca_pem;          // CA bundle (PEM text); required for https
  std::string token;           // static bearer token (kubeconfig "token"), or empty
  std::string token_file;      // re-read periodically; wins over `token`
  std::string client_cert_pem, client_key_pem;  // optional client certificate auth
};

// kubeconfig (YAML): `context` if non-empty, else current-context → its cluster's
// server, certificate-authority-data (base64) or certificate-authority (a file, relative
// to the kubeconfig's directory); its user's token / tokenFile / client-certificate(-data)
// / client-key(-data) (files relative likewise; tokenFile is kept as an absolute path and
// read by the client). Refused, with the key named: insecure-skip-tls-verify: true (TLS
// is never skipped), https without a CA, a user with no usable credential (exec and
// auth-provider plugins are not supported), a certificate without its key or the other
// way round, a missing or unreadable referenced file.
// Example: "kubeconfig /x: users[0].user: no token, tokenFile or client certificate".
[[nodiscard]] std::expected<KubeAccess, std::string> loadKubeconfig(const std::string& path,
                                                                    const std::string& context = "");

// In a Pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (IPv6 literals
// bracketed), token file `sa_dir`/token (checked readable now, re-read by the client),
// CA `sa_dir`/ca.crt. Fails when the variables are unset or a file is missing or empty.
[[nodiscard]] std::expected<KubeAccess, std::string> inClusterAccess(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// Decodes standard base64 (padding optional, whitespace ignored); an error naming the
// offending character otherwise. Public for tests.
[[nodiscard]] std::expected<std::string, std::string> decodeBase64(std::string_view text);

}  // namespace ng::kube
