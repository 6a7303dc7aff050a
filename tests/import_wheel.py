"""Import every module of an installed wheel, and read the corpus it ships
(run by `nox -s wheel`).

    python tests/import_wheel.py dist/literate_transformer-0.1.0-py3-none-any.whl

Run it from outside the checkout: the modules must come from site-packages.
"""

from __future__ import annotations

import importlib
import sys
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
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
