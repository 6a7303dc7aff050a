"""Make pytest-codeblocks run the chapters' Entangled blocks, and report well.

pytest-codeblocks collects only fences whose info string is exactly `python`.
The chapters' definition blocks use Entangled's `{.python file=...}` and
`{.python #name}` fences, so without this file they would never run. Here:

- the blocks that a chapter tangles into one file of the package are merged, in
  order, into one test at the first block, so later blocks see earlier imports;
- a `<<name>>` line is replaced by the block `{.python #name}` of the same
  chapter (indented as the reference); named blocks run inside the blocks that
  use them, not on their own;
- a failing block is reported with its file, the chapter line that failed,
  the exception type and the traceback (pytest-codeblocks shows only the
  exception's message).

tests/test_codeblocks.py checks, with a parser of its own, that every Python
fence in docs/ and README.md is collected, so a fence this file does not
understand fails the suite instead of being skipped.

It also keeps the chapters' run records (docs/run-records.json): when every
block of a chapter ran and passed in a session and the chapter has changed
since its record was written (its content hash differs), the record is
rewritten with the time, device, versions, block count, duration and the new
hash; when one of its blocks failed, the record is removed. A chapter that has
not changed keeps its record, so the tests leave the committed file as it was.
The site build shows the record on each chapter, and fails (strict) when it is
missing or was made from another version of the chapter.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import traceback
from pathlib import Path

import pytest_codeblocks.main
import pytest_codeblocks.plugin
from pytest_codeblocks.main import CodeBlock

ENTANGLED_FENCE = re.compile(r"^\{\s*\.python\b(?P<props>[^{}]*)\}$")
FILE_PROP = re.compile(r"\bfile=(?:\"(?P<q>[^\"]+)\"|(?P<bare>[^\s{}\"]+))")
ID_PROP = re.compile(r"(?:^|\s)#(?P<id>[^\s{}]+)")
REFERENCE = re.compile(r"^(?P<indent>[ \t]*)<<(?P<name>[^<>\s]+)>>[ \t]*$")

_extract_from_file = pytest_codeblocks.main.extract_from_file


def entangled_props(syntax: str | None) -> tuple[str | None, str | None] | None:
    """(file, id) of an Entangled Python fence; None for any other fence."""
    match = ENTANGLED_FENCE.match((syntax or "").strip())
    if match is None:
        return None
    props = match["props"]
    file = FILE_PROP.search(props)
    ident = ID_PROP.search(props)
    return (
        (file["q"] or file["bare"]) if file else None,
        ident["id"] if ident else None,
    )


def fence_lines(md: list[str], lineno: int) -> int:
    """How many lines the fence opened at `lineno` (1-based) holds."""
    opening = md[lineno - 1].lstrip()
    ticks = len(opening) - len(opening.lstrip("`"))
    for count, line in enumerate(md[lineno:]):
        if line.lstrip().startswith("`" * ticks):
            return count
    return len(md) - lineno


def next_fence(md: list[str], after: int) -> int | None:
    """The line (1-based) of the first opening fence after line `after`."""
    for lineno in range(after + 1, len(md) + 1):
        if md[lineno - 1].lstrip().startswith("```"):
            return lineno
    return None


def locate(block: CodeBlock, md: list[str]) -> None:
    """Record the fences a block's code came from, and each code line's line.

    pytest-codeblocks appends a block marked `cont` to the one before it, so
    one block may hold the code of several fences: `block.fences` lists them,
    `block.line_map[n]` is the chapter line of line n (0-based) of the code.
    """
    block.fences, block.line_map = [], []
    wanted = len(block.code.splitlines())
    fence: int | None = block.lineno
    while fence is not None:
        block.fences.append(fence)
        size = fence_lines(md, fence)
        block.line_map.extend(range(fence + 1, fence + 1 + size))
        if len(block.line_map) >= wanted:
            break
        fence = next_fence(md, fence + size + 1)
    block.line_map = block.line_map[:wanted]


Named = dict[str, CodeBlock]


def expand(block: CodeBlock, named: Named, seen: tuple[str, ...] = ()) -> None:
    """Replace each `<<name>>` line by the named block, indented like the line."""
    code: list[str] = []
    lines: list[int | None] = []
    for line, where in zip(
        block.code.splitlines(keepends=True), block.line_map, strict=True
    ):
        ref = REFERENCE.match(line)
        if ref is None or ref["name"] not in named or ref["name"] in seen:
            code.append(line)
            lines.append(where)
            continue
        part = named[ref["name"]]
        expand(part, named, (*seen, ref["name"]))
        code.extend(
            ref["indent"] + text if text.strip() else text
            for text in part.code.splitlines(keepends=True)
        )
        lines.extend(part.line_map)
        block.fences.extend(part.fences)
    block.code = "".join(code)
    block.line_map = lines


def join(first: CodeBlock, later: CodeBlock) -> None:
    """Append a later block of the same file (or name) to the first one."""
    first.code += later.code
    first.line_map += later.line_map
    first.fences += later.fences
    first.marks.extend(later.marks)


def extract_from_file(path, *args, **kwargs) -> list[CodeBlock]:
    """pytest-codeblocks' extraction, with Entangled's fences made runnable."""
    blocks = _extract_from_file(path, *args, **kwargs)
    md = Path(path).read_text(encoding="utf-8").splitlines()
    named: Named = {}
    by_file: dict[str, CodeBlock] = {}
    out = []
    for block in blocks:
        locate(block, md)
        props = entangled_props(block.syntax)
        if props is None:
            out.append(block)
            continue
        file, ident = props
        block.syntax = "python"
        if file is None and ident is None:
            out.append(block)  # `{.python}`: a plain block in brace syntax
        elif file is None:
            # A named fragment runs where it is referenced, not on its own;
            # several fences with the same name are joined, as Entangled does.
            if ident in named:
                join(named[ident], block)
            else:
                named[ident] = block
        elif file in by_file:
            join(by_file[file], block)
        else:
            by_file[file] = block
            out.append(block)
    for block in out:
        if block.syntax == "python":
            expand(block, named)
    return out


pytest_codeblocks.plugin.extract_from_file = extract_from_file


def describe_failure(item, excinfo) -> str:
    """The chapter and line that failed, the exception and the traceback."""
    message = excinfo.value.args[0] if excinfo.value.args else str(excinfo.value)
    cause = excinfo.value.__context__
    if cause is None:  # e.g. an expected-output mismatch: the message says it all
        return str(message)
    block = item.obj
    chapter = item.nodeid.split("::")[0]
    code = block.code.splitlines()
    trace, failed_at = [], f"{chapter}:{block.lineno}"
    for frame in traceback.extract_tb(cause.__traceback__)[1:]:  # skip the exec
        if frame.filename == "<string>" and frame.lineno is not None:
            n = frame.lineno - 1
            line = block.line_map[n] if n < len(block.line_map) else None
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


pytest_codeblocks.plugin.TestBlock.repr_failure = describe_failure


ROOT = Path(__file__).parent
RUN_RECORDS = ROOT / "docs" / "run-records.json"
_chapter_runs: dict[str, dict] = {}


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
    """Rewrite the records of the chapters whose every block ran this session."""
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
        collected = ("python", "sh", "bash")  # what pytest-codeblocks runs
        blocks = sum(b.syntax in collected for b in extract_from_file(path))
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
