"""Candles and volume bars with level of detail, painted from a cached ``QPicture``.

The pattern is pyqtgraph's ``examples/customGraphicsItem.py`` (one ``GraphicsObject`` that
replays a pre-recorded ``QPicture``) with two additions borrowed from finplot:

* the picture covers a span wider than the view (``CACHE_MARGIN`` of the visible width on each
  side), so panning replays the same picture until the view leaves that span;
* when more bars are visible than fit (about one per pixel column, or ``LOD_VISIBLE`` bars),
  bars are aggregated into OHLC buckets of ``2**j`` bars aligned on multiples of the bucket
  size, so at most ``MAX_ITEMS`` candles are ever recorded, whatever the zoom, and buckets do
  not shimmer while panning.

Bucketing reads a pyramid of pre-aggregated buckets (:class:`OhlcSeries` keeps the highs,
lows and volumes of the buckets of 2, 4, 8, ... bars, built once with numpy pairwise
reductions), so a picture costs by the buckets it holds, not by the bars they cover: a million
bars draw as fast as a hundred thousand. The shapes are turned into ``QPainterPath`` objects
with :func:`pyqtgraph.arrayToQPath`; no Python loop runs per bar.

A series grows by :meth:`OhlcSeries.append` (replay, live feeds): the arrays grow in place and
only the buckets that hold the new bars are recomputed (one per pyramid level for one bar);
:meth:`CandleItem.bars_appended` then re-records the picture only if the view shows the end.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui

__all__ = [
    "CACHE_MARGIN",
    "DOWN_COLOR",
    "LOD_VISIBLE",
    "MAX_ITEMS",
    "UP_COLOR",
    "BackgroundCopy",
    "CandleItem",
    "OhlcBuckets",
    "OhlcSeries",
    "VolumeItem",
    "aggregate_ohlcv",
    "bucket_size_for",
]

LOD_VISIBLE = 1500  # more visible bars than this are aggregated into buckets
MAX_ITEMS = 3000  # upper bound on candles (or buckets) recorded in one picture
CACHE_MARGIN = 0.5  # the picture spans the view plus this fraction of its width on each side
TAIL_MAX = 64  # buckets an append re-records at the data's end before re-recording it all
BODY_FRACTION = 0.7  # candle body width as a fraction of the bar (or bucket) width
MIN_BODY_PX = 2.0  # narrower bodies are not drawn (the high-low line shows the bar)
UP_COLOR = "#26a69a"  # teal green: readable on dark and light backgrounds
DOWN_COLOR = "#ef5350"  # soft red: idem


@dataclass(frozen=True)
class OhlcBuckets:
    """Aggregated bars: one entry per bucket of ``size`` consecutive bars.

    ``x`` is the bucket centre in bar-index units; ``first`` the index of each bucket's first bar.
    """

    size: int
    first: np.ndarray
    x: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


class BackgroundCopy:
    """Copies of ``arrays[:n]`` into new arrays of ``capacity`` entries, made on a worker
    thread: numpy releases the GIL while it copies, so the UI thread runs on meanwhile.

    The arrays must not change below ``n`` until :meth:`result` has returned.
    """

    def __init__(self, arrays: list[np.ndarray], n: int, capacity: int) -> None:
        self._result: list[np.ndarray] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(list(arrays), n, capacity),
                                        name="chart-buffers", daemon=True)
        self._thread.start()

    def _run(self, arrays: list[np.ndarray], n: int, capacity: int) -> None:
        try:
            out = []
            for array in arrays:
                grown = np.empty(max(capacity, n), dtype=array.dtype)
                grown[:n] = array[:n]
                out.append(grown)
            self._result = out
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> list[np.ndarray]:
        """The copies (waits for the thread if it has not finished)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class _Pyramid:
    """Highs, lows and volumes of the OHLC buckets of ``2**j`` bars, ``j = 1, 2, ...``, each
    level built from pairs of the level below (bucket ``k`` of level ``j`` holds bars
    ``k * 2**j .. (k + 1) * 2**j - 1``; the last bucket may be partial).

    Opens and closes need no level: they are the first and last bar's. Building all levels
    over ``n`` bars costs about ``2 n`` numpy element operations per column; appending bars
    recomputes only the buckets that hold them (one per level for one bar), so a growing
    series never rebuilds its level of detail.
    """

    def __init__(self) -> None:
        self.levels: list[list[np.ndarray]] = []  # per level: high, low, volume buffers
        self.lengths: list[int] = []  # buckets in each level

    def update(self, high: np.ndarray, low: np.ndarray, volume: np.ndarray, old_n: int) -> None:
        """Bring the levels up to date with bars ``old_n ..`` of the ``n`` bars given."""
        child = (high, low, volume)
        count, changed, j = high.shape[0], old_n, 0
        while count > 1:
            k0 = changed // 2
            parts = [_pairs(column[2 * k0:count], op, fill)
                     for column, op, fill in zip(child, _OPS, _FILLS, strict=True)]
            length = (count + 1) // 2
            if j == len(self.levels):
                self.levels.append([np.empty(0), np.empty(0), np.empty(0)])
                self.lengths.append(0)
            buffers = self.levels[j]
            for i, part in enumerate(parts):
                buffers[i] = _write(buffers[i], k0, part)
            self.lengths[j] = length
            child = tuple(b[:length] for b in buffers)
            count, changed, j = length, k0, j + 1

    def level(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """High, low and volume of the buckets of ``size`` bars (a power of two > 1), or None."""
        j = size.bit_length() - 2
        if size < 2 or size & (size - 1) or j >= len(self.levels):
            return None
        length = self.lengths[j]
        high, low, volume = self.levels[j]
        return high[:length], low[:length], volume[:length]


_OPS = (np.maximum, np.minimum, np.add)
_FILLS = (-np.inf, np.inf, 0.0)


def _pairs(values: np.ndarray, op, fill: float) -> np.ndarray:
    """``op`` of each pair of neighbours (the last value alone, with ``fill``, if odd)."""
    if values.shape[0] % 2:
        values = np.append(values, fill)
    return op(values[0::2], values[1::2])


def _write(buffer: np.ndarray, at: int, values: np.ndarray) -> np.ndarray:
    """``buffer`` with ``values`` written from index ``at`` on (grown by half if short)."""
    need = at + values.shape[0]
    if need > buffer.shape[0]:
        grown = np.empty(max(need, buffer.shape[0] * 3 // 2 + 16))
        grown[:at] = buffer[:at]
        buffer = grown
    buffer[at:need] = values
    return buffer


class OhlcSeries:
    """Contiguous float64 arrays of one price frame, shared by the candle and volume items,
    with the pyramid of OHLC buckets (``2, 4, 8, ...`` bars) that the level of detail reads.

    Bars can be appended (:meth:`append`): the arrays grow in place (amortised, by half their
    size) and only the buckets holding the new bars are recomputed. The attributes ``open``,
    ``high``, ``low``, ``close`` and ``volume`` are views of the bars shown, renewed on append.

    Parameters
    ----------
    open_, high, low, close, volume : array-like
        One value per bar, same length.
    """

    def __init__(self, open_, high, low, close, volume) -> None:
        columns = (open_, high, low, close, volume)
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in columns]
        n = arrays[0].shape[0]
        if any(a.shape != (n,) for a in arrays):
            raise ValueError("open, high, low, close and volume must be 1-D arrays of one length")
        self._buffers = arrays  # may be the caller's arrays until the first append copies
        self._owned = False
        self._pending: BackgroundCopy | None = None  # bigger buffers being made (reserve)
        self.n = n
        self._expose()
        self._pyramid = _Pyramid()
        self._pyramid.update(self.high, self.low, self.volume, 0)

    def __len__(self) -> int:
        return self.n

    def _expose(self) -> None:
        n = self.n
        self.open, self.high, self.low, self.close, self.volume = (b[:n] for b in self._buffers)

    def append(self, open_, high, low, close, volume) -> None:
        """Append bars (scalars for one bar, or 1-D arrays of one length for several)."""
        columns = [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in
                   (open_, high, low, close, volume)]
        k = columns[0].shape[0]
        if any(a.shape != (k,) for a in columns):
            raise ValueError("open, high, low, close and volume must have one length")
        old = self.n
        self._take_pending()
        if not self._owned or old + k > self._buffers[0].shape[0]:
            self.reserve(max(k, old // 2 + 1024))
        for buffer, values in zip(self._buffers, columns, strict=True):
            buffer[old:old + k] = values
        self.n = old + k
        self._expose()
        self._pyramid.update(self.high, self.low, self.volume, old)

    def reserve(self, extra: int, *, background: bool = False) -> None:
        """Make room for ``extra`` more bars, so that appending them copies nothing (the first
        append otherwise copies every column: a tenth of a second or more at a million bars,
        most of it the system handing over fresh memory). With ``background`` the copy is
        made on a worker thread and taken by the next append (which waits for it if it has
        not finished)."""
        self._take_pending()
        need = self.n + max(0, int(extra))
        if self._owned and need <= self._buffers[0].shape[0]:
            return
        copy = BackgroundCopy(self._buffers, self.n, need)
        if background:
            self._pending = copy
        else:
            self._pending = copy
            self._take_pending()

    def _take_pending(self) -> None:
        """Use the copies :meth:`reserve` made, once they are done."""
        if self._pending is not None:
            self._buffers = self._pending.result()
            self._pending = None
            self._owned = True
            self._expose()

    def buckets(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """High, low and volume of every bucket of ``size`` bars (a power of two > 1), aligned
        on multiples of ``size``; None for other sizes."""
        return self._pyramid.level(size)

    def visible_slice(self, x0: float, x1: float) -> slice:
        """Bar indices whose centre lies inside ``[x0, x1]`` (clipped to the series)."""
        lo = max(0, math.ceil(x0))
        hi = min(self.n, math.floor(x1) + 1)
        return slice(lo, max(lo, hi))

    def price_range(self, x0: float, x1: float) -> tuple[float, float] | None:
        """Lowest low and highest high of the bars visible in ``[x0, x1]``, or None."""
        s = self.visible_slice(x0, x1)
        if s.stop <= s.start:
            return None
        return self.low_high(s.start, s.stop)

    def low_high(self, start: int, stop: int) -> tuple[float, float]:
        """Lowest low and highest high of bars ``start .. stop-1`` (a non-empty range), read
        from the coarsest buckets that fit inside it, so a million bars cost as little as a
        thousand."""
        size = 1 << max(0, (stop - start).bit_length() - 9)  # >= 128 buckets inside
        whole = self.buckets(size) if size > 1 else None
        if whole is None:
            return float(self.low[start:stop].min()), float(self.high[start:stop].max())
        k0 = -(-start // size)
        k1 = stop // size
        a, b = k0 * size, k1 * size
        lows = [whole[1][k0:k1].min(), self.low[start:a].min(initial=np.inf),
                self.low[b:stop].min(initial=np.inf)]
        highs = [whole[0][k0:k1].max(), self.high[start:a].max(initial=-np.inf),
                 self.high[b:stop].max(initial=-np.inf)]
        return float(np.min(lows)), float(np.max(highs))

    def volume_max(self, x0: float, x1: float, *, size: int = 1) -> float:
        """Largest visible volume, summed per bucket of ``size`` bars (as the pane draws it)."""
        s = self.visible_slice(x0, x1)
        if s.stop <= s.start:
            return 0.0
        if size <= 1:
            return float(self.volume[s].max())
        return float(aggregate_ohlcv(self, start=s.start, stop=s.stop, size=size).volume.max())


def aggregate_ohlcv(series: OhlcSeries, *, start: int, stop: int, size: int) -> OhlcBuckets:
    """Aggregate bars ``start .. stop-1`` into OHLC buckets of ``size`` bars.

    Bucket boundaries sit on multiples of ``size`` (counted from bar 0), so a bar always lands
    in the same bucket whatever the span asked for; the first and last buckets may be partial.
    A bucket's open is its first bar's open, its close its last bar's close, its high the max
    of the highs, its low the min of the lows and its volume the sum of the volumes.

    Parameters
    ----------
    series : OhlcSeries
        The bars.
    start, stop : int
        Half-open range of bar indices to cover (clipped to the series).
    size : int
        Bars per bucket (1 returns the bars themselves).

    Returns
    -------
    OhlcBuckets
    """
    start = max(0, int(start))
    stop = min(series.n, int(stop))
    size = max(1, int(size))
    if stop <= start:
        empty = np.empty(0)
        first = np.empty(0, dtype=np.int64)
        return OhlcBuckets(size, first, empty, empty, empty, empty, empty, empty)
    if size == 1:
        first = np.arange(start, stop)
        return OhlcBuckets(
            1, first, first.astype(np.float64),
            series.open[start:stop], series.high[start:stop], series.low[start:stop],
            series.close[start:stop], series.volume[start:stop],
        )
    lo = start - start % size
    first = np.arange(lo, stop, size)
    last = np.minimum(first + size, stop) - 1
    levels = series.buckets(size)
    if levels is not None:  # read the pyramid: cost by buckets, not by bars
        k0 = lo // size
        high, low, volume = (a[k0:k0 + first.shape[0]].copy() for a in levels)
        f = int(first[-1])
        if f + size > stop and stop < series.n:  # the last bucket cut short at ``stop``
            high[-1] = series.high[f:stop].max()
            low[-1] = series.low[f:stop].min()
            volume[-1] = series.volume[f:stop].sum()
        return OhlcBuckets(size, first, (first + last) * 0.5, series.open[first], high, low,
                           series.close[last], volume)
    offsets = first - lo
    return OhlcBuckets(
        size,
        first,
        (first + last) * 0.5,
        series.open[first],
        np.maximum.reduceat(series.high[lo:stop], offsets),
        np.minimum.reduceat(series.low[lo:stop], offsets),
        series.close[last],
        np.add.reduceat(series.volume[lo:stop], offsets),
    )


def _take(b: OhlcBuckets, s: slice) -> OhlcBuckets:
    """Buckets ``s`` of ``b``."""
    return OhlcBuckets(b.size, b.first[s], b.x[s], b.open[s], b.high[s], b.low[s], b.close[s],
                       b.volume[s])


def bucket_size_for(visible_bars: float, pixels: float) -> int:
    """Bars per bucket for ``visible_bars`` bars shown across ``pixels`` pixel columns.

    1 (no aggregation) while at most ``LOD_VISIBLE`` bars are visible and each gets at least
    one pixel column; otherwise the smallest power of two that brings the bars per bucket to
    at least one pixel column, to at most ``LOD_VISIBLE`` visible buckets, and to at most
    ``MAX_ITEMS`` buckets over the whole cached span.

    Parameters
    ----------
    visible_bars : float
        Width of the visible x range, in bars.
    pixels : float
        Width of the plot area in pixels.

    Returns
    -------
    int
    """
    span = visible_bars * (1.0 + 2.0 * CACHE_MARGIN)
    need = max(visible_bars / max(pixels, 1.0), visible_bars / LOD_VISIBLE, span / MAX_ITEMS)
    if need <= 1.0:
        return 1
    return 1 << math.ceil(math.log2(need) - 1e-9)


def _rects(left: np.ndarray, width: float, y0: np.ndarray, y1: np.ndarray) -> list:
    """``QRectF`` objects for ``QPainter.drawRects`` (built once per picture, not per paint)."""
    rect = QtCore.QRectF
    return [rect(x, a, width, b - a)
            for x, a, b in zip(left.tolist(), y0.tolist(), y1.tolist(), strict=True)]


def _segment_path(x: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> QtGui.QPainterPath:
    """One vertical segment per entry, as a single path."""
    n = x.shape[0]
    if n == 0:
        return QtGui.QPainterPath()
    px = np.repeat(x, 2)
    py = np.empty(2 * n)
    py[0::2] = y0
    py[1::2] = y1
    return pg.arrayToQPath(px, py, connect="pairs", finiteCheck=False)


class _LodItem(pg.GraphicsObject):
    """Base for items that record a level-of-detail picture of an :class:`OhlcSeries`."""

    def __init__(self, *, up_color: str = UP_COLOR, down_color: str = DOWN_COLOR) -> None:
        super().__init__()
        self._series: OhlcSeries | None = None
        self._picture = QtGui.QPicture()
        # Where the picture reaches the data's end, its last buckets are recorded apart (the
        # tail, from bar _tail_first on): an appended bar re-records the tail only.
        self._tail = QtGui.QPicture()
        self._tail_first: int | None = None
        self._main_bounds = QtCore.QRectF()
        self._main_x = np.empty(0)
        self._bounds = QtCore.QRectF()
        self._cache_lo = 0.0  # x span covered by the picture
        self._cache_hi = -1.0
        self._size = 0  # bars per bucket of the picture, 0 = nothing cached
        self._wide = False  # the picture draws bodies (bars are wide enough on screen)
        self._x = np.empty(0)  # bucket centres of the picture, for counting
        self._up_color = QtGui.QColor(up_color)
        self._down_color = QtGui.QColor(down_color)
        self.rebuilds = 0  # pictures recorded so far (for tests and the bench)

    # -- public ------------------------------------------------------------------------------
    def set_series(self, series: OhlcSeries | None) -> None:
        """Show ``series`` (or nothing) and record a picture for the current view."""
        self._series = series
        self._size = 0
        self.refresh()

    def bars_appended(self, old_n: int) -> None:
        """The series grew past its first ``old_n`` bars (:meth:`OhlcSeries.append`): the
        picture stays valid up to the bucket that held the last old bar, and is recorded
        again when the view reaches beyond that (now or on a later pan)."""
        series = self._series
        if series is None or self._size <= 0:
            self.refresh()
            return
        if self._cache_hi == math.inf:
            if self._tail_first is not None:
                tail = aggregate_ohlcv(series, start=self._tail_first, stop=series.n,
                                       size=self._size)
                if len(tail) <= TAIL_MAX:
                    self._set_tail(tail)
                    self.refresh()  # the view may still ask for another picture
                    return
            self._cache_hi = old_n - old_n % self._size - 0.5
        self.refresh()

    @property
    def bucket_size(self) -> int:
        """Bars per drawn candle (1 when every bar is drawn on its own)."""
        return self._size

    @property
    def cached_items(self) -> int:
        """Candles (or buckets) recorded in the cached picture, visible or not."""
        return int(self._x.shape[0])

    def items_in(self, x0: float, x1: float) -> int:
        """Candles (or buckets) of the picture whose centre lies inside ``[x0, x1]``."""
        return int(np.searchsorted(self._x, x1, side="right") - np.searchsorted(self._x, x0))

    def refresh(self) -> None:
        """Re-record the picture if the view left the cached span or needs another bucket size."""
        vb = self.getViewBox()
        series = self._series
        if series is None or series.n == 0:
            if self._size != -1:
                self._record_empty()
            return
        if vb is None:
            x0, x1, pixels = 0.0, float(series.n - 1), 1000.0
        else:
            (x0, x1), _ = vb.viewRange()
            pixels = vb.width()
        width = max(x1 - x0, 1.0)
        size = bucket_size_for(width, pixels)
        # Bodies (rectangles) only where they are wide enough to read; thinner candles are
        # drawn as their high-low line, which is all a pixel column can show anyway.
        wide = size * BODY_FRACTION * max(pixels, 1.0) / width >= MIN_BODY_PX
        lo_needed = max(x0, -0.5)
        hi_needed = min(x1, series.n - 0.5)
        if (size == self._size and wide == self._wide
                and self._cache_lo <= lo_needed and hi_needed <= self._cache_hi):
            return
        self._wide = wide
        margin = width * CACHE_MARGIN
        start = max(0, math.floor(x0 - margin))
        stop = min(series.n, math.ceil(x1 + margin) + 1)
        if stop <= start:  # the view is beside the data: cache the nearest edge
            if x1 < 0:
                start, stop = 0, min(series.n, size)
            else:
                start, stop = max(0, series.n - size), series.n
        self._record(aggregate_ohlcv(series, start=start, stop=stop, size=size),
                     to_end=stop == series.n)
        # The picture is valid over the bars it holds; a view reaching past the data's ends is
        # covered too when the picture holds those ends.
        self._cache_lo = -math.inf if start == 0 else start - 0.5
        self._cache_hi = math.inf if stop == series.n else stop - 0.5
        self._size = size

    # -- pyqtgraph hooks ---------------------------------------------------------------------
    def viewRangeChanged(self) -> None:
        self.refresh()

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        self.refresh()  # a resize changes the pixels per bar

    def setExportMode(self, export, opts=None) -> None:
        """pyqtgraph's export hook (also called by :meth:`PriceChart.exporting`): while
        exporting, :meth:`paint` draws the bars in view straight onto the painter instead of
        replaying the cached picture, which spans wider than the view and which a vector
        device (SVG) cannot clip."""
        super().setExportMode(export, opts)
        self.update()

    def paint(self, p, *args) -> None:
        if self._exportOpts is not False:
            self._paint_in_view(p)
            return
        p.drawPicture(0, 0, self._picture)
        if self._tail_first is not None:
            p.drawPicture(0, 0, self._tail)

    def buckets_in_view(self) -> OhlcBuckets | None:
        """The candles (or buckets, at the current level of detail) whose centre is in view."""
        series, vb = self._series, self.getViewBox()
        if series is None or series.n == 0 or vb is None:
            return None
        (x0, x1), _ = vb.viewRange()
        size = max(1, self._size)
        s = series.visible_slice(x0, x1)
        buckets = aggregate_ohlcv(series, start=s.start, stop=s.stop, size=size)
        inside = (buckets.x >= x0) & (buckets.x <= x1)
        if inside.all():
            return buckets
        return OhlcBuckets(size, buckets.first[inside], buckets.x[inside], buckets.open[inside],
                           buckets.high[inside], buckets.low[inside], buckets.close[inside],
                           buckets.volume[inside])

    def _paint_in_view(self, p: QtGui.QPainter) -> None:
        buckets = self.buckets_in_view()
        if buckets is not None and len(buckets):
            p.save()
            try:
                self._draw(p, buckets)
            finally:
                p.restore()

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._bounds)

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        series = self._series
        if series is None or series.n == 0:
            return None
        if ax == 0:
            return (-0.5, series.n - 0.5)
        return self._y_bounds(series)

    # -- recording ---------------------------------------------------------------------------
    def _record_empty(self) -> None:
        self.prepareGeometryChange()
        self._picture = QtGui.QPicture()
        self._tail = QtGui.QPicture()
        self._tail_first = None
        self._bounds = QtCore.QRectF()
        self._x = np.empty(0)
        self._size = -1
        self._cache_lo, self._cache_hi = 0.0, -1.0
        self.update()

    def _record(self, buckets: OhlcBuckets, *, to_end: bool = False) -> None:
        """Record ``buckets``; with ``to_end`` (they end with the data's last bar) the last
        bucket goes to the tail picture."""
        split = len(buckets) - 1 if to_end and len(buckets) > 1 else len(buckets)
        main = _take(buckets, slice(0, split))
        self._picture, self._main_bounds = self._picture_of(main)
        self._main_x = np.ascontiguousarray(main.x)
        self._tail_first = int(buckets.first[split]) if split < len(buckets) else None
        self._set_tail(_take(buckets, slice(split, None)))
        self.rebuilds += 1

    def _set_tail(self, tail: OhlcBuckets) -> None:
        """Record the tail picture (the buckets from ``_tail_first`` on)."""
        self.prepareGeometryChange()
        if len(tail):
            self._tail, bounds = self._picture_of(tail)
            self._bounds = (bounds if self._main_bounds.isNull()
                            else self._main_bounds.united(bounds))
            self._x = np.concatenate([self._main_x, tail.x])
        else:
            self._tail = QtGui.QPicture()
            self._bounds = QtCore.QRectF(self._main_bounds)
            self._x = self._main_x
        self.update()

    def _picture_of(self, buckets: OhlcBuckets) -> tuple[QtGui.QPicture, QtCore.QRectF]:
        picture = QtGui.QPicture()
        painter = QtGui.QPainter(picture)
        try:
            bounds = self._draw(painter, buckets)
        finally:
            painter.end()
        return picture, bounds

    def _draw(self, painter: QtGui.QPainter, buckets: OhlcBuckets) -> QtCore.QRectF:
        raise NotImplementedError

    def _y_bounds(self, series: OhlcSeries) -> tuple[float, float]:
        raise NotImplementedError

    def _pen(self, color: QtGui.QColor) -> QtGui.QPen:
        pen = QtGui.QPen(color)
        pen.setCosmetic(True)
        pen.setWidth(1)
        return pen


class CandleItem(_LodItem):
    """Candlesticks of an :class:`OhlcSeries` on an integer bar-index x axis.

    Wicks are 1-pixel cosmetic lines, bodies filled rectangles outlined in the same colour
    (so a doji still shows). Rising bars (close >= open) use ``up_color``.
    """

    def _draw(self, painter: QtGui.QPainter, b: OhlcBuckets) -> QtCore.QRectF:
        if len(b) == 0:
            return QtCore.QRectF()
        width = BODY_FRACTION * b.size
        up = b.close >= b.open
        for mask, color in ((up, self._up_color), (~up, self._down_color)):
            if not mask.any():
                continue
            x = b.x[mask]
            painter.setPen(self._pen(color))
            painter.drawPath(_segment_path(x, b.low[mask], b.high[mask]))
            if self._wide:
                # Filled rectangles without an outline: the raster engine's fastest shape
                # (a path of many rectangles fills ~10x slower). A doji shows as its wick.
                painter.setPen(QtCore.Qt.PenStyle.NoPen)
                painter.setBrush(QtGui.QBrush(color))
                painter.drawRects(_rects(x - 0.5 * width, width, b.open[mask], b.close[mask]))
        lo = float(b.low.min())
        hi = float(b.high.max())
        x0 = float(b.x[0]) - 0.5 * b.size
        x1 = float(b.x[-1]) + 0.5 * b.size
        return QtCore.QRectF(x0, lo, x1 - x0, max(hi - lo, 1e-12))

    def _y_bounds(self, series: OhlcSeries) -> tuple[float, float]:
        return series.low_high(0, series.n)


class VolumeItem(_LodItem):
    """Volume bars (summed per bucket) with the same level of detail as :class:`CandleItem`.

    Colours are opaque (``shade`` of the way from the background to the candle colour), as
    blending thousands of bars costs more than it shows.
    """

    def __init__(self, *, up_color: str = UP_COLOR, down_color: str = DOWN_COLOR,
                 background: str = "#000000", shade: float = 0.6) -> None:
        self._background = QtGui.QColor(background)
        self._shade = shade
        super().__init__(up_color=up_color, down_color=down_color)

    def set_background(self, color: str | QtGui.QColor) -> None:
        """The colour behind the bars (the bars are mixed toward it)."""
        self._background = QtGui.QColor(color)
        self._size = 0
        self.refresh()

    def _mix(self, color: QtGui.QColor) -> QtGui.QColor:
        a, bg = self._shade, self._background
        return QtGui.QColor(round(a * color.red() + (1 - a) * bg.red()),
                            round(a * color.green() + (1 - a) * bg.green()),
                            round(a * color.blue() + (1 - a) * bg.blue()))

    def _draw(self, painter: QtGui.QPainter, b: OhlcBuckets) -> QtCore.QRectF:
        if len(b) == 0:
            return QtCore.QRectF()
        width = BODY_FRACTION * b.size
        up = b.close >= b.open
        for mask, base in ((up, self._up_color), (~up, self._down_color)):
            if not mask.any():
                continue
            color = self._mix(base)
            v = b.volume[mask]
            if self._wide:
                painter.setPen(QtCore.Qt.PenStyle.NoPen)
                painter.setBrush(QtGui.QBrush(color))
                painter.drawRects(_rects(b.x[mask] - 0.5 * width, width, np.zeros_like(v), v))
            else:  # one pixel column per bucket: a line is the bar
                painter.setPen(self._pen(color))
                painter.drawPath(_segment_path(b.x[mask], np.zeros_like(v), v))
        x0 = float(b.x[0]) - 0.5 * b.size
        x1 = float(b.x[-1]) + 0.5 * b.size
        return QtCore.QRectF(x0, 0.0, x1 - x0, max(float(b.volume.max()), 1e-12))

    def _y_bounds(self, series: OhlcSeries) -> tuple[float, float]:
        return 0.0, float(series.volume.max())
