"""Layer 3: the feature networks and their specs (private)."""
