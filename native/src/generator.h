// Batched generation (SPEC §3, the data generator's and the evaluator's engine).
//
// Continuous batching over the session's work sequences: each decode step carries one
// token for every running request that is generating plus prompt chunks of newly
// admitted ones (one llama_decode per step, at most n_batch tokens, one logit row per
// running sequence); a request that finishes frees its sequence and the next request
// starts in it at the next step.
//
// Shared prefixes: requests run in token order, so requests sharing a prefix (a few-shot
// header) are adjacent. Their common prefix is decoded once into the session's prefix
// sequence and copied into each request's sequence (llama_memory_seq_cp: the unified KV
// cache shares the cells); only the rest of each prompt is decoded. There is one prefix
// sequence, so several different headers are handled one after another, each while
// requests of the previous one may still be generating. The cached prefix outlives the
// call, as the scorer's does. Without the unified cache (kvUnified off) each sequence has
// its own share of the cells and nothing is shared: llama.cpp copies between separate
// caches only whole.
#pragma once

#include "job.h"
#include "sampler.h"
#include "seq_samplers.h"
#include "session.h"

#include "llama.h"

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace selftune {

struct GenRequest {
    // Token ids, or text tokenized on the worker (no BOS/EOS, no special parsing). The
    // optional prefix is tokenized on its own and put in front of the prompt.
    std::vector<llama_token> prompt, prefix;
    std::string prompt_text, prefix_text;
    bool prompt_is_text = false, prefix_is_text = false;
    SamplingParams sampling;
};

struct GenOptions {
    int32_t  min_shared_prefix = 16;   // shorter common prefixes are recomputed, not copied
    bool     reuse_prefix = true;
    uint32_t seed = 0;                 // base of the seeds of requests that set none
    // Where greedy picks happen when every request is greedy without a repetition
    // penalty: in the decode graph (llama.cpp's argmax, one id per row comes back) or on
    // the host from the copied row. Sampling with temperature is always on the host.
    ReduceOn greedy = ReduceOn::automatic;
};

// eos: an end-of-generation token; control: another control (or unknown) token, e.g. a
// BOS a base model emits to start its next document, or an end marker the file does not
// flag as end-of-generation. Either ends the text: its piece is never part of it.
enum class StopKind { eos, control, length, stop };

struct GenResult {
    int32_t index = 0;
    std::string text;                 // generated text, cut before the stop string
    std::vector<llama_token> tokens;  // generated tokens (the token that ended it, eos or control, excluded)
    llama_token stop_token = -1;      // that token (stop eos/control), else -1
    std::string stop_token_text;      // its text, control tokens rendered
    int32_t n_prompt = 0;
    int32_t n_reused = 0;             // prompt tokens taken from the prefix cache
    StopKind stop = StopKind::length;
    int32_t stop_index = -1;          // which stop string matched
    std::string stop_string;
    double queued_ms = 0, prompt_ms = 0, generate_ms = 0;
};

struct GenStats {
    int64_t requests = 0;
    int64_t prompt_tokens = 0;     // prompt positions the requests needed
    int64_t prompt_decoded = 0;    // of them, decoded in the requests' own sequences
    int64_t tokens_reused = 0;     // copied from the prefix cache
    int64_t prefix_tokens = 0;     // decoded into the prefix cache
    int64_t tokens_generated = 0;
    int64_t decode_calls = 0;
    double  seconds = 0;
};

struct GenProgress {
    int64_t done = 0, total = 0, tokens_generated = 0;
    double  seconds = 0;
};

// Called on the worker after each step that finished requests (and now and then
// without any, for progress).
using GenSink = std::function<void(std::vector<GenResult> && finished, const GenProgress & progress)>;

// Runs `requests` on `session` (which the caller has leased). Throws Cancelled or
// std::runtime_error (naming the request) on failure; the work sequences are left empty
// either way.
void generate_requests(Session & session, JobContext & job, std::vector<GenRequest> & requests, const GenOptions & opts,
                       const GenSink & sink, GenStats & stats);

// generate(context, requests, opts, onEvent, cancel?) -> Promise<stats>; onEvent gets
// {results, done, total, tokensGenerated, seconds} on the JS thread, always before the
// promise settles.
void register_generate(Napi::Env env, Napi::Object exports);

}  // namespace selftune
