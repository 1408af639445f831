"""Layer 1: the scikit-learn estimators, their shared base and glue (private)."""
