"""Results on the site come from records, or from blocks that assert them.

Checked over the chapters (every page of docs/ with Python blocks):

- No pasted output. A fenced block that is not Python may hold a decimal number
  only when pytest-codeblocks compares it with what the block before it prints
  (`expected-output`); a console block holds commands only, no output.
- No unbacked number. Every number in the prose (outside code, math and links)
  is filled in from a record (`{{NAME:FACT}}`, replaced when the site is
  built), or appears in a code block of the same page (an assertion or a
  setting; a percentage N% counts when N/100 does) or in the block, on any
  page, that draws a figure the page shows, or is a setting of a
  record the page loads (the Performance page: of the bench run), or is a
  citation (a year, a date, a section, table,
  issue or version number), or is listed in ALLOWED below with its source.
- Every `{{NAME:FACT}}` names an experiment (or `bench`, the bench run) and a
  fact its record provides.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks import report
from lab.registry import EXPERIMENTS
from tools import chapters

ROOT = Path(__file__).resolve().parent.parent

CHAPTERS = sorted(
    path
    for path in (ROOT / "docs").glob("*.md")
    if chapters.has_claim_blocks(path.read_text(encoding="utf-8"))
)
EXPECTED_OUTPUT = "<!--pytest-codeblocks:expected-output"
PYTHON = re.compile(r"^(python|\{\s*\.python\b.*\})$")
DECIMAL = re.compile(r"\d\.\d")
FACT, LOOSE_FACT = chapters.FACT, chapters.LOOSE_FACT
NUMBER = re.compile(r"(?<![\w.\-/#:^])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(%?)(?!\w)")
MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|"
    "November|December"
)
CITATION = re.compile(
    rf"(?:\b(?:section|sections|Table|table|issue|issues|version|Python|PyTorch|row)"
    rf"\s+(?:\d+(?:\.\d+)*)"
    rf"|\b(?:19|20)\d\d\b"
    rf"|\b\d{{1,2}}\s+(?:{MONTHS})\b)"
)

# Numbers the prose states that are neither results nor in the page's code:
# each with where it comes from.
ALLOWED: dict[str, dict[str, str]] = {
    "positional.md": {
        "28": "128 dimensions minus the 100 token vectors, the block's settings",
        "0.71": "1/sqrt(2), the root mean square derived in the text above",
        "4.92": "Vaswani et al. (2017), Table 3, row E: perplexity",
        "25.7": "Vaswani et al. (2017), Table 3, row E: BLEU",
        "25.8": "Vaswani et al. (2017), Table 3: BLEU of the base model",
        "1.3": "Shaw et al. (2018): BLEU gained by relative positions",
        "13": "the synthetic tasks' vocabulary: 10 symbols and 3 special ids",
    },
    "positional-lab.md": {
        "13": "the synthetic tasks' vocabulary: 10 symbols and 3 special ids",
        "5.7": "sqrt(64 / 2), the norm of an encoding row at d = 64",
        "99.9": "span()'s energy threshold, 0.999 (lab/positional_runs.py)",
    },
    "embedding.md": {
        "0.71": "1/sqrt(2), the root mean square of the sinusoids (positional.md)",
    },
    "dropout.md": {
        "256": "the held-out batch of train(): eval_size=256 (train.py)",
        "5.77": "Vaswani et al. (2017), Table 3, row D: perplexity without dropout",
        "24.6": "Vaswani et al. (2017), Table 3, row D: BLEU without dropout",
        "4.92": "Vaswani et al. (2017), Table 3: perplexity of the base model",
        "25.8": "Vaswani et al. (2017), Table 3: BLEU of the base model",
        "0.8": "Srivastava et al. (2014): retention probability of input units",
        "0.5": "Srivastava et al. (2014): retention probability of hidden units",
        "1.73": "the whole documentation's training tokens in millions, "
        "asserted in one-pass.md",
        "845": "the one-pass experiments' steps, asserted in one-pass.md",
    },
    "figures.md": {"0.01": "tools/figures.py: same_drawing's tolerance"},
    "experiments.md": {
        "1500": "lm-demo's steps in its first recording (docs/records, git history)",
        "0.05": "the bound of the claim quoted as an example: dropout-methods' "
        "word-dropout claim, declared in dropout.md",
        "1200": "lm-demo's steps, declared in lm.md (LM_DEMO's settings)",
        "21": "the re-run's minutes of one core by the records' times before "
        "the pydoc runs were shortened (this page's block, at commit 8805998)",
        "26": "a clean-clone .ci/run of 4d48c61 on the recording machine: "
        "25 min 58 s (the closing note of stop 49)",
        "27": "the CI run of stop 49 (8805998): 1827 s, 30 min 27 s",
        "17": "the re-run's minutes of one core at c4f8d26 (this page's block)",
        "25": "a clean-clone .ci/run of c4f8d26 on the recording machine: 25 min 6 s",
    },
    "index.md": {
        "64": "LM_BASE's width (lm_command.py), asserted in the question chapters",
        "95": "the confidence of the claims' intervals (records.mean_interval)",
        "13.5": "lm-dropout's passes over the corpus, asserted in dropout.md",
        "90,762": "the pydoc corpus's training words, asserted in lm.md",
        "1.73": "the large corpus's training tokens in millions, asserted in "
        "one-pass.md and positional.md",
        "0.02": "the bound of the positions claims (concatenation, learned "
        "positions never 0.02 behind the sum), declared in positional.md",
        "0.1": "the paper's dropout rate (section 5.4), lm-dropout-settings' rate",
        "0.3": "lm-dropout-settings-0.3's rate, declared in dropout-lab.md",
        "0.5": "lm-dropout-settings-0.5's rate, declared in dropout-lab.md",
    },
    "masks.md": {
        "1.73": "the whole documentation's training tokens in millions, "
        "asserted in one-pass.md",
    },
    "dropout-lab.md": {
        "11": "dropout-rates' and dropout-methods' first held-out seed, "
        "declared in dropout.md",
        "13.5": "lm-dropout's passes over the corpus, asserted in dropout.md",
        "90,762": "the pydoc corpus's training words, asserted in lm.md",
    },
    "lm.md": {
        "0.2": "lab/common.py: fit's lr_factor, the synthetic chapters' runs",
    },
    "corpus.md": {
        "79": "the pydoc corpus's topics, asserted in lm.md",
        "90,762": "the pydoc corpus's training words, asserted in lm.md",
        "400": "the steps of the lm page's experiments (lm-positions, lm-gpt2)",
    },
    "training.md": {
        "4000": "Vaswani et al. (2017), section 5.3: warm-up steps",
    },
    "transformer.md": {
        "100": "train_reverse's warm-up steps, in docs/transformer-lab.md's code",
        "2048": "Vaswani et al. (2017): d_ff of the base model",
        "4000": "Vaswani et al. (2017), section 5.3: warm-up steps",
        "100,000": "Vaswani et al. (2017), section 5.2: training steps",
        "25,000": "Vaswani et al. (2017), section 5.1: tokens per batch",
        "0.6": "Vaswani et al. (2017), section 6.1: length penalty",
        "0.0125": "the schedule's peak, 1 / sqrt(64 * 100), from the formula above",
        "0.0025": "the schedule's peak with factor 0.2, 0.2 / sqrt(64 * 100)",
    },
}


def prose_and_code(path: Path) -> tuple[str, str, list[tuple[str, str, str]]]:
    parts = [
        ("prose", "", part.prose)
        if part.fence is None
        else ("fence", part.fence.info, part.fence.body)
        for part in chapters.read_parts(path.read_text(encoding="utf-8"), path.name)
    ]
    prose = "\n".join(text for kind, _, text in parts if kind == "prose")
    code = "\n".join(text for kind, info, text in parts if kind == "fence")
    return prose, code, parts


def plain_prose(prose: str) -> str:
    """The prose without what is not a statement of a number: comments, facts
    filled in from records, inline code, math, link targets and addresses."""
    prose = re.sub(r"<!--.*?-->", " ", prose, flags=re.S)
    prose = re.sub(r"(?m)^\s*\d+\.\s", " ", prose)  # numbered lists
    prose = FACT.sub(" ", prose)
    prose = re.sub(r"`[^`\n]*`", " ", prose)
    prose = re.sub(r"\$\$.*?\$\$", " ", prose, flags=re.S)
    prose = re.sub(r"\$[^$\n]*\$", " ", prose)
    prose = re.sub(r"\]\([^)\s]*\)", "]", prose)
    prose = re.sub(r"https?://\S+|arXiv:\S+", " ", prose)
    return CITATION.sub(" ", prose)


def numbers_in(value: object) -> set[str]:
    """Every number in a JSON value, as `format(number, "g")` writes it."""
    if isinstance(value, dict):
        return set().union(*map(numbers_in, value.values()))
    if isinstance(value, list):
        return set().union(*map(numbers_in, value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {f"{value:g}"}
    return set()


def record_settings(page: Path, code: str) -> set[str]:
    """Every number in the settings of the records a page loads; for the
    Performance page, those of the bench run, its cases and its targets."""
    found: set[str] = set()
    for name in re.findall(r'load_record\("([a-z0-9-]+)"\)', code):
        path = ROOT / "docs" / "records" / f"{name}.json"
        found |= numbers_in(json.loads(path.read_text(encoding="utf-8"))["settings"])
    if page.name == "performance.md":
        bench = json.loads((ROOT / "docs" / "performance-record.json").read_text())
        found |= numbers_in(bench["settings"])
        for row in bench["rows"]:
            found |= set(re.findall(r"\d+", row["case"]))
            found |= numbers_in(row["target"])
    return found


FIGURE = re.compile(r"\]\(figures/([\w.-]+\.svg)\)")


def figure_code(prose: str) -> str:
    """The code of the blocks, on any page of docs/, that draw the figures
    shown in `prose`: a caption may state what its figure's block asserts."""
    shown = set(FIGURE.findall(prose))
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for part in chapters.read_parts(page.read_text(encoding="utf-8"), page.name):
            if part.fence is None or not PYTHON.match(part.fence.info):
                continue
            if any(f"docs/figures/{name}" in part.fence.body for name in shown):
                found.append(part.fence.body)
    return "\n".join(found)


def in_code(number: str, code: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(number)}(?![\w])", code) is not None


def unbacked_numbers(path: Path) -> list[str]:
    prose, code, _ = prose_and_code(path)
    code += "\n" + figure_code(prose)
    settings = record_settings(path, code)
    allowed = ALLOWED.get(path.name, {})
    unbacked = []
    for match in NUMBER.finditer(plain_prose(prose)):
        number, percent = match.groups()
        if number in allowed or in_code(number, code) or number in settings:
            continue
        fraction = f"{float(number.replace(',', '')) / 100:g}"
        if percent and (in_code(fraction, code) or fraction in settings):
            continue
        line = prose[: match.start()].count("\n")
        unbacked.append(f"{number}{percent} (prose line {line + 1} of the page)")
    return unbacked


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_experiment_output_is_pasted_into_a_chapter(path):
    _, _, parts = prose_and_code(path)
    pasted = []
    for i, (kind, info, text) in enumerate(parts):
        if kind != "fence" or PYTHON.match(info):
            continue
        before = parts[i - 1][2] if i > 0 and parts[i - 1][0] == "prose" else ""
        checked = (
            before.rstrip().endswith("-->")
            and EXPECTED_OUTPUT in (before.rstrip().splitlines() or [""])[-1]
        )
        if info.startswith("console"):
            lines = text.splitlines()
            for n, line in enumerate(lines):
                continued = n > 0 and lines[n - 1].rstrip().endswith("\\")
                if not (line.startswith("$ ") or continued):
                    pasted.append(f"console output: {line!r}")
        elif DECIMAL.search(text) and not checked:
            pasted.append(f"{info or 'fence'} with numbers: {text[:60]!r}")
    assert not pasted, f"{path.name}: " + "; ".join(pasted)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_number_in_a_chapter_comes_from_a_record_or_a_block(path):
    unbacked = unbacked_numbers(path)
    assert not unbacked, (
        f"{path.name} states numbers that no record fills in and no block "
        f"asserts: {', '.join(unbacked)}. Quote them from a record with "
        "{{NAME:FACT}}, assert them in a block, or cite their source in "
        "tests/test_evidence.py"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_fact_in_a_chapter_exists_in_its_record(path):
    from lab.registry import EXPERIMENTS, facts

    bench = json.loads((ROOT / "docs" / "performance-record.json").read_text())
    known = {"bench": report.facts(bench)}
    known |= {name: facts(name) for name in EXPERIMENTS}
    text = path.read_text(encoding="utf-8")
    missing = [
        match[0]
        for match in FACT.finditer(text)
        if match["key"] not in known.get(match["name"], {})
    ]
    assert not missing, f"{path.name}: {missing}"
    # One that FACT cannot read would stay on the page as typed: {{bench:Key}}.
    unreadable = [
        found for found in LOOSE_FACT.findall(text) if not FACT.fullmatch(found)
    ]
    assert not unreadable, f"{path.name}: facts FACT cannot read: {unreadable}"


def test_the_checks_catch_pasted_output_and_a_typed_in_result(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Held-out accuracy was 0.837 on seed 0, and {{positions:final-tokens}}.\n\n"
        "```python\nassert 0.5 < 0.6\n```\n\n"
        "```console\n$ python -m literate_transformer dropout\n"
        "sum 0.0 seed 0: train 0.997, held out 0.799\n```\n",
        encoding="utf-8",
    )
    assert unbacked_numbers(page) == ["0.837 (prose line 1 of the page)"]
    with pytest.raises(AssertionError, match=r"console output: 'sum 0\.0 seed 0"):
        test_no_experiment_output_is_pasted_into_a_chapter(page)


def test_every_experiment_s_name_is_read_as_a_fact():
    # A name with a rate in it (lm-dropout-settings-0.3) once stayed on the
    # site as typed: the pattern that the build and this test share read no
    # dot in a name, and the one that fails the build on a fact left unfilled
    # did not see it either.
    for name in EXPERIMENTS:
        typed = f"{{{{{name}:seed-count}}}}"
        found = FACT.fullmatch(typed)
        assert found and found["name"] == name, name
        assert LOOSE_FACT.fullmatch(typed), name
