"""Sphinx configuration of the skcflo documentation.

Build the site, running every gallery example, with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build needs no network access: no intersphinx inventories are fetched,
and MathJax is only referenced by the pages, for the browser to load.
"""

import torch

import skcflo

# The gallery's networks are tiny. On a few shared cores torch's extra
# intra-op threads only wait on each other: one example ran 15 times slower
# with the default threads than with one (see "Threads" in training.rst).
# sphinx-gallery runs the examples inside this process, so this covers them.
torch.set_num_threads(1)

project = "skcflo"
author = "the skcflo developers"
copyright = "the skcflo developers, BSD-3-Clause"  # noqa: A001 (Sphinx's name)
version = release = skcflo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
# Build outputs that live beside the sources, and the gallery's own header
# (sphinx-gallery turns examples/README.rst into auto_examples/index.rst).
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
# numpydoc renders the class docstring; the class template lists the methods,
# so numpydoc's own member tables would only duplicate them (and warn).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Every public name must carry a runnable example ("EX01": no Examples
# section); the template documents public methods too, which are exempt.
numpydoc_validation_checks = {"EX01"}
numpydoc_validation_exclude = {r"\.fit$", r"\.partial_fit$", r"\.predict$", r"\.iv_loss$"}
numpydoc_validation_exclude |= {r"\.build_module$", r"\.get_metadata_routing$", r"\.__init__$"}
# DataParallel's methods are the training loop's plumbing; the class shows them in use.
numpydoc_validation_exclude |= {r"\.DataParallel\.\w+$"}

# -- Gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Only plot_* scripts are gallery pages. Others, such as
    # neuraloperator_backbone.py (an optional package), stay plain scripts.
    "ignore_pattern": r"__init__\.py|^(?!plot_)",
    # Pages of the API reference list the examples that use each name.
    "doc_module": ("skcflo",),
    "backreferences_dir": "generated/backreferences",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": True,
    # Fail the build on any failing example (not only warn at the end).
    "abort_on_example_error": True,
    "first_notebook_cell": "%matplotlib inline",
    "remove_config_comments": True,
}

# -- HTML -------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skcflo {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = False
