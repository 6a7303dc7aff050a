"""MkDocs hooks: serve MathJax from the site itself; re-tangle while previewing.

The site must make no request to any host but its own, so MathJax is not loaded
from a CDN. The build copies it from the `django-static-mathjax` package (a PyPI
wheel of MathJax 3 with no dependencies, installed by the docs session) into
`assets/mathjax/` of the built site.

With LT_TANGLE_ON_BUILD=1 (set by `nox -s serve`), every build first tangles
the chapters into the package, so that the notebooks of a live preview import
the code the chapters show now.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

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


def on_pre_build(config, **kwargs) -> None:
    if os.environ.get("LT_TANGLE_ON_BUILD") != "1":
        return
    root = Path(config["config_file_path"]).parent
    sys.path.insert(0, str(root / "tools"))
    try:
        import tangle
    finally:
        sys.path.pop(0)
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
