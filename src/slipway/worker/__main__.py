"""`python -m slipway.worker [-v]`: the same worker as `slipway worker`, started faster."""

import sys

from slipway.worker.entry import run_from_environment

if __name__ == "__main__":
    sys.exit(run_from_environment(verbose=any(a in ("-v", "--verbose") for a in sys.argv[1:])))
