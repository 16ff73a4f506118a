"""Bastion: a self-hosted security platform for AI systems.

The public, in-process API is re-exported here lazily so that ``import bastion`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
