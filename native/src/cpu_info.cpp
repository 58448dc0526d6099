#include "cpu_info.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

namespace selftune {

#if defined(__linux__)
static bool read_int(const std::string & path, long & out) {
    std::ifstream f(path);
    return static_cast<bool>(f >> out);
}

static int cgroup_quota_cpus() {
    std::ifstream f("/sys/fs/cgroup/cpu.max");
    std::string quota;
    long period = 0;
    if (!(f >> quota >> period) || quota == "max" || period <= 0) return 0;
    long q = std::atol(quota.c_str());
    if (q <= 0) return 0;
    return (int) std::max(1.0, std::ceil((double) q / (double) period));
}
#endif

int physical_cores() {
    int n = 0;
#if defined(__linux__)
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
        std::set<std::pair<long, long>> cores;
        int logical = 0;
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
            if (!CPU_ISSET(cpu, &mask)) continue;
            logical++;
            const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
            long pkg = 0, core = cpu;
            if (!read_int(base + "physical_package_id", pkg) || !read_int(base + "core_id", core)) {
                pkg = 0;
                core = cpu;  // no topology: count the logical CPU
            }
            cores.insert({pkg, core});
        }
        n = cores.empty() ? logical : (int) cores.size();
    }
    const int quota = cgroup_quota_cpus();
    if (quota > 0 && (n == 0 || quota < n)) n = quota;
#endif
    if (n <= 0) {
        const unsigned hc = std::thread::hardware_concurrency();
        n = hc > 0 ? (int) hc : 1;
    }
    return std::max(1, n);
}

}  // namespace selftune
