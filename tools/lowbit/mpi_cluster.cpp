// MpiCluster: lowbit::Cluster on MPI_COMM_WORLD (mpi_cluster.h).
#include "mpi_cluster.h"

#include <mpi.h>

#include <cstdlib>

#include "lowbit/cluster.h"
#include "lowbit/error.h"

namespace lowbit::cli {
namespace {

bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw Error(std::string("MPI: ") + what + " failed", {.value = std::to_string(rc)});
}

class MpiCluster final : public Cluster {
 public:
  MpiCluster() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::vector<std::vector<uint8_t>> gather(std::span<const uint8_t> mine) override {
    const long long n = static_cast<long long>(mine.size());
    std::vector<long long> sizes(rank_ == 0 ? size_ : 0);
    check(MPI_Gather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "gather of sizes");
    std::vector<std::vector<uint8_t>> out;
    if (rank_ == 0) {
      out.resize(size_);
      out[0].assign(mine.begin(), mine.end());
      for (int r = 1; r < size_; ++r) {
        out[r].resize(static_cast<size_t>(sizes[r]));
        receive_bytes(out[r], r);
      }
    } else {
      send_bytes(mine, 0);
    }
    return out;
  }

  void broadcast(std::vector<uint8_t>& bytes) override {
    long long n = static_cast<long long>(bytes.size());
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "broadcast of a size");
    bytes.resize(static_cast<size_t>(n));
    for (long long at = 0; at < n;) {
      const int part = static_cast<int>(std::min<long long>(n - at, kPart));
      check(MPI_Bcast(bytes.data() + at, part, MPI_BYTE, 0, MPI_COMM_WORLD), "broadcast");
      at += part;
    }
  }

  void send(int to, std::span<const uint8_t> bytes) override {
    const long long n = static_cast<long long>(bytes.size());
    check(MPI_Send(&n, 1, MPI_LONG_LONG, to, 0, MPI_COMM_WORLD), "send of a size");
    send_bytes(bytes, to);
  }

  std::vector<uint8_t> receive(int from) override {
    long long n = 0;
    check(MPI_Recv(&n, 1, MPI_LONG_LONG, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "receive of a size");
    std::vector<uint8_t> bytes(static_cast<size_t>(n));
    receive_bytes(bytes, from);
    return bytes;
  }

 private:
  static constexpr long long kPart = 1 << 30;  // MPI counts are ints: large messages go in parts
  void send_bytes(std::span<const uint8_t> b, int to) {
    for (size_t at = 0; at < b.size();) {
      const int part = static_cast<int>(std::min<long long>(static_cast<long long>(b.size() - at), kPart));
      check(MPI_Send(b.data() + at, part, MPI_BYTE, to, 0, MPI_COMM_WORLD), "send");
      at += static_cast<size_t>(part);
    }
  }
  void receive_bytes(std::vector<uint8_t>& b, int from) {
    for (size_t at = 0; at < b.size();) {
      const int part = static_cast<int>(std::min<long long>(static_cast<long long>(b.size() - at), kPart));
      check(MPI_Recv(b.data() + at, part, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "receive");
      at += static_cast<size_t>(part);
    }
  }
  int rank_ = 0, size_ = 1;
};

bool joined = false;

}  // namespace

void join_mpi_world_if_launched(int* argc, char*** argv) {
  if (!launched_by_mpirun()) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  joined = true;
  set_cluster(std::make_unique<MpiCluster>());
  std::atexit([] {
    set_cluster(nullptr);
    MPI_Finalize();
  });
}

void abort_mpi_world_if_joined(int status) {
  if (joined && cluster().size() > 1) MPI_Abort(MPI_COMM_WORLD, status);
}

}  // namespace lowbit::cli
