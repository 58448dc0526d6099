// libFuzzer target for the GGUF readers: ggml's gguf_init_from_file (through check_gguf)
// and our validators (model_check, vocab_check, adapter_check), the code every model and
// adapter load runs before llama.cpp sees a file. A finding is a crash, an ASan report, a
// leak or a timeout; a thrown std::runtime_error is the expected answer to a bad file.
//
// Built and run by native/fuzz/run.ts (`bun run fuzz:gguf [-- seconds]`), outside CI.

#include "adapter_check.h"
#include "gguf_check.h"
#include "model_check.h"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    // The readers take a path (gguf_init_from_file, stat for the size): one file per process.
    static const std::string path = "/tmp/selftune-gguf-fuzz-" + std::to_string(getpid()) + ".gguf";
    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        const selftune::CheckedGguf file = selftune::read_checked_gguf(path);
        if (file.header.general_type == "adapter") {
            selftune::check_adapter_settings(file, "", nullptr);
        } else {
            const selftune::ModelSettings s = selftune::check_model_settings(file, file.header.n_tensors == 0);
            (void) s;
        }
    } catch (const std::exception &) {
    }
    return 0;
}
