"""initbench: compare neural-network weight initializers over seeds, honestly.

Importing the package is cheap: JAX, TensorFlow, TFDS and pandas load only where needed.
The library API (`compare`, `load`, `Run`) is imported on first use:

    import initbench as ib
    run = ib.compare(inits=["xavier", "he_normal"], seeds=5, dataset="digits", epochs=5)
    run.summary
"""

__version__ = "0.1.0"
__all__ = ["InitbenchError", "Run", "__version__", "compare", "load", "rerun"]

_API = {"compare", "load", "rerun", "Run"}


def __getattr__(name: str):
    if name in _API:
        from initbench import api

        return getattr(api, name)
    if name == "InitbenchError":
        from initbench.errors import InitbenchError

        return InitbenchError
    raise AttributeError(f"module 'initbench' has no attribute {name!r}")
