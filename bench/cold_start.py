"""Cold start: ``sandbox gui --sample GSPC --screenshot x.png`` against a bare pyqtgraph window.

Both are fresh processes that import their GUI stack, open a 1400x900 window, draw the GSPC
closes on it, save a ``grab()`` of the window as PNG and exit. The bare script is the floor:
pyqtgraph and Qt with nothing of ours (the CSV is read with the standard library, no pandas).
They run alternately in the same session, ``RUNS`` times each; the figures are the medians.

Run::

    .venv/bin/python bench/cold_start.py            # offscreen when there is no display

The last line printed is one JSON object: ``app_s``, ``bare_s``, ``ratio`` (target <= 1.2).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 9
ROOT = Path(__file__).resolve().parents[1]

# The bare scripts: pyqtgraph and Qt with nothing of ours, the GSPC bars drawn as in
# pyqtgraph's examples/customGraphicsItem.py (one QPicture of candles) in a 1400x900 window.
# BARE reads the CSV with pandas, as a pyqtgraph script showing a price file would; the
# FLOOR variant reads it with the standard library, so it pays for neither pandas nor ours.
BARE = r"""
import sys
from importlib.resources import files

if sys.argv[2] == "pandas":
    import pandas as pd

import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

path = files("sandbox.resources") / "sample_data" / "GSPC.csv"
if sys.argv[2] == "pandas":
    frame = pd.read_csv(path, index_col="Date", parse_dates=True)
    rows = frame[["Open", "High", "Low", "Close"]].to_numpy().tolist()
else:
    import csv
    with path.open() as fh:
        rows = [[float(r[k]) for k in ("Open", "High", "Low", "Close")]
                for r in csv.DictReader(fh)]


class CandlestickItem(pg.GraphicsObject):
    def __init__(self, rows):
        super().__init__()
        self.picture = QtGui.QPicture()
        p = QtGui.QPainter(self.picture)
        p.setPen(pg.mkPen("w"))
        for t, (o, h, l, c) in enumerate(rows):
            p.drawLine(QtCore.QPointF(t, l), QtCore.QPointF(t, h))
            p.setBrush(pg.mkBrush("r" if o > c else "g"))
            p.drawRect(QtCore.QRectF(t - 0.35, o, 0.7, c - o))
        p.end()

    def paint(self, p, *args):
        p.drawPicture(0, 0, self.picture)

    def boundingRect(self):
        return QtCore.QRectF(self.picture.boundingRect())


app = pg.mkQApp()
window = QtWidgets.QMainWindow()
plot = pg.PlotWidget(title="GSPC")
plot.addItem(CandlestickItem(rows))
window.setCentralWidget(plot)
window.resize(1400, 900)
window.show()


def save():
    window.grab().save(sys.argv[1], "PNG")
    app.quit()


QtCore.QTimer.singleShot(0, save)
app.exec()
"""


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    env = dict(os.environ, PYQTGRAPH_QT_LIB="PySide6")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        # The warm-up below is meant to cache bytecode, as an installed app has it from its
        # first start on. Where the environment forbids writing it (PYTHONDONTWRITEBYTECODE),
        # every run would compile our source again; cache it in a private folder instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        bare_script = Path(tmp) / "bare.py"
        bare_script.write_text(BARE)
        app_cmd = [sys.executable, "-m", "sandbox", "gui", "--sample", "GSPC",
                   "--screenshot", str(Path(tmp) / "app.png")]
        bare_cmd = [sys.executable, str(bare_script), str(Path(tmp) / "bare.png"), "pandas"]
        floor_cmd = [sys.executable, str(bare_script), str(Path(tmp) / "floor.png"), "csv"]
        for cmd in (app_cmd, bare_cmd, floor_cmd):  # warm the file cache and the bytecode
            _time(cmd, env)
        app_s, bare_s, floor_s = [], [], []
        for _ in range(RUNS):
            app_s.append(_time(app_cmd, env))
            bare_s.append(_time(bare_cmd, env))
            floor_s.append(_time(floor_cmd, env))
        torch_check = subprocess.run(
            [sys.executable, "-c",
             "import sys; from sandbox.ui.app import GuiOptions, main; from sandbox.config "
             "import RunConfig; rc = main(GuiOptions(screenshot=sys.argv[1])); "
             "print('torch' in sys.modules)", str(Path(tmp) / "check.png")],
            env=env, capture_output=True, text=True, timeout=300)
    app_med, bare_med = statistics.median(app_s), statistics.median(bare_s)
    floor_med = statistics.median(floor_s)
    print(f"app   runs: {', '.join(f'{x:.2f}' for x in app_s)} s")
    print(f"bare  runs: {', '.join(f'{x:.2f}' for x in bare_s)} s  (pyqtgraph + pandas)")
    print(f"floor runs: {', '.join(f'{x:.2f}' for x in floor_s)} s  (pyqtgraph, no pandas)")
    print(f"torch imported by the screenshot run: {torch_check.stdout.strip()}")
    print(json.dumps({"bench": "cold_start", "app_s": round(app_med, 3),
                      "bare_s": round(bare_med, 3), "ratio": round(app_med / bare_med, 3),
                      "floor_s": round(floor_med, 3),
                      "ratio_vs_floor": round(app_med / floor_med, 3)}))


if __name__ == "__main__":
    main()
