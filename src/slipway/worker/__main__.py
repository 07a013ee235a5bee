"""`python -m slipway.worker [-v] [--standby [--warm-signing] [--warm-sbom]]`: the same
worker as `slipway worker`, started faster; with --standby it waits for its assignment on
stdin (the local executor's spare), having imported what it will need (--warm-*: what
signing and the SBOM need, when the manager signs)."""

import sys

from slipway.worker.entry import run_from_environment, run_on_standby

if __name__ == "__main__":
    verbose = any(a in ("-v", "--verbose") for a in sys.argv[1:])
    if "--standby" in sys.argv[1:]:
        warm = {a.removeprefix("--warm-") for a in sys.argv[1:] if a.startswith("--warm-")}
        sys.exit(run_on_standby(verbose, warm))
    sys.exit(run_from_environment(verbose))
