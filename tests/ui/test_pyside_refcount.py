"""Guard against the PySide6 6.12.0 reference leak on void Qt calls.

6.12.0 on CPython 3.11 drops a reference to ``None`` (and ``True``) on every call of a
void Qt method; after a few thousand calls the interpreter dies with "Fatal Python error:
none_dealloc". pyproject.toml pins ``PySide6-Essentials<6.12`` for that reason; this test
fails if an upgrade brings the bug back. It runs in a subprocess because the failure mode
is a crash of the whole interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QImage, QPainter, QPen
    from PySide6.QtWidgets import QApplication, QLabel, QWidget

    app = QApplication([])
    image = QImage(16, 16, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    pen = QPen(QColor(Qt.GlobalColor.red))
    widget = QWidget()
    label = QLabel()
    calls = 0
    before_none = sys.getrefcount(None)
    before_true = sys.getrefcount(True)
    for i in range(2500):
        painter.setPen(pen)          # void
        widget.update()              # void
        label.setText(str(i & 7))    # void
        widget.setEnabled(True)      # void, takes True
        calls += 4
    after_none = sys.getrefcount(None)
    after_true = sys.getrefcount(True)
    painter.end()
    print(json.dumps({"calls": calls, "none": [before_none, after_none],
                      "true": [before_true, after_true]}))
    """
)


def test_void_qt_calls_do_not_leak_none_or_true_references():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, f"interpreter died: {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["calls"] == 10_000
    none_before, none_after = report["none"]
    true_before, true_after = report["true"]
    # A leak of one reference per call would drop the count by thousands; allow small noise.
    assert none_after >= none_before - 50, report
    assert true_after >= true_before - 50, report
