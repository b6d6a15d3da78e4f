"""kerasdl: a Keras 3 / TensorFlow deep-learning workbench.

The library lives here (no Click code); the command line is ``kerasdl.cli`` and the
architecture zoo is ``kerasdl.models``.
"""

import os

# TensorFlow 2.21 leaves its oneDNN CPU kernels off unless asked on many x86 CPUs (this project's
# AMD EPYC machines among them); with them on, LeNet-5's train step goes from 17.5 to 5.7 ms and
# ResNet-20's from 404 to 172 ms (benchmarks/peer_torch.py --part micro, RESULTS.md). Only takes
# effect when kerasdl is imported before TensorFlow; TF_ENABLE_ONEDNN_OPTS=0 keeps them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
