#include "control/state_file.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ng::control {
namespace {

constexpr const char* kFormat = "nodegate-state/1";

std::string sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 0xf];
  }
  return hex;
}

std::string errnoText() { return std::strerror(errno); }

// Writes all of `text` to `fd`, retrying short writes.
bool writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

StateFile::StateFile(std::string path) : path_(std::move(path)) {}

std::expected<std::optional<nlohmann::json>, std::string> StateFile::read() const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path_)) return std::nullopt;
    return std::unexpected(path_ + ": cannot open: " + errnoText());
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    return std::unexpected(path_ + ": corrupt (not JSON: " + e.what() + ")");
  }
  if (!doc.is_object() || doc.value("format", "") != kFormat || !doc.contains("data") ||
      !doc["sha256"].is_string()) {
    return std::unexpected(path_ + ": not a NodeGate state file (want format '" + kFormat +
                           "' with sha256 and data)");
  }
  if (sha256Hex(doc["data"].dump()) != doc["sha256"].get<std::string>()) {
    return std::unexpected(path_ + ": corrupt (checksum mismatch: the file was changed or torn)");
  }
  return std::optional<nlohmann::json>(std::move(doc["data"]));
}

std::expected<void, std::string> StateFile::write(const nlohmann::json& data) const {
  const std::filesystem::path target(path_);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(dir.string() + ": cannot create: " + ec.message());

  const nlohmann::json doc{{"format", kFormat}, {"sha256", sha256Hex(data.dump())}, {"data", data}};
  const std::string text = doc.dump(2) + "\n";
  const std::string temp = path_ + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(temp + ": cannot create: " + errnoText());
  const bool ok = writeAll(fd, text) && ::fsync(fd) == 0;
  const std::string write_error = ok ? "" : errnoText();
  ::close(fd);
  if (!ok) {
    ::unlink(temp.c_str());
    return std::unexpected(temp + ": cannot write: " + write_error);
  }
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    const std::string why = errnoText();
    ::unlink(temp.c_str());
    return std::unexpected(path_ + ": cannot replace: " + why);
  }
  // The rename is durable only once the directory entry is on disk.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

}  // namespace ng::control
