// Reads of files whose content and type others control (libvirt's run directory, pid files,
// the configuration): a regular file only, opened without blocking, so a FIFO or a device put
// in its place cannot hold or flood the reader, and no more than a bound.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace vnet::io {

class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The whole content of `path`. Throws FileError, naming the path and why, when it cannot be
// opened, is not a regular file (after symlinks), or is larger than `max_bytes`.
std::string ReadFile(const std::string& path, std::size_t max_bytes);

// The first line of a small file (sysfs and procfs attributes, pid files), "" when it cannot
// be read as ReadFile would.
std::string ReadFirstLine(const std::string& path, std::size_t max_bytes = 4096);

}  // namespace vnet::io
