#include "sampler.h"

#include "vec_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace selftune {

namespace {

// First index of the largest value: llama.cpp's greedy sampler breaks ties the same way.
// A plain index-tracking loop does not vectorise and cost ~10% of a greedy step on a
// 150k vocabulary; a block's max does (8 lanes of max, no index), so we find the first
// block holding the largest value and scan only that block. The AVX2 clone is picked at
// load time on CPUs that have it.
__attribute__((target_clones("avx2", "default")))
int32_t argmax(const float * v, int32_t n) {
    constexpr int32_t B = 64;
    float best = v[0];
    int32_t best_block = 0;
    int32_t i = 0;
    for (; i + B <= n; i += B) {
        float lane[8];
        for (int k = 0; k < 8; k++) lane[k] = v[i + k];
        for (int32_t j = 8; j < B; j += 8) {
            for (int k = 0; k < 8; k++) lane[k] = v[i + j + k] > lane[k] ? v[i + j + k] : lane[k];
        }
        float m = lane[0];
        for (int k = 1; k < 8; k++) m = lane[k] > m ? lane[k] : m;
        if (m > best) {
            best = m;
            best_block = i;
        }
    }
    int32_t arg = -1;
    for (int32_t j = best_block; j < std::min(best_block + B, n); j++) {
        if (v[j] == best) {
            arg = j;
            break;
        }
    }
    for (; i < n; i++) {   // the tail that fills no whole block
        if (v[i] > best) {
            best = v[i];
            arg = i;
        }
    }
    return arg < 0 ? 0 : arg;   // -1 only for NaN everywhere
}

// exp(-d) for 0 <= d < 64, to ~1e-5 relative: 2^x as 2^floor(x) (exponent bits) times a
// polynomial for the fraction. Only for the top-p histogram, whose 1% margin dwarfs the
// error; glibc's expf there cost as much as llama.cpp's whole softmax.
inline float exp_neg(float d) {
    const float x = -d * 1.44269504f;
    const float whole = std::floor(x);
    const float f = x - whole;
    float p = 1.0f + f * (0.69314718f + f * (0.24022651f + f * (0.05550411f + f * 0.00961813f)));
    uint32_t bits;
    std::memcpy(&bits, &p, sizeof bits);
    bits += (uint32_t) ((int32_t) whole) << 23;
    std::memcpy(&p, &bits, sizeof bits);
    return p;
}

// The logit at which `x` is cut to its top-p set: the fewest highest-logit tokens whose
// probability (softmax at temperature 1, as llama.cpp's top-p) sums to at least p are
// those with x >= the returned value (tokens tied with the last one kept come too).
// llama.cpp's top-p sorts the candidates, the whole vocabulary whenever its top 256 do
// not reach p (a flat distribution: every step of a random test model, high-entropy steps
// of a real one): 19 ms a token on Qwen's 150k. Here one pass bins the tokens by logit
// into fine buckets with their probability mass; every bucket before the one where the
// running mass reaches p is wholly in the set, and only that bucket is sorted to find the
// cut. Leaves exp(x - top) in s.w.
float top_p_threshold(const float * x, size_t n, float top, float top_p, SamplerScratch & s) {
    constexpr int   n_buckets = 4096;
    // Tokens 30 nats below the top weigh < 150k * 1e-13 together: their mass goes into the
    // total, and they are never in a set (the set holds the top token, whose weight is 1).
    constexpr float range = 30.0f;
    constexpr float scale = n_buckets / range;
    s.w.resize(n);
    size_t i = 0;
    const vec::v8f vtop = vec::splat(top);
    for (; i + vec::kLanes <= n; i += vec::kLanes) vec::store(&s.w[i], vec::exp_nonpos(vec::load(x + i) - vtop));
    for (; i < n; i++) s.w[i] = vec::exp_nonpos(x[i] - top);
    auto bucket = [&](float logit) {
        const float d = top - logit;
        return d < range ? (int) (d * scale) : n_buckets;   // NaN and the far tail: past the end
    };
    s.bucket_mass.assign(n_buckets + 1, 0.0);
    for (i = 0; i < n; i++) s.bucket_mass[(size_t) bucket(x[i])] += s.w[i];
    double total = 0.0;
    for (int b = 0; b <= n_buckets; b++) total += s.bucket_mass[(size_t) b];
    const double want = (double) top_p * total;
    double before = 0.0;   // mass of the buckets wholly in the set
    int cut = n_buckets - 1;
    for (int b = 0; b < n_buckets; b++) {
        if (before + s.bucket_mass[(size_t) b] >= want) {
            cut = b;
            break;
        }
        before += s.bucket_mass[(size_t) b];
    }
    // The cut bucket's logits, highest first, until the mass is reached.
    s.cut.clear();
    for (i = 0; i < n; i++) {
        if (bucket(x[i]) == cut) s.cut.push_back(x[i]);
    }
    if (s.cut.empty()) return top;   // not reached (NaN logits): keep the top
    std::sort(s.cut.begin(), s.cut.end(), std::greater<float>());
    double mass = before;
    size_t k = 0;
    while (k + 1 < s.cut.size() && mass + vec::exp_nonpos(s.cut[k] - top) < want) mass += vec::exp_nonpos(s.cut[k++] - top);
    return s.cut[k];
}

// Draws from the tokens with x >= floor, weighted by exp((x - top) / temperature), with
// u uniform in [0, 1): the first token at which the running weight passes u * total.
llama_token draw(const float * x, size_t n, float top, float floor, float inv_temp, double u, SamplerScratch & s) {
    s.w.resize(n);
    const vec::v8f vtop = vec::splat(top), vfloor = vec::splat(floor), zero = vec::splat(0.0f);
    double total = 0.0;
    size_t i = 0;
    // Lanes summed into a double every block: bounds the float error over 150k terms.
    while (i + vec::kLanes <= n) {
        const size_t end = std::min(n - n % vec::kLanes, i + 4096);
        vec::v8f acc = zero;
        for (; i < end; i += vec::kLanes) {
            const vec::v8f v = vec::load(x + i);
            const vec::v8f w = vec::select(v >= vfloor, vec::exp_nonpos((v - vtop) * inv_temp), zero);
            vec::store(&s.w[i], w);
            acc += w;
        }
        for (int j = 0; j < vec::kLanes; j++) total += acc[j];
    }
    for (; i < n; i++) {
        s.w[i] = x[i] >= floor ? vec::exp_nonpos((x[i] - top) * inv_temp) : 0.0f;
        total += s.w[i];
    }
    const double target = u * total;
    double run = 0.0;
    llama_token last = -1;
    for (i = 0; i < n; i++) {
        if (s.w[i] == 0.0f) continue;
        run += s.w[i];
        last = (llama_token) i;
        if (run > target) return last;
    }
    return last;   // rounding left the target at the very end
}

}  // namespace

SequenceSampler::SequenceSampler(const SamplingParams & p, uint32_t seed, int32_t n_vocab)
    : n_vocab_(n_vocab), penalty_(p.repetition_penalty), window_size_(p.repetition_window) {
    if (penalty_ == 1.0f) window_size_ = 0;
    if (p.temperature <= 0.0f) return;   // greedy: argmax
    if (p.top_k <= 0) {
        // top-p -> min-p -> temperature -> draw, fused over the row (sampler.h).
        own_ = true;
        top_p_ = p.top_p;
        min_p_ = p.min_p;
        inv_temp_ = 1.0f / p.temperature;
        rng_.seed(seed);
        return;
    }
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    chain_ = llama_sampler_chain_init(cp);
    // The order llama.cpp's own tools use: truncate first, then temperature, then draw.
    llama_sampler_chain_add(chain_, llama_sampler_init_top_k(p.top_k));
    if (p.top_p < 1.0f) llama_sampler_chain_add(chain_, llama_sampler_init_top_p(p.top_p, 1));
    if (p.min_p > 0.0f) llama_sampler_chain_add(chain_, llama_sampler_init_min_p(p.min_p, 1));
    llama_sampler_chain_add(chain_, llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(chain_, llama_sampler_init_dist(seed));
}

SequenceSampler::~SequenceSampler() {
    if (chain_) llama_sampler_free(chain_);
}

template <typename Adjust>
void SequenceSampler::penalize(Adjust adjust) const {
    for (const auto & tc : counts_) {
        float & logit = adjust(tc.first);
        logit = logit <= 0.0f ? logit * penalty_ : logit / penalty_;
    }
}

llama_token SequenceSampler::sample(const float * logits, SamplerScratch & s) {
    const bool penalized = !counts_.empty();
    const float * x = logits;
    if (penalized && !chain_) {
        s.row.assign(logits, logits + n_vocab_);
        penalize([&](llama_token t) -> float & { return s.row[(size_t) t]; });
        x = s.row.data();
    }
    llama_token token;
    if (own_) {
        const float top = vec::max_of(x, (size_t) n_vocab_);
        if (!std::isfinite(top)) {
            token = argmax(x, n_vocab_);   // NaN or inf logits: nothing to weigh
        } else {
            float floor = -INFINITY;
            if (top_p_ < 1.0f) floor = top_p_threshold(x, (size_t) n_vocab_, top, top_p_, s);
            // min-p keeps p >= min_p * p_max, i.e. logit >= top + ln(min_p), whatever came before.
            if (min_p_ > 0.0f) floor = std::max(floor, top + std::log(min_p_));
            const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
            token = draw(x, (size_t) n_vocab_, top, floor, inv_temp_, u, s);
            if (token < 0) token = argmax(x, n_vocab_);
        }
    } else if (!chain_) {
        token = argmax(x, n_vocab_);
    } else {
        s.cur.resize((size_t) n_vocab_);
        for (int32_t i = 0; i < n_vocab_; i++) s.cur[(size_t) i] = llama_token_data{i, logits[i], 0.0f};
        // Filled in id order, so entry t is token t.
        if (penalized) penalize([&](llama_token t) -> float & { return s.cur[(size_t) t].logit; });
        llama_token_data_array arr = {s.cur.data(), s.cur.size(), -1, false};
        llama_sampler_apply(chain_, &arr);
        // dist always selects; the guard only keeps NaN logits from indexing out of range.
        token = arr.selected >= 0 && (size_t) arr.selected < arr.size ? arr.data[arr.selected].id : argmax(logits, n_vocab_);
        llama_sampler_accept(chain_, token);
    }
    accept(token);
    return token;
}

void SequenceSampler::accept(llama_token token) {
    if (window_size_ <= 0) return;
    auto bump = [&](llama_token t, int32_t d) {
        for (size_t i = 0; i < counts_.size(); i++) {
            if (counts_[i].first != t) continue;
            counts_[i].second += d;
            if (counts_[i].second == 0) {
                counts_[i] = counts_.back();
                counts_.pop_back();
            }
            return;
        }
        counts_.push_back({t, d});
    };
    bump(token, 1);
    window_.push_back(token);
    if ((int32_t) window_.size() > window_size_) {
        bump(window_.front(), -1);
        window_.pop_front();
    }
}

StopMatcher::StopMatcher(const std::vector<std::string> & stops) : stops_(stops) {
    for (const std::string & s : stops_) longest_ = std::max(longest_, s.size());
}

int32_t StopMatcher::find(const std::string & text, size_t old_size, size_t & at) const {
    if (longest_ == 0 || text.size() == old_size) return -1;
    // A match wholly inside the old text would have been found a token earlier, so every
    // new match ends in the new bytes and starts at most longest-1 bytes before them.
    const size_t from = old_size >= longest_ - 1 ? old_size - (longest_ - 1) : 0;
    int32_t best = -1;
    for (size_t k = 0; k < stops_.size(); k++) {
        const size_t pos = text.find(stops_[k], from);
        if (pos == std::string::npos) continue;
        if (best < 0 || pos < at) {
            best = (int32_t) k;
            at = pos;
        }
    }
    return best;
}

std::string sanitize_utf8(const std::string & s) {
    std::string out;
    out.reserve(s.size());
    const auto * p = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            // Reject overlong forms, surrogates and code points past U+10FFFF.
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; k++) cp = (cp << 6) | (p[i + k] & 0x3F);
            static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min_cp[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            i += 1;
        }
    }
    return out;
}

uint32_t derive_seed(uint32_t base, uint32_t index) {
    // splitmix64 finaliser over (base, index).
    uint64_t z = ((uint64_t) base << 32 | index) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const uint32_t seed = (uint32_t) z;
    return seed == LLAMA_DEFAULT_SEED ? 0 : seed;
}

}  // namespace selftune
