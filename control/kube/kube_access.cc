#include "control/kube/kube_access.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace ng::kube {
namespace {

namespace fs = std::filesystem;

std::expected<std::string, std::string> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::unexpected("cannot read " + path.string());
  return out.str();
}

bool looksLikePem(std::string_view text, std::string_view what) {
  return text.find("-----BEGIN ") != std::string_view::npos && text.find(what) != std::string_view::npos;
}

// Reads one kubeconfig; every error is prefixed with "kubeconfig <path>: ".
class KubeconfigReader {
 public:
  KubeconfigReader(std::string path) : path_(std::move(path)), dir_(fs::absolute(fs::path(path_)).parent_path()) {}

  std::expected<KubeAccess, std::string> read(const std::string& wanted_context) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path_);
    } catch (const YAML::BadFile&) {
      return fail("cannot read the file");
    } catch (const YAML::Exception& e) {
      return fail(std::string("not valid YAML: ") + e.what());
    }
    try {
      return readRoot(root, wanted_context);
    } catch (const YAML::Exception& e) {
      // A scalar where a map was expected and the like.
      return fail(std::string("unexpected structure: ") + e.what());
    }
  }

 private:
  std::unexpected<std::string> fail(const std::string& message) const {
    return std::unexpected("kubeconfig " + path_ + ": " + message);
  }

  // The string value of `node[key]`, "" when absent; an error when not a scalar.
  std::expected<std::string, std::string> str(const YAML::Node& node, const std::string& where,
                                              const char* key) const {
    const YAML::Node v = node[key];
    if (!v || v.IsNull()) return std::string();
    if (!v.IsScalar()) return fail(where + "." + key + ": must be a string");
    return v.as<std::string>();
  }

  // Finds the entry called `name` in the list `list_key` (clusters, contexts, users).
  std::expected<std::pair<YAML::Node, std::string>, std::string> named(const YAML::Node& root, const char* list_key,
                                                                       const char* item_key,
                                                                       const std::string& name) const {
    const YAML::Node list = root[list_key];
    if (!list || !list.IsSequence()) return fail(std::string(list_key) + ": missing or not a list");
    std::string names;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = list[i];
      const std::string where = std::string(list_key) + "[" + std::to_string(i) + "]";
      if (!entry.IsMap()) return fail(where + ": not a map");
      const YAML::Node n = entry["name"];
      const std::string entry_name = n && n.IsScalar() ? n.as<std::string>() : "";
      if (entry_name == name) {
        const YAML::Node item = entry[item_key];
        if (!item || !item.IsMap()) return fail(where + "." + item_key + ": missing or not a map");
        return std::pair{item, where + "." + item_key};
      }
      if (!names.empty()) names += ", ";
      names += entry_name;
    }
    return fail(std::string(list_key) + ": no entry named \"" + name + "\" (have: " + names + ")");
  }

  fs::path resolve(const std::string& file) const {
    const fs::path p(file);
    return p.is_absolute() ? p : dir_ / p;
  }

  // PEM text from `<key>-data` (base64) or `<key>` (a file); "" when neither is set.
  std::expected<std::string, std::string> pem(const YAML::Node& node, const std::string& where,
                                              const std::string& key, std::string_view pem_kind) const {
    auto data = str(node, where, (key + "-data").c_str());
    if (!data) return std::unexpected(data.error());
    auto file = str(node, where, key.c_str());
    if (!file) return std::unexpected(file.error());
    std::string text;
    std::string named_key;
    if (!data->empty()) {
      named_key = where + "." + key + "-data";
      auto decoded = decodeBase64(*data);
      if (!decoded) return fail(named_key + ": " + decoded.error());
      text = std::move(*decoded);
    } else if (!file->empty()) {
      named_key = where + "." + key;
      auto content = readFile(resolve(*file));
      if (!content) return fail(named_key + ": " + content.error());
      text = std::move(*content);
    } else {
      return std::string();
    }
    if (!looksLikePem(text, pem_kind)) return fail(named_key + ": not PEM (" + std::string(pem_kind) + ")");
    return text;
  }

  std::expected<KubeAccess, std::string> readRoot(const YAML::Node& root, const std::string& wanted_context) {
    if (!root.IsMap()) return fail("not a kubeconfig (the top level is not a map)");
    std::string context_name = wanted_context;
    if (context_name.empty()) {
      auto current = str(root, "", "current-context");
      if (!current) return std::unexpected(current.error());
      if (current->empty()) return fail("current-context: not set and no context was given");
      context_name = *current;
    }
    auto context = named(root, "contexts", "context", context_name);
    if (!context) return std::unexpected(context.error());
    const auto& [ctx, ctx_where] = *context;
    auto cluster_name = str(ctx, ctx_where, "cluster");
    if (!cluster_name) return std::unexpected(cluster_name.error());
    auto user_name = str(ctx, ctx_where, "user");
    if (!user_name) return std::unexpected(user_name.error());
    if (cluster_name->empty()) return fail(ctx_where + ".cluster: missing");
    if (user_name->empty()) return fail(ctx_where + ".user: missing");

    KubeAccess access;
    auto cluster = named(root, "clusters", "cluster", *cluster_name);
    if (!cluster) return std::unexpected(cluster.error());
    const auto& [cl, cl_where] = *cluster;
    auto server = str(cl, cl_where, "server");
    if (!server) return std::unexpected(server.error());
    if (server->empty()) return fail(cl_where + ".server: missing");
    if (!server->starts_with("https://") && !server->starts_with("http://")) {
      return fail(cl_where + ".server: \"" + *server + "\" is not an http(s):// URL");
    }
    access.server = *server;
    if (const YAML::Node skip = cl["insecure-skip-tls-verify"]; skip && !skip.IsNull()) {
      bool value = false;
      if (!YAML::convert<bool>::decode(skip, value)) {
        return fail(cl_where + ".insecure-skip-tls-verify: not a boolean");
      }
      if (value) {
        return fail(cl_where + ".insecure-skip-tls-verify: true is refused (NodeGate never skips TLS "
                               "verification; set certificate-authority-data)");
      }
    }
    auto ca = pem(cl, cl_where, "certificate-authority", "CERTIFICATE");
    if (!ca) return std::unexpected(ca.error());
    access.ca_pem = std::move(*ca);
    if (access.server.starts_with("https://") && access.ca_pem.empty()) {
      return fail(cl_where + ": no certificate-authority-data or certificate-authority (required for https)");
    }

    auto user = named(root, "users", "user", *user_name);
    if (!user) return std::unexpected(user.error());
    const auto& [us, us_where] = *user;
    auto token = str(us, us_where, "token");
    if (!token) return std::unexpected(token.error());
    access.token = *token;
    auto token_file = str(us, us_where, "tokenFile");
    if (!token_file) return std::unexpected(token_file.error());
    if (!token_file->empty()) {
      const fs::path p = resolve(*token_file);
      if (!readFile(p)) return fail(us_where + ".tokenFile: cannot read " + p.string());
      access.token_file = p.string();
    }
    auto cert = pem(us, us_where, "client-certificate", "CERTIFICATE");
    if (!cert) return std::unexpected(cert.error());
    auto key = pem(us, us_where, "client-key", "PRIVATE KEY");
    if (!key) return std::unexpected(key.error());
    if (cert->empty() != key->empty()) {
      return fail(us_where + ": " +
                  (cert->empty() ? "client-key without client-certificate" : "client-certificate without client-key"));
    }
    access.client_cert_pem = std::move(*cert);
    access.client_key_pem = std::move(*key);
    if (access.token.empty() && access.token_file.empty() && access.client_cert_pem.empty()) {
      std::string why;
      if (us["exec"]) why = " (exec plugins are not supported)";
      else if (us["auth-provider"]) why = " (auth-provider plugins are not supported)";
      else if (us["username"] || us["password"]) why = " (basic auth is not supported)";
      return fail(us_where + ": no token, tokenFile or client certificate" + why);
    }
    return access;
  }

  std::string path_;
  fs::path dir_;
};

}  // namespace

std::expected<std::string, std::string> decodeBase64(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (const char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      padding = true;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return std::unexpected(std::string("not base64 (character '") + c + "')");
    }
    if (padding) return std::unexpected("not base64 (data after '=')");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::unexpected("not base64 (truncated)");
  return out;
}

std::expected<KubeAccess, std::string> loadKubeconfig(const std::string& path, const std::string& context) {
  return KubeconfigReader(path).read(context);
}

std::expected<KubeAccess, std::string> inClusterAccess(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return std::unexpected(
        "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a Pod?)");
  }
  const std::string h(host);
  KubeAccess access;
  access.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  const fs::path dir(sa_dir);
  const fs::path token = dir / "token";
  auto token_text = readFile(token);
  if (!token_text) return std::unexpected("in-cluster: " + token_text.error());
  if (token_text->find_first_not_of(" \t\r\n") == std::string::npos) {
    return std::unexpected("in-cluster: " + token.string() + " is empty");
  }
  access.token_file = token.string();
  auto ca = readFile(dir / "ca.crt");
  if (!ca) return std::unexpected("in-cluster: " + ca.error());
  if (!looksLikePem(*ca, "CERTIFICATE")) {
    return std::unexpected("in-cluster: " + (dir / "ca.crt").string() + " is not a PEM certificate");
  }
  access.ca_pem = std::move(*ca);
  return access;
}

}  // namespace ng::kube
