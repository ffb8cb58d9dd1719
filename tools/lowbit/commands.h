// The CLI's subcommands: each file registers one on the app and runs it when chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace lowbit::cli {

// A registered subcommand: returns the process exit status when run.
using Runner = std::function<int()>;

Runner register_formats(CLI::App& app);
Runner register_probe(CLI::App& app);
Runner register_info(CLI::App& app);
Runner register_convert(CLI::App& app);
Runner register_generate(CLI::App& app);
Runner register_perplexity(CLI::App& app);
Runner register_quantize(CLI::App& app);
Runner register_imatrix(CLI::App& app);
Runner register_recipes(CLI::App& app);
Runner register_eval(CLI::App& app);

// Reads a text file as raw bytes (no newline translation); throws Error naming the file.
std::string read_text_file(const std::string& path);

}  // namespace lowbit::cli
