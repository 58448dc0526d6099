// Teacher-forced log-prob scoring (SPEC §4, the critic's engine).
//
// Each item is prompt + continuation, evaluated in one forward pass with logits only at
// the positions that predict a continuation token (and, for candidates, at the last
// prompt position). Many items run per llama_decode, one work sequence each. Items are
// processed in token order so that ones sharing a prefix (a critic rubric, a few-shot
// header) are adjacent: the prefix is decoded once into the session's prefix sequence
// and copied into each item's sequence, and stays cached for the next call.
#pragma once

#include "job.h"
#include "seq_samplers.h"
#include "session.h"

#include "llama.h"

#include <cstdint>
#include <string>
#include <vector>

namespace selftune {

struct ScoreItem {
    // Either token ids, or text tokenized on the worker (no BOS/EOS, no special parsing).
    std::vector<llama_token> prompt, continuation;
    std::string prompt_text, continuation_text;
    bool prompt_is_text = false, continuation_is_text = false;
    std::vector<llama_token> candidates;
};

struct ScoreOptions {
    int32_t min_shared_prefix = 16;   // shorter common prefixes are recomputed, not copied
    bool    reuse_prefix = true;
    // Where each logit row is log-softmaxed: in the decode graph (score_head.h: 4 bytes
    // per wanted value come back, not the row) or on the host (the reference path).
    ReduceOn log_softmax = ReduceOn::automatic;
};

struct ScoreResult {
    std::vector<llama_token> continuation;   // the ids scored (tokenized when given as text)
    int32_t n_prompt = 0;
    std::vector<double> logprobs;             // one per continuation token
    double sum = 0.0;
    std::vector<double> candidate_logprobs;   // at the last prompt position
};

struct ScoreStats {
    int64_t items = 0;
    int64_t tokens = 0;          // positions the items needed evaluated
    int64_t tokens_decoded = 0;  // positions actually run through the model
    int64_t tokens_reused = 0;   // positions taken from the prefix cache instead
    int64_t prefix_tokens = 0;   // of tokens_decoded, those decoded into the prefix cache
    int64_t decode_calls = 0;
    int64_t outputs = 0;         // logit rows read
    double  seconds = 0.0;
};

// Scores `items` on `session` (which the caller has leased). Results are in item order.
// Throws Cancelled or std::runtime_error (naming the item) on failure; the session's
// work sequences are left empty either way.
void score_items(Session & session, JobContext & job, std::vector<ScoreItem> & items, const ScoreOptions & opts,
                 std::vector<ScoreResult> & results, ScoreStats & stats);

// The reference path for tests: one sequence, no batching across items, no prefix
// reuse, logits at every position. Returns tokens.size() rows of n_vocab floats.
std::vector<float> eval_all_logits(Session & session, JobContext & job, const std::vector<llama_token> & tokens);

}  // namespace selftune
