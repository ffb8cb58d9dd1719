// Formats lowbit::Error messages as "file 'F': tensor 'T': message (value: V)".
#include "lowbit/error.h"

#include <cstdio>

namespace lowbit {
namespace {

std::string compose(const std::string& message, const ErrorContext& c) {
  std::string out;
  if (!c.file.empty()) out += "file '" + c.file + "': ";
  if (!c.tensor.empty()) out += "tensor '" + c.tensor + "': ";
  out += message;
  if (!c.value.empty()) out += " (value: " + c.value + ")";
  return out;
}

}  // namespace

Error::Error(const std::string& message, ErrorContext context)
    : std::runtime_error(compose(message, context)),
      message_(message),
      context_(std::move(context)) {}

Error Error::with_file(const std::string& file) const {
  if (!context_.file.empty()) return *this;
  ErrorContext c = context_;
  c.file = file;
  return Error(message_, c);
}

Error Error::with_tensor(const std::string& tensor) const {
  if (!context_.tensor.empty()) return *this;
  ErrorContext c = context_;
  c.tensor = tensor;
  return Error(message_, c);
}

void warn(const std::string& message, const ErrorContext& context) {
  std::fprintf(stderr, "lowbit: warning: %s\n", compose(message, context).c_str());
}

}  // namespace lowbit
