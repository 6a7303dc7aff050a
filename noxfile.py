"""Sessions of the literate loop: tangle, lint, typecheck, tests, docs, serve,
experiments, notebooks, wheel, browser, bench.

    nox -s docs             build the site into site/ (strict)
    nox -s tests            tests/ + every Python block of docs/ and README.md
    nox -s experiments      record every experiment into docs/records/
    nox -s experiments -- NAME...      record some of them
    nox -s experiments -- --verify     re-run one seed of each, compare
    nox -s notebooks        run the site's downloadable notebooks (after docs)
    nox -s browser          open the built site in headless Chromium
    nox -s bench            benchmarks against torch.nn (not part of the tests)
    nox -s tangle           write literate_transformer/ and lab/ from the chapters
    nox -s tangle -- --check   fail if the package differs from the chapters
    nox -s typecheck        mypy, strict, over the library and the lab

Environments are reused between runs. PyTorch is pinned to the CPU build that
these sessions were tested with; set LT_TORCH to install another, for example
a CUDA build:

    LT_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" \
        nox -s "tests(device='cuda')"
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tangle", "lint", "typecheck", "tests", "docs", "wheel"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")
# pip finds a CPU wheel of this version on the development machines; elsewhere
# it takes PyPI's build. Override with LT_TORCH (a pip requirement and options).
TORCH = "torch==2.13.0"


def group(name: str) -> list[str]:
    """The requirements of a dependency group of pyproject.toml."""
    return list(nox.project.dependency_groups(PYPROJECT, name))


def install_torch(session: nox.Session) -> None:
    session.install(*shlex.split(os.environ.get("LT_TORCH", TORCH)))


def install_package(session: nox.Session, *groups: str) -> None:
    """PyTorch first (so that pip keeps it), then the package and the groups."""
    install_torch(session)
    requirements = [req for name in groups for req in group(name)]
    session.install("-e", ".", *requirements)


def check_tangled(session: nox.Session) -> None:
    """Fail if the package differs from the chapters: a chapter edited but not
    re-tangled would test, build or record stale code. CI checks once, first,
    and says so with LT_TANGLE_CHECKED=1 (its tree does not change after)."""
    if os.environ.get("LT_TANGLE_CHECKED") == "1":
        session.log("tangle check: done once for this tree (LT_TANGLE_CHECKED=1)")
        return
    session.run("python", "-m", "tools.tangle", "--check")


@nox.session
def tangle(session: nox.Session) -> None:
    """Write literate_transformer/ from docs/ (`-- --check`: only compare)."""
    session.install(*group("tangle"))
    session.run("python", "-m", "tools.tangle", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the repository."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy in strict mode over the library and the lab (settings in
    pyproject.toml): the chapters' code, as tangled, with the types that
    py.typed promises users."""
    install_package(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session
@nox.parametrize("device", ["cpu", "cuda"])
def tests(session: nox.Session, device: str) -> None:
    """pytest over tests/, docs/ and README.md on one device."""
    if device == "cuda" and shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA GPU here (nvidia-smi not found): CUDA tests skipped")
    install_package(session, "test")
    if device == "cuda":
        probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
        if session.run("python", "-c", probe, success_codes=[0, 1], silent=True):
            session.skip(
                "torch.cuda.is_available() is False: install a CUDA build of "
                "PyTorch with LT_TORCH (see noxfile.py); CUDA tests skipped"
            )
    # A chapter edited but not re-tangled would test stale package code.
    check_tangled(session)
    env, spread = {"LT_DEVICE": device}, []
    if device == "cpu":
        # One worker a core (up to 4), each on one thread: a test file and a
        # chapter stay in one worker, the controller writes the run records.
        # Two threads a worker would oversubscribe the cores (measured on 2
        # cores: 266 s against 166 s). `-- -n 0` runs in one process again.
        workers = min(os.cpu_count() or 1, 4)
        env["LT_THREADS"] = os.environ.get("LT_THREADS", "1")
        spread = ["-n", str(workers), "--dist", "loadfile"]
    session.run("pytest", *spread, *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site into site/ with `mkdocs build --strict`."""
    install_package(session, "docs", "tangle")
    check_tangled(session)
    session.run(
        "python", "-m", "mkdocs", "build", "--strict", *session.posargs, env=DOCS_ENV
    )


@nox.session
def serve(session: nox.Session) -> None:
    """Preview the site at http://127.0.0.1:8000; every rebuild re-tangles."""
    install_package(session, "docs", "tangle")
    # Not strict: a chapter being edited has no run record for its new text.
    env = {**DOCS_ENV, "LT_TANGLE_ON_BUILD": "1", "LT_STRICT": "false"}
    session.run("python", "-m", "mkdocs", "serve", *session.posargs, env=env)


@nox.session
def experiments(session: nox.Session) -> None:
    """Record the site's experiments into docs/records/ (all, or `-- NAME...`);
    an interrupted recording resumes from the units it finished (.cache/lab/).
    `-- --verify` re-runs one seed of each and fails where a result differs
    from its record by more than the experiment's tolerance or breaks a claim
    (`--threads 2 --no-onednn` stands in for another machine); `-- --list`;
    `-- --scheduler tcp://HOST:8786` runs the units on a Dask cluster."""
    install_package(session, "tangle", "lab")
    # A record must come from the code the chapters show.
    check_tangled(session)
    session.run("python", "-m", "lab", "experiments", *session.posargs)


@nox.session
def notebooks(session: nox.Session) -> None:
    """Run every notebook of the built site's downloads/ in a fresh kernel."""
    install_torch(session)
    session.install(".", *group("notebooks"))
    session.run(
        "python", "tests/notebooks_check.py", "site/downloads", *session.posargs
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against torch.nn, transformers' GPT-2 and a nanoGPT-style
    model; not part of the tests. `-- --quick` for a short run; the record
    goes to docs/performance-record.json unless `-- --json PATH` says
    otherwise."""
    install_package(session, "bench")
    args = session.posargs
    if "--json" not in args:
        args = [*args, "--json", "docs/performance-record.json"]
    session.run("python", "-m", "benchmarks.bench", *args)


@nox.session(reuse_venv=False)
def wheel(session: nox.Session) -> None:
    """Build the wheel, install it in a fresh venv, import every module."""
    session.install("build")
    dist = Path(tempfile.mkdtemp(prefix="lt-dist-"))
    session.run("python", "-m", "build", "--wheel", "--outdir", str(dist))
    (built,) = dist.glob("literate_transformer-*.whl")
    install_torch(session)
    session.install(str(built))
    # Run outside the checkout, so that `import` finds the installed copy.
    with session.chdir(dist):
        session.run("python", str(ROOT / "tests" / "import_wheel.py"), str(built))


@nox.session
def browser(session: nox.Session) -> None:
    """Open the built site in headless Chromium; no request may leave localhost."""
    session.install(*group("browser"))
    session.run("python", "tests/browser_check.py", "site", *session.posargs)


# mkdocs-material 9.8 prints a banner about MkDocs 2.0 on every build.
DOCS_ENV = {"NO_MKDOCS_2_WARNING": "1"}
