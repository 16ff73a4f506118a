"""Key providers: one interface (:mod:`.interface`), one module per provider."""
