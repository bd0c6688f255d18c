#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "settings/settings.hpp"
#include "settings/yaml_support.hpp"

namespace certgate::settings {

std::string Location::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column > 0 ? column : 1);
}

std::string SecretRef::describe() const {
  if (!file.empty()) return "file " + file;
  if (!credential.empty()) return "credential " + credential;
  return "(no secret configured)";
}

namespace {

core::Error secretError(const SecretRef& ref, const std::string& what, const std::string& hint,
                        core::ErrorKind kind = core::ErrorKind::Auth) {
  // Names the reference only: the value is never part of an error.
  return core::makeError(kind, "secret " + ref.describe() + ": " + what, ref.describe(), hint);
}

}  // namespace

core::Result<std::string> readSecret(const SecretRef& ref, const std::string& base_dir) {
  if (ref.file.empty() == ref.credential.empty())
    return secretError(ref, "exactly one of file or credential must be set",
                       "write {file: PATH} or {credential: NAME}", core::ErrorKind::Invalid);
  std::string path;
  if (!ref.file.empty()) {
    path = detail::resolvePath(base_dir, ref.file);
  } else {
    if (ref.credential.find('/') != std::string::npos || ref.credential == "." ||
        ref.credential == "..")
      return secretError(ref, "a credential name must not contain '/'",
                         "use the name given to LoadCredential=", core::ErrorKind::Invalid);
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
      return secretError(ref, "$CREDENTIALS_DIRECTORY is not set",
                         "run certgate under systemd with LoadCredential=" + ref.credential +
                             ":/path/to/secret (or use {file: PATH})");
    path = (std::filesystem::path(dir) / ref.credential).string();
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return secretError(ref, "cannot be read (" + path + " does not exist or is not accessible)",
                       "create it with mode 0600, owned by the certgate user");
  if (!S_ISREG(st.st_mode))
    return secretError(ref, path + " is not a regular file", "point the reference at a file");
  if (!ref.file.empty() && (st.st_mode & S_IROTH) != 0)
    return secretError(ref, path + " is readable by every user on this host",
                       "chmod 600 " + path + " (or 640 with a certgate group)");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return secretError(ref, "cannot be read (permission denied?)",
                       "make it readable by the user certgate runs as");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string value = buffer.str();
  if (!value.empty() && value.back() == '\n') {
    value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  if (value.empty()) return secretError(ref, "is empty", "write the secret into " + path);
  return value;
}

}  // namespace certgate::settings
