"""The documentation site builds, its gallery runs, and every public name is documented.

The site is built once per session, as the documented command builds it
(``python -m sphinx -W --keep-going -b html docs docs/_build/html``): warnings
are errors and sphinx-gallery executes every ``examples/plot_*.py``. That build
is the only place the examples run in the suite; running them again by
``runpy`` would double the slowest part of the suite and check less (no
notebook, no rendered page). The build runs in this process, not a
subprocess, so that conftest's one-thread torch setting applies to the
examples. It works on a temporary copy of ``docs/`` and ``examples/`` because
sphinx-gallery and autosummary write generated sources beside the originals.
"""

import doctest
import inspect
import shutil
from pathlib import Path

import pytest

import skcflo
import skcflo.datasets
import skcflo.distributed

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("plot_*.py"))
PUBLIC = [(skcflo, name) for name in skcflo.__all__]
PUBLIC += [(skcflo.datasets, name) for name in skcflo.datasets.__all__]
PUBLIC += [(skcflo.distributed, name) for name in skcflo.distributed.__all__]
# Build outputs of a local build must not leak into the copy.
_GENERATED = shutil.ignore_patterns(
    "_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site in a temporary copy; return (exit status, sources, html)."""
    for module in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme", "matplotlib"):
        pytest.importorskip(module)
    from sphinx.cmd.build import build_main

    work = tmp_path_factory.mktemp("site")
    shutil.copytree(DOCS, work / "docs", ignore=_GENERATED)
    shutil.copytree(ROOT / "examples", work / "examples", ignore=_GENERATED)
    html = work / "html"
    arguments = ["-W", "--keep-going", "-q", "-b", "html", "-d", str(work / "doctrees")]
    status = build_main([*arguments, str(work / "docs"), str(html)])
    return status, work / "docs", html


def test_site_builds_without_warnings(site):
    status, _, html = site
    assert status == 0, "the Sphinx build failed or warned: see the captured stderr"
    assert (html / "index.html").is_file()


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_ran_and_rendered_its_figures(site, example):
    _, sources, html = site
    figures = sorted((sources / "auto_examples" / "images").glob(f"sphx_glr_{example}_*.png"))
    figures = [figure for figure in figures if "thumb" not in figure.name]
    assert figures, f"{example} drew no figure"
    for figure in figures:
        assert (html / "_images" / figure.name).is_file(), f"{figure.name} is not on the site"
    assert (html / "auto_examples" / f"{example}.html").is_file()
    # The notebook analysts download, generated from the same script.
    assert (sources / "auto_examples" / f"{example}.ipynb").is_file()
    assert list(html.glob(f"_downloads/*/{example}.ipynb")), f"{example}.ipynb is not offered"


@pytest.mark.parametrize(
    ("module", "name"), PUBLIC, ids=lambda value: getattr(value, "__name__", value)
)
def test_public_name_has_an_api_page(site, module, name):
    _, _, html = site
    page = html / "generated" / f"{module.__name__}.{name}.html"
    assert page.is_file(), f"no API page for {module.__name__}.{name}"
    # Rendered doctest prompts are escaped in the HTML.
    assert "&gt;&gt;&gt;" in page.read_text(encoding="utf-8"), f"the page of {name} has no example"


@pytest.mark.parametrize(
    ("module", "name"), PUBLIC, ids=lambda value: getattr(value, "__name__", value)
)
def test_public_name_has_a_doctest_example(module, name, pytestconfig):
    """Every public docstring has an Examples section with code that pytest runs.

    The examples themselves run with the rest of the suite: pytest collects the
    package's doctests (``--doctest-modules`` over ``testpaths``), so running
    them here again would only cost time. This checks they exist and that the
    configuration still collects them.
    """
    obj = getattr(module, name)
    assert "\nExamples\n--------\n" in inspect.getdoc(obj), f"{name} has no Examples section"
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert any(test.examples for test in tests), f"the Examples of {name} have no >>> code"
    assert "--doctest-modules" in pytestconfig.getini("addopts")
    assert "skcflo" in pytestconfig.getini("testpaths")


HAND_WRITTEN = sorted(
    path.name for path in DOCS.glob("*.rst") if path.name != "sg_execution_times.rst"
)


@pytest.mark.parametrize("page", HAND_WRITTEN)
def test_user_guide_snippets_run(page):
    """The ``>>>`` snippets of the hand-written pages run and print what they show."""
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(
        str(DOCS / page), module_relative=False, optionflags=flags, verbose=False
    )
    assert result.failed == 0, f"{result.failed} snippet(s) of {page} failed (see stdout)"


def test_architecture_page_names_every_module():
    """The architecture page stays true to the code: it names every module, and only those."""
    text = (DOCS / "architecture.rst").read_text(encoding="utf-8")
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "skcflo").rglob("*.py")
        if path.name != "__init__.py"
    }
    missing = sorted(module for module in modules if f"``{module}``" not in text)
    assert not missing, f"docs/architecture.rst does not describe {missing}"
    named = {word.strip("`,.;:()") for word in text.split() if word.startswith("``skcflo/")}
    stale = sorted(path for path in named if not (ROOT / path).exists())
    assert not stale, f"docs/architecture.rst names modules that do not exist: {stale}"
