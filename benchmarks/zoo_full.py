"""The full-zoo check: every model trained one step and every keras.applications twin compared,
including the deep variants the default suite only builds (tests/zoohelpers.py).

    python benchmarks/zoo_full.py            # about 6 CPU minutes; prints pytest's summary

It runs the same tests as the suite, with KERASDL_FULL_ZOO=1, on 2 worker processes.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    env = dict(os.environ, KERASDL_FULL_ZOO="1", KERASDL_OFFLINE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
           "tests/test_models.py", "tests/test_zoo_applications.py",
           "-k", "zoo_builds_outputs_logits or same_logits_as_keras_applications or regression_head"]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
