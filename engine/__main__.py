"""python -m engine …"""

import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a busy CPU a spinning thread waits for a peer that
# is not scheduled, and training on 2 cores beside other programs ran ~5x slower (docs/benchmarks.md).
# Set before torch loads its OpenMP runtime; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.cli import main  # noqa: E402  (after the OpenMP setting)

if __name__ == "__main__":
    sys.exit(main())
