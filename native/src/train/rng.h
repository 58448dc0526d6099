// Counter-based random numbers: every draw is a pure function of (seed, coordinates).
//
// No generator state exists to save or restore, so a resumed run draws exactly what an
// uninterrupted one would (dropout masks, LoRA init, data order), whatever the thread
// count or the order work happens in.
#pragma once

#include <cstdint>

namespace selftune::train {

// SplitMix64's finalizer: a bijective mix with good avalanche.
inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline uint64_t hash_combine(uint64_t h, uint64_t v) {
    return mix64(h ^ mix64(v));
}

// A key for one stream of draws, e.g. key(seed, "dropout", step, micro, layer, target).
struct RngKey {
    uint64_t h;
    explicit RngKey(uint64_t seed) : h(mix64(seed)) {}
    RngKey with(uint64_t v) const {
        RngKey k(0);
        k.h = hash_combine(h, v);
        return k;
    }
    uint64_t bits(uint64_t i) const { return mix64(h ^ (i * 0xd6e8feb86659fd93ull)); }
    // Uniform in [0, 1) with 24 bits, exactly representable in float.
    float uniform(uint64_t i) const { return (float) (bits(i) >> 40) * (1.0f / 16777216.0f); }
};

// Stream tags: fixed numbers so that streams never collide across uses.
enum RngStream : uint64_t {
    kStreamLoraInit = 0x4c6f5241,   // "LoRA"
    kStreamDropout = 0x44726f70,    // "Drop"
    kStreamShuffle = 0x53687566,    // "Shuf"
};

}  // namespace selftune::train
