// Thread-count defaults. llama.cpp must not run more threads than physical cores:
// over-subscribing 2 cores made a peer binding ~100x slower on our CI machines.
#pragma once

namespace selftune {

// Physical cores this process may use: distinct (package, core) pairs among the CPUs in
// its affinity mask, further capped by a cgroup v2 CPU quota. At least 1.
int physical_cores();

}  // namespace selftune
