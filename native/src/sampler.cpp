#include "sampler.h"

#include <algorithm>
#include <cstring>

namespace selftune {

namespace {

// First index of the largest value: llama.cpp's greedy sampler breaks ties the same way.
int32_t argmax(const float * v, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (v[i] > v[best]) best = i;
    }
    return best;
}

}  // namespace

SequenceSampler::SequenceSampler(const SamplingParams & p, uint32_t seed, int32_t n_vocab)
    : n_vocab_(n_vocab), penalty_(p.repetition_penalty), window_size_(p.repetition_window) {
    if (penalty_ == 1.0f) window_size_ = 0;
    if (p.temperature <= 0.0f) return;   // greedy: no chain
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    chain_ = llama_sampler_chain_init(cp);
    // The order llama.cpp's own tools use: truncate first, then temperature, then draw.
    if (p.top_k > 0) llama_sampler_chain_add(chain_, llama_sampler_init_top_k(p.top_k));
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
    llama_token token;
    if (!chain_) {
        if (!penalized) {
            token = argmax(logits, n_vocab_);
        } else {
            s.row.assign(logits, logits + n_vocab_);
            penalize([&](llama_token t) -> float & { return s.row[(size_t) t]; });
            token = argmax(s.row.data(), n_vocab_);
        }
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
