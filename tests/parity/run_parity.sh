#!/bin/sh
# The 'parity' meson test: the PyTorch reference writes its files, the C
# checker compares the engine with them and exports the trained weights,
# then PyTorch loads that export. Skips (77) when torch is missing (fails
# instead with EPOCHD_TEST_REQUIRED=1, i.e. -Dtorch_tests=enabled).
#   run_parity.sh PYTHON SCRIPT CASES_JSON CHECKER OUT_DIR
set -u
py=$1 script=$2 cases=$3 checker=$4 out=$5
if ! [ -x "$py" ] || ! "$py" -c 'import torch' >/dev/null 2>&1; then
    if [ "${EPOCHD_TEST_REQUIRED:-0}" = 1 ]; then
        echo "FAIL: $py cannot import torch (Debian's python3-torch), required by -Dtorch_tests=enabled"
        exit 1
    fi
    echo "skipped: $py cannot import torch (Debian's python3-torch)"
    exit 77
fi
rm -rf "$out" && mkdir -p "$out" || exit 1
"$py" "$script" "$cases" "$out" || { echo "torch_reference.py failed"; exit 1; }
"$checker" "$cases" "$out"
rc=$?
echo
"$py" "$script" --check-export "$cases" "$out" || rc=1
exit $rc
