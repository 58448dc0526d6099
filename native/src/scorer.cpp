#include "scorer.h"

#include "batch.h"
#include "log_softmax.h"
#include "parallel.h"
#include "prefix.h"
#include "score_head.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace selftune {

namespace {

// An item reduced to what the scheduler needs.
struct Plan {
    std::vector<llama_token> tokens;   // prompt + continuation
    int32_t n_prompt = 0;
    int32_t first_out = 0;             // first position whose logits we read: n_prompt - 1
    int32_t n_eval = 0;                // positions [0, n_eval) are decoded; 0: nothing to do
};

// An item that owns a work sequence.
struct Active {
    int32_t item;
    llama_seq_id seq;
    int32_t start;    // positions [0, start) were copied from the prefix cache
    int32_t cursor;   // next position to decode
};

struct Segment {
    size_t  active;   // index into the active list
    int32_t from, to; // positions [from, to) of that item go into this batch
};

struct Row {
    int32_t item;
    int32_t pos;
    int32_t batch_index;
    const float * logits;
};

class ScoreRun {
  public:
    ScoreRun(Session & s, JobContext & job, std::vector<ScoreItem> & items, const ScoreOptions & opts,
             std::vector<ScoreResult> & results, ScoreStats & stats)
        : s_(s), job_(job), items_(items), opts_(opts), results_(results), stats_(stats),
          // Split caches can't copy part of a sequence across streams (session.cpp).
          share_(opts.reuse_prefix && s.params().kv_unified),
          batch_((int32_t) s.params().n_batch) {}

    void run() {
        prepare();
        s_.clear_work_seqs();
        for (uint32_t i = s_.n_work_seqs(); i > 0; i--) free_seqs_.push_back(s_.work_seq(i - 1));
        cells_ = (int64_t) s_.prefix_tokens().size();
        if (reduce_in_graph(opts_.log_softmax, s_)) {
            size_t most = 0;
            for (const ScoreItem & it : items_) most = std::max(most, it.candidates.size());
            std::vector<llama_seq_id> seqs(free_seqs_.rbegin(), free_seqs_.rend());
            head_ = std::make_unique<ScoreHead>(s_.ctx(), seqs, (int32_t) (1 + most));
        }

        while (next_ < order_.size() || !active_.empty()) {
            job_.check_cancelled();
            admit();
            decode_step();
            retire();
            report();
        }
    }

  private:
    void prepare() {
        const llama_vocab * vocab = s_.model()->vocab();
        const int32_t n_ctx = (int32_t) s_.params().n_ctx_seq;
        plans_.resize(items_.size());
        results_.assign(items_.size(), ScoreResult{});
        for (size_t i = 0; i < items_.size(); i++) {
            ScoreItem & it = items_[i];
            const std::string where = "item " + std::to_string(i) + ": ";
            if (it.prompt_is_text) it.prompt = tokenize_text(vocab, it.prompt_text, false, false);
            if (it.continuation_is_text) it.continuation = tokenize_text(vocab, it.continuation_text, false, false);
            if (it.prompt.empty()) {
                throw std::runtime_error(where + "the prompt is empty; a continuation is scored given at least one prompt token");
            }
            Plan & p = plans_[i];
            p.tokens.reserve(it.prompt.size() + it.continuation.size());
            p.tokens.insert(p.tokens.end(), it.prompt.begin(), it.prompt.end());
            p.tokens.insert(p.tokens.end(), it.continuation.begin(), it.continuation.end());
            p.n_prompt = (int32_t) it.prompt.size();
            p.first_out = p.n_prompt - 1;
            // The last continuation token is only ever a target, never an input.
            p.n_eval = !it.continuation.empty() ? (int32_t) p.tokens.size() - 1
                       : !it.candidates.empty() ? p.n_prompt
                                                : 0;
            if (p.n_eval > n_ctx) {
                throw std::runtime_error(where + std::to_string(p.n_eval) + " positions do not fit the context (contextSize " +
                                         std::to_string(n_ctx) + ")");
            }
            ScoreResult & r = results_[i];
            r.n_prompt = p.n_prompt;
            r.continuation = std::move(it.continuation);
            r.logprobs.assign(r.continuation.size(), 0.0);
            r.candidate_logprobs.assign(it.candidates.size(), 0.0);
            stats_.tokens += p.n_eval;
            if (p.n_eval > 0) order_.push_back((int32_t) i);
            else done_++;
        }
        stats_.items = (int64_t) items_.size();
        // Token order puts items with a common prefix next to each other.
        std::stable_sort(order_.begin(), order_.end(),
                         [&](int32_t a, int32_t b) { return plans_[a].tokens < plans_[b].tokens; });
    }

    // Gives free work sequences to the next items, seeding each from the prefix cache.
    void admit() {
        std::vector<llama_token> & holder = s_.prefix_tokens();
        const int32_t min_shared = std::max(1, opts_.min_shared_prefix);
        const int64_t n_ctx = (int64_t) s_.params().n_ctx;

        while (!free_seqs_.empty() && next_ < order_.size()) {
            const int32_t item = order_[next_];
            const Plan & p = plans_[item];

            int32_t have = share_ ? common_prefix(holder, p.tokens, p.first_out) : 0;
            int32_t want = have;
            if (share_ && next_ + 1 < order_.size()) {
                // Worth caching what this item shares with the next one (and, the
                // order being sorted, with every later item that shares as much).
                const Plan & q = plans_[order_[next_ + 1]];
                want = prefix_to_cache(have, common_prefix(p.tokens, q.tokens, std::min(p.first_out, q.first_out)), min_shared);
            }
            const int32_t start = want >= min_shared ? want : 0;

            const int64_t need = (want - have) + (p.n_eval - start);
            if (cells_ + need > n_ctx) {
                if (!active_.empty()) break;   // wait for running items to free cells
                if (!holder.empty()) {         // nothing running: the cache is what's in the way
                    s_.clear_prefix();
                    cells_ = 0;
                    continue;
                }
                throw std::runtime_error("item " + std::to_string(item) + " does not fit the context");
            }

            if (want > have) {
                if ((int32_t) holder.size() > have) {
                    llama_memory_seq_rm(s_.memory(), Session::prefix_seq, have, -1);
                    cells_ -= (int64_t) holder.size() - have;
                    holder.resize((size_t) have);
                }
                stats_.decode_calls += s_.extend_prefix(p.tokens, want, batch_, job_);
                stats_.tokens_decoded += want - have;
                stats_.prefix_tokens += want - have;
                cells_ += want - have;
            }

            const llama_seq_id seq = free_seqs_.back();
            free_seqs_.pop_back();
            if (start > 0) llama_memory_seq_cp(s_.memory(), Session::prefix_seq, seq, 0, start);
            active_.push_back({item, seq, start, start});
            cells_ += p.n_eval - start;
            stats_.tokens_reused += start;
            next_++;
        }
    }

    std::vector<Segment> plan_batch() const {
        return s_.params().kv_unified ? plan_unified() : plan_split();
    }

    // Unified cache: fills one batch front to back. Finishing the oldest items first keeps
    // few sequences open and frees their cells soonest; llama.cpp cuts the batch into
    // micro-batches in batch order, so the output rows stay in place.
    std::vector<Segment> plan_unified() const {
        std::vector<Segment> segs;
        int32_t room = batch_.capacity();
        int32_t out_room = (int32_t) s_.params().n_outputs_max;
        for (size_t a = 0; a < active_.size() && room > 0 && out_room > 0; a++) {
            const Active & act = active_[a];
            const Plan & p = plans_[act.item];
            int32_t to = act.cursor;
            while (to < p.n_eval && room > 0) {
                if (to >= p.first_out) {
                    if (out_room == 0) break;
                    out_room--;
                }
                to++;
                room--;
            }
            if (to > act.cursor) segs.push_back({a, act.cursor, to});
        }
        return segs;
    }

    // Split caches (kvUnified off): llama.cpp builds a micro-batch from sequences with
    // consecutive ids, the same number of tokens from each, and when a batch does not fit
    // that shape it computes it in pieces and then reorders the output rows, moving every
    // row (n_vocab floats, four arrays with the score head) per swap. So a decode here is
    // exactly one micro-batch: k sequences with consecutive ids, m tokens each, the k and m
    // that fill it best.
    std::vector<Segment> plan_split() const {
        const int32_t budget = (int32_t) std::min({(uint32_t) batch_.capacity(), s_.params().n_ubatch, s_.params().n_outputs_max});
        std::vector<size_t> open;   // active items with positions left, by sequence id
        for (size_t a = 0; a < active_.size(); a++) {
            if (active_[a].cursor < plans_[active_[a].item].n_eval) open.push_back(a);
        }
        std::sort(open.begin(), open.end(), [&](size_t x, size_t y) { return active_[x].seq < active_[y].seq; });
        size_t best_start = 0, best_k = 0;
        int32_t best_m = 0;
        for (size_t i = 0; i < open.size(); i++) {
            int32_t least = INT32_MAX;
            for (size_t k = 1; i + k <= open.size() && (int32_t) k <= budget; k++) {
                const Active & act = active_[open[i + k - 1]];
                if (k > 1 && act.seq != active_[open[i + k - 2]].seq + 1) break;
                least = std::min(least, plans_[act.item].n_eval - act.cursor);
                const int32_t m = std::min(least, budget / (int32_t) k);
                if ((int64_t) k * m > (int64_t) best_k * best_m) {
                    best_start = i;
                    best_k = k;
                    best_m = m;
                }
            }
        }
        std::vector<Segment> segs;
        for (size_t k = 0; k < best_k; k++) {
            const size_t a = open[best_start + k];
            segs.push_back({a, active_[a].cursor, active_[a].cursor + best_m});
        }
        return segs;
    }

    void decode_step() {
        std::vector<Segment> segs = plan_batch();
        if (segs.empty()) return;
        for (;;) {
            // Sequence order: llama.cpp's split cache (kvUnified off) puts only sequences
            // with consecutive increasing ids into one micro-batch.
            std::sort(segs.begin(), segs.end(),
                      [&](const Segment & a, const Segment & b) { return active_[a.active].seq < active_[b.active].seq; });
            rows_.clear();
            batch_.clear();
            if (head_) head_->clear_queues();
            for (const Segment & sg : segs) {
                const Active & act = active_[sg.active];
                const Plan & p = plans_[act.item];
                for (int32_t pos = sg.from; pos < sg.to; pos++) {
                    const bool out = pos >= p.first_out;
                    const int32_t bi = batch_.add(p.tokens[pos], pos, act.seq, out);
                    if (!out) continue;
                    rows_.push_back({act.item, pos, bi, nullptr});
                    if (head_) push_gather(act, p, pos);
                }
            }
            if (s_.decode(batch_.get()) == 0) break;
            // No KV room (our cell count is an estimate): retry with less.
            if (segs.size() > 1) {
                segs.resize(segs.size() / 2);
            } else if (segs[0].to - segs[0].from > 1) {
                segs[0].to = segs[0].from + (segs[0].to - segs[0].from) / 2;
            } else {
                throw std::runtime_error("the KV cache is full; increase contextSize or lower parallel");
            }
        }
        stats_.decode_calls++;
        stats_.tokens_decoded += batch_.size();
        for (const Segment & sg : segs) active_[sg.active].cursor = sg.to;
        read_outputs();
    }

    // The tokens whose logits the score head brings back for output position `pos`: the
    // next token (if any), then the item's candidates at its last prompt position. Unused
    // slots repeat the first, so every slot is a valid id.
    void push_gather(const Active & act, const Plan & p, int32_t pos) {
        const std::vector<llama_token> & cand = items_[(size_t) act.item].candidates;
        gather_.assign((size_t) head_->n_gather(), 0);
        const bool has_next = (size_t) pos + 1 < p.tokens.size();
        gather_[0] = has_next ? p.tokens[(size_t) pos + 1] : !cand.empty() ? cand[0] : 0;
        for (size_t k = 1; k < gather_.size(); k++) {
            gather_[k] = pos == p.first_out && k - 1 < cand.size() ? cand[k - 1] : gather_[0];
        }
        head_->push(act.seq, gather_.data());
    }

    void read_outputs() {
        if (head_) return read_head_outputs();
        llama_context * ctx = s_.ctx();
        for (Row & r : rows_) {
            r.logits = llama_get_logits_ith(ctx, r.batch_index);
            if (!r.logits) throw std::runtime_error("llama.cpp returned no logits for a requested position");
        }
        const size_t n_vocab = (size_t) s_.n_vocab();
        // At least 4 rows a thread: a spawn costs tens of microseconds, a row ~0.1-1 ms.
        parallel_for(rows_.size(), s_.params().n_threads, 4, [&](size_t i, size_t) {
            const Row & r = rows_[i];
            const Plan & p = plans_[r.item];
            ScoreResult & out = results_[r.item];
            const double lse = log_sum_exp(r.logits, n_vocab);
            if ((size_t) r.pos + 1 < p.tokens.size()) {
                out.logprobs[(size_t) (r.pos + 1 - p.n_prompt)] = (double) r.logits[p.tokens[(size_t) r.pos + 1]] - lse;
            }
            if (r.pos == p.first_out) {
                const std::vector<llama_token> & cand = items_[(size_t) r.item].candidates;
                for (size_t k = 0; k < cand.size(); k++) out.candidate_logprobs[k] = (double) r.logits[cand[k]] - lse;
            }
        });
        stats_.outputs += (int64_t) rows_.size();
    }

    void read_head_outputs() {
        for (const Row & r : rows_) {
            const float * v = head_->row(r.batch_index);   // [lse, next token, candidates...]
            const Plan & p = plans_[r.item];
            ScoreResult & out = results_[r.item];
            const double lse = v[0];
            if ((size_t) r.pos + 1 < p.tokens.size()) out.logprobs[(size_t) (r.pos + 1 - p.n_prompt)] = (double) v[1] - lse;
            if (r.pos == p.first_out) {
                for (size_t k = 0; k < out.candidate_logprobs.size(); k++) out.candidate_logprobs[k] = (double) v[2 + k] - lse;
            }
        }
        stats_.outputs += (int64_t) rows_.size();
    }

    void retire() {
        size_t kept = 0;
        for (size_t a = 0; a < active_.size(); a++) {
            const Active & act = active_[a];
            const Plan & p = plans_[act.item];
            if (act.cursor < p.n_eval) {
                active_[kept++] = act;
                continue;
            }
            llama_memory_seq_rm(s_.memory(), act.seq, -1, -1);
            // Kept highest first: admission takes the lowest free id (see decode_step).
            free_seqs_.insert(std::upper_bound(free_seqs_.begin(), free_seqs_.end(), act.seq, std::greater<llama_seq_id>()),
                              act.seq);
            cells_ -= p.n_eval - act.start;
            ScoreResult & r = results_[act.item];
            r.sum = std::accumulate(r.logprobs.begin(), r.logprobs.end(), 0.0);
            done_++;
        }
        active_.resize(kept);
    }

    void report() {
        const int64_t done = done_, total = (int64_t) items_.size(), decoded = stats_.tokens_decoded;
        job_.progress([done, total, decoded](Napi::Env env) {
            Napi::Object o = Napi::Object::New(env);
            o.Set("stage", "score");
            o.Set("done", (double) done);
            o.Set("total", (double) total);
            o.Set("tokensDecoded", (double) decoded);
            return o;
        });
    }

    Session & s_;
    JobContext & job_;
    std::vector<ScoreItem> & items_;
    const ScoreOptions & opts_;
    std::vector<ScoreResult> & results_;
    ScoreStats & stats_;
    const bool share_;

    Batch batch_;
    std::vector<Plan> plans_;
    std::vector<int32_t> order_;
    size_t next_ = 0;
    std::vector<Active> active_;
    std::vector<llama_seq_id> free_seqs_;
    std::vector<Row> rows_;
    std::unique_ptr<ScoreHead> head_;   // null: log-softmax on the host
    std::vector<llama_token> gather_;
    int64_t cells_ = 0;   // estimate of KV cells in use
    int64_t done_ = 0;
};

}  // namespace

void score_items(Session & session, JobContext & job, std::vector<ScoreItem> & items, const ScoreOptions & opts,
                 std::vector<ScoreResult> & results, ScoreStats & stats) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
        ScoreRun(session, job, items, opts, results, stats).run();
    } catch (...) {
        // A failed or aborted decode may leave partial state anywhere: start clean.
        session.clear_all();
        throw;
    }
    session.clear_work_seqs();
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<float> eval_all_logits(Session & session, JobContext & job, const std::vector<llama_token> & tokens) {
    const int32_t n = (int32_t) tokens.size();
    if (n == 0) return {};
    if (n > (int32_t) session.params().n_ctx_seq) throw std::runtime_error("too many tokens for the context");
    const size_t n_vocab = (size_t) session.n_vocab();
    const int32_t step = (int32_t) std::min(session.params().n_batch, session.params().n_outputs_max);
    const llama_seq_id seq = session.work_seq(0);
    session.clear_work_seqs();

    std::vector<float> out((size_t) n * n_vocab);
    Batch batch(step);
    try {
        for (int32_t i = 0; i < n; i += step) {
            job.check_cancelled();
            const int32_t m = std::min(step, n - i);
            batch.clear();
            for (int32_t k = 0; k < m; k++) batch.add(tokens[(size_t) (i + k)], i + k, seq, true);
            if (session.decode(batch.get()) != 0) throw std::runtime_error("the KV cache is full");
            for (int32_t k = 0; k < m; k++) {
                const float * row = llama_get_logits_ith(session.ctx(), k);
                if (!row) throw std::runtime_error("llama.cpp returned no logits");
                std::memcpy(out.data() + (size_t) (i + k) * n_vocab, row, n_vocab * sizeof(float));
            }
        }
    } catch (...) {
        session.clear_all();
        throw;
    }
    llama_memory_seq_rm(session.memory(), seq, -1, -1);
    return out;
}

}  // namespace selftune
