"""MkDocs hooks: what the build adds to the chapters, and MathJax from the site.

Each chapter page (a page with Python blocks) gets:

- a button to download the chapter as a notebook, generated at build time by
  tools/notebooks.py into the site's `downloads/`;
- after each definition block, links to the API reference entries of what the
  block defines;
- its run record from docs/run-records.json, written by the test session. A
  missing record, or one made from another version of the chapter (content
  hash), is a warning, so the strict build fails.

The API reference page (reference.md) is filled here (entries from
tools/api.py): one mkdocstrings entry per name of each module's `__all__`,
each followed by a link to the chapter section that defines and explains it.

Results come from the experiments' records (docs/records/, written by
`nox -s experiments`):

- `{{NAME:FACT}}` in a page's prose is replaced by a number that the
  experiment NAME's declaration (in its chapter's module of lab/)
  computes from its record; an unknown experiment or fact is a warning;
- a Python block after a line `<!--lt:output-->` is run when the site is
  built, and what it prints is shown under it (it loads a record and prints a
  table); a block that fails is a warning;
- a record whose code now behaves otherwise (its fingerprint, run again
  when the code changed and kept in .cache/lab/), or a declared experiment
  without a record, is a warning naming the command that refreshes it.
  Warnings fail the strict build.

The site must make no request to any host but its own, so MathJax is not loaded
from a CDN. The build copies it from the `django-static-mathjax` package (a PyPI
wheel of MathJax 3 with no dependencies, installed by the docs session) into
`assets/mathjax/` of the built site.

With LT_TANGLE_ON_BUILD=1 (set by `nox -s serve`), every build first tangles
the chapters into the package, so that the notebooks of a live preview import
the code the chapters show now.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import traceback
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

try:
    from benchmarks import report
    from tools import api, chapters, notebooks
except ModuleNotFoundError as error:  # MkDocs puts only tools/ itself on the path
    raise ImportError(
        "the site's hooks import the repository's tools/ and benchmarks/: run "
        "MkDocs from the repository root as `python -m mkdocs` (nox -s docs does)"
    ) from error

log = logging.getLogger("mkdocs.hooks.literate")
REFERENCE_PAGE = "reference.md"
PERFORMANCE_PAGE = "performance.md"
BENCH_TABLE = "<!-- bench-table -->"

# What tex-mml-chtml.js needs at run time: the component itself, the TeX
# extensions it autoloads, the CHTML fonts and the accessibility/menu parts.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "a11y", "ui", "sre")


def mathjax_source() -> Path:
    """Return the folder of MathJax's ES5 build inside the installed package."""
    try:
        import mathjax
    except ImportError as error:
        raise RuntimeError(
            "MathJax is missing: install the docs dependencies "
            "(`nox -s docs` does; by hand: pip install django-static-mathjax)"
        ) from error
    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"no tex-mml-chtml.js under {root}: unexpected layout")
    return root


OUTPUT_MARK = "<!--lt:output-->"
FACT = chapters.FACT
OUTPUT_TITLE = "Output, computed from the record when this page was built"


def check_records(folder: Path) -> None:
    """Warn (so the strict build fails) about stale, unknown or missing records."""
    from lab.records import load_record, stale
    from lab.registry import EXPERIMENTS

    for name, experiment in EXPERIMENTS.items():
        try:
            record = load_record(name, folder)
        except FileNotFoundError as error:
            log.warning(f"records: {error}")
            continue
        why = stale(record, experiment)
        if why is not None:
            log.warning(f"records: {why}")
    for path in sorted(folder.glob("*.json")):
        if path.stem not in EXPERIMENTS:
            log.warning(f"records: {path} belongs to no declared experiment")


def bench_facts(docs: Path) -> dict[str, str]:
    """The Performance page's numbers, from the recorded bench run."""
    path = docs / "performance-record.json"
    return report.facts(json.loads(path.read_text(encoding="utf-8")))


def fill_facts(markdown: str, page: str, docs: Path) -> str:
    """Replace each {{NAME:FACT}} with the fact, computed from NAME's record
    (NAME `bench`: the recorded bench run)."""
    from lab.registry import facts

    known: dict[str, dict[str, str]] = {}

    def fact(match: re.Match) -> str:
        name, key = match["name"], match["key"]
        if name not in known:
            try:
                known[name] = bench_facts(docs) if name == "bench" else facts(name)
            except (KeyError, FileNotFoundError) as error:
                log.warning(f"{page}: {match[0]}: {error}")
                known[name] = {}
        if key not in known[name]:
            log.warning(f"{page}: {match[0]}: no such fact of the record {name}")
            return match[0]
        return known[name][key]

    return FACT.sub(fact, markdown)


def run_block(code: str, where: str) -> str:
    """Run a block as the tests do (fresh globals); return what it printed."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, where, "exec"), {"__name__": "__lt_output__"})
    except Exception:  # any failure of the block fails the strict build
        log.warning(f"{where}: the output block failed:\n{traceback.format_exc()}")
    return printed.getvalue()


def show_outputs(markdown: str, page: str) -> str:
    """Run each claim block marked <!--lt:output--> (on a line before it, blank
    lines between) and show what it prints under it."""
    lines = markdown.splitlines()
    fences = {fence.line: fence for fence in chapters.read_fences(markdown, page)}
    shown: dict[int, list[str]] = {}  # closing fence line -> the output's lines
    for number, line in enumerate(lines, start=1):
        if line.strip() != OUTPUT_MARK:
            continue
        start = number + 1
        while start <= len(lines) and not lines[start - 1].strip():
            start += 1
        fence = fences.get(start)
        if fence is None or not fence.is_claim:
            log.warning(f"docs/{page}:{number}: {OUTPUT_MARK} is not before a block")
            continue
        printed = run_block(fence.body, f"docs/{page}:{fence.line}").rstrip("\n")
        title = f'```text title="{OUTPUT_TITLE}"'
        shown[fence.end] = ["", title, *printed.splitlines(), "```"]
    out = []
    for number, line in enumerate(lines, start=1):
        if line.strip() != OUTPUT_MARK:
            out.append(line)
        out += shown.get(number, [])
    return "\n".join(out) + "\n"


def on_pre_build(config, **kwargs) -> None:
    records = Path(config["docs_dir"]) / "records"
    os.environ["LT_RECORDS"] = str(records)  # for the facts and output blocks
    check_records(records)
    if os.environ.get("LT_TANGLE_ON_BUILD") != "1":
        return
    from tools import tangle

    root = Path(config["config_file_path"]).parent
    if tangle.main(["--root", str(root)]) != 0:
        raise PluginError("tangling the chapters failed (see the message above)")


def on_post_build(config, **kwargs) -> None:
    source = mathjax_source()
    target = Path(config["site_dir"]) / "assets" / "mathjax"
    for part in MATHJAX_PARTS:
        src = source / part
        dst = target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def chapter_pages(config) -> list[str]:
    """The nav's pages that hold Python blocks, in nav order (docs-relative)."""
    docs = Path(config["docs_dir"])
    return [
        page
        for _, page in chapters.nav_entries(config["nav"])
        if page.endswith(".md")
        and chapters.has_claim_blocks((docs / page).read_text(encoding="utf-8"))
    ]


def reference_entries(config) -> list[api.Entry]:
    """The API reference's entries; a name of an `__all__` that no chapter
    defines is a warning (the strict build fails)."""
    entries, missing = api.api_entries(Path(config["docs_dir"]), chapter_pages(config))
    for name in missing:
        log.warning(f"API reference: {name} is in __all__, but no chapter defines it")
    return entries


def on_files(files, config, **kwargs):
    """Add one generated notebook per chapter to the site, under downloads/."""
    docs = Path(config["docs_dir"])
    url = config["site_url"] or ""
    for page in chapter_pages(config):
        notebook = notebooks.chapter_notebook(
            fill_facts((docs / page).read_text(encoding="utf-8"), page, docs),
            chapter=f"docs/{page}",
            site_url=url,
        )
        content = notebooks.nbformat.writes(notebook) + "\n"
        name = f"downloads/{Path(page).stem}.ipynb"
        files.append(File.generated(config, name, content=content))
    return files


def run_record(page: str, config) -> str:
    """The run record of a chapter, as an admonition; warns when it is missing
    or was made from another version of the chapter."""
    docs = Path(config["docs_dir"])
    records_file = docs / "run-records.json"
    records = {}
    if records_file.is_file():
        records = json.loads(records_file.read_text(encoding="utf-8"))
    record = records.get(f"docs/{page}")
    digest = hashlib.sha256((docs / page).read_bytes()).hexdigest()
    if record is None:
        log.warning(
            f"run record: docs/{page} has none in docs/run-records.json; "
            "run `nox -s tests` to run its blocks and write it"
        )
        return (
            '!!! warning "No run record"\n    The blocks of this page have no '
            "record of a run that passed.\n"
        )
    if record["sha256"] != digest:
        log.warning(
            f"run record: docs/{page} changed since its blocks last ran "
            f"({record['ran_at']}); run `nox -s tests` to run them again"
        )
        return (
            '!!! warning "Run record out of date"\n    This page changed after '
            f"its blocks last ran, on {record['ran_at']}.\n"
        )
    when = record["ran_at"].replace("T", " at ").replace("+00:00", " UTC")
    return (
        '!!! success "Run record"\n'
        f"    All {record['blocks']} Python blocks of this page ran and passed on "
        f"{when}, on {record['device']}, with torch {record['torch']} and "
        f"Python {record['python']}, in {record['seconds']:.1f} s. The test "
        "session (`nox -s tests`) wrote this record for this exact version of "
        "the page.\n"
    )


def chapter_markdown(markdown: str, page: str, config) -> str:
    lines = markdown.splitlines()
    for block in reversed(chapters.definitions(markdown, f"docs/{page}")):
        module = block.module
        public = api.public_names(module) if api.is_documented(module) else []
        names = [name for name in block.names if name in public]
        if names:
            links = ", ".join(f"[`{name}`][{module}.{name}]" for name in names)
            end = block.fence.end  # the line after the closing fence (0-based)
            lines[end:end] = ["", f"API reference: {links}", "{ .lt-api }"]
    stem = Path(page).stem
    button = (
        f"[Download this chapter as a notebook](downloads/{stem}.ipynb)"
        '{ .md-button download="" }'
    )
    first_heading = next(
        (i for i, line in enumerate(lines) if line.startswith("# ")), -1
    )
    lines[first_heading + 1 : first_heading + 1] = ["", button]
    return "\n".join(lines) + "\n\n" + run_record(page, config)


def reference_markdown(markdown: str, config) -> str:
    """The API reference: every name of the modules' `__all__`, linked to its
    chapter section; first, the names the package itself re-exports."""
    titles = {page: title for title, page in chapters.nav_entries(config["nav"])}
    entries = reference_entries(config)
    out = [markdown.rstrip(), ""]
    top = api.public_names(api.ROOT_MODULE)
    by_name = {entry.name: entry for entry in entries}
    links = ", ".join(f"[`{name}`][{by_name[name].identifier}]" for name in top)
    out += [f"Importable from `{api.ROOT_MODULE}` itself: {links}.", ""]
    by_module: dict[str, list[api.Entry]] = {}
    for entry in entries:  # modules in the order the chapters meet them
        by_module.setdefault(entry.module, []).append(entry)
    for module, listed in by_module.items():
        out += [
            f"::: {module}",
            "    options:",
            "      members: false",
            "      show_root_full_path: true",  # two modules are called positional
            "",
        ]
        for entry in listed:
            out += reference_entry(entry, titles.get(entry.chapter, entry.chapter))
    return "\n".join(out)


def reference_entry(entry: api.Entry, title: str) -> list[str]:
    return [
        f"::: {entry.identifier}",
        "    options:",
        "      heading_level: 3",
        "",
        f"Explained in [{title}]({entry.chapter}), section "
        f"[{entry.section}]({entry.chapter}#{entry.anchor}).",
        "",
    ]


def bench_table(record: dict) -> str:
    """The recorded benchmark run as Markdown: where it ran, then its rows."""
    machine = record["machine"]
    cpu = machine.get("cpu_model") or machine["processor"]
    lines = [
        f"Recorded on {record['date'].replace('T', ' at ')} on {record['device']}: "
        f"{cpu}, {machine['cpu_count']} cores, {machine['torch_num_threads']} "
        f"threads, torch {machine['torch']}, Python {machine['python']}.",
        "",
    ]
    header = [
        "| benchmark | case | candidate | ms per call | value | ratio | target |",
        "|---|---|---|--:|--:|--:|---|",
    ]
    targets = [target_row(row) for row in record["rows"] if row["status"]]
    lines += ["The targets:", "", "| benchmark | case | candidate | ratio | target |"]
    lines += ["|---|---|---|--:|---|", *targets, ""]
    lines += ['??? note "Every measurement of the run"', ""]
    lines += ["    " + line for line in header + [table_row(r) for r in record["rows"]]]
    if record["errors"]:
        log.warning(f"performance: the recorded run had errors: {record['errors']}")
    return "\n".join(lines)


def target_row(row: dict) -> str:
    """A measurement that has a target, in the short table of the targets."""
    case = row["case"].replace("|", "/")
    target = f"≥ {row['target']:.1f}: {row['status']}"
    return (
        f"| {row['bench']} | {case} | {row['name']} | {row['ratio']:.2f} | {target} |"
    )


def table_row(row: dict) -> str:
    """One measurement as a row of the Markdown table."""
    ms = f"{row['seconds'] * 1e3:.2f}" if row["seconds"] is not None else ""
    value = ""
    if row["value"] is not None:
        unit, v = row["unit"], row["value"]
        if unit == "bytes":
            value = f"{v / 2**20:.1f} MiB"
        elif unit == "FLOP/s":
            value = f"{v / 1e9:.1f} GFLOP/s"
        else:
            value = f"{v / 1e3:.1f}k {unit}"
    ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
    target = f"≥ {row['target']:.1f}: {row['status']}" if row["status"] else ""
    case = row["case"].replace("|", "/")
    return (
        f"| {row['bench']} | {case} | {row['name']} | {ms} | {value} | "
        f"{ratio} | {target} |"
    )


def performance_markdown(markdown: str, config) -> str:
    path = Path(config["docs_dir"]) / "performance-record.json"
    if not path.is_file():
        log.warning("performance: no docs/performance-record.json; run nox -s bench")
        return markdown.replace(BENCH_TABLE, "*No recorded run.*")
    record = json.loads(path.read_text(encoding="utf-8"))
    return markdown.replace(BENCH_TABLE, bench_table(record))


def on_page_markdown(markdown, page, config, files, **kwargs):
    src = page.file.src_uri
    if src == REFERENCE_PAGE:
        return reference_markdown(markdown, config)
    markdown = fill_facts(markdown, src, Path(config["docs_dir"]))
    if OUTPUT_MARK in markdown:
        markdown = show_outputs(markdown, src)
    if src == PERFORMANCE_PAGE:
        return performance_markdown(markdown, config)
    if src in chapter_pages(config):
        return chapter_markdown(markdown, src, config)
    return markdown


# Anything that looks like a fact, also one FACT cannot read ({{bench:Key}}).
UNFILLED = chapters.LOOSE_FACT


def on_page_content(html, page, config, files, **kwargs):
    """A fact left unfilled on a built page fails the strict build."""
    for match in UNFILLED.finditer(html):
        log.warning(f"{page.file.src_uri}: {match[0]} was not filled in")
    return html
