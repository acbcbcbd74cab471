"""The built-in networks' names, and which of them --hidden shapes (no imports: `spec` and
`parameterizations` both read them, and the network registry `networks` builds them)."""

BUILTIN_MODELS = ("mlp", "cnn", "resmlp", "rescnn")  # or a user factory FILE.py:NAME / package.module:NAME
RESIDUAL_MODELS = ("resmlp", "rescnn")  # built-ins whose branches and skips the initializers know
# Built-ins whose layers --hidden (and --activation) shape: their widths and depth are
# `spec.hidden`; any other network has its own layers and, at most, a `width`.
HIDDEN_MODELS = ("mlp", *RESIDUAL_MODELS)
