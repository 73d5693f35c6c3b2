"""nas: neural-architecture search over attention blocks for convolutional networks."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
