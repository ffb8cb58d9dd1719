// lowbit: the command-line front end. Thin: parses arguments, calls the library, turns
// lowbit::Error into a message on stderr and exit status 1.

#include <csignal>
#include <cstdio>
#include <vector>

#include "commands.h"
#include "mpi_cluster.h"
#include "lowbit/cluster.h"
#include "lowbit/error.h"
#include "lowbit/threads.h"

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) then fails the write with EFBIG, which is reported and
  // cleaned up like a full disk, instead of killing the process with a partial output.
  std::signal(SIGXFSZ, SIG_IGN);
  // Under mpirun: one rank of N. Rank 0 prints and writes the results; the others only
  // compute (their stdout goes nowhere, their errors still show).
  lowbit::cli::join_mpi_world_if_launched(&argc, &argv);
  if (!lowbit::cluster().is_root()) std::freopen("/dev/null", "w", stdout);
  CLI::App app{"lowbit: quantize LLMs, write GGUF/GPTQ/AWQ files, measure what it cost"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--threads) may also follow the subcommand
  app.set_version_flag("--version", "lowbit 0.1.0");
  int threads = 0;
  app.add_option("--threads,-t", threads, "worker threads (default: all cores)");

  struct Entry {
    CLI::App* sub;
    lowbit::cli::Runner run;
  };
  std::vector<Entry> commands;
  auto add = [&](lowbit::cli::Runner (*reg)(CLI::App&)) {
    auto run = reg(app);
    commands.push_back({app.get_subcommands({}).back(), std::move(run)});
  };
  add(lowbit::cli::register_formats);
  add(lowbit::cli::register_probe);
  add(lowbit::cli::register_info);
  add(lowbit::cli::register_convert);
  add(lowbit::cli::register_generate);
  add(lowbit::cli::register_perplexity);
  add(lowbit::cli::register_quantize);
  add(lowbit::cli::register_imatrix);
  add(lowbit::cli::register_recipes);
  add(lowbit::cli::register_eval);
  add(lowbit::cli::register_bench);
  add(lowbit::cli::register_synth);
  add(lowbit::cli::register_tokenize);
  add(lowbit::cli::register_task);
  add(lowbit::cli::register_finetune);
  add(lowbit::cli::register_qat);
  add(lowbit::cli::register_sensitivity);
  add(lowbit::cli::register_merge);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Bad options get the same one-line format as every other error.
    std::fprintf(stderr, "lowbit: error: %s (see --help)\n", e.what());
    return 1;
  }
  try {
    if (threads != 0) {
      lowbit::cli::check_threads(threads);
      lowbit::set_thread_count(threads);
    }
    for (auto& c : commands) {
      if (c.sub->parsed()) return c.run();
    }
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    lowbit::cli::abort_mpi_world_if_joined(1);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: internal error: %s\n", e.what());
    lowbit::cli::abort_mpi_world_if_joined(2);
    return 2;
  }
  return 1;
}
