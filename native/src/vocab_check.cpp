#include "vocab_check.h"

#include "gguf_keys.h"

#include "gguf.h"

#include <climits>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace selftune {

namespace {

// tokenizer.ggml.model values llama.cpp's vocabulary loader knows (src/llama-vocab.cpp).
const char * const kTokenizerModels[] = {"no_vocab", "none", "llama",  "bert",   "gpt2", "hybriddna",
                                         "whitespace", "t5", "rwkv", "test", "plamo2", "gemma4"};

// Tokenizers whose decoding of a byte token (token type 6) is defined: llama.cpp aborts
// when it decodes one with any other (token_to_byte).
bool decodes_byte_tokens(const std::string & model) {
    return model == "llama" || model == "t5" || model == "gpt2" || model == "hybriddna" || model == "whitespace" ||
           model == "gemma4";
}

bool needs_merges(const std::string & model) {
    return model == "gpt2" || model == "hybriddna" || model == "whitespace";
}

// An array key of one of `items`, at least `min_n` long; returns its index or -1 when absent.
int64_t find_array(const GgufKeys & k, const char * key, std::initializer_list<gguf_type> items, size_t min_n,
                   const char * min_what) {
    const int64_t id = gguf_find_key(k.g, key);
    if (id < 0) return -1;
    std::string allowed;
    for (gguf_type t : items) allowed += (allowed.empty() ? "" : " or ") + std::string(gguf_type_name(t));
    if (gguf_get_kv_type(k.g, id) != GGUF_TYPE_ARRAY) {
        k.fail(std::string(key) + " must be an array of " + allowed + ", is " + k.type_of(key));
    }
    bool ok = false;
    for (gguf_type t : items) ok = ok || gguf_get_arr_type(k.g, id) == t;
    if (!ok) k.fail(std::string(key) + " must be an array of " + allowed + ", is " + k.type_of(key));
    const size_t n = gguf_get_arr_n(k.g, id);
    if (n < min_n) {
        k.fail(std::string(key) + " has " + std::to_string(n) + " entries but " + min_what + " has " +
               std::to_string(min_n));
    }
    return id;
}

void check_unique_tokens(const GgufKeys & k, int64_t id, size_t n) {
    // llama.cpp keys its text -> id map by the C string (a NUL ends it) and renames an
    // empty entry "[EMPTY_<i>]"; two entries with one key trip its size assertion.
    std::deque<std::string> renamed;   // a deque never moves its elements: the views stay valid
    std::unordered_map<std::string_view, size_t> seen;
    seen.reserve(n);
    for (size_t i = 0; i < n; i++) {
        std::string_view text(gguf_get_arr_str(k.g, id, i));
        if (text.empty()) {
            renamed.push_back("[EMPTY_" + std::to_string(i) + "]");
            text = renamed.back();
        }
        auto [it, inserted] = seen.emplace(text, i);
        if (!inserted) {
            std::string shown(text.substr(0, 40));
            for (char & c : shown) if ((unsigned char) c < 0x20) c = '?';
            k.fail("tokenizer.ggml.tokens has the token '" + shown + "' twice (ids " + std::to_string(it->second) +
                   " and " + std::to_string(i) + ")");
        }
    }
}

}  // namespace

uint32_t check_vocabulary(const GgufKeys & k, const char * arch) {
    const std::string model = *k.str("tokenizer.ggml.model", true);
    bool known = false;
    std::string names;
    for (const char * m : kTokenizerModels) {
        known = known || model == m;
        names += (names.empty() ? "" : ", ") + std::string(m);
    }
    if (!known) k.fail("tokenizer.ggml.model is '" + model + "', not a tokenizer llama.cpp knows (" + names + ")");
    k.str("tokenizer.ggml.pre");
    k.u32("tokenizer.ggml.token_type_count");
    for (const char * key : {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_sep_token"}) {
        k.boolean(key);
    }
    for (const char * key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                             "tokenizer.ggml.eom_token_id", "tokenizer.ggml.unknown_token_id",
                             "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id",
                             "tokenizer.ggml.mask_token_id"}) {
        k.u32(key);   // an id past the vocabulary is tolerated (llama.cpp disables it); a wrong type is not
    }

    // llama.cpp loads such a model but its token getters assert on it; selftune tokenizes
    // every prompt, so a model without a vocabulary is of no use here.
    if (model == "none" || model == "no_vocab") k.fail("tokenizer.ggml.model is '" + model + "': the file has no vocabulary");
    const std::string vocab_size_key = std::string(arch) + ".vocab_size";

    const int64_t tokens = gguf_find_key(k.g, "tokenizer.ggml.tokens");
    if (tokens < 0) k.fail("missing metadata key tokenizer.ggml.tokens");
    find_array(k, "tokenizer.ggml.tokens", {GGUF_TYPE_STRING}, 1, "a vocabulary");
    const size_t n = gguf_get_arr_n(k.g, tokens);
    if (n > (size_t) INT32_MAX) k.fail("tokenizer.ggml.tokens has " + std::to_string(n) + " entries, more than token ids can number");
    check_unique_tokens(k, tokens, n);

    const int64_t scores = find_array(k, "tokenizer.ggml.scores", {GGUF_TYPE_FLOAT32, GGUF_TYPE_INT32}, n,
                                      "tokenizer.ggml.tokens");
    if (scores >= 0 && gguf_get_arr_type(k.g, scores) == GGUF_TYPE_FLOAT32) {
        // The tokenizers sort merge candidates by score: a NaN breaks the ordering they rely on.
        const auto * s = static_cast<const float *>(gguf_get_arr_data(k.g, scores));
        for (size_t i = 0; i < n; i++) {
            if (!std::isfinite(s[i])) {
                k.fail("tokenizer.ggml.scores[" + std::to_string(i) + "] is " + float_text(s[i]) + ", not a finite number");
            }
        }
    }
    const int64_t types = find_array(k, "tokenizer.ggml.token_type", {GGUF_TYPE_INT32}, n, "tokenizer.ggml.tokens");
    if (types >= 0 && !decodes_byte_tokens(model)) {
        const auto * t = static_cast<const int32_t *>(gguf_get_arr_data(k.g, types));
        for (size_t i = 0; i < n; i++) {
            if (t[i] == 6) {
                k.fail("tokenizer.ggml.token_type marks token " + std::to_string(i) + " as a byte token, which a '" + model +
                       "' tokenizer cannot decode");
            }
        }
    }
    if (needs_merges(model) && k.str("tokenizer.ggml.pre").value_or("") != "kimi-k2") {
        if (!k.has("tokenizer.ggml.merges")) k.fail("missing metadata key tokenizer.ggml.merges (a " + model + " tokenizer needs it)");
    }
    find_array(k, "tokenizer.ggml.merges", {GGUF_TYPE_STRING}, 0, "");

    if (const auto declared = k.u32(vocab_size_key); declared && *declared != n) {
        k.fail(vocab_size_key + " is " + std::to_string(*declared) + " but tokenizer.ggml.tokens has " +
               std::to_string(n) + " entries");
    }
    return (uint32_t) n;
}

}  // namespace selftune
