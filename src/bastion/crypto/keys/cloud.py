"""Cloud KMS providers (AWS KMS, Google Cloud KMS, Azure Key Vault): stubs in this build.

The :class:`~bastion.crypto.keys.interface.KeyProvider` interface maps one-to-one onto each
service (``wrap`` → Encrypt with an encryption context / AAD, ``unwrap`` → Decrypt, ``rotate`` →
a new key version, ``retire`` → disable/destroy older versions). They are registered by name so
that configuration naming them fails with a clear message instead of "unknown provider".
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.crypto.keys.interface import KeyProvider, key_providers
from bastion.errors import ConfigError

_SDKS = {
    "aws-kms": "boto3 (AWS KMS)",
    "gcp-kms": "google-cloud-kms (Cloud KMS)",
    "azure-keyvault": "azure-keyvault-keys (Azure Key Vault)",
}


def _stub(name: str) -> Callable[..., KeyProvider]:
    def factory(**_settings: object) -> KeyProvider:
        raise ConfigError(
            f"key provider {name!r} is not available in this build",
            hint=f"Use crypto.provider: pkcs11 or vault; {name} needs {_SDKS[name]} and a provider module.",
        )

    return factory


for _name in _SDKS:
    key_providers.add(_name, _stub(_name))
