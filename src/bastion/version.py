"""The version of Bastion (one place; the package root and report writers read it)."""

__version__ = "0.1.0"
