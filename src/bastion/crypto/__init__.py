"""Encryption engines: envelope encryption, streaming AEAD files, key providers, TLS contexts.

Pure engine code (layer 2): it never reads settings or the database; services compose it.
"""
