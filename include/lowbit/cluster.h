// The processes of one run. `mpirun -np N lowbit ...` (Open MPI) starts N ranks; the
// commands that shard their work (imatrix: chunks) ask cluster() who they are and pass
// bytes through it. The library holds no MPI code: the lowbit executable installs an MPI
// cluster when mpirun started it (tools/lowbit/mpi_cluster.cpp); otherwise, and for every
// library user, cluster() is one process, rank 0 of 1, whose collective steps are copies.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace lowbit {

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  bool is_root() const { return rank() == 0; }
  // Every rank's bytes, in rank order, on rank 0; the other ranks get an empty list.
  virtual std::vector<std::vector<uint8_t>> gather(std::span<const uint8_t> mine) {
    return {std::vector<uint8_t>(mine.begin(), mine.end())};
  }
  // Rank 0's bytes, on every rank.
  virtual void broadcast(std::vector<uint8_t>& /*bytes*/) {}
  // Every rank's bytes, one after another in rank order, on every rank (gather, then
  // broadcast): what each rank adds up in the same order, so all get the same sums.
  std::vector<uint8_t> gather_to_all(std::span<const uint8_t> mine);
  // Point to point, in order between two ranks (a pipeline's hand-offs). One process has
  // no one to talk to: both throw.
  virtual void send(int to, std::span<const uint8_t> bytes);
  virtual std::vector<uint8_t> receive(int from);
};

Cluster& cluster();
void set_cluster(std::unique_ptr<Cluster> c);  // nullptr: back to one process

}  // namespace lowbit
