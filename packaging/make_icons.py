"""Render the app icon PNGs from ``resources/icons/trading-signal-sandbox.svg``.

The SVG is the one source of the icon; run this after editing it::

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py

It writes ``trading-signal-sandbox.png`` (256 px) and ``trading-signal-sandbox-<N>.png``
for the usual freedesktop sizes next to the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
NAME = "trading-signal-sandbox"
SIZES = (256, 128, 64, 48, 32, 16)


def render(svg: Path, size: int, out: Path) -> None:
    """Render ``svg`` into a transparent ``size`` x ``size`` PNG at ``out``."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"{out}: could not write the PNG")


def main() -> int:
    """Write every PNG size; return 0."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    svg = ICONS / f"{NAME}.svg"
    render(svg, 256, ICONS / f"{NAME}.png")
    for size in SIZES:
        render(svg, size, ICONS / f"{NAME}-{size}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
