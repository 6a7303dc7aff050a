"""Check an installed wheel (run by `nox -s wheel`): it holds the model library
and nothing of the lab (no experiment, record, registry or experiment command
line) and asks for no NumPy; every module imports; it reads the corpora it
ships (the pydoc topics; Python's documentation and its tokenizer); and from
the shell it trains the synthetic task for a few steps, and trains and samples
the language model.

    python tests/import_wheel.py dist/literate_transformer-0.1.0-py3-none-any.whl

Run it from outside the checkout: the modules must come from site-packages.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def modules_in(wheel: Path) -> list[str]:
    """Dotted names of the Python modules that the wheel holds."""
    names = []
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".py") and ".dist-info/" not in name:
                module = name.removesuffix(".py").replace("/", ".")
                names.append(module.removesuffix(".__init__"))
    return sorted(names)


# Names of the lab's modules and folders: none may be in the wheel.
LAB_NAMES = ("lab/", "experiments", "records", "registry", "fingerprint")


def requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of the wheel's metadata, without extras."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith("/METADATA")]
        text = archive.read(metadata).decode("utf-8")
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]


def main(wheel: Path) -> int:
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    lab = sorted(f for f in files if any(name in f for name in LAB_NAMES))
    if lab:
        print(f"{wheel.name}: holds the lab's files {lab}", file=sys.stderr)
        return 1
    needs = requirements(wheel)
    if any(req.lower().startswith("numpy") for req in needs) or not needs:
        print(
            f"{wheel.name}: requires {needs}; expected torch, tqdm, tokenizers",
            file=sys.stderr,
        )
        return 1
    shipped = ("pydoc_topics.txt", "python_docs.txt.xz", "python_docs_bpe.json")
    for needed in ("py.typed", *(f"data/{name}" for name in shipped)):
        if f"literate_transformer/{needed}" not in files:
            print(f"{wheel.name}: {needed} is missing", file=sys.stderr)
            return 1
    modules = modules_in(wheel)
    if "literate_transformer" not in modules:
        print(f"{wheel.name}: no literate_transformer package in it", file=sys.stderr)
        return 1
    for name in modules:
        module = importlib.import_module(name)
        where = Path(module.__file__ or "")
        if "site-packages" not in where.parts:
            print(f"{name} imported from {where}, not site-packages", file=sys.stderr)
            return 1
        print(f"imported {name} from {where}")
    text = importlib.import_module("literate_transformer.text")
    documents = text.read_snapshot()  # the corpus, read from site-packages
    print(f"read {len(documents)} documents from {text.CORPUS}")
    docs = text.load_docs()  # the large corpus and its tokenizer, the same way
    print(f"read {len(docs.documents['train'])} training pages from {text.DOCS}")
    package = importlib.import_module("literate_transformer")
    version = wheel.name.split("-")[1]
    if package.__version__ != version:
        print(f"__version__ {package.__version__} != wheel {version}", file=sys.stderr)
        return 1
    print(f"{wheel.name}: {len(modules)} module(s) imported, version {version}")
    print(f"requires {needs}")
    return synthetic_task_from_the_shell() or language_model_from_the_shell()


def synthetic_task_from_the_shell() -> int:
    """`python -m literate_transformer train`: a few steps on the copy task."""
    command = [sys.executable, "-m", "literate_transformer", "train"]
    with tempfile.TemporaryDirectory() as folder:
        history = Path(folder) / "history.json"
        short = ["--task", "copy", "--steps", "5", "--quiet", "--json", str(history)]
        shown = subprocess.run([*command, *short], capture_output=True, text=True)
        if shown.returncode != 0 or not history.is_file():
            print(f"train failed:\n{shown.stdout}{shown.stderr}", file=sys.stderr)
            return 1
        run = json.loads(history.read_text(encoding="utf-8"))
    if len(run["loss"]) != 5 or not all(map(math.isfinite, run["loss"])):
        print(f"train wrote an unexpected history: {run}", file=sys.stderr)
        return 1
    print(f"train: 5 steps of copy, loss {run['loss'][0]:.2f} -> {run['loss'][-1]:.2f}")
    return 0


def language_model_from_the_shell() -> int:
    """`python -m literate_transformer lm`: its help, and a short run that
    trains, evaluates, samples and writes its record, from the installed copy."""
    command = [sys.executable, "-m", "literate_transformer", "lm"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True)
    if shown.returncode != 0 or "--prompt" not in shown.stdout:
        print(f"lm --help failed:\n{shown.stdout}{shown.stderr}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "run.json"
        short = ["--steps", "3", "--eval-every", "3", "--d-model", "16", "--d-ff"]
        short += ["32", "--words", "8", "--json", str(record)]
        shown = subprocess.run([*command, *short], capture_output=True, text=True)
        if shown.returncode != 0 or not record.is_file():
            print(f"lm failed:\n{shown.stdout}{shown.stderr}", file=sys.stderr)
            return 1
        run = json.loads(record.read_text(encoding="utf-8"))
    if run["history"]["eval_step"] != [3] or not run["text"].startswith("The"):
        print(f"lm wrote an unexpected record: {run}", file=sys.stderr)
        return 1
    print(f"lm: 3 steps, test perplexity {run['test_perplexity']:.0f}, wrote a record")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
