"""Import every module of an installed wheel, read the corpus it ships, and
train the language model briefly from the shell (run by `nox -s wheel`).

    python tests/import_wheel.py dist/literate_transformer-0.1.0-py3-none-any.whl

Run it from outside the checkout: the modules must come from site-packages.
"""

from __future__ import annotations

import importlib
import json
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


def main(wheel: Path) -> int:
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    for needed in ("py.typed", "data/pydoc_topics.txt"):
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
    package = importlib.import_module("literate_transformer")
    version = wheel.name.split("-")[1]
    if package.__version__ != version:
        print(f"__version__ {package.__version__} != wheel {version}", file=sys.stderr)
        return 1
    print(f"{wheel.name}: {len(modules)} module(s) imported, version {version}")
    return language_model_from_the_shell()


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
