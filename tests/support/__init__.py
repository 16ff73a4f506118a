"""Helpers shared by test modules in different folders (import as ``support.<module>``).

``tests/`` is on ``sys.path`` because pytest's default (prepend) import mode puts the folder of the
rootdir ``tests/conftest.py`` there; ``mypy tests`` finds the package the same way.
"""
