"""Import TensorFlow without its C++ start-up chatter on the user's terminal.

TensorFlow 2.21 logs "oneDNN custom operations are on" and "Could not find cuda drivers" through
absl *before* absl logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence those lines.
The CLI therefore imports TensorFlow once with file descriptor 2 pointed at /dev/null; Python-level
errors still surface (as the exception), and stderr is restored straight after.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 points at /dev/null inside the block (Python exceptions still propagate),
    for code that may import TensorFlow and so print its native start-up lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def import_tensorflow():
    """Import and return ``tensorflow`` with native start-up logging suppressed."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_stderr_silenced():
        import tensorflow
    return tensorflow
