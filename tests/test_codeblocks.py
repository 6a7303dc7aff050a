"""Every Python block of the chapters runs, and a failing one says where.

`pytest --codeblocks` runs only the fences it recognises. This file parses the
Markdown with a fence reader of its own and fails when a Python fence would not
be collected, so that an unsupported fence syntax cannot silently skip code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
LANGUAGE = re.compile(r"^\{?\s*\.?(?P<lang>[A-Za-z0-9_+-]+)")
PYTHON = {"python", "python3", "py", "py3", "pycon", "ipython", "ipython3"}


@dataclass(frozen=True)
class Fence:
    line: int  # 1-based line of the opening fence
    info: str


def python_fences(text: str) -> list[Fence]:
    """Opening lines of the Python fences (``` or ~~~, any indent) in Markdown."""
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        marker, info = opening["fence"], opening["info"].strip()
        language = LANGUAGE.match(info)
        if language and language["lang"].lower() in PYTHON:
            found.append(Fence(i + 1, info))
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            i += 1
        i += 1
    return found


def collected_fences(path: Path) -> set[int]:
    """Lines of the fences whose code the test session runs: the claim blocks
    pytest-codeblocks collects (with the fences `cont` joins to them) and the
    definition blocks conftest.py collects."""
    from pytest_codeblocks import extract_from_file

    from tools import chapters

    text = path.read_text(encoding="utf-8")
    fences = chapters.read_fences(text, str(path))
    lines: set[int] = set()
    for block in extract_from_file(path):
        if block.syntax != "python":
            continue
        held, size = len(block.code.splitlines()), 0
        for fence in (f for f in fences if f.line >= block.lineno and f.is_claim):
            lines.add(fence.line)
            size += len(fence.body.splitlines())
            if size >= held:
                break
    for blocks in chapters.definition_files(text, str(path)).values():
        lines.update(fence.line for fence in blocks)
    return lines


def test_the_fence_reader_finds_every_python_fence_syntax():
    text = textwrap.dedent(
        """\
        ```python
        a = 1
        ```
        ```py
        ```
        ~~~python
        ~~~
        ``` {.python file=literate_transformer/x.py}
        ```
        ```python title="x.py"
        ```
            ```python
            ```
        ````markdown
        ```python
        ```
        ````
        ```text
        ```
        """
    )
    assert [f.line for f in python_fences(text)] == [1, 4, 6, 8, 10, 12], python_fences(
        text
    )


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_fence_is_collected(path: Path):
    fences = python_fences(path.read_text(encoding="utf-8"))
    collected = collected_fences(path)
    missed = [f for f in fences if f.line not in collected]
    assert not missed, (
        f"{path.relative_to(ROOT)}: these Python fences would not run: "
        + "; ".join(f"line {f.line}: ```{f.info}" for f in missed)
        + ". Use ```python for examples and ``` {.python file=...} for "
        "definitions (named blocks are not supported)."
    )


def test_docs_have_python_fences_at_all():
    # Guards the test above against a reader that finds nothing.
    assert len(python_fences((ROOT / "docs" / "literate.md").read_text())) >= 3


BROKEN_CHAPTER = """\
# A chapter with a bug

``` {.python file=literate_transformer/demo.py}
def double(x):
    return 2 * x
```

Later blocks of the same file see the earlier ones:

``` {.python file=literate_transformer/demo.py}
def quadruple(x):
    return double(double(x))


assert quadruple(1) == 4, quadruple(1)
```

```python
from math import sqrt

assert sqrt(16) == 4
```

```python
x = 3
y = x + 1
assert y == 5, f"y is {y}"
```
"""


def scratch_project(tmp_path: Path, pages: dict[str, str]) -> None:
    """The project's pytest set-up and the given pages of docs/, in tmp_path."""
    shutil.copy(ROOT / "conftest.py", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "docs").mkdir()
    for name, text in pages.items():
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")


def run_pytest(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "docs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def run_pytest_on(chapter: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's pytest set-up on one chapter, in a scratch copy."""
    scratch_project(tmp_path, {"chapter.md": chapter})
    return run_pytest(tmp_path)


def test_a_broken_snippet_fails_and_names_its_file_and_line(tmp_path: Path):
    done = run_pytest_on(BROKEN_CHAPTER, tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 1, report
    assert "1 failed, 2 passed" in report, report
    line = BROKEN_CHAPTER.splitlines().index('assert y == 5, f"y is {y}"') + 1
    assert f"docs/chapter.md:{line}:" in report, report
    assert "AssertionError: y is 4" in report, report


def test_definition_blocks_of_one_file_run_together(tmp_path: Path):
    # The file's second block calls the first one's function; break that
    # function and the failure points at the second block's chapter line.
    chapter = BROKEN_CHAPTER.replace("assert y == 5", "assert y == 4")
    chapter = chapter.replace("return 2 * x", "return x")
    chapter += "\n```python\nprint('done')\n```\n"
    done = run_pytest_on(chapter, tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 1, report
    assert "1 failed, 3 passed" in report, report
    line = chapter.splitlines().index("assert quadruple(1) == 4, quadruple(1)") + 1
    assert f"docs/chapter.md:{line}:" in report, report
    assert "AssertionError: 1" in report, report


def test_a_page_that_continues_a_module_runs_in_that_modules_namespace(
    tmp_path: Path,
):
    # Page one starts scratchpkg/mod.py; page two, later in the nav, continues
    # it with a block that uses page one's private helper and imports. The
    # tangled module (written here by hand) provides them.
    (tmp_path / "scratchpkg").mkdir()
    (tmp_path / "scratchpkg" / "__init__.py").write_text("")
    (tmp_path / "scratchpkg" / "mod.py").write_text(
        "import math\n\n\ndef _half(x):\n    return x / 2\n"
    )
    first = "``` {.python file=scratchpkg/mod.py}\nimport math\n\n\n"
    first += "def _half(x):\n    return x / 2\n```\n"
    second = "Text.\n\n``` {.python file=scratchpkg/mod.py}\n"
    second += "def root_half(x):\n    return math.sqrt(_half(x))\n\n\n"
    second += "assert root_half(8) == 2\n```\n"
    (tmp_path / "mkdocs.yml").write_text("nav:\n  - A: a.md\n  - B: b.md\n")
    scratch_project(tmp_path, {"a.md": first, "b.md": second})
    done = run_pytest(tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0 and "2 passed" in report, report
    # Without the helper in the module, page two fails at its own line.
    (tmp_path / "scratchpkg" / "mod.py").write_text("import math\n")
    done = run_pytest(tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 1 and "1 failed, 1 passed" in report, report
    line = second.splitlines().index("    return math.sqrt(_half(x))") + 1
    assert f"docs/b.md:{line}:" in report, report
    assert "NameError" in report, report
