"""The tools that tangle the chapters, build the site and its notebooks; run
them from the repository root as modules: `python -m tools.tangle`."""
