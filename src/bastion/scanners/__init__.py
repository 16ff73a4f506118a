"""Offline scanners: model artifacts (``model``), data sets (``dataset``) and the AI-BOM (``bom``).

Everything here is static: nothing from a scanned file is imported, unpickled or executed.
"""
