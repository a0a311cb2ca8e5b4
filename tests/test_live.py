"""Live paper trading: ticks -> bars (against pandas' resample), the reconnecting feed (a fake
client replaying a recorded stream, dropping twice), the append-only decision log, and
`sandbox live` end to end with the fake client. Nothing here touches the network."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox import constants as C
from sandbox import live
from sandbox.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "live_stream.json"
SYMBOL = "AAPL"


@pytest.fixture(scope="module")
def messages():
    return json.loads(FIXTURE.read_text())["messages"]


# --- an independent reading of the stream: which ticks a live bar can hold -----------------


def accepted_ticks(messages, rule):
    """The stream's AAPL ticks a live feed can use, by the rule stated in the issue: a tick
    whose bar ended before a newer bar was seen arrived too late; exact repeats count once."""
    rows, newest = [], None
    for m in messages:
        if "error" in m or m.get("id") != SYMBOL:
            continue
        t = pd.Timestamp(int(m["time"]), unit="ms", tz="UTC")
        start = t.floor(rule)
        if newest is not None and start < newest:
            continue
        newest = start if newest is None else max(newest, start)
        rows.append((t, float(m["price"]), int(m["day_volume"])))
    frame = pd.DataFrame(rows, columns=["time", "price", "day_volume"]).drop_duplicates()
    return frame.set_index("time").sort_index(kind="stable")


def expected_bars(messages, rule):
    """OHLC from pandas' resample of the accepted ticks; volume by differencing the cumulative
    day volume in time order (a drop is a new day that counts from zero; the first tick of the
    stream only sets the level)."""
    ticks = accepted_ticks(messages, rule)
    ohlc = ticks["price"].resample(rule).ohlc().dropna()
    dv = ticks["day_volume"]
    step = dv.diff()
    step[step < 0] = dv[step < 0]
    step.iloc[0] = 0
    ohlc["volume"] = step.resample(rule).sum().reindex(ohlc.index).astype(float)
    return ohlc


def build(messages, interval, **kw):
    builder = live.TickBarBuilder(interval, **kw)
    bars = []
    for m in messages:
        tick = live.parse_message(m, SYMBOL)
        if tick is not None:
            bars += builder.add(tick)
    return builder, bars


def as_frame(bars):
    return pd.DataFrame({"open": [b.open for b in bars], "high": [b.high for b in bars],
                         "low": [b.low for b in bars], "close": [b.close for b in bars],
                         "volume": [b.volume for b in bars]},
                        index=pd.DatetimeIndex([b.start for b in bars], name="time"))


# --- messages ---------------------------------------------------------------------------------


def test_the_fixture_has_the_shape_yfinances_decoder_gives(messages):
    """Each message re-encoded as the stream's protobuf and decoded by yfinance's own client
    code comes back identical: the fixture holds what listen() hands to its handler."""
    from yfinance.live import BaseWebSocket
    from yfinance.pricing_pb2 import PricingData

    decoder = BaseWebSocket(verbose=False)
    checked = 0
    for m in messages:
        if "error" in m:
            continue
        fields = {k: (int(v) if isinstance(v, str) and k not in ("id", "currency", "exchange")
                      else v) for k, v in m.items()}
        raw = base64.b64encode(PricingData(**fields).SerializeToString()).decode()
        assert decoder._decode_message(raw) == m
        checked += 1
    assert checked == len(messages) - 1
    assert isinstance(messages[0]["time"], str) and isinstance(messages[0]["day_volume"], str)


def test_a_message_becomes_a_tick_and_others_are_ignored(messages):
    first = messages[0]
    tick = live.parse_message(first, SYMBOL)
    assert tick.time == pd.Timestamp(int(first["time"]) * 1_000_000, tz="UTC")
    assert tick.price == first["price"] and tick.day_volume == int(first["day_volume"])
    assert live.parse_message({"error": "bad", "raw_base64": "xx"}, SYMBOL) is None
    assert live.parse_message({**first, "id": "MSFT"}, SYMBOL) is None
    assert live.parse_message({k: v for k, v in first.items() if k != "price"}, SYMBOL) is None
    no_volume = live.parse_message({k: v for k, v in first.items() if k != "day_volume"})
    assert no_volume is not None and no_volume.day_volume is None


def test_prints_outside_the_regular_session_can_be_left_out(messages):
    first = messages[0]
    pre = {k: v for k, v in first.items() if k != "market_hours"}  # 0: left out of the dict
    post = {**first, "market_hours": 2}
    for m in (pre, post):
        assert live.parse_message(m, SYMBOL) is not None
        assert live.parse_message(m, SYMBOL, regular_only=True) is None
    assert live.parse_message(first, SYMBOL, regular_only=True) is not None
    assert not live.parse_message(post, SYMBOL).regular and live.parse_message(first).regular


def test_the_first_regular_bar_counts_no_pre_market_volume():
    """Pre-market prints set the level the day's first regular bar counts from."""
    def msg(hhmmss, price, dv, hours):
        m = {"id": SYMBOL, "price": price, "day_volume": str(dv), "market_hours": hours,
             "time": str(pd.Timestamp(f"2026-11-27 {hhmmss}", tz="UTC").value // 10**6)}
        return m if hours else {k: v for k, v in m.items() if k != "market_hours"}

    stream = [msg("21:05:00", 231.0, 50_000_000, 2),  # the evening before: post-market
              msg("09:00:00", 231.5, 20_000, 0), msg("14:29:50", 231.7, 90_000, 0),
              msg("14:30:01", 232.0, 95_000, 1), msg("14:30:40", 232.2, 96_000, 1),
              msg("14:31:02", 232.1, 97_500, 1)]
    stream[0]["time"] = str(pd.Timestamp("2026-11-26 21:05", tz="UTC").value // 10**6)
    bars = []
    fake = FakeStream([stream], drop_kinds=[])
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=bars.append, client_factory=fake,
                         close_after_s=None, regular_only=True)
    feed.start()
    assert fake.delivered.wait(5)
    feed.stop()
    (bar,) = bars
    assert bar.start == pd.Timestamp("2026-11-27 14:30", tz="UTC")
    assert (bar.open, bar.close, bar.ticks) == (232.0, 232.2, 2)
    assert bar.volume == 96_000 - 90_000
    assert feed.builder.current.volume == 1_500


# --- ticks -> bars ----------------------------------------------------------------------------


@pytest.mark.parametrize(("interval", "rule"), [("1m", "1min"), ("2m", "2min"), ("5m", "5min")])
def test_bars_equal_pandas_resample_ohlc_of_the_same_ticks(messages, interval, rule):
    builder, bars = build(messages, interval)
    bars += builder.flush(pd.Timestamp("2100-01-01", tz="UTC"))
    got = as_frame(bars)
    want = expected_bars(messages, rule)
    pd.testing.assert_frame_equal(got, want, check_freq=False, check_names=False)


def test_the_recorded_stream_gives_eleven_one_minute_bars_around_a_gap(messages):
    builder, bars = build(messages, "1m")
    assert builder.current is not None  # the last minute is still open
    starts = [b.start for b in bars] + [builder.current.start]
    day1 = pd.date_range("2026-11-25 20:55", periods=5, freq="1min", tz="UTC")
    day2 = pd.DatetimeIndex(["2026-11-27 14:30", "2026-11-27 14:31", "2026-11-27 14:32",
                             "2026-11-27 14:34", "2026-11-27 14:35", "2026-11-27 14:36"],
                            tz="UTC")  # no tick at 14:33
    assert starts == list(day1) + list(day2)
    assert builder.late == 2 and builder.repeats == 2  # as the fixture was recorded
    assert [b.partial for b in bars] == [True] + [False] * (len(bars) - 1)


def test_volume_restarts_with_the_day_and_is_never_negative(messages):
    _, bars = build(messages, "1m")
    assert all(b.volume >= 0 for b in bars)
    first_of_day2 = next(b for b in bars if b.start.day == 27)
    # day_volume restarts from zero on 2026-11-27: the bar's volume is the last figure in it
    in_bar = [int(m["day_volume"]) for m in messages
              if m.get("id") == SYMBOL and "error" not in m
              and pd.Timestamp(int(m["time"]), unit="ms", tz="UTC").floor("1min")
              == first_of_day2.start]
    assert first_of_day2.volume == max(in_bar)


def test_by_hand_a_bar_from_disordered_ticks():
    t0 = pd.Timestamp("2026-01-05 15:00", tz="UTC")
    ticks = [live.Tick(t0 + pd.Timedelta(seconds=s), p, v) for s, p, v in
             [(10, 10.0, 100), (5, 10.5, 90), (40, 12.0, 160), (20, 9.0, 130),
              (40, 12.0, 160), (59, 11.0, 170), (65, 11.5, 50), (30, 99.0, 140)]]
    builder = live.TickBarBuilder("1m")
    closed = [bar for tick in ticks for bar in builder.add(tick)]
    assert len(closed) == 1
    bar = closed[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (10.5, 12.0, 9.0, 11.0)
    assert bar.volume == 70.0  # 170 - 100: the first tick only sets the level
    assert builder.current.volume == 50.0  # a drop later in time: a new day
    assert builder.late == 1 and builder.repeats == 1  # the 99.0 tick came after 15:01 began


def test_a_small_drop_of_the_day_volume_within_a_day_adds_nothing():
    t0 = pd.Timestamp("2026-01-05 15:00", tz="UTC")
    builder = live.TickBarBuilder("1m")
    for s, v in [(1, 1000), (2, 1010), (3, 990), (4, 1015), (5, 400), (6, 420)]:
        builder.add(live.Tick(t0 + pd.Timedelta(seconds=s), 10.0, v))
    # +10, correction (0), +5 over the kept level 1010, then a fall below half: a restart (+400)
    assert builder.current.volume == 10 + 5 + 400 + 20


def test_a_quiet_bar_closes_on_the_timer_and_its_stragglers_are_ignored():
    t0 = pd.Timestamp("2026-01-05 15:00", tz="UTC")
    builder = live.TickBarBuilder("1m")
    builder.add(live.Tick(t0 + pd.Timedelta(seconds=5), 10.0, 1))
    grace = pd.Timedelta(seconds=10)
    assert builder.flush(t0 + pd.Timedelta(seconds=69), grace=grace) == []
    (bar,) = builder.flush(t0 + pd.Timedelta(seconds=70), grace=grace)
    assert bar.start == t0 and bar.close == 10.0
    assert builder.add(live.Tick(t0 + pd.Timedelta(seconds=50), 11.0, 2)) == []
    assert builder.late == 1


def test_bars_already_logged_are_not_built_again(messages):
    _, all_bars = build(messages, "1m")
    _, later = build(messages, "1m", after=all_bars[2].start)
    assert [b.start for b in later] == [b.start for b in all_bars[3:]]


def test_daily_bars_are_cut_at_the_exchanges_midnight():
    builder = live.TickBarBuilder("1d", tz="America/New_York")
    late_evening_utc = pd.Timestamp("2026-01-06 03:00", tz="UTC")  # 22:00 on the 5th in NY
    builder.add(live.Tick(late_evening_utc, 10.0, None))
    assert builder.current.start == pd.Timestamp("2026-01-05", tz="America/New_York")


@pytest.mark.parametrize("interval", ["1wk", "1mo", "5d"])
def test_bar_sizes_of_no_fixed_length_are_refused(interval):
    with pytest.raises(ConfigError, match="live bars"):
        live.TickBarBuilder(interval)


# --- back-off -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter_below_it():
    b = live.Backoff(base=1.0, factor=2.0, cap=20.0, jitter=0.25)
    rng = random.Random(4)
    raw = [1, 2, 4, 8, 16, 20, 20]
    for attempt, top in enumerate(raw, start=1):
        d = b.delay(attempt, rng)
        assert 0.75 * top <= d <= top
    assert live.Backoff(jitter=0.0).delay(3) == 4.0


# --- the feed, with a fake client -----------------------------------------------------------


class FakeStream:
    """Clients that replay the recorded stream in pieces: each connection gets the next piece
    and then drops (raising, as yfinance does with exceptions shown, or just returning, as
    it does with them hidden); ``refuse`` connections fail before subscribing. The last
    connection stays open until closed."""

    def __init__(self, pieces, *, drop_kinds, refuse=()):
        self.pieces, self.drop_kinds, self.refuse = list(pieces), list(drop_kinds), set(refuse)
        self.made = 0
        self.delivered = threading.Event()
        self.subscribed = []

    def __call__(self):
        self.made += 1
        if self.made in self.refuse:
            raise OSError("connection refused")
        return _FakeClient(self, self.pieces.pop(0), self.drop_kinds.pop(0)
                           if self.drop_kinds else None)


class _FakeClient:
    def __init__(self, stream, piece, drop):
        self.stream, self.piece, self.drop = stream, piece, drop
        self.closed = threading.Event()

    def subscribe(self, symbols):
        self.stream.subscribed.append(list(symbols))

    def listen(self, handler):
        for m in self.piece:
            handler(dict(m))
        if self.drop == "raise":
            raise ConnectionError("no close frame received or sent")
        if self.drop == "return":
            return
        self.stream.delivered.set()
        self.closed.wait(10)

    def close(self):
        self.closed.set()


def test_two_drops_lose_no_closed_bar_and_duplicate_none(messages):
    n = len(messages)
    # the second and third connections resend the last few messages before the drop
    pieces = [messages[:25], messages[21:50], messages[44:]]
    stream = FakeStream(pieces, drop_kinds=["raise", "return"], refuse={2})
    bars, states, sleeps = [], [], []
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=bars.append, on_state=states.append,
                         client_factory=stream, sleep=sleeps.append, close_after_s=None,
                         backoff=live.Backoff(base=2.0, cap=30.0, jitter=0.5),
                         rng=random.Random(1))
    feed.start()
    assert stream.delivered.wait(10)
    feed.stop()
    assert n == len(messages)
    want = expected_bars(messages, "1min").iloc[:-1]  # the last minute is still open
    pd.testing.assert_frame_equal(as_frame(bars), want, check_freq=False, check_names=False)
    assert len({b.start for b in bars}) == len(bars)
    assert stream.made == 4 and feed.connections == 3
    assert stream.subscribed == [[SYMBOL]] * 3
    reconnecting = [s for s in states if s.status == live.RECONNECTING]
    # drop 1 -> attempt 1; the refused connection -> attempt 2; drop 2 after ticks -> attempt 1
    assert [s.attempt for s in reconnecting] == [1, 2, 1]
    assert [s.retry_in_s for s in reconnecting] == sleeps
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0 and 1.0 <= sleeps[2] <= 2.0
    assert "no close frame" in reconnecting[0].reason
    assert "refused" in reconnecting[1].reason
    assert reconnecting[2].reason == "connection closed"
    assert states[-1].status == live.STOPPED and feed.stopped


def test_each_tick_reports_the_forming_bar(messages):
    seen = []
    stream = FakeStream([messages[:12]], drop_kinds=[])
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=lambda bar: None, client_factory=stream,
                         on_tick=lambda tick, bar: seen.append((tick, bar)), close_after_s=None)
    feed.start()
    assert stream.delivered.wait(5)
    feed.stop()
    ticks = [t for t in (live.parse_message(m, SYMBOL) for m in messages[:12]) if t is not None]
    assert [t for t, _ in seen] == ticks
    for tick, bar in seen:
        assert bar.start == tick.time.floor("1min") and bar.low <= tick.price <= bar.high
    first_minute = [t.price for t in ticks if t.time.floor("1min") == ticks[0].time.floor("1min")]
    last_of_first = max(i for i, (t, _) in enumerate(seen)
                        if t.time.floor("1min") == ticks[0].time.floor("1min"))
    assert seen[last_of_first][1].high == max(first_minute)
    assert seen[0][1] is not seen[1][1]  # copies: the feed keeps building its own


def test_stop_cuts_a_back_off_wait_short():
    def refuse():
        raise OSError("network is unreachable")

    states = []
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=lambda bar: None, on_state=states.append,
                         client_factory=refuse, backoff=live.Backoff(base=60.0, jitter=0.0),
                         close_after_s=None)
    feed.start()
    deadline = time.monotonic() + 5
    while feed.state.status != live.RECONNECTING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.state.describe().startswith("reconnecting (attempt 1, next try in 60.0 s)")
    began = time.monotonic()
    feed.stop()
    assert time.monotonic() - began < 2.0
    assert feed.stopped and states[-1].status == live.STOPPED


def test_a_failing_decision_stops_the_feed_and_is_kept(messages):
    stream = FakeStream([messages], drop_kinds=[])

    def on_bar(bar):
        raise ValueError("model exploded")

    feed = live.LiveFeed(SYMBOL, "1m", on_bar=on_bar, client_factory=stream, close_after_s=None)
    feed.start()
    deadline = time.monotonic() + 5
    while not feed.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.stopped
    assert isinstance(feed.error, ValueError)
    assert feed.state.status == live.STOPPED and "model exploded" in feed.state.reason


def test_the_gap_since_the_last_tick_follows_the_clock(messages):
    now = [1000.0]
    stream = FakeStream([messages[:3]], drop_kinds=[])
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=lambda bar: None, client_factory=stream,
                         clock=lambda: now[0], close_after_s=None)
    assert feed.gap_s() is None
    feed.start()
    assert stream.delivered.wait(5)
    now[0] = 1042.5
    assert feed.gap_s() == 42.5
    feed.stop()
    state = live.FeedState(live.RECONNECTING, attempt=2, retry_in_s=3.84, gap_s=feed.gap_s(),
                           reason="connection closed")
    assert state.describe() == ("reconnecting (attempt 2, next try in 3.8 s); last tick 42 s "
                                "ago: connection closed")


def test_the_timer_closes_a_bar_in_a_quiet_market_by_the_streams_time(messages):
    """The bar closes once the stream has been silent past its end plus the grace, counted
    from the newest tick's own time: a computer clock days away from the feed's changes
    nothing."""
    first = live.parse_message(messages[0], SYMBOL)
    to_end = (first.time.floor("1min") + pd.Timedelta(minutes=1) - first.time).total_seconds()
    now = [5000.0]  # the computer's clock, unrelated to the tick times
    bars = []
    stream = FakeStream([messages[:1]], drop_kinds=[])
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=bars.append, client_factory=stream,
                         clock=lambda: now[0], close_after_s=5.0)
    feed.flush()  # no tick yet: nothing to close
    feed.start()
    assert stream.delivered.wait(5)
    now[0] += to_end + 4.9
    feed.flush()
    assert bars == []
    now[0] += 0.1
    feed.flush()
    assert [b.start for b in bars] == [first.time.floor("1min")]
    feed.stop()


def test_the_subscription_is_renewed_while_connected(messages):
    now = [100.0]
    stream = FakeStream([messages[:2]], drop_kinds=[])
    feed = live.LiveFeed(SYMBOL, "1m", on_bar=lambda bar: None, client_factory=stream,
                         clock=lambda: now[0], close_after_s=None, resubscribe_s=15.0)
    feed.start()
    assert stream.delivered.wait(5)
    time.sleep(1.2)
    assert stream.subscribed == [[SYMBOL]]  # not yet due
    now[0] += 15.0
    deadline = time.monotonic() + 5
    while len(stream.subscribed) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    feed.stop()
    assert stream.subscribed == [[SYMBOL], [SYMBOL]]


# --- the decision log -----------------------------------------------------------------------


def _row(i):
    return {C.INDEX_NAME: pd.Timestamp("2026-01-05 15:00", tz="UTC") + pd.Timedelta(minutes=i),
            C.OPEN: 100.0 + i, C.HIGH: 101.0 + i, C.LOW: 99.0 + i, C.CLOSE: 100.1 + i / 3,
            C.VOLUME: 1000.0 * i, C.PREDICTED_RETURN: 1e-4 * i - 2.2e-4, C.POSITION: float(i % 2)}


def test_the_log_has_one_header_and_every_row_round_trips(tmp_path, monkeypatch):
    path = tmp_path / "live.csv"
    synced = []
    real_fsync = live.os.fsync
    monkeypatch.setattr(live.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with live.DecisionLog(path) as book:
        before = len(synced)
        for i in range(3):
            book.append(_row(i))
        assert len(synced) - before == 3  # one fsync per bar
    with live.DecisionLog(path) as book:
        assert book.rows == 3 and book.last_date == _row(2)[C.INDEX_NAME]
        book.append(_row(3))
    text = path.read_text()
    assert text.count("date,open") == 1
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(live.LOG_COLUMNS)
    for i in range(4):
        for key in (C.OPEN, C.CLOSE, C.VOLUME, C.PREDICTED_RETURN, C.POSITION):
            assert frame[key][i] == _row(i)[key]  # exact: floats written in full
        assert pd.Timestamp(frame[C.INDEX_NAME][i]) == _row(i)[C.INDEX_NAME]


def test_a_torn_last_line_from_a_crash_is_dropped(tmp_path):
    path = tmp_path / "live.csv"
    with live.DecisionLog(path) as book:
        book.append(_row(0))
        book.append(_row(1))
    with open(path, "ab") as f:
        f.write(b"2026-01-05T15:02:00+00:00,102.0,103")  # the power went out mid-line
    with live.DecisionLog(path) as book:
        assert book.dropped == "2026-01-05T15:02:00+00:00,102.0,103"
        assert book.rows == 2 and book.last_date == _row(1)[C.INDEX_NAME]
        book.append(_row(2))
    frame = pd.read_csv(path)
    assert len(frame) == 3 and frame[C.CLOSE].tolist() == [_row(i)[C.CLOSE] for i in range(3)]
    assert path.read_bytes().endswith(b"\n")


def test_a_log_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("date,close\n2026-01-05,1.0\n")
    with pytest.raises(ConfigError, match=r"other\.csv: not a decision log"):
        live.DecisionLog(path).open()
    assert path.read_text() == "date,close\n2026-01-05,1.0\n"


# --- sandbox live, end to end with the fake client ------------------------------------------


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from test_features import make_prices

    from sandbox import export, pipeline
    from sandbox.config import ModelConfig, RunConfig, TrainConfig

    config = RunConfig(model=ModelConfig(window=10, hidden=8, layers=1),
                       train=TrainConfig(epochs=1, threads=1))
    result = pipeline.run(config, prices=make_prices(300, seed=5))
    out = tmp_path_factory.mktemp("bundle")
    export.write_run(result, out)
    return out


def _minute_history(end, n=200):
    rng = np.random.default_rng(0)
    close = 231.0 * np.exp(np.cumsum(rng.normal(0, 2e-4, n)))
    index = pd.date_range(end=end, periods=n, freq="1min", tz="America/New_York", name="date")
    return pd.DataFrame({C.OPEN: close * 0.9999, C.HIGH: close * 1.0002, C.LOW: close * 0.9998,
                         C.CLOSE: close, C.VOLUME: 1000.0}, index=index)


def _interrupting_stream(messages):
    """One connection that replays the stream, then presses Ctrl+C."""
    stream = FakeStream([messages], drop_kinds=[])

    def press_ctrl_c():
        assert stream.delivered.wait(20)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    return stream


def test_cli_live_logs_each_closed_bar_and_stops_on_ctrl_c(bundle_dir, messages, tmp_path,
                                                         monkeypatch, capsys):
    from sandbox import cli

    history = _minute_history(pd.Timestamp("2026-11-25 15:54", tz="America/New_York"))
    monkeypatch.setattr(live, "_history", lambda symbol, interval, window: history)
    log = tmp_path / "aapl.csv"
    argv = ["live", "--model", str(bundle_dir), "--ticker", "aapl", "--interval", "1m",
            "--log", str(log)]
    monkeypatch.setattr(live, "CLIENT_FACTORY", _interrupting_stream(messages))
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "paper trading only: nothing here places an order" in out
    assert "[connecting]\n[live]\n" in out and "[stopped]" in out
    frame = pd.read_csv(log)
    want = expected_bars(messages, "1min").iloc[:-1]
    assert len(frame) == len(want) == 10
    np.testing.assert_array_equal(frame[C.CLOSE].to_numpy(), want["close"].to_numpy())
    assert frame[C.PREDICTED_RETURN].notna().all()
    assert set(frame[C.POSITION]) <= {0.0, 1.0}
    assert frame["partial"].tolist() == [1] + [0] * 9
    gaps = [line for line in out.splitlines() if line.startswith("note: no bars")]
    assert gaps == ["note: no bars from 2026-11-25T16:00:00-05:00 to 2026-11-27T09:30:00-05:00 "
                    "(the market was closed, or no trade reached the stream); the model sees "
                    "this bar next",
                    "note: no bars from 2026-11-27T09:33:00-05:00 to 2026-11-27T09:34:00-05:00 "
                    "(the market was closed, or no trade reached the stream); the model sees "
                    "this bar next"]

    # a restart on the same log replays the same stream: nothing is logged twice
    monkeypatch.setattr(live, "CLIENT_FACTORY", _interrupting_stream(messages))
    assert cli.main(argv) == 0
    assert "after 10 logged bars" in capsys.readouterr().out
    assert len(pd.read_csv(log)) == 10


def test_cli_live_predictions_use_bars_up_to_their_close_only(bundle_dir, messages, tmp_path,
                                                            monkeypatch, capsys):
    """Each logged prediction equals the bundle's batch prediction on history plus the bars
    logged so far (nothing later)."""
    from sandbox import cli, export
    from sandbox.backtest import backtest

    history = _minute_history(pd.Timestamp("2026-11-25 15:54", tz="America/New_York"))
    monkeypatch.setattr(live, "_history", lambda symbol, interval, window: history)
    monkeypatch.setattr(live, "CLIENT_FACTORY", _interrupting_stream(messages))
    log = tmp_path / "aapl.csv"
    assert cli.main(["live", "--model", str(bundle_dir), "--ticker", "AAPL", "--interval", "1m",
                     "--log", str(log)]) == 0
    capsys.readouterr()
    logged = pd.read_csv(log)
    bars = logged.set_index(pd.DatetimeIndex(pd.to_datetime(logged[C.INDEX_NAME], utc=True)
                                             .dt.tz_convert("America/New_York"), name="date"))
    prices = pd.concat([history, bars[list(C.PRICE_COLUMNS)]])
    batch = export.load_bundle(bundle_dir).predict(prices)[C.PREDICTED_RETURN]
    np.testing.assert_allclose(logged[C.PREDICTED_RETURN].to_numpy(),
                               batch.loc[bars.index].to_numpy(), rtol=0, atol=1e-9)
    # the paper account: the backtest of the logged positions on the logged bars
    strategy = export.load_bundle(bundle_dir).config.strategy
    book = backtest(bars[list(C.PRICE_COLUMNS)], bars[C.POSITION], fill=strategy.fill,
                    cost_bps=strategy.cost_bps).frame
    realised = logged.dropna(subset=[live.REALISED_DATE])
    assert len(realised) == len(logged) - (2 if strategy.fill == C.FILL_NEXT_OPEN else 1)
    on = pd.DatetimeIndex(pd.to_datetime(realised[live.REALISED_DATE], utc=True)
                          .dt.tz_convert("America/New_York"))
    np.testing.assert_allclose(realised[C.STRATEGY_RETURN].to_numpy(),
                               book[C.STRATEGY_RETURN].loc[on].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(realised[C.EQUITY].to_numpy(), book[C.EQUITY].loc[on].to_numpy(),
                               rtol=0, atol=1e-12)


def test_cli_live_refuses_a_weekly_interval_before_loading_anything(tmp_path, capsys):
    from sandbox import cli

    code = cli.main(["live", "--model", str(tmp_path), "--ticker", "AAPL", "--interval", "1wk"])
    assert code == 2
    assert "live bars must be one of" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "bars"), [(["--interval", "1m"], "1m"),
                                            ([], "1d")])  # no --interval: the model's own
def test_cli_live_offline_says_it_needs_history(bundle_dir, tmp_path, monkeypatch, capsys,
                                                flags, bars):
    from sandbox import cli
    from sandbox.data import yahoo

    def no_connection(symbol, **kwargs):
        raise ConnectionError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yahoo, "_yf_history", no_connection)

    code = cli.main(["live", "--model", str(bundle_dir), "--ticker", "AAPL", *flags,
                     "--log", str(tmp_path / "x.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"live needs recent {bars} bars of AAPL to warm the model" in err
    assert not (tmp_path / "x.csv").exists()


_WRITER = """
import sys, pandas as pd
from sandbox import live
book = live.DecisionLog(sys.argv[1]).open()
for i in range(100000):
    book.append({"date": pd.Timestamp("2026-01-05 15:00", tz="UTC") + pd.Timedelta(minutes=i),
                 "close": 100.0 + i / 7, "position": 1.0})
    print(i, flush=True)
"""


def test_a_killed_writer_loses_no_appended_bar(tmp_path):
    """A process killed while it appends: every line append() returned for is in the file,
    and the log reopens cleanly."""
    import os
    import subprocess
    import sys

    path = tmp_path / "live.csv"
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parent.parent)
    done = -1
    for line in child.stdout:
        done = int(line)
        if done >= 40:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    with live.DecisionLog(path) as book:
        assert book.rows >= done + 1
        rows = book.rows
    frame = pd.read_csv(path)
    assert len(frame) == rows
    np.testing.assert_array_equal(frame[C.CLOSE].to_numpy(), 100.0 + np.arange(rows) / 7)


def test_importing_live_loads_neither_torch_nor_qt():
    import subprocess
    import sys

    code = ("import sys, sandbox.live; "
            "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, check=True).stdout
    assert out.strip() == "[]"


# --- yfinance's own client against a loopback server speaking Yahoo's protocol --------------


class _LoopbackYahoo:
    """A local websocket server that answers yfinance's subscribe with the recorded stream as
    Yahoo frames it (JSON ``{"message": base64 PricingData}``): the first connection gets a
    first piece and is then cut off; the next ones get the rest and stay open."""

    def __init__(self, messages, cut):
        from websockets.sync.server import serve

        self.frames = [self._frame(m) for m in messages if "error" not in m]
        self.cut = cut
        self.connections = 0
        self.subscriptions = []
        self.delivered = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _frame(m):
        from yfinance.pricing_pb2 import PricingData

        fields = {k: (int(v) if isinstance(v, str) and k not in ("id", "currency", "exchange")
                      else v) for k, v in m.items()}
        raw = base64.b64encode(PricingData(**fields).SerializeToString()).decode()
        return json.dumps({"type": "pricing", "message": raw})

    def _handle(self, ws):
        self.connections += 1
        first = self.connections == 1
        self.subscriptions.append(json.loads(ws.recv()))
        for frame in self.frames[:self.cut] if first else self.frames[self.cut - 3:]:
            ws.send(frame)
        if first:
            ws.socket.close()  # the connection dies without a close frame
            return
        self.delivered.set()
        with contextlib.suppress(Exception):
            while True:
                ws.recv()  # heartbeats, until the client closes

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("hide_exceptions", [True, False])
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")
def test_yfinances_client_through_a_drop_on_a_loopback_server(messages, hide_exceptions):
    import yfinance as yf

    server = _LoopbackYahoo(messages, cut=30)
    before = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = hide_exceptions  # yfinance drops or raises on errors
    bars, states = [], []
    try:
        feed = live.LiveFeed(SYMBOL, "1m", on_bar=bars.append, on_state=states.append,
                             client_factory=lambda: yf.WebSocket(url=server.url, verbose=False),
                             sleep=lambda s: None, close_after_s=None)
        feed.start()
        assert server.delivered.wait(10)
        deadline = time.monotonic() + 10
        want = expected_bars(messages, "1min").iloc[:-1]
        while len(bars) < len(want) and time.monotonic() < deadline:
            time.sleep(0.02)
        began = time.monotonic()
        feed.stop()
        assert time.monotonic() - began < 5 and feed.stopped
    finally:
        yf.config.debug.hide_exceptions = before
        server.close()
    pd.testing.assert_frame_equal(as_frame(bars), want, check_freq=False, check_names=False)
    assert server.subscriptions == [{"subscribe": [SYMBOL]}] * 2
    assert [s.status for s in states].count(live.RECONNECTING) == 1
    assert states[-1].status == live.STOPPED


def test_cli_live_defaults_to_the_models_bar_size(bundle_dir, messages, tmp_path, monkeypatch,
                                                  capsys):
    import argparse

    from test_features import make_prices

    daily = make_prices(60, seed=2)
    daily.index = pd.bdate_range(end="2026-11-24", periods=60, name="date")
    monkeypatch.setattr(live, "_history", lambda symbol, interval, window: daily)
    monkeypatch.setattr(live, "CLIENT_FACTORY", _interrupting_stream(messages))
    log = tmp_path / "daily.csv"
    args = argparse.Namespace(model=str(bundle_dir), ticker="AAPL", interval=None, log=str(log))
    assert live.cli_live(args) == 0
    out = capsys.readouterr().out
    assert "AAPL 1d bars" in out and "note: the model was trained" not in out
    frame = pd.read_csv(log)
    assert frame[C.INDEX_NAME].tolist() == ["2026-11-25T00:00:00+00:00"]  # the 27th stays open
    ticks = accepted_ticks(messages, "1D")
    day = ticks.loc["2026-11-25", "price"]
    assert frame[C.OPEN][0] == day.iloc[0] and frame[C.CLOSE][0] == day.iloc[-1]
    assert frame[C.HIGH][0] == day.max() and frame[C.LOW][0] == day.min()
