"""Copy the front-end files the workspace serves from an ``npm ci`` tree into ``static/vendor``.

The files are committed (decision D30): serving the workspace needs neither Node nor the
network. After changing a version in the repository's ``package.json``::

    npm ci --ignore-scripts          # @gouvfr/dsfr's preinstall hook wants a project config
    python -m parcours.web.vendor node_modules

Only what the pages use is copied: the DSFR stylesheet and scripts, the Marianne fonts (woff2,
every browser the DSFR supports reads it), the icons the stylesheet references, the favicon,
htmx and its SSE extension, each package's licence. axe-core (tests only) goes to
``tests/web/vendor``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

__all__ = ["vendor"]

STATIC = Path(__file__).parent / "static" / "vendor"
_ICON_URL = re.compile(r"url\((icons/[^)]+\.svg)\)")


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def vendor(node_modules: Path, tests_vendor: Path | None = None) -> list[Path]:
    """Copy the served files; returns what was written."""
    written: list[Path] = []

    def copy(src: Path, dst: Path) -> None:
        _copy(src, dst)
        written.append(dst)

    dsfr = node_modules / "@gouvfr" / "dsfr"
    dist = dsfr / "dist"
    out = STATIC / "dsfr"
    if out.exists():
        shutil.rmtree(out)
    css = dist / "dsfr.min.css"
    copy(css, out / "dsfr.min.css")
    for name in ("dsfr.module.min.js", "dsfr.nomodule.min.js"):
        copy(dist / name, out / name)
    for font in sorted((dist / "fonts").glob("Marianne-*.woff2")):
        copy(font, out / "fonts" / font.name)
    for icon in sorted(set(_ICON_URL.findall(css.read_text(encoding="utf-8")))):
        copy(dist / icon, out / icon)
    for name in ("favicon.svg", "favicon.ico", "apple-touch-icon.png"):
        copy(dist / "favicon" / name, out / "favicon" / name)
    copy(dsfr / "LICENSE.md", out / "LICENSE.md")
    htmx = node_modules / "htmx.org"
    copy(htmx / "dist" / "htmx.min.js", STATIC / "htmx" / "htmx.min.js")
    copy(htmx / "LICENSE", STATIC / "htmx" / "LICENSE")
    sse = node_modules / "htmx-ext-sse"
    copy(sse / "dist" / "sse.min.js", STATIC / "htmx" / "sse.min.js")
    copy(sse / "LICENSE", STATIC / "htmx" / "LICENSE-htmx-ext-sse")
    if tests_vendor is not None:
        axe = node_modules / "axe-core"
        copy(axe / "axe.min.js", tests_vendor / "axe.min.js")
        copy(axe / "LICENSE", tests_vendor / "LICENSE-axe-core")
    return written


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    modules = Path(sys.argv[1] if len(sys.argv) > 1 else "node_modules")
    tests = Path(__file__).resolve().parents[3] / "tests" / "web" / "vendor"
    for path in vendor(modules, tests):
        print(path)
