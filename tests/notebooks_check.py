"""Run the notebooks that the built site offers for download, as a reader would.

    python tests/notebooks_check.py site/downloads

Run by `nox -s notebooks` after `nox -s docs`. Each notebook runs top to
bottom in a fresh Python kernel, in an empty folder of its own (so nothing of
the checkout is on hand but the installed package and, through PYTHONPATH and
LT_RECORDS, the lab and the experiments' records, as a reader's notebook
finds them), and the check
fails on the first cell that raises.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run_notebook(path: Path, *, timeout: int) -> float:
    """Execute one notebook in a fresh kernel; return the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="lt-notebook-") as folder:
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": folder}},
        )
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start


ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "docs" / "records"


def main() -> int:
    # The kernels inherit both: the records, and a folder that holds the lab
    # alone (a link to the checkout's), so that the package itself still comes
    # from the installed copy.
    os.environ["LT_RECORDS"] = str(RECORDS)
    beside = Path(tempfile.mkdtemp(prefix="lt-lab-"))
    (beside / "lab").symlink_to(ROOT / "lab", target_is_directory=True)
    found = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(beside), found]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the site's downloads/ folder")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    notebooks = sorted(args.folder.glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks in {args.folder}: run `nox -s docs` first")
        return 1
    failed = []
    for path in notebooks:
        try:
            seconds = run_notebook(path, timeout=args.timeout)
        except CellExecutionError as error:
            failed.append(path.name)
            print(f"{path.name}: FAILED\n{error}", file=sys.stderr)
            continue
        cells = len(nbformat.read(path, as_version=4).cells)
        print(f"{path.name}: {cells} cells ran top to bottom in {seconds:.0f} s")
    print(f"notebooks: {len(notebooks) - len(failed)} of {len(notebooks)} ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
