"""kerasdl: a Keras 3 / TensorFlow deep-learning workbench.

The library lives here (no Click code); the command line is ``kerasdl.cli`` and the
architecture zoo is ``kerasdl.models``.
"""

__version__ = "0.1.0"
