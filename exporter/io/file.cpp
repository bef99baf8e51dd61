#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vnet::io {

std::string ReadFile(const std::string& path, std::size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw FileError(path + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw FileError(path + ": not a regular file");
  // sysfs and procfs report sizes that are not their content's: read to the bound instead.
  std::string out(max_bytes + 1, '\0');
  std::size_t len = 0;
  while (len < out.size()) {
    const ssize_t n = read(fd, &out[len], out.size() - len);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FileError(path + ": cannot read: " + std::strerror(errno));
    }
    len += static_cast<std::size_t>(n);
  }
  if (len > max_bytes) throw FileError(path + ": larger than " + std::to_string(max_bytes) + " bytes");
  out.resize(len);
  return out;
}

std::string ReadFirstLine(const std::string& path, std::size_t max_bytes) {
  try {
    std::string s = ReadFile(path, max_bytes);
    return s.substr(0, s.find('\n'));
  } catch (const FileError&) {
    return "";
  }
}

}  // namespace vnet::io
