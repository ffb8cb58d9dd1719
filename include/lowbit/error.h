// lowbit::Error: the one exception type the library throws, carrying where it happened
// (file, tensor) and the offending value. Library code never exits; the CLI prints
// what() and returns a non-zero status.
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit {

struct ErrorContext {
  std::string file;    // path of the file being read or written, if any
  std::string tensor;  // tensor name, if any
  std::string value;   // the offending value, printed as text, if any
};

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, ErrorContext context = {});

  const std::string& message() const { return message_; }
  const ErrorContext& context() const { return context_; }

  // A copy of this error with file/tensor filled in where they were empty: lets an
  // outer layer (a reader) add the file name to an error raised deeper down.
  Error with_file(const std::string& file) const;
  Error with_tensor(const std::string& tensor) const;

 private:
  std::string message_;
  ErrorContext context_;
};

// Prints "lowbit: warning: <file/tensor context>: message" on stderr: for input that is
// used anyway but that a user should know about (duplicate merges, unused tensors).
void warn(const std::string& message, const ErrorContext& context = {});

}  // namespace lowbit
