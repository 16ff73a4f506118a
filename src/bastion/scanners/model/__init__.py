"""Static scanners for model artifacts: pickle and its wrappers, tensor formats, graph formats, archives."""
