// A configuration that cannot be used: the message names file, line and key.
#pragma once

#include <stdexcept>

namespace vnet::config {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vnet::config
