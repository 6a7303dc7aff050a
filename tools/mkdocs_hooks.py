"""MkDocs hooks: serve MathJax from the site itself.

The site must make no request to any host but its own, so MathJax is not loaded
from a CDN. The build copies it from the `django-static-mathjax` package (a PyPI
wheel of MathJax 3 with no dependencies, installed by the docs session) into
`assets/mathjax/` of the built site.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
