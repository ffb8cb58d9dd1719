// The CLI's subcommands: each file registers one on the app and runs it when chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/model.h"

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
Runner register_bench(CLI::App& app);
Runner register_synth(CLI::App& app);
Runner register_tokenize(CLI::App& app);
Runner register_task(CLI::App& app);
Runner register_finetune(CLI::App& app);
Runner register_qat(CLI::App& app);
Runner register_sensitivity(CLI::App& app);
Runner register_merge(CLI::App& app);

// Reads a text file as raw bytes (no newline translation); throws Error naming the file.
std::string read_text_file(const std::string& path);

// Loads a model for use and refuses NaN/Inf weights (tensor, row, column named).
Model open_model(const std::string& path, const std::string& tokenizer);

// The paths a command reads: the model's files plus `others` (text, imatrix, ...), for
// refuse_overwriting_inputs.
std::vector<std::string> inputs_of(const Model& model, std::vector<std::string> others = {});

// Checks that `threads` worker threads can be created (each with the stack OpenMP would
// give it), so a too-large --threads is an error here rather than an abort in libgomp.
void check_threads(int threads);

}  // namespace lowbit::cli
