"""Open every page of the built book in headless Chromium and report what a reader would see wrong.

For each page: every image has loaded; no image wider than the page is shown at less than half its
natural width (tick labels would be unreadable); the mathematics has rendered (MathJax, served
offline); no console error, page error or failed request. ``python tests/browser_check.py
[_build/html]`` prints the problems and exits 1 if there are any; ``tests/test_book.py`` runs it on
the book it builds. Needs Debian's ``chromium`` and the ``playwright`` package (its own browser
download is not used).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 900}  # a laptop screen: the book's text column is about 700 px
PAGE_JS = r"""() => {
  const images = [...document.querySelectorAll('article img, main img')].map(i => ({
      src: i.getAttribute('src'), complete: i.complete, natural: i.naturalWidth, shown: i.clientWidth,
      room: i.closest('article, main').clientWidth}));
  const text = document.querySelector('article, main')?.innerText ?? '';
  return {images, mathNodes: document.querySelectorAll('.math, span.math, div.math').length,
          rendered: document.querySelectorAll('mjx-container').length,
          rawTex: /\\\(|\\\[/.test(text)};
}"""


def find_chromium() -> str | None:
    """The system Chromium, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check_page(page, url: str) -> list[str]:
    """Problems of one page (already open in ``page``)."""
    problems = []
    info = page.evaluate(PAGE_JS)
    for img in info["images"]:
        if not img["complete"] or img["natural"] == 0:
            problems.append(f"{url}: image {img['src']} did not load")
        elif img["natural"] > img["room"] and img["shown"] < img["natural"] / 2:
            problems.append(f"{url}: image {img['src']} shown at {img['shown']} px of its {img['natural']} px")
    if info["mathNodes"] and (info["rendered"] == 0 or info["rawTex"]):
        problems.append(f"{url}: {info['mathNodes']} maths elements, {info['rendered']} rendered"
                        + (", raw TeX visible" if info["rawTex"] else ""))
    return problems


def check_book(html_dir: str | Path) -> list[str]:
    """Every problem of every page of the book built in ``html_dir``."""
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir).resolve()
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        for path in pages:
            page = browser.new_page(viewport=VIEWPORT)
            url = path.relative_to(html_dir).as_posix()
            errors: list[str] = []
            page.on("console", lambda m, e=errors: e.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda exc, e=errors: e.append(f"page error: {exc}"))
            page.on("requestfailed", lambda r, e=errors: e.append(f"failed request: {r.url}"))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_timeout(800)  # MathJax typesets after load
            problems += check_page(page, url) + [f"{url}: {e}" for e in errors]
            page.close()
        browser.close()
    return problems


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "_build" / "html"
    found = check_book(root)
    print("\n".join(found) or f"{root}: every page passes")
    sys.exit(1 if found else 0)
