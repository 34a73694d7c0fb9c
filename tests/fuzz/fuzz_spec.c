/* Fuzz target: the spec loader (YAML parse, validation, sweep expansion) on arbitrary bytes.
 *
 * libFuzzer entry point. Besides "no crash, no leak, no undefined behaviour"
 * (ASan/UBSan) and "no hang" (the limits bound the work), it checks the
 * properties of spec_props.c on every result. Built as a fuzzer with
 * -Dfuzz=true (clang; scripts/fuzz spec); otherwise tests/fuzz/replay.c runs
 * it over tests/fuzz/corpus/spec in the ordinary test suite. */
#include "spec_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spec_options o;
    fuzz_spec_options(&o);
    spec_file_free(fuzz_spec_check(data, size, &o));
    return 0;
}
