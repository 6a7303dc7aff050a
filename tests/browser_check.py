"""Open the built site in headless Chromium and check what a reader sees.

    python tests/browser_check.py site [--screenshots DIR]

Run by `nox -s browser` after `nox -s docs`. It serves the folder on 127.0.0.1,
opens every page of the site, and fails when:

- any request goes to a host other than the local server, or any request fails;
- the page logs an error to the console or throws;
- a formula is left as raw TeX (in the page or in its navigation), or
  MathJax's own fonts did not load;
- a page loses its copy buttons, its light/dark toggle, or the titles that name
  the file a tangled block is written to;
- an image did not load, or has no alt text;
- an internal link points to a page or file that is not in the site, or to an
  anchor that the target page does not have;
- math is not typeset again after an instant (no-reload) navigation;
- the search finds nothing for "mask".

With --screenshots DIR it saves a full-page screenshot of every page in the
light and in the dark scheme (DIR/<page>-light.png, DIR/<page>-dark.png).

Chromium is Debian's (/usr/bin/chromium), driven by Playwright; Playwright's
own browser download is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import re
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MATH_STATE = """() => {
  const math = [...document.querySelectorAll('.arithmatex, .jp-RenderedMarkdown')];
  const raw = math.filter(el => el.classList.contains('arithmatex')
                                && !el.querySelector('mjx-container'));
  const fonts = [...document.fonts].filter(f => f.family.includes('MJX'));
  return {
    formulas: document.querySelectorAll('mjx-container').length,
    raw: raw.map(el => el.textContent.slice(0, 60)),
    dollars: [...document.querySelectorAll('.jp-RenderedMarkdown')]
      .map(el => { const c = el.cloneNode(true);
                   c.querySelectorAll('pre, code').forEach(x => x.remove());
                   return c.textContent; })
      .filter(text => /\\$[^$]+\\$/.test(text)).length,
    mjxFontsLoaded: fonts.filter(f => f.status === 'loaded').length,
    stretchy: document.querySelectorAll('mjx-stretchy-v, mjx-stretchy-h').length,
    copyButtons: document.querySelectorAll('.md-clipboard, button.md-code__button')
      .length,
    codeBlocks: document.querySelectorAll('.md-content pre > code').length,
    paletteToggle: document.querySelectorAll('[data-md-component=palette]').length,
    rawTexInNavigation: [...document.querySelectorAll('.md-nav__link')]
      .map(a => a.textContent.trim()).filter(t => t.includes(String.raw`\\(`)),
    fileTitles: [...document.querySelectorAll('.highlight .filename')]
      .map(el => el.textContent),
    images: [...document.querySelectorAll('.md-content img')].map(img => ({
      src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
      alt: (img.getAttribute('alt') || '').trim(),
    })),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  };
}"""
# True once the page's scripts have done their work: every formula typeset and
# every code block given its copy button. On a busy machine that can take a
# few seconds after the network is idle (seen once: one page checked too soon).
SETTLED = f"""() => {{
  const state = ({MATH_STATE})();
  return state.raw.length === 0 && state.copyButtons >= state.codeBlocks;
}}"""


SCHEME = "document.body.setAttribute('data-md-color-scheme', '{scheme}')"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def pages(folder: Path, base: str) -> list[str]:
    """Every page of the built site (each folder's index.html), as a local URL."""
    found = [
        base + page.parent.relative_to(folder).as_posix().removeprefix(".") + "/"
        for page in sorted(folder.rglob("index.html"))
        if "assets" not in page.relative_to(folder).parts
    ]
    if not found:
        raise SystemExit(f"no pages found in {folder}")
    return [url.replace("//", "/").replace(":/", "://") for url in found]


def check_site(folder: Path, shots: Path | None) -> list[str]:
    problems: list[str] = []
    server, base = serve(folder)
    host = urlparse(base).netloc
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            current = {"url": ""}

            def on_request(request) -> None:
                if urlparse(request.url).scheme in ("data", "blob"):
                    return
                if urlparse(request.url).netloc != host:
                    problems.append(f"{current['url']}: request to {request.url}")

            page.on("request", on_request)

            def on_failed(request) -> None:
                problems.append(f"{current['url']}: failed: {request.url}")

            def on_response(response) -> None:
                if response.status >= 400:
                    problems.append(
                        f"{current['url']}: HTTP {response.status}: {response.url}"
                    )

            def on_console(message) -> None:
                if message.type == "error":
                    problems.append(f"{current['url']}: console: {message.text}")

            def on_error(error) -> None:
                problems.append(f"{current['url']}: page error: {error}")

            page.on("requestfailed", on_failed)
            page.on("response", on_response)
            page.on("console", on_console)
            page.on("pageerror", on_error)
            links: set[str] = set()
            for url in pages(folder, base):
                current["url"] = url
                page.goto(url, wait_until="networkidle")
                page.wait_for_timeout(300)
                # MathJax and the copy buttons finish after the load; if they
                # never do, the state below names what is missing.
                with contextlib.suppress(PlaywrightTimeout):
                    page.wait_for_function(SETTLED, timeout=10_000)
                state = page.evaluate(MATH_STATE)
                problems.extend(check_page(url, state))
                links.update(
                    link for link in state.pop("links") if urlparse(link).netloc == host
                )
                name = urlparse(url).path.strip("/").replace("/", "-") or "index"
                print(
                    f"{name}: {len(state['images'])} images, {state['formulas']} "
                    f"formulas, {state['codeBlocks']} code blocks"
                )
                if shots:
                    page.screenshot(
                        path=str(shots / f"{name}-light.png"), full_page=True
                    )
                    # What the palette toggle does: switch the body's scheme.
                    page.evaluate(SCHEME.format(scheme="slate"))
                    page.wait_for_timeout(200)
                    page.screenshot(
                        path=str(shots / f"{name}-dark.png"), full_page=True
                    )
                    page.evaluate(SCHEME.format(scheme="default"))
            problems.extend(check_links(folder, base, links))
            problems.extend(check_search(page, base, current))
            problems.extend(check_instant_navigation(page, base, current))
            browser.close()
    finally:
        server.shutdown()
    return problems


def check_page(url: str, state: dict) -> list[str]:
    problems = []
    if state["raw"]:
        problems.append(f"{url}: formulas left as TeX: {state['raw']}")
    if state["dollars"]:
        problems.append(f"{url}: notebook text with $...$ left untypeset")
    if state["formulas"] and not state["mjxFontsLoaded"]:
        problems.append(f"{url}: formulas shown, but no MathJax font loaded")
    if state["codeBlocks"] and state["copyButtons"] < state["codeBlocks"]:
        problems.append(
            f"{url}: {state['codeBlocks']} code blocks, "
            f"{state['copyButtons']} copy buttons"
        )
    if state["rawTexInNavigation"]:
        problems.append(f"{url}: TeX in navigation: {state['rawTexInNavigation']}")
    if not state["paletteToggle"]:
        problems.append(f"{url}: no light/dark toggle")
    for image in state["images"]:
        if not image["loaded"]:
            problems.append(f"{url}: image did not load: {image['src']}")
        if not image["alt"]:
            problems.append(f"{url}: image without alt text: {image['src']}")
    if url.rstrip("/").endswith("literate"):
        # The page that shows the loop must show what it claims.
        if state["formulas"] < 2 or not state["stretchy"]:
            problems.append(f"{url}: expected display formulas with stretchy braces")
        wanted = "file: literate_transformer/__init__.py"
        if wanted not in state["fileTitles"]:
            problems.append(f"{url}: no block titled {wanted!r}")
    return problems


def check_links(folder: Path, base: str, links: set[str]) -> list[str]:
    """Every local link leads to a file of the site, and its anchor exists."""
    problems = []
    ids: dict[Path, set[str]] = {}
    for link in sorted(links):
        parsed = urlparse(link)
        path = folder / unquote(parsed.path.lstrip("/"))
        if parsed.path.endswith("/") or path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            problems.append(f"link to a missing page or file: {link}")
            continue
        if not parsed.fragment or path.suffix != ".html":
            continue
        if path not in ids:
            html = path.read_text(encoding="utf-8")
            ids[path] = set(re.findall(r'\bid="([^"]+)"', html))
        if unquote(parsed.fragment) not in ids[path]:
            problems.append(f"link to a missing anchor: {link}")
    print(f"links: {len(links)} local links checked")
    return problems


def check_search(page, base: str, current: dict) -> list[str]:
    """The search box finds the chapters that talk about masks."""
    current["url"] = base
    page.goto(base, wait_until="networkidle")
    for attempt in range(3):  # the index loads in a web worker: give it time
        page.fill("input.md-search__input", "")
        page.click("input.md-search__input")
        page.keyboard.type("mask", delay=50)
        try:
            page.wait_for_selector(".md-search-result__item", timeout=10_000)
            break
        except Exception:  # Playwright's TimeoutError: nothing was found yet
            if attempt == 2:
                return ["search: no result for 'mask'"]
    found = page.locator(".md-search-result__item").count()
    print(f"search: {found} results for 'mask'")
    return []


def check_instant_navigation(page, base: str, current: dict) -> list[str]:
    """Follow a link without reloading; the new page's math must be typeset."""
    current["url"] = base
    page.goto(base, wait_until="networkidle")
    page.click(".md-content a[href$='literate/']")
    page.wait_for_url("**/literate/")
    page.wait_for_function("document.querySelectorAll('mjx-container').length >= 2")
    state = page.evaluate(MATH_STATE)
    return [f"instant navigation: {p}" for p in check_page(page.url, state)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (mkdocs' site_dir)")
    parser.add_argument("--screenshots", type=Path, help="save full-page PNGs here")
    args = parser.parse_args()
    if not (args.site / "index.html").is_file():
        print(f"no built site at {args.site}: run `nox -s docs` first", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).is_file():
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 1
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    problems = check_site(args.site, args.screenshots)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"browser check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
