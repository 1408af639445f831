"""Layer 3: the closed-form ridge algebra, pure torch (private)."""
