"""Data-set scanners: streaming readers, duplicate detection and label-quality (poisoning) analysis.

Detectors for PII, secrets and injection payloads are applied by ``bastion.services.dataset_scan``,
which composes these scanners with the detector registry (siblings do not import each other).
"""
