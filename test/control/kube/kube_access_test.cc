#include "control/kube/kube_access.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test/control/kube/kube_test_support.h"

namespace ng::kube {
namespace {

using testing::spit;
using testing::TempDir;

const std::string kCa = "-----BEGIN CERTIFICATE-----\nMIIBcaDATA\n-----END CERTIFICATE-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n";
const std::string kKey = "-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n";

std::string b64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A kubeconfig with two clusters, two users and two contexts; `cluster_extra` and
// `user_extra` are added to the first cluster and user (already indented).
std::string kubeconfig(const std::string& cluster_extra, const std::string& user_extra,
                       const std::string& current = "prod") {
  return "apiVersion: v1\nkind: Config\n" + (current.empty() ? "" : "current-context: " + current + "\n") +
         "clusters:\n"
         "- name: prod-cluster\n"
         "  cluster:\n"
         "    server: https://10.0.0.1:6443\n" +
         cluster_extra +
         "- name: lab-cluster\n"
         "  cluster:\n"
         "    server: https://lab.example:443\n"
         "    certificate-authority-data: " + b64(kCa) + "\n"
         "users:\n"
         "- name: prod-user\n"
         "  user:\n" + user_extra +
         "- name: lab-user\n"
         "  user:\n"
         "    token: lab-token\n"
         "contexts:\n"
         "- name: prod\n"
         "  context: {cluster: prod-cluster, user: prod-user, namespace: default}\n"
         "- name: lab\n"
         "  context: {cluster: lab-cluster, user: lab-user}\n";
}

TEST(Kubeconfig, InlineDataIsDecoded) {
  TempDir dir;
  spit(dir.path() / "config",
       kubeconfig("    certificate-authority-data: " + b64(kCa) + "\n",
                  "    token: abc.def\n    client-certificate-data: " + b64(kCert) + "\n    client-key-data: " + b64(kKey) +
                      "\n"));
  auto access = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(access.has_value()) << access.error();
  EXPECT_EQ(access->server, "https://10.0.0.1:6443");
  EXPECT_EQ(access->ca_pem, kCa);
  EXPECT_EQ(access->token, "abc.def");
  EXPECT_EQ(access->token_file, "");
  EXPECT_EQ(access->client_cert_pem, kCert);
  EXPECT_EQ(access->client_key_pem, kKey);
}

TEST(Kubeconfig, FileReferencesAreRelativeToTheKubeconfig) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "kube" / "pki");
  spit(dir.path() / "kube" / "pki" / "ca.crt", kCa);
  spit(dir.path() / "kube" / "pki" / "me.crt", kCert);
  spit(dir.path() / "kube" / "pki" / "me.key", kKey);
  spit(dir.path() / "kube" / "token", "tok\n");
  spit(dir.path() / "kube" / "config",
       kubeconfig("    certificate-authority: pki/ca.crt\n",
                  "    tokenFile: token\n    client-certificate: pki/me.crt\n    client-key: " +
                      (dir.path() / "kube" / "pki" / "me.key").string() + "\n"));
  auto access = loadKubeconfig(dir.file("kube/config"));
  ASSERT_TRUE(access.has_value()) << access.error();
  EXPECT_EQ(access->ca_pem, kCa);
  EXPECT_EQ(access->client_cert_pem, kCert);
  EXPECT_EQ(access->client_key_pem, kKey);
  EXPECT_EQ(std::filesystem::path(access->token_file), dir.path() / "kube" / "token");
  EXPECT_TRUE(std::filesystem::path(access->token_file).is_absolute());
}

TEST(Kubeconfig, ContextSelection) {
  TempDir dir;
  spit(dir.path() / "config", kubeconfig("    certificate-authority-data: " + b64(kCa) + "\n", "    token: p\n"));
  auto current = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(current.has_value()) << current.error();
  EXPECT_EQ(current->token, "p");
  auto lab = loadKubeconfig(dir.file("config"), "lab");
  ASSERT_TRUE(lab.has_value()) << lab.error();
  EXPECT_EQ(lab->server, "https://lab.example:443");
  EXPECT_EQ(lab->token, "lab-token");
  auto missing = loadKubeconfig(dir.file("config"), "nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error(), "kubeconfig " + dir.file("config") + ": contexts: no entry named \"nope\" (have: prod, lab)");

  spit(dir.path() / "nocurrent", kubeconfig("    certificate-authority-data: " + b64(kCa) + "\n", "    token: p\n", ""));
  auto none = loadKubeconfig(dir.file("nocurrent"));
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().find("current-context: not set"), std::string::npos) << none.error();
  EXPECT_TRUE(loadKubeconfig(dir.file("nocurrent"), "lab").has_value());
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheKey) {
  TempDir dir;
  const std::string path = dir.file("config");
  auto load = [&](const std::string& cluster_extra, const std::string& user_extra) {
    spit(path, kubeconfig(cluster_extra, user_extra));
    auto r = loadKubeconfig(path);
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error();
  };
  const std::string ca = "    certificate-authority-data: " + b64(kCa) + "\n";
  const std::string prefix = "kubeconfig " + path + ": ";
  EXPECT_EQ(load(ca, "    {}\n"), prefix + "users[0].user: no token, tokenFile or client certificate");
  EXPECT_EQ(load(ca, "    exec: {command: aws}\n"),
            prefix + "users[0].user: no token, tokenFile or client certificate (exec plugins are not supported)");
  EXPECT_EQ(load("", "    token: t\n"),
            prefix + "clusters[0].cluster: no certificate-authority-data or certificate-authority (required for https)");
  EXPECT_EQ(load(ca, "    token: t\n    client-certificate-data: " + b64(kCert) + "\n"),
            prefix + "users[0].user: client-certificate without client-key");
  EXPECT_EQ(load("    certificate-authority: missing.crt\n", "    token: t\n"),
            prefix + "clusters[0].cluster.certificate-authority: cannot read " + dir.file("missing.crt"));
  EXPECT_EQ(load("    certificate-authority-data: '@@@'\n", "    token: t\n"),
            prefix + "clusters[0].cluster.certificate-authority-data: not base64 (character '@')");
  EXPECT_EQ(load("    certificate-authority-data: " + b64("hello") + "\n", "    token: t\n"),
            prefix + "clusters[0].cluster.certificate-authority-data: not PEM (CERTIFICATE)");
  EXPECT_EQ(load(ca, "    tokenFile: /nonexistent/token\n"),
            prefix + "users[0].user.tokenFile: cannot read /nonexistent/token");

  auto missing = loadKubeconfig(dir.file("absent"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error(), "kubeconfig " + dir.file("absent") + ": cannot read the file");
  spit(path, "clusters: [\n");
  auto bad = loadKubeconfig(path);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("not valid YAML"), std::string::npos) << bad.error();
}

TEST(Kubeconfig, InsecureSkipTlsVerifyIsRefused) {
  TempDir dir;
  const std::string ca = "    certificate-authority-data: " + b64(kCa) + "\n";
  spit(dir.path() / "config", kubeconfig(ca + "    insecure-skip-tls-verify: true\n", "    token: t\n"));
  auto r = loadKubeconfig(dir.file("config"));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().starts_with("kubeconfig " + dir.file("config") +
                                    ": clusters[0].cluster.insecure-skip-tls-verify: true is refused"))
      << r.error();
  spit(dir.path() / "config", kubeconfig(ca + "    insecure-skip-tls-verify: false\n", "    token: t\n"));
  EXPECT_TRUE(loadKubeconfig(dir.file("config")).has_value());
}

TEST(Kubeconfig, PlainHttpServerNeedsNoCa) {
  TempDir dir;
  spit(dir.path() / "config",
       "current-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:8001'}}]\n"
       "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n");
  auto r = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->server, "http://127.0.0.1:8001");
  EXPECT_EQ(r->ca_pem, "");
}

class InCluster : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
  }
};

TEST_F(InCluster, ReadsTheServiceAccount) {
  TempDir dir;
  spit(dir.path() / "token", "sa-token\n");
  spit(dir.path() / "ca.crt", kCa);
  EXPECT_FALSE(inClusterAccess(dir.path().string()).has_value()) << "no environment";
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto access = inClusterAccess(dir.path().string());
  ASSERT_TRUE(access.has_value()) << access.error();
  EXPECT_EQ(access->server, "https://10.96.0.1:443");
  EXPECT_EQ(access->token_file, dir.file("token"));
  EXPECT_EQ(access->token, "");
  EXPECT_EQ(access->ca_pem, kCa);
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(inClusterAccess(dir.path().string())->server, "https://[fd00::1]:443");
}

TEST_F(InCluster, MissingOrEmptyFilesAreErrors) {
  TempDir dir;
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto no_token = inClusterAccess(dir.path().string());
  ASSERT_FALSE(no_token.has_value());
  EXPECT_NE(no_token.error().find(dir.file("token")), std::string::npos) << no_token.error();
  spit(dir.path() / "token", "\n");
  EXPECT_FALSE(inClusterAccess(dir.path().string()).has_value());
  spit(dir.path() / "token", "t");
  auto no_ca = inClusterAccess(dir.path().string());
  ASSERT_FALSE(no_ca.has_value());
  EXPECT_NE(no_ca.error().find("ca.crt"), std::string::npos) << no_ca.error();
}

TEST(Base64, DecodesWithAndWithoutPaddingAndRejectsJunk) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "hello, world\n"}) {
    EXPECT_EQ(decodeBase64(b64(s)).value(), s);
  }
  EXPECT_EQ(decodeBase64("aGVs\nbG8").value(), "hello");
  EXPECT_FALSE(decodeBase64("a").has_value());
  EXPECT_FALSE(decodeBase64("aGVsbG8=x").has_value());
  EXPECT_FALSE(decodeBase64("aGV*").has_value());
}

}  // namespace
}  // namespace ng::kube
