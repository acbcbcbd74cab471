"""initbench: compare neural-network weight initializers over seeds, honestly.

Importing the package is cheap: JAX, TensorFlow and TFDS load only where needed.
"""

__version__ = "0.1.0"
