"""Make pytest-codeblocks run the chapters' definition blocks, and report well.

pytest-codeblocks runs every fence whose info string is exactly `python`: the
chapters' claim blocks. It skips the definition blocks (Entangled's
`{.python file=...}` fences). This file collects those through pytest's
documented hooks and pytest-codeblocks' public interface, without patching
the plugin:

- `pytest_collect_file` adds, for each chapter, one item per file of the
  package that the chapter tangles: the chapter's blocks of that file joined in
  order, so later blocks see earlier imports. Where earlier pages (in the
  site's order) hold the start of the same file, the item first takes the
  namespace of that module, as tangled from them, in one line before the
  page's code: a page's blocks continue the module. The item is the plugin's own
  `TestBlock` holding the plugin's public `CodeBlock`, so pytest-codeblocks
  runs it exactly as it runs a claim block. Its name, `line N`, is the line of
  the file's first block.
- `pytest_runtest_makereport` rewrites the report of a failed block: the
  chapter line that failed, the exception type and the traceback
  (pytest-codeblocks shows only the exception's message).

The plugin's interface used here (`TestBlock.from_parent(name=, parent=)`,
`.obj`, `CodeBlock(code, lineno, syntax)`, and the RuntimeError whose
`__context__` is the block's own exception) is checked by
tests/test_codeblocks.py, which runs this set-up on scratch chapters and
fails if a definition block stops running or a report stops naming its line.
It also checks, with a fence reader of its own, that every Python fence in
docs/ and README.md is collected.

It also keeps the chapters' run records (docs/run-records.json): when every
block of a chapter ran and passed in a session and the chapter has changed
since its record was written (its content hash differs), the record is
rewritten with the time, device, versions, block count, duration and the new
hash; when one of its blocks failed, the record is removed. A chapter that has
not changed keeps its record, so the tests leave the committed file as it was.
Under pytest-xdist (`nox -s tests` runs a worker a core, a file in one worker)
the controller, which receives every worker's reports, writes the file.
The site build shows the record on each chapter, and fails (strict) when it is
missing or was made from another version of the chapter.

The figure blocks draw docs/figures/ again in every run. On another
machine a drawing differs from the committed one by rounding only (a
coordinate moved by a millionth of a point): the controller reads the
committed figures at the start and, at the end, puts back any that the run
redrew the same within tools/figures.py's tolerance, so that a test run
leaves them alone; a figure that really changed stays written.

`LT_THREADS=N` and `LT_ONEDNN=0` run the suite with other numerics (another
thread count, oneDNN off), which is how a machine other than the one that
made the records is simulated.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import traceback
from pathlib import Path

import pytest
from pytest_codeblocks import CodeBlock, extract_from_file
from pytest_codeblocks.plugin import TestBlock

from tools import chapters
from tools.figures import same_drawing

RUN_BY_PLUGIN = ("python", "sh", "bash")  # the fences pytest-codeblocks runs


class DefinitionBlocks(pytest.File):
    """The definition blocks of one chapter: one item per file they tangle."""

    def collect(self):
        text = self.path.read_text(encoding="utf-8")
        files = chapters.definition_files(text, str(self.path))
        for target, fences in files.items():
            code = "".join(fence.body + "\n" for fence in fences)
            if continues_a_module(self.path, target):
                code = CONTINUE.format(module=module_name(target)) + code
            block = CodeBlock(code=code, lineno=fences[0].line, syntax="python")
            item = TestBlock.from_parent(parent=self, name=f"line {block.lineno}")
            item.obj = block
            yield item


# The one line before the code of a page that continues a module.
CONTINUE = (
    "globals().update(vars(__import__('importlib').import_module('{module}')))"
    "  # the module as its earlier pages define it\n"
)


def module_name(target: str) -> str:
    return target.removesuffix(".py").replace("/", ".")


def continues_a_module(page: Path, target: str) -> bool:
    """Whether a page before `page`, in the site's order, writes `target` too."""
    root = Path(__file__).resolve().parent
    for earlier in chapters.chapter_order(root):
        if (root / earlier).resolve() == page.resolve():
            return False
        text = (root / earlier).read_text(encoding="utf-8")
        if target in chapters.definition_files(text, earlier):
            return True
    return False


def pytest_configure(config) -> None:
    """Other numerics, to stand in for another machine: LT_THREADS=N runs the
    suite with N threads, LT_ONEDNN=0 without oneDNN. The suite must pass
    either way with the records as committed."""
    import torch

    if os.environ.get("LT_THREADS"):
        torch.set_num_threads(int(os.environ["LT_THREADS"]))
    if os.environ.get("LT_ONEDNN") == "0":
        torch.backends.mkldnn.enabled = False
    if not hasattr(config, "workerinput"):  # the controller, or no xdist
        _committed_figures.update(
            (path, path.read_bytes()) for path in FIGURES.glob("*.svg")
        )


def _restore_redrawn_figures() -> list[str]:
    """Put back each committed figure that the run redrew the same up to
    rounding; the names of those put back."""
    restored = []
    for path, committed in _committed_figures.items():
        if not path.is_file():
            continue
        drawn = path.read_bytes()
        if drawn != committed and same_drawing(committed.decode(), drawn.decode()):
            path.write_bytes(committed)
            restored.append(path.name)
    return restored


def pytest_collect_file(file_path: Path, parent):
    if parent.config.option.codeblocks and file_path.suffix == ".md":
        return DefinitionBlocks.from_parent(parent, path=file_path)
    return None


def code_lines(item) -> list[int]:
    """The chapter line of each line of a block's code (claim blocks joined by
    `cont` span several fences)."""
    text = item.path.read_text(encoding="utf-8")
    fences = chapters.read_fences(text, str(item.path))
    start = next(i for i, fence in enumerate(fences) if fence.line == item.obj.lineno)
    wanted = len(item.obj.code.splitlines())
    lines: list[int] = []
    if isinstance(item.parent, DefinitionBlocks):
        target = fences[start].target
        chosen = [fence for fence in fences[start:] if fence.target == target]
        if item.obj.code.startswith(CONTINUE.split("{")[0]):
            lines.append(fences[start].line)  # the line that continues a module
    else:
        chosen = [fence for fence in fences[start:] if fence.is_claim]
    for fence in chosen:
        lines.extend(fence.code_lines)
        if len(lines) >= wanted:
            break
    return lines[:wanted]


def describe_failure(item, error: BaseException) -> str:
    """The chapter and line that failed, the exception and the traceback."""
    message = error.args[0] if error.args else str(error)
    cause = error.__context__
    if cause is None:  # e.g. an expected-output mismatch: the message says it all
        return str(message)
    chapter = item.nodeid.split("::")[0]
    code = item.obj.code.splitlines()
    line_map = code_lines(item)
    trace, failed_at = [], f"{chapter}:{item.obj.lineno}"
    for frame in traceback.extract_tb(cause.__traceback__)[1:]:  # skip the exec
        if frame.filename == "<string>" and frame.lineno is not None:
            n = frame.lineno - 1
            line = line_map[n] if n < len(line_map) else None
            place = f"{chapter}:{line}" if line else f"{chapter}, block line {n + 1}"
            text = code[n].strip() if n < len(code) else ""
            failed_at = place
        else:
            place, text = f"{frame.filename}:{frame.lineno}", (frame.line or "")
        trace.append(f"  {place}, in {frame.name}\n    {text}\n")
    return (
        f"{failed_at}: {type(cause).__name__}: {cause}\n\n"
        "Traceback (most recent call last):\n" + "".join(trace) + f"\n{message}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    excinfo = call.excinfo
    if isinstance(item, TestBlock) and report.failed and excinfo is not None:
        report.longrepr = describe_failure(item, excinfo.value)
    return report


ROOT = Path(__file__).parent
RUN_RECORDS = ROOT / "docs" / "run-records.json"
FIGURES = ROOT / "docs" / "figures"
_chapter_runs: dict[str, dict] = {}
_committed_figures: dict[Path, bytes] = {}  # as the run found them


def chapter_hash(path: Path) -> str:
    """The content hash that ties a run record to one version of a chapter."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chapter_of(nodeid: str) -> str | None:
    path = nodeid.split("::")[0]
    if path.startswith("docs/") and path.endswith(".md"):
        return path
    return None


def pytest_runtest_logreport(report) -> None:
    chapter = _chapter_of(report.nodeid)
    if chapter is None:
        return
    run = _chapter_runs.setdefault(chapter, {"passed": 0, "failed": 0, "seconds": 0})
    run["seconds"] += report.duration
    if report.failed:
        run["failed"] += 1
    elif report.when == "call" and report.passed:
        run["passed"] += 1


def _device() -> str:
    import torch

    name = os.environ.get("LT_DEVICE", "cpu")
    if name == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name()})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def pytest_sessionfinish(session, exitstatus) -> None:
    """Put back the figures redrawn the same; rewrite the records of the
    chapters whose every block ran this session."""
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller does both
    _restore_redrawn_figures()
    if not _chapter_runs:
        return
    import torch

    records = {}
    if RUN_RECORDS.is_file():
        records = json.loads(RUN_RECORDS.read_text(encoding="utf-8"))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for chapter, run in _chapter_runs.items():
        path = ROOT / chapter
        if run["failed"]:
            records.pop(chapter, None)  # a failing chapter has no valid record
            continue
        text = path.read_text(encoding="utf-8")
        claims = sum(b.syntax in RUN_BY_PLUGIN for b in extract_from_file(path))
        blocks = claims + len(chapters.definition_files(text, chapter))
        if run["passed"] != blocks:
            continue  # only some blocks ran (-k, -x...): keep the old record
        old = records.get(chapter)
        if old is not None and old["sha256"] == chapter_hash(path):
            continue  # this version of the chapter has passed before: keep it
        records[chapter] = {
            "sha256": chapter_hash(path),
            "ran_at": now.isoformat(),
            "device": _device(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "blocks": blocks,
            "seconds": round(run["seconds"], 1),
        }
    text = json.dumps(dict(sorted(records.items())), indent=1) + "\n"
    if not RUN_RECORDS.is_file() or RUN_RECORDS.read_text(encoding="utf-8") != text:
        RUN_RECORDS.write_text(text, encoding="utf-8")
