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

constexpr size_t kBlock = 4096;   // float partial sums go into a double every block

// w[i] = exp((x[i] - top) * inv_temp) where x[i] >= floor, else 0. Returns the sum of w, and
// the sum of each kBlock-long block in `blocks` when given.
double weigh(const float * x, size_t n, float top, float inv_temp, float floor, std::vector<float> & w,
             std::vector<double> * blocks) {
    using namespace vec;
    w.resize(n);
    if (blocks) blocks->clear();
    const v8f vtop = splat(top), vfloor = splat(floor), vscale = splat(inv_temp), zero = splat(0.0f);
    double total = 0.0;
    for (size_t start = 0; start < n; start += kBlock) {
        const size_t end = std::min(n, start + kBlock);
        size_t i = start;
        v8f acc = zero;
        for (; i + kLanes <= end; i += kLanes) {
            const v8f v = load(x + i);
            const v8f e = select(v >= vfloor, exp_nonpos((v - vtop) * vscale), zero);
            store(&w[i], e);
            acc += e;
        }
        double sum = 0.0;
        for (int j = 0; j < kLanes; j++) sum += acc[j];
        for (; i < end; i++) {
            w[i] = x[i] >= floor ? exp_nonpos((x[i] - top) * inv_temp) : 0.0f;
            sum += w[i];
        }
        total += sum;
        if (blocks) blocks->push_back(sum);
    }
    return total;
}

// Among `v` (logits below every token already kept, whose mass is `above`), the logit of
// the token at which the running mass, highest first, reaches `want`. A quickselect on
// mass: partition around a pivot, keep the side the cut is in; sort only the last few.
float cut_by_mass(std::vector<float> & v, float top, double above, double want) {
    size_t lo = 0, hi = v.size();
    while (hi - lo > 64) {
        std::nth_element(v.begin() + (ptrdiff_t) lo, v.begin() + (ptrdiff_t) ((lo + hi) / 2), v.begin() + (ptrdiff_t) hi,
                         std::greater<float>());
        const size_t mid = (lo + hi) / 2;   // [lo, mid) >= v[mid] >= [mid + 1, hi)
        double upper = 0.0;
        for (size_t i = lo; i < mid; i++) upper += vec::exp_nonpos(v[i] - top);
        if (above + upper >= want) {
            hi = mid;
        } else {
            above += upper;
            lo = mid;
        }
    }
    std::sort(v.begin() + (ptrdiff_t) lo, v.begin() + (ptrdiff_t) hi, std::greater<float>());
    size_t k = lo;
    while (k + 1 < hi && above + vec::exp_nonpos(v[k] - top) < want) above += vec::exp_nonpos(v[k++] - top);
    return v[k];
}

// Draws from the tokens with x >= floor, weighted by exp((x - top) / temperature), with
// u uniform in [0, 1): the first token at which the running weight passes u * total. The
// block sums find the block to walk.
llama_token draw(const float * x, size_t n, float top, float floor, float inv_temp, double u, SamplerScratch & s) {
    const double total = weigh(x, n, top, inv_temp, floor, s.w, &s.blocks);
    const double target = u * total;
    double run = 0.0;
    size_t b = 0;
    while (b + 1 < s.blocks.size() && run + s.blocks[b] <= target) run += s.blocks[b++];
    llama_token last = -1;
    for (size_t i = b * kBlock; i < n; i++) {
        if (s.w[i] == 0.0f) continue;
        run += s.w[i];
        last = (llama_token) i;
        if (run > target) return last;
    }
    // Rounding left the target at the very end: the last token with weight.
    for (size_t i = n; i-- > 0 && last < 0;) {
        if (s.w[i] > 0.0f) last = (llama_token) i;
    }
    return last;
}

}  // namespace

// The logit at which `x` is cut to its top-p set: the fewest highest-logit tokens whose
// probability (softmax at temperature 1, as llama.cpp's top-p) sums to at least p are
// those with x >= the returned value (tokens tied with the last one kept come too).
//
// llama.cpp's top-p sorts the candidates, the whole vocabulary whenever its top 256 do not
// reach p (a flat distribution: every step of a random test model, high-entropy steps of
// a real one): 19 ms a token on Qwen's 150k. Here: a strided sample of ~2k logits, sorted,
// estimates where the cut falls; one vectorised pass sums the exact mass above six
// thresholds around that estimate; among the tokens between the two that bracket the cut
// (a few thousand) a quickselect on mass finds it.
float top_p_threshold(const float * x, size_t n, float top, float top_p, SamplerScratch & s) {
    using namespace vec;
    const double total = weigh(x, n, top, 1.0f, -INFINITY, s.w, nullptr);
    const double want = (double) top_p * total;

    // The estimate: where the sample's own running mass reaches p of the sample's total.
    const size_t stride = std::max<size_t>(1, n / 1024);
    s.cut.clear();
    for (size_t i = 0; i < n; i += stride) s.cut.push_back(x[i]);
    std::sort(s.cut.begin(), s.cut.end(), std::greater<float>());
    const size_t m = s.cut.size();
    s.sample_w.resize(m);
    weigh(s.cut.data(), m, top, 1.0f, -INFINITY, s.sample_w, nullptr);
    double sample_total = 0.0;
    for (float w : s.sample_w) sample_total += w;
    size_t rank = m - 1;
    double est = 0.0;
    for (size_t k = 0; k < m; k++) {
        est += s.sample_w[k];
        if (est >= (double) top_p * sample_total) {
            rank = k;
            break;
        }
    }
    constexpr int T = 6;   // thresholds, high to low; 6 keep the pass in 16 vector registers
    const long offsets[T] = {-64, -16, -4, 4, 16, 64};
    float th[T];
    for (int j = 0; j < T; j++) th[j] = s.cut[(size_t) std::clamp<long>((long) rank + offsets[j], 0, (long) m - 1)];

    double mass[T] = {};
    v8f vth[T];
    for (int j = 0; j < T; j++) vth[j] = splat(th[j]);
    const v8f zero = splat(0.0f);
    for (size_t start = 0; start < n; start += kBlock) {
        const size_t end = std::min(n, start + kBlock);
        v8f acc[T];
        for (int j = 0; j < T; j++) acc[j] = zero;
        size_t i = start;
        for (; i + kLanes <= end; i += kLanes) {
            const v8f v = load(x + i), w = load(&s.w[i]);
            for (int j = 0; j < T; j++) acc[j] += select(v >= vth[j], w, zero);
        }
        for (int j = 0; j < T; j++) {
            for (int l = 0; l < kLanes; l++) mass[j] += acc[j][l];
        }
        for (; i < end; i++) {
            for (int j = 0; j < T; j++) mass[j] += x[i] >= th[j] ? s.w[i] : 0.0f;
        }
    }
    // The bracket: above `hi` the mass is short of p; down to `lo` it reaches it.
    float hi = INFINITY, lo = -INFINITY;
    double above = 0.0;
    for (int j = 0; j < T; j++) {
        if (mass[j] < want) {
            hi = th[j];
            above = mass[j];
        } else {
            lo = th[j];
            break;
        }
    }
    s.cut.clear();
    collect_range(x, n, lo, hi, s.cut);
    if (s.cut.empty()) return hi;   // NaN logits: keep what is above the bracket
    return cut_by_mass(s.cut, top, above, want);
}

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
