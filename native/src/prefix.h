// Shared prompt prefixes: how many leading tokens two sequences have in common.
#pragma once

#include "llama.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace selftune {

// Length of the common prefix of a and b, at most `cap`.
inline int32_t common_prefix(const std::vector<llama_token> & a, const std::vector<llama_token> & b, int32_t cap) {
    const int32_t n = std::min<int32_t>({cap, (int32_t) a.size(), (int32_t) b.size()});
    int32_t i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

}  // namespace selftune
