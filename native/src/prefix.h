// Shared prompt prefixes: how many leading tokens two sequences have in common, and how
// much of it the prefix cache should hold.
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

// How far to extend the prefix cache before an item starts: the cache holds `have` of its
// leading tokens, and it shares `with_next` with the next item in token order (and so
// with every later one that shares as much). Caching more pays when the next item gains
// at least `min_shared` tokens; otherwise the cache stays as it is.
inline int32_t prefix_to_cache(int32_t have, int32_t with_next, int32_t min_shared) {
    return with_next >= min_shared && with_next - have >= min_shared ? with_next : have;
}

}  // namespace selftune
