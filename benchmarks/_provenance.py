"""Where a benchmark's numbers come from: the command, the date and the machine.

Every script in ``benchmarks/`` starts its output with these lines, so that a
table pasted into ``benchmarks/README.md`` says how to rerun it and on what.
Imported as a sibling module (``python benchmarks/<script>.py`` puts this
folder first on ``sys.path``).
"""

import datetime
import os
import platform
import shlex
import sys


def provenance_lines():
    """``command: ...``, ``date: ...`` and ``machine: ...``, without a prefix."""
    import numpy
    import sklearn
    import torch

    script = os.path.relpath(os.path.abspath(sys.argv[0]))
    return [
        f"command: {shlex.join(['python', script, *sys.argv[1:]])}",
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        (
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
            f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, "
            f"python {platform.python_version()}"
        ),
    ]


def print_provenance(prefix="# "):
    """Print :func:`provenance_lines`, each after ``prefix``."""
    for line in provenance_lines():
        print(prefix + line)
