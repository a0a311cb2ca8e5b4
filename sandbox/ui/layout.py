"""Small layout helpers shared by the window's parts."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

__all__ = ["vertical_scroll"]


def vertical_scroll(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a frameless scroll area that scrolls up and down only and gives it its
    full width (a form or a text that may grow taller than the room it gets)."""
    area = QtWidgets.QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
