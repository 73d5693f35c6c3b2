"""Sub-commands of ``nas``: one module each, discovered by :func:`nas.cli.build_parser`.

A module defines ``register(subparsers)`` that adds its parser(s) and sets
``handler=<function(args) -> int>`` with ``set_defaults``. Heavy imports go inside handlers.
"""
