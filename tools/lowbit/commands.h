// The CLI's subcommands: each file registers one on the app and runs it when chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace lowbit::cli {

// A registered subcommand: returns the process exit status when run.
using Runner = std::function<int()>;

Runner register_formats(CLI::App& app);
Runner register_probe(CLI::App& app);

}  // namespace lowbit::cli
