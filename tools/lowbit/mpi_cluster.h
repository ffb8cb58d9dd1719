// Open MPI behind lowbit::Cluster, for runs mpirun starts (lowbit/cluster.h).
#pragma once

namespace lowbit::cli {

// When mpirun (or another PMI launcher) started this process: MPI initialised and
// installed as lowbit::cluster(); otherwise nothing. Finalised at exit.
void join_mpi_world_if_launched(int* argc, char*** argv);
// A failing rank takes the others down (they would wait in a collective forever).
void abort_mpi_world_if_joined(int status);

}  // namespace lowbit::cli
