"""Settings shared by the benchmark scripts.

Imported as a sibling module, like ``_provenance``.
"""

# CFLORegressor's defaults before issue 19: a fixed head penalty, every epoch on every
# row, the network's own features. The defaults now choose the penalty, stop early and
# put the inputs beside the features (chosen on bench_real.py); benchmarks of a
# mechanism at a fixed number of epochs (a head against Adam, streaming, the per-batch
# order, data-parallel speed, the GPU path) pin these, so that their epochs, networks
# and figures stay what they measured.
FORMER_DEFAULTS = {"alpha": 0.1, "early_stopping": False, "include_inputs": False}
