#!/usr/bin/env bash
# Benchmark: what licensing and package trust cost. Runs the criterion bench
# host/license/benches/licensing.rs:
# - admit_call: the licence capacity check every INVITE makes;
# - entitled: the entitlement check of a licensed plugin's call;
# - verify_package/<bytes>: signature check before an install (SHA-256 over
#   the package, one Ed25519 verification) for 75 KB (a Rust plugin) and
#   18 MB (a Python plugin).
# Prints the median per benchmark from target/criterion/*/new/estimates.json.
#
# Usage (from the repo root): bench/licensing.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "licensing bench: $(nproc) cores, $(date -u +%FT%TZ)"
timeout 1800 cargo bench -p plugboard-license --bench licensing -- "$@"
for name in admit_call entitled verify_package/76800 verify_package/18874368; do
    f="target/criterion/$name/new/estimates.json"
    [[ -f "$f" ]] || continue
    python3 -c 'import json,sys
e = json.load(open(sys.argv[1]))
print("%s: median %.3f us, mean %.3f us" % (sys.argv[2], e["median"]["point_estimate"] / 1e3, e["mean"]["point_estimate"] / 1e3))' "$f" "$name"
done
