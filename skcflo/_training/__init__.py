"""Layer 2: the epoch loop, head-update strategies and training steps (private)."""
