"""Docstring fragments of the parameters every estimator shares, written once.

A class docstring names a fragment on a line of its own, ``$name`` indented as
the description would be; :func:`fill_shared_docs` puts the fragment there,
each of its lines at that indentation. The rendered docstring is plain numpydoc.
"""

import re

SHARED_PARAMETER_DOCS = {
    "learning_rate": """\
Learning-rate schedule of the optimiser, stepped once per epoch:
cosine annealing to 0 over ``max_iter`` epochs; a tenfold drop at 50% and
75% of ``max_iter``; ``lr / (epoch + 1) ** power_t``; or a fivefold drop
whenever two epochs fail to lower the training loss by ``tol``.""",
    "power_t": "Exponent of the 'invscaling' schedule.",
    "momentum": "Momentum of the 'sgd' solver.",
    "device": """\
Where to train and predict; 'auto' picks CUDA when available. The
fitted networks are kept on the CPU, so a pickled model loads anywhere.""",
    "n_jobs": """Torch intra-op threads while the estimator computes (``fit`` and every
method that runs a network), restored afterwards. ``None`` means 1 unless
in a ``joblib.parallel_backend`` context, -1 means every CPU, as in
scikit-learn. One thread by default: on 2 CPUs a fit of the default
network took as long with one thread as with torch's default of one per
core, and with a second fit running beside it (as in ``GridSearchCV(n_jobs=2)``)
one per core made it 5-75x slower (``benchmarks/bench_threads.py``). Raise it
for wide networks on large batches when the CPUs are free: (512, 512) on
batches of 1,000 took 0.5-0.6x the time with both CPUs. torch's count is
process-wide, so fits running at once in threads of one process share it.""",
}

_FRAGMENT = re.compile(r"^( *)\$(\w+)$", flags=re.MULTILINE)


def fill_shared_docs(cls):
    """Class decorator: replace each ``$name`` line of the docstring by its fragment.

    Examples
    --------
    >>> @fill_shared_docs
    ... class Example:
    ...     '''Parameters
    ...
    ...     power_t : float
    ...         $power_t
    ...     '''
    >>> print(Example.__doc__.splitlines()[3].strip())
    Exponent of the 'invscaling' schedule.
    """

    def fragment(match):
        indent, name = match.groups()
        return "\n".join(indent + line for line in SHARED_PARAMETER_DOCS[name].splitlines())

    cls.__doc__ = _FRAGMENT.sub(fragment, cls.__doc__)
    return cls
