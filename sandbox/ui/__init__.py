"""The desktop front end: the only package that imports Qt.

pyqtgraph picks its Qt binding from ``PYQTGRAPH_QT_LIB``; set it before pyqtgraph is
imported so another binding that happens to be installed is never chosen.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
