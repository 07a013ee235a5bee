"""`python -m slipway.worker [-v] [--standby]`: the same worker as `slipway worker`, started
faster; with --standby it waits for its assignment on stdin (the local executor's spare)."""

import sys

from slipway.worker.entry import run_from_environment, run_on_standby

if __name__ == "__main__":
    verbose = any(a in ("-v", "--verbose") for a in sys.argv[1:])
    run = run_on_standby if "--standby" in sys.argv[1:] else run_from_environment
    sys.exit(run(verbose))
