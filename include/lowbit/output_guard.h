// The rule every writer follows: a command never writes over one of its inputs. Paths are
// compared as files, so a symlink, a hard link or a "./" spelling of an input is caught.
// Not the atomic write itself (atomic_file.h).
#pragma once

#include <string>
#include <vector>

namespace lowbit {

// Throws Error naming `output` and the input it would replace, when `output` (a file or a
// folder) is the same file as one of `inputs`, or a folder that holds one of them.
void refuse_overwriting_inputs(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace lowbit
