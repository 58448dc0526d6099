#include "generator.h"

#include "batch.h"
#include "cancel.h"
#include "context.h"
#include "js_args.h"
#include "model.h"
#include "parallel.h"
#include "graph_head.h"
#include "prefix.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace selftune {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// `special` renders control tokens as their text. The generated text never needs it (a
// control token ends the generation before it is rendered); the stop token's recorded
// text does.
std::string piece(const llama_vocab * vocab, llama_token id, bool special = false) {
    char buf[128];
    int32_t n = llama_token_to_piece(vocab, id, buf, sizeof(buf), 0, special);
    if (n >= 0) return std::string(buf, (size_t) n);
    std::string big((size_t) -n, '\0');
    n = llama_token_to_piece(vocab, id, big.data(), (int32_t) big.size(), 0, special);
    if (n < 0) throw std::runtime_error("token_to_piece failed");
    big.resize((size_t) n);
    return big;
}

// A request reduced to what the scheduler needs.
struct Plan {
    std::vector<llama_token> tokens;   // prefix + prompt
    int32_t max_gen = 0;               // maxTokens, capped by the room the context leaves
    uint32_t seed = 0;
};

// A request that owns a work sequence.
struct Running {
    int32_t req;
    llama_seq_id seq;
    int32_t n_prompt;
    int32_t start;        // positions [0, start) were copied from the prefix cache
    int32_t shared;       // leading cells still shared with the prefix sequence
    int32_t cursor;       // next prompt position to decode
    int32_t n_past;       // positions in the sequence's KV
    int64_t charge;       // KV cells reserved for the sequence's own positions
    llama_token pending = -1;   // sampled, to be decoded at n_past next step
    int32_t row = -1;           // its logits' row in this step's batch
    bool finished = false;
    std::unique_ptr<SequenceSampler> sampler;
    StopMatcher stops;
    GenResult result;
    Clock::time_point admitted, first_token;

    Running(const std::vector<std::string> & stop) : stops(stop) {}
};

// Cells dropped from the prefix sequence while running requests still share them: they
// stay allocated until the last of those requests ends.
struct Orphan {
    std::vector<std::pair<const Running *, int32_t>> users;   // request, cells it shares
    int32_t cells() const {
        int32_t m = 0;
        for (const auto & u : users) m = std::max(m, u.second);
        return m;
    }
};

class GenRun {
  public:
    GenRun(Session & s, JobContext & job, std::vector<GenRequest> & requests, const GenOptions & opts,
           const GenSink & sink, GenStats & stats)
        : s_(s), job_(job), requests_(requests), opts_(opts), sink_(sink), stats_(stats),
          vocab_(s.model()->vocab()), batch_((int32_t) s.params().n_batch),
          // llama.cpp reserves a logit row for every sequence whatever outputsMax says
          // (session.cpp), so every running request can be sampled each step.
          out_limit_((int32_t) std::max(s.params().n_outputs_max, s.n_work_seqs() + 1)),
          // With one cache per sequence (kvUnified off) a sequence has only its share of
          // the cells, and llama.cpp copies between sequences only whole caches: no sharing.
          n_ctx_seq_((int32_t) llama_n_ctx_seq(s.ctx())),
          share_(opts.reuse_prefix && s.params().kv_unified),
          scratch_((size_t) std::max(1, s.params().n_threads)) {}

    void run() {
        t0_ = Clock::now();
        prepare();
        install_greedy_head();
        s_.clear_work_seqs();
        for (uint32_t i = s_.n_work_seqs(); i > 0; i--) free_seqs_.push_back(s_.work_seq(i - 1));
        while (next_ < order_.size() || !running_.empty()) {
            job_.check_cancelled();
            admit();
            close_holes();
            step();
            report();
        }
    }

  private:
    // Tokenizes (in parallel: thousands of few-shot prompts take seconds on one thread),
    // checks every request, and orders them so that shared prefixes are adjacent.
    void prepare() {
        const int32_t n_ctx = n_ctx_seq_;
        const size_t n = requests_.size();
        plans_.resize(n);
        parallel_for(n, s_.params().n_threads, 16, [&](size_t i, size_t) {
            GenRequest & r = requests_[i];
            if (r.prefix_is_text) r.prefix = tokenize_text(vocab_, r.prefix_text, false, false);
            if (r.prompt_is_text) r.prompt = tokenize_text(vocab_, r.prompt_text, false, false);
        });
        for (size_t i = 0; i < n; i++) {
            GenRequest & r = requests_[i];
            Plan & p = plans_[i];
            const std::string where = "request " + std::to_string(i) + ": ";
            p.tokens.reserve(r.prefix.size() + r.prompt.size());
            p.tokens.insert(p.tokens.end(), r.prefix.begin(), r.prefix.end());
            p.tokens.insert(p.tokens.end(), r.prompt.begin(), r.prompt.end());
            r.prefix = {};
            r.prompt = {};
            if (p.tokens.empty()) throw std::runtime_error(where + "the prompt is empty (no tokens)");
            const int32_t n_prompt = (int32_t) p.tokens.size();
            if (n_prompt >= n_ctx) {
                const std::string room = s_.params().kv_unified
                                             ? "contextSize " + std::to_string(n_ctx)
                                             : std::to_string(n_ctx) + " cells per sequence with kvUnified off";
                throw std::runtime_error(where + "the prompt has " + std::to_string(n_prompt) +
                                         " tokens, which leaves no room to generate in the context (" + room + ")");
            }
            p.max_gen = std::min(r.sampling.max_tokens, n_ctx - n_prompt);
            p.seed = r.sampling.seed_set ? r.sampling.seed : derive_seed(opts_.seed, (uint32_t) i);
            stats_.prompt_tokens += n_prompt;
            order_.push_back((int32_t) i);
        }
        stats_.requests = (int64_t) n;
        std::stable_sort(order_.begin(), order_.end(),
                         [&](int32_t a, int32_t b) { return plans_[a].tokens < plans_[b].tokens; });
    }

    // A greedy step needs one token id per row, not the row: with the argmax in the graph
    // (graph_head.h) 4 bytes per sequence come back instead of n_vocab floats (600 KB on
    // Qwen, 150 MB a step at 255 sequences), and no host argmax runs.
    void install_greedy_head() {
        if (!reduce_in_graph(opts_.greedy, s_)) return;
        for (const GenRequest & r : requests_) {
            if (r.sampling.temperature > 0.0f || r.sampling.repetition_penalty != 1.0f) return;
        }
        std::vector<llama_seq_id> seqs;
        for (uint32_t i = 0; i < s_.n_work_seqs(); i++) seqs.push_back(s_.work_seq(i));
        greedy_ = std::make_unique<GreedyHead>(s_.ctx(), seqs);
    }

    int64_t cells_in_use() const {
        int64_t c = (int64_t) s_.prefix_tokens().size() + own_cells_;
        for (const Orphan & o : orphans_) c += o.cells();
        return c;
    }

    // Gives free work sequences to the next requests, seeding each from the prefix cache.
    // KV cells are reserved for a request's whole worst case (prompt + max tokens) up
    // front, so a running request never finds the cache full.
    void admit() {
        std::vector<llama_token> & holder = s_.prefix_tokens();
        const int32_t min_shared = std::max(1, opts_.min_shared_prefix);
        const int64_t n_ctx = (int64_t) s_.params().n_ctx;

        while (!free_seqs_.empty() && next_ < order_.size()) {
            const int32_t req = order_[next_];
            const Plan & p = plans_[req];
            const int32_t n_prompt = (int32_t) p.tokens.size();
            // The last prompt token is always decoded in the request's own sequence: its
            // logits give the first generated token.
            const int32_t cap = n_prompt - 1;

            const int32_t have = share_ ? common_prefix(holder, p.tokens, cap) : 0;
            int32_t want = have;
            if (share_ && next_ + 1 < order_.size()) {
                // Worth caching what this request shares with the next (and, the order
                // being sorted, with every later one that shares as much).
                const Plan & q = plans_[order_[next_ + 1]];
                want = prefix_to_cache(have, common_prefix(p.tokens, q.tokens, std::min(cap, (int32_t) q.tokens.size() - 1)), min_shared);
            }
            const int32_t start = want >= min_shared ? want : 0;
            const int64_t own = (int64_t) (n_prompt - start) + p.max_gen;

            if (cells_in_use() + (want - have) + own > n_ctx) {
                if (!running_.empty()) break;   // wait for running requests to free cells
                if (!holder.empty()) {          // nothing running: the cache is what's in the way
                    s_.clear_prefix();
                    continue;
                }
                throw std::runtime_error("request " + std::to_string(req) + " does not fit the context");
            }
            if (want > have) {
                drop_prefix_tail(have);
                stats_.decode_calls += s_.extend_prefix(p.tokens, want, batch_, job_);
                stats_.prefix_tokens += want - have;
            }

            const llama_seq_id seq = free_seqs_.back();
            free_seqs_.pop_back();
            if (start > 0) llama_memory_seq_cp(s_.memory(), Session::prefix_seq, seq, 0, start);

            const SamplingParams & sp = requests_[(size_t) req].sampling;
            auto r = std::make_unique<Running>(sp.stop);
            r->req = req;
            r->seq = seq;
            r->n_prompt = n_prompt;
            r->start = r->shared = r->cursor = r->n_past = start;
            r->charge = own;
            r->sampler = std::make_unique<SequenceSampler>(sp, p.seed, s_.n_vocab());
            r->result.index = req;
            r->result.n_prompt = n_prompt;
            r->result.n_reused = start;
            r->admitted = Clock::now();
            r->result.queued_ms = ms_between(t0_, r->admitted);
            own_cells_ += own;
            stats_.tokens_reused += start;
            running_.push_back(std::move(r));
            next_++;
        }
    }

    // Cuts the prefix sequence back to `keep` tokens. Running requests that copied the
    // dropped cells keep them alive; they are accounted as orphans until those end.
    void drop_prefix_tail(int32_t keep) {
        std::vector<llama_token> & holder = s_.prefix_tokens();
        const int32_t old = (int32_t) holder.size();
        if (old <= keep) return;
        llama_memory_seq_rm(s_.memory(), Session::prefix_seq, keep, -1);
        holder.resize((size_t) keep);
        Orphan o;
        for (auto & r : running_) {
            const int32_t n = std::min(r->shared, old) - keep;
            if (n > 0) o.users.push_back({r.get(), n});
            r->shared = std::min(r->shared, keep);
        }
        if (!o.users.empty()) orphans_.push_back(std::move(o));
    }

    // One llama_decode: a token for every generating request first (they cost one batch
    // slot each and keep the step rate up), then prompt chunks, oldest request first.
    void step() {
        struct Part {
            Running * r;
            int32_t to;   // prompt chunk: positions [cursor, to); a generated token: -1
        };
        std::vector<Part> parts;
        for (int attempt = 0;; attempt++) {
            const bool with_prompts = attempt == 0;
            parts.clear();
            int32_t room = batch_.capacity();
            int32_t outs = out_limit_;
            const size_t n = running_.size();
            // A batch smaller than the running set serves the requests in turn.
            for (size_t k = 0; k < n && room > 0 && outs > 0; k++) {
                Running & r = *running_[(rotate_ + k) % n];
                if (r.pending < 0) continue;
                parts.push_back({&r, -1});
                room--;
                outs--;
            }
            for (size_t k = 0; k < n && with_prompts && room > 0; k++) {
                Running & r = *running_[k];
                if (r.cursor >= r.n_prompt) continue;
                int32_t to = std::min(r.n_prompt, r.cursor + room);
                if (to == r.n_prompt && outs == 0) to--;   // its logit row waits for the next step
                if (to <= r.cursor) continue;
                if (to == r.n_prompt) outs--;
                room -= to - r.cursor;
                parts.push_back({&r, to});
            }
            if (parts.empty()) return;
            // Sequence order: llama.cpp's split cache (kvUnified off) puts only sequences
            // with consecutive increasing ids into one micro-batch, so any other order
            // would cut the step into one graph per sequence.
            std::sort(parts.begin(), parts.end(), [](const Part & a, const Part & b) { return a.r->seq < b.r->seq; });
            batch_.clear();
            rows_.clear();
            for (const Part & p : parts) {
                Running & r = *p.r;
                r.row = -1;
                if (p.to < 0) {
                    r.row = batch_.add(r.pending, r.n_past, r.seq, true);
                    rows_.push_back(&r);
                    continue;
                }
                for (int32_t pos = r.cursor; pos < p.to; pos++) {
                    const bool out = pos == r.n_prompt - 1;
                    const int32_t bi = batch_.add(requests_tokens(r)[(size_t) pos], pos, r.seq, out);
                    if (out) {
                        r.row = bi;
                        rows_.push_back(&r);
                    }
                }
            }
            if (s_.decode(batch_.get()) == 0) break;
            // Reservations make this unexpected; without prompt chunks it is an error.
            const bool chunked = std::any_of(parts.begin(), parts.end(), [](const Part & p) { return p.to >= 0; });
            if (!with_prompts || !chunked) {
                throw std::runtime_error("the KV cache is full; increase contextSize or lower parallel");
            }
        }
        stats_.decode_calls++;
        if (!running_.empty()) rotate_ = (rotate_ + 1) % running_.size();
        for (const Part & p : parts) {
            Running & r = *p.r;
            if (p.to >= 0) {
                stats_.prompt_decoded += p.to - r.cursor;
                r.cursor = r.n_past = p.to;
            } else {
                r.n_past++;
                r.pending = -1;
            }
        }
        sample_rows();
    }

    // With the split cache a finished request leaves a hole in the sequence ids, and a
    // micro-batch never spans a hole (see step). When no request is waiting to fill it,
    // the highest running sequence moves down into it: llama.cpp copies its whole stream
    // (a few MB) on the device at the next decode.
    void close_holes() {
        if (s_.params().kv_unified || next_ < order_.size()) return;
        for (;;) {
            Running * top = nullptr;
            for (auto & r : running_) {
                if (!top || r->seq > top->seq) top = r.get();
            }
            if (!top || free_seqs_.empty() || free_seqs_.back() > top->seq) return;
            const llama_seq_id hole = free_seqs_.back();
            free_seqs_.pop_back();
            llama_memory_seq_cp(s_.memory(), top->seq, hole, -1, -1);
            llama_memory_seq_rm(s_.memory(), top->seq, -1, -1);
            release_seq(top->seq);
            top->seq = hole;
        }
    }

    // Free sequences are kept highest first, so admission takes the lowest id.
    void release_seq(llama_seq_id seq) {
        free_seqs_.insert(std::upper_bound(free_seqs_.begin(), free_seqs_.end(), seq, std::greater<llama_seq_id>()), seq);
    }

    const std::vector<llama_token> & requests_tokens(const Running & r) const { return plans_[(size_t) r.req].tokens; }

    void sample_rows() {
        llama_context * ctx = s_.ctx();
        std::vector<llama_token> picked(rows_.size());
        if (greedy_) {
            for (size_t i = 0; i < rows_.size(); i++) picked[i] = GreedyHead::token(ctx, rows_[i]->row);
            return take_all(picked);
        }
        std::vector<const float *> logits(rows_.size());
        for (size_t i = 0; i < rows_.size(); i++) {
            logits[i] = llama_get_logits_ith(ctx, rows_[i]->row);
            if (!logits[i]) throw std::runtime_error("llama.cpp returned no logits for a requested position");
        }
        // Sampling a vocabulary-sized row costs ~0.1-2 ms; spread it over the threads.
        parallel_for(rows_.size(), (int) scratch_.size(), 2, [&](size_t i, size_t w) {
            picked[i] = rows_[i]->sampler->sample(logits[i], scratch_[w]);
        });
        take_all(picked);
    }

    void take_all(const std::vector<llama_token> & picked) {
        const auto now = Clock::now();
        for (size_t i = 0; i < rows_.size(); i++) take(*rows_[i], picked[i], now);
        retire();
    }

    void take(Running & r, llama_token token, Clock::time_point now) {
        GenResult & out = r.result;
        if (out.tokens.empty()) r.first_token = now;
        // Structure, not text: its text in a response would read as chat markup and, tokenized
        // again for training, could turn back into the control id.
        const bool eog = llama_vocab_is_eog(vocab_, token);
        if (eog || (llama_vocab_get_attr(vocab_, token) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN))) {
            out.stop_token = token;
            out.stop_token_text = sanitize_utf8(piece(vocab_, token, true));
            return finish(r, eog ? StopKind::eos : StopKind::control, now);
        }
        out.tokens.push_back(token);
        stats_.tokens_generated++;
        const size_t old = out.text.size();
        out.text += piece(vocab_, token);
        size_t at = 0;
        const int32_t k = r.stops.find(out.text, old, at);
        if (k >= 0) {
            out.text.resize(at);
            out.stop_index = k;
            out.stop_string = requests_[(size_t) r.req].sampling.stop[(size_t) k];
            return finish(r, StopKind::stop, now);
        }
        if ((int32_t) out.tokens.size() >= plans_[(size_t) r.req].max_gen) return finish(r, StopKind::length, now);
        r.pending = token;
    }

    void finish(Running & r, StopKind why, Clock::time_point now) {
        GenResult & out = r.result;
        out.stop = why;
        out.text = sanitize_utf8(out.text);
        out.prompt_ms = ms_between(r.admitted, r.first_token);
        out.generate_ms = ms_between(r.first_token, now);
        r.finished = true;
    }

    void retire() {
        size_t kept = 0;
        for (size_t i = 0; i < running_.size(); i++) {
            std::unique_ptr<Running> & r = running_[i];
            if (!r->finished) {
                running_[kept++] = std::move(r);
                continue;
            }
            llama_memory_seq_rm(s_.memory(), r->seq, -1, -1);
            release_seq(r->seq);
            own_cells_ -= r->charge;
            for (Orphan & o : orphans_) {
                o.users.erase(std::remove_if(o.users.begin(), o.users.end(), [&](const auto & u) { return u.first == r.get(); }),
                              o.users.end());
            }
            orphans_.erase(std::remove_if(orphans_.begin(), orphans_.end(), [](const Orphan & o) { return o.users.empty(); }),
                           orphans_.end());
            finished_.push_back(std::move(r->result));
            done_++;
        }
        running_.resize(kept);
    }

    // Finished results go out every step that has some; bare progress at most 4 times a second.
    void report() {
        const auto now = Clock::now();
        if (finished_.empty() && ms_between(last_report_, now) < 250.0) return;
        last_report_ = now;
        GenProgress p;
        p.done = done_;
        p.total = (int64_t) requests_.size();
        p.tokens_generated = stats_.tokens_generated;
        p.seconds = ms_between(t0_, now) / 1000.0;
        sink_(std::move(finished_), p);
        finished_.clear();
    }

    Session & s_;
    JobContext & job_;
    std::vector<GenRequest> & requests_;
    const GenOptions & opts_;
    const GenSink & sink_;
    GenStats & stats_;
    const llama_vocab * vocab_;

    Batch batch_;
    int32_t out_limit_;
    int32_t n_ctx_seq_;
    bool share_;
    std::vector<SamplerScratch> scratch_;
    std::unique_ptr<GreedyHead> greedy_;   // in-graph greedy picks, when every request allows them
    std::vector<Plan> plans_;
    std::vector<int32_t> order_;
    size_t next_ = 0;
    std::vector<std::unique_ptr<Running>> running_;   // in admission order
    std::vector<Running *> rows_;                      // this step's logit rows
    std::vector<llama_seq_id> free_seqs_;
    std::vector<Orphan> orphans_;
    std::vector<GenResult> finished_;
    int64_t own_cells_ = 0;
    int64_t done_ = 0;
    size_t rotate_ = 0;
    Clock::time_point t0_, last_report_;
};

}  // namespace

void generate_requests(Session & session, JobContext & job, std::vector<GenRequest> & requests, const GenOptions & opts,
                       const GenSink & sink, GenStats & stats) {
    const auto t0 = Clock::now();
    try {
        GenRun(session, job, requests, opts, sink, stats).run();
    } catch (...) {
        // A failed or aborted decode may leave partial state anywhere: start clean.
        session.clear_all();
        throw;
    }
    session.clear_work_seqs();
    stats.seconds = ms_between(t0, Clock::now()) / 1000.0;
}

// ---- JavaScript ------------------------------------------------------------------------
// Everything is read and checked on the JS thread, so bad input is a TypeError/RangeError
// naming the request and field before any work starts; text is tokenized on the worker.

namespace {

const char * const SAMPLING_KEYS[] = {"temperature", "topK", "topP", "minP", "repetitionPenalty",
                                      "repetitionWindow", "seed", "maxTokens", "stop"};

double sampling_number(Napi::Object o, const char * key, const std::string & what, double def, double min, double max,
                       bool integer, bool min_open = false) {
    Napi::Env env = o.Env();
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    const std::string name = what + "." + key;
    if (!v.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) throw Napi::RangeError::New(env, name + " must be finite");
    if (integer && std::floor(d) != d) throw Napi::TypeError::New(env, name + " must be an integer");
    if (d < min || d > max || (min_open && d == min)) {
        throw Napi::RangeError::New(env, name + " = " + std::to_string(d) + " is out of range " + (min_open ? "(" : "[") +
                                             std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return d;
}

// Fields present in `v` override `base`; unknown fields are an error (a misspelt
// "temp" would otherwise sample greedily without a word).
SamplingParams read_sampling(const Napi::Value & v, SamplingParams s, const std::string & what) {
    Napi::Env env = v.Env();
    if (v.IsUndefined() || v.IsNull()) return s;
    if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(env, what + " must be an object");
    Napi::Object o = v.As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
        const std::string k = keys.Get(i).ToString().Utf8Value();
        if (std::find(std::begin(SAMPLING_KEYS), std::end(SAMPLING_KEYS), k) == std::end(SAMPLING_KEYS)) {
            throw Napi::TypeError::New(env, what + ": unknown option '" + k + "'");
        }
    }
    s.temperature = (float) sampling_number(o, "temperature", what, s.temperature, 0, 1e6, false);
    s.top_k = (int32_t) sampling_number(o, "topK", what, s.top_k, 0, INT32_MAX, true);
    s.top_p = (float) sampling_number(o, "topP", what, s.top_p, 0, 1, false, true);
    s.min_p = (float) sampling_number(o, "minP", what, s.min_p, 0, 1, false);
    s.repetition_penalty = (float) sampling_number(o, "repetitionPenalty", what, s.repetition_penalty, 0, 1e6, false, true);
    s.repetition_window = (int32_t) sampling_number(o, "repetitionWindow", what, s.repetition_window, 0, 1 << 20, true);
    s.max_tokens = (int32_t) sampling_number(o, "maxTokens", what, s.max_tokens, 1, INT32_MAX, true);
    Napi::Value seed = o.Get("seed");
    if (!seed.IsUndefined() && !seed.IsNull()) {
        s.seed = (uint32_t) sampling_number(o, "seed", what, 0, 0, (double) LLAMA_DEFAULT_SEED - 1, true);
        s.seed_set = true;
    }
    Napi::Value stop = o.Get("stop");
    if (!stop.IsUndefined() && !stop.IsNull()) {
        if (!stop.IsArray()) throw Napi::TypeError::New(env, what + ".stop must be an array of strings");
        Napi::Array arr = stop.As<Napi::Array>();
        s.stop.clear();
        for (uint32_t i = 0; i < arr.Length(); i++) {
            Napi::Value e = arr.Get(i);
            const std::string name = what + ".stop[" + std::to_string(i) + "]";
            if (!e.IsString()) throw Napi::TypeError::New(env, name + " must be a string");
            s.stop.push_back(e.As<Napi::String>().Utf8Value());
            if (s.stop.back().empty()) throw Napi::RangeError::New(env, name + " is empty");
        }
    }
    return s;
}

// prompt / prefix: text, or token ids checked against the vocabulary.
bool read_tokens_or_text(Napi::Object item, const char * key, const std::string & what, int32_t n_vocab,
                         std::vector<llama_token> & ids, std::string & text, bool & is_text) {
    Napi::Value v = item.Get(key);
    if (v.IsUndefined() || v.IsNull()) return false;
    if (v.IsString()) {
        text = v.As<Napi::String>().Utf8Value();
        is_text = true;
    } else {
        ids = token_ids(v, n_vocab, what + "." + key);
    }
    return true;
}

Napi::Object result_to_js(Napi::Env env, const GenResult & r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", r.index);
    o.Set("text", r.text);
    Napi::Int32Array tokens = Napi::Int32Array::New(env, r.tokens.size());
    std::copy(r.tokens.begin(), r.tokens.end(), tokens.Data());
    o.Set("tokens", tokens);
    o.Set("promptTokens", r.n_prompt);
    o.Set("promptTokensReused", r.n_reused);
    const char * stop = r.stop == StopKind::eos ? "eos" : r.stop == StopKind::control ? "control" : r.stop == StopKind::length ? "length" : "stop";
    o.Set("stop", stop);
    o.Set("stopString", r.stop == StopKind::stop ? Napi::Value(Napi::String::New(env, r.stop_string)) : env.Null());
    if (r.stop_token >= 0) {
        Napi::Object t = Napi::Object::New(env);
        t.Set("id", r.stop_token);
        t.Set("text", r.stop_token_text);
        o.Set("stopToken", t);
    } else {
        o.Set("stopToken", env.Null());
    }
    Napi::Object t = Napi::Object::New(env);
    t.Set("queuedMs", r.queued_ms);
    t.Set("promptMs", r.prompt_ms);
    t.Set("generateMs", r.generate_ms);
    o.Set("timings", t);
    return o;
}

Napi::Value generate_js(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Session> session = Context::session_of(info[0]);
    const int32_t n_vocab = session->n_vocab();
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "generate: requests must be an array");
    Napi::Array arr = info[1].As<Napi::Array>();

    Napi::Object o = opt_object(info[2], "generate options");
    SamplingParams defaults = read_sampling(o.Get("sampling"), SamplingParams{}, "options.sampling");
    GenOptions opts;
    opts.min_shared_prefix = (int32_t) opt_int(o, "minSharedPrefix", 16, 1, INT32_MAX);
    opts.reuse_prefix = opt_bool(o, "reusePrefix", true);
    opts.greedy = reduce_on_from_js(o.Get("greedy"), "generate options.greedy");
    // A seed in the call's defaults seeds the requests that set none (each its own seed).
    opts.seed = defaults.seed_set ? defaults.seed : 0;
    defaults.seed_set = false;
    std::vector<AdapterUse> adapters = adapters_from_js(o.Get("adapters"), session->model());

    std::vector<GenRequest> requests(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
        const std::string what = "requests[" + std::to_string(i) + "]";
        Napi::Value v = arr.Get(i);
        if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(env, what + " must be an object {prompt, prefix?, sampling?}");
        Napi::Object item = v.As<Napi::Object>();
        GenRequest & r = requests[i];
        if (!read_tokens_or_text(item, "prompt", what, n_vocab, r.prompt, r.prompt_text, r.prompt_is_text)) {
            throw Napi::TypeError::New(env, what + ".prompt is missing");
        }
        read_tokens_or_text(item, "prefix", what, n_vocab, r.prefix, r.prefix_text, r.prefix_is_text);
        const bool empty_prompt = r.prompt_is_text ? r.prompt_text.empty() : r.prompt.empty();
        const bool empty_prefix = r.prefix_is_text ? r.prefix_text.empty() : r.prefix.empty();
        if (empty_prompt && empty_prefix) throw Napi::RangeError::New(env, what + ".prompt is empty");
        r.sampling = read_sampling(item.Get("sampling"), defaults, what + ".sampling");
    }
    CancelFlag cancel = CancelSource::from_value(info[4]);
    if (!info[3].IsFunction()) throw Napi::TypeError::New(env, "generate: onEvent must be a function");

    return run_job(env, "selftune.generate", info[3], cancel,
                   [session, requests = std::move(requests), opts, adapters](JobContext & job) mutable -> Finish {
        auto lease = session->acquire(job);
        session->set_adapters(adapters);
        auto stats = std::make_shared<GenStats>();
        // Results ride the progress channel: one thread-safe function, so they reach JS in
        // order and all of them before the promise settles.
        GenSink sink = [&job](std::vector<GenResult> && finished, const GenProgress & p) {
            auto results = std::make_shared<std::vector<GenResult>>(std::move(finished));
            job.progress([results, p](Napi::Env env) -> Napi::Value {
                Napi::Object e = Napi::Object::New(env);
                Napi::Array list = Napi::Array::New(env, results->size());
                for (size_t i = 0; i < results->size(); i++) list.Set((uint32_t) i, result_to_js(env, (*results)[i]));
                e.Set("results", list);
                e.Set("done", (double) p.done);
                e.Set("total", (double) p.total);
                e.Set("tokensGenerated", (double) p.tokens_generated);
                e.Set("seconds", p.seconds);
                return e;
            });
        };
        generate_requests(*session, job, requests, opts, sink, *stats);
        return [stats](Napi::Env env) -> Napi::Value {
            Napi::Object st = Napi::Object::New(env);
            st.Set("requests", (double) stats->requests);
            st.Set("promptTokens", (double) stats->prompt_tokens);
            st.Set("promptTokensDecoded", (double) stats->prompt_decoded);
            st.Set("tokensReused", (double) stats->tokens_reused);
            st.Set("prefixTokens", (double) stats->prefix_tokens);
            st.Set("tokensGenerated", (double) stats->tokens_generated);
            st.Set("decodeCalls", (double) stats->decode_calls);
            st.Set("seconds", stats->seconds);
            return st;
        };
    });
}

}  // namespace

void register_generate(Napi::Env env, Napi::Object exports) {
    exports.Set("generate", Napi::Function::New(env, generate_js, "generate"));
}

}  // namespace selftune
