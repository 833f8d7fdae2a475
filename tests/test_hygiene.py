"""Notebook conventions: no stored outputs, standard header, FAST switch, exercises, summary."""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbheader  # noqa: E402
import student_copy  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert any(p.name.startswith("00_") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run nbstripout or clear outputs"
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_header_badge_and_guarded_setup(path):
    nb = nbformat.read(path, as_version=4)
    title, promise = nbheader._split_header(nb.cells[0].source)
    assert nb.cells[0].source == nbheader.header_source(path, title, promise), \
        "stale header: run python tools/nbheader.py"
    assert f"notebooks/{path.name}" in nb.cells[0].source  # the badge opens this notebook
    assert len(promise) > 200, "the header needs a one-paragraph promise"
    assert nb.cells[1].source == nbheader.SETUP
    # The setup cell never reinstalls the scientific stack
    assert "--no-deps" in nbheader.SETUP and 'if "google.colab" in sys.modules' in nbheader.SETUP


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_fast_switch_near_the_top(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"][:3]
    assert any('os.environ.get("BN_FAST", "0") == "1"' in c.source for c in code)
    assert any("parameters" in c.metadata.get("tags", []) for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_ends_with_exercises_and_summary(path):
    nb = nbformat.read(path, as_version=4)
    headings = [ln for c in nb.cells if c.cell_type == "markdown"
                for ln in c.source.splitlines() if ln.startswith("## ")]
    assert headings[-1].strip() == "## References", "the last section lists every work cited"
    assert headings[-2].strip() == "## Summary"
    assert any(h.strip() == "## Exercises" for h in headings[-4:])
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert sources.count(student_copy.BEGIN) == sources.count(student_copy.END) >= 1
    assert "bnh.checks.check_" in sources


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_run_all_is_not_stopped_by_an_intended_error(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])]
    assert not tagged, f"{path.name} cells {tagged}: catch and print the error instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_star_imports_or_helper_files(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not re.search(r"^\s*from \S+ import \*", c.source, re.M)
    assert not list((ROOT / "notebooks").glob("*.py")), "helper code belongs in bn_helpers/"


def test_student_copy_replaces_solutions(tmp_path):
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\ncheck(f)"
    out = student_copy.strip_solutions(src)
    assert "return x" not in out and 'raise NotImplementedError' in out and "check(f)" in out
    assert "    raise NotImplementedError" in out  # keeps the indentation
    with pytest.raises(ValueError, match="not closed"):
        student_copy.strip_solutions("### BEGIN SOLUTION\nx = 1")
    hidden = "a = 1\n### BEGIN HIDDEN TESTS\nassert a == 1\n### END HIDDEN TESTS\n"
    assert "assert" not in student_copy.strip_solutions(hidden)
    student_copy.main(["--out", str(tmp_path)])
    for path in NOTEBOOKS:
        nb = nbformat.read(tmp_path / path.name, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert student_copy.BEGIN not in text
        assert "NotImplementedError" in text


# Words a student cannot follow: our own design notes, and notebooks that do not exist
_UNFOLLOWABLE = [r"\bseed notes?\b", r"\bsource notes?\b", r"\bcard [A-G]\d\b", r"\(card\b",
                 r"\breference notes\b", r"\bshared/"]
# Prose that hedges on a result instead of computing it
_CONDITIONAL = [r"\bif the (count|number|value|gap|curve|accuracy|result)s? (above|below) (is|are|shows?)\b",
                r"\bif (it|this) (is|looks) (low|high|small|large)\b"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_prose_a_student_can_follow(path):
    nb = nbformat.read(path, as_version=4)
    existing = {p.name[:2] for p in NOTEBOOKS}
    for i, c in enumerate(nb.cells):
        if c.cell_type != "markdown":
            continue
        for pattern in _UNFOLLOWABLE + _CONDITIONAL:
            m = re.search(pattern, c.source, re.I)
            assert not m, f"{path.name} cell {i}: {m.group(0)!r}"
        for ref in re.findall(r"\bnotebooks?\s+(\d\d)\b", c.source, re.I):
            assert ref in existing, f"{path.name} cell {i} points at notebook {ref}, which does not exist"


_NOT_AUTHORS = {"January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December", "In", "Since", "Until", "From", "The"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_references_list_every_citation(path):
    """Every 'Author (year)' / 'Author et al. year' cited in the prose appears in References."""
    nb = nbformat.read(path, as_version=4)
    refs = nb.cells[-1].source if nb.cells[-1].cell_type == "markdown" else ""
    assert refs.lstrip().startswith("## References"), f"{path.name}: last cell must be References"
    assert re.search(r"https?://", refs), "references give links"
    body = "\n".join(c.source for c in nb.cells[:-1] if c.cell_type == "markdown")
    author_year = r"\b([A-Z][a-z]+)(?: et al\.| & [A-Z][a-z]+| and [A-Z][a-z]+)?,? \(?((?:19|20)\d\d)\b"
    cited = {(a, y) for a, y in re.findall(author_year, body) if a not in _NOT_AUTHORS}
    missing = sorted(f"{a} {y}" for a, y in cited if a not in refs or y not in refs)
    assert not missing, f"{path.name}: cited but not in References: {missing}"


HELPERS = sorted((Path(__file__).resolve().parents[1] / "bn_helpers").rglob("*.py"))


@pytest.mark.parametrize("path", HELPERS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_helper_modules_are_small_and_explicit(path):
    # Small modules whose names say what they hold; every imported name visible
    text = path.read_text()
    assert not re.search(r"^\s*from \S+ import \*", text, re.M), f"{path.name}: star import"
    assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines (split it)"
