// The current cluster (lowbit/cluster.h): one process unless the executable set another.
#include "lowbit/cluster.h"

#include <string>

#include "lowbit/error.h"

namespace lowbit {
namespace {

std::unique_ptr<Cluster>& current() {
  static std::unique_ptr<Cluster> c = std::make_unique<Cluster>();
  return c;
}

}  // namespace

void Cluster::send(int to, std::span<const uint8_t>) {
  throw Error("a single process has no rank to send to", {.value = std::to_string(to)});
}

std::vector<uint8_t> Cluster::receive(int from) {
  throw Error("a single process has no rank to receive from", {.value = std::to_string(from)});
}

std::vector<uint8_t> Cluster::gather_to_all(std::span<const uint8_t> mine) {
  std::vector<uint8_t> all;
  for (const auto& part : gather(mine)) all.insert(all.end(), part.begin(), part.end());
  broadcast(all);
  return all;
}

Cluster& cluster() { return *current(); }

void set_cluster(std::unique_ptr<Cluster> c) { current() = c ? std::move(c) : std::make_unique<Cluster>(); }

}  // namespace lowbit
