"""CLI command groups beyond run/compare; each module has `register(app)`.

Modules here import only typer and rich at the top, so `initbench --help` stays fast.
"""
