"""The compliance control IDs scanner findings evidence.

Copied from the compliance catalog (OWASP Top 10 for LLM Applications 2025, MITRE ATLAS) so that
nothing is read from outside the package at run time.
"""

from __future__ import annotations

from typing import Final

OWASP_SUPPLY_CHAIN: Final = "LLM03:2025"  # Supply Chain
OWASP_POISONING: Final = "LLM04:2025"  # Data and Model Poisoning
OWASP_SENSITIVE: Final = "LLM02:2025"  # Sensitive Information Disclosure
OWASP_INJECTION: Final = "LLM01:2025"  # Prompt Injection
ATLAS_SUPPLY_CHAIN_MODEL: Final = "AML.T0010.003"  # AI Supply Chain Compromise: Model
ATLAS_SUPPLY_CHAIN_DATA: Final = "AML.T0010.002"  # AI Supply Chain Compromise: Data
ATLAS_UNSAFE_ARTIFACTS: Final = "AML.T0011.000"  # User Execution: Unsafe AI Artifacts
ATLAS_EMBED_MALWARE: Final = "AML.T0018.002"  # Manipulate AI Model: Embed Malware
ATLAS_MODIFY_ARCHITECTURE: Final = "AML.T0018.001"  # Manipulate AI Model: Modify AI Model Architecture
ATLAS_POISON_DATA: Final = "AML.T0020"  # Poison Training Data
ATLAS_PUBLISH_POISONED_DATA: Final = "AML.T0019"  # Publish Poisoned Datasets

#: Code execution hidden in a model artifact.
MODEL_CODE_EXECUTION: Final = (
    OWASP_SUPPLY_CHAIN,
    ATLAS_SUPPLY_CHAIN_MODEL,
    ATLAS_UNSAFE_ARTIFACTS,
    ATLAS_EMBED_MALWARE,
)
#: A malformed, ambiguous or tampered artifact.
MODEL_INTEGRITY: Final = (OWASP_SUPPLY_CHAIN, ATLAS_SUPPLY_CHAIN_MODEL)
#: Graph or architecture manipulation (custom ops, file-system ops, external data).
MODEL_ARCHITECTURE: Final = (OWASP_SUPPLY_CHAIN, ATLAS_SUPPLY_CHAIN_MODEL, ATLAS_MODIFY_ARCHITECTURE)
#: Poisoned training or retrieval data.
DATA_POISONING: Final = (OWASP_POISONING, ATLAS_SUPPLY_CHAIN_DATA, ATLAS_POISON_DATA)
#: Injection payloads planted in data.
DATA_INJECTION: Final = (OWASP_POISONING, OWASP_INJECTION, ATLAS_POISON_DATA)
#: Personal data or secrets in data.
DATA_SENSITIVE: Final = (OWASP_SENSITIVE, ATLAS_SUPPLY_CHAIN_DATA)
