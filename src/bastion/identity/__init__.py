"""Identity engine (pure): API key format and hashing, OIDC bearer-token verification.

No database and no configuration objects here: :mod:`bastion.services.identity` composes this
engine with the store and the audit ledger.
"""
