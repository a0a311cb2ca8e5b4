"""sandbox.looks: the per-dataset count of looks at the test split, and what a look shows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from sandbox import looks
from sandbox.errors import ExportError

FP = "a" * 64
OTHER = "b" * 64


@pytest.fixture(autouse=True)
def looks_file(tmp_path, monkeypatch):
    path = tmp_path / "state" / "looks.json"
    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(path))
    return path


def test_importing_looks_loads_neither_qt_nor_torch():
    code = "import sys, sandbox.looks; print('PySide6' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_environment_variable_names_the_file(looks_file, monkeypatch):
    assert looks.looks_path() == looks_file
    monkeypatch.delenv(looks.ENV_LOOKS_FILE)
    default = looks.looks_path()
    assert default.name == "looks.json" and "trading-signal-sandbox" in str(default)


def test_counts_start_at_zero_and_go_up_per_dataset(looks_file):
    assert looks.look_count(FP) == 0
    assert not looks_file.exists()  # reading never creates the file
    assert looks.record_look(FP, sharpe_per_bar=0.05, n=250) == 1
    assert looks.record_look(FP, sharpe_per_bar=-0.01, n=250) == 2
    assert looks.record_look(OTHER) == 1
    assert looks.look_count(FP) == 2 and looks.look_count(OTHER) == 1
    kept = looks.looks(FP)
    assert [(k.sharpe_per_bar, k.n) for k in kept] == [(0.05, 250), (-0.01, 250)]
    assert looks.looks(OTHER)[0].sharpe_per_bar is None
    stored = json.loads(looks_file.read_text())
    assert stored["version"] == 1
    assert stored["datasets"][FP]["count"] == 2
    assert stored["datasets"][OTHER]["looks"][0]["sharpe_per_bar"] is None


def test_non_finite_values_are_stored_as_missing():
    looks.record_look(FP, sharpe_per_bar=float("nan"), n=-3)
    assert looks.looks(FP)[0].sharpe_per_bar is None and looks.looks(FP)[0].n is None


@pytest.mark.parametrize("text", ["{not json", "[]", '{"datasets": 3}', "\udcff"])
def test_a_damaged_file_counts_from_zero_and_is_kept_aside(looks_file, text):
    looks_file.parent.mkdir(parents=True)
    looks_file.write_text(text, errors="surrogateescape")
    assert looks.look_count(FP) == 0
    assert looks.record_look(FP, sharpe_per_bar=0.1, n=10) == 1
    assert looks.look_count(FP) == 1
    assert json.loads(looks_file.read_text())["datasets"][FP]["count"] == 1


def test_a_damaged_entry_is_read_as_far_as_it_goes(looks_file):
    looks_file.parent.mkdir(parents=True)
    looks_file.write_text(json.dumps({"version": 1, "datasets": {
        FP: {"count": "many", "looks": [{"sharpe_per_bar": "x", "n": 5}, 7]},
        OTHER: [1, 2],
    }}))
    assert looks.look_count(FP) == 1  # one readable look
    assert looks.looks(FP)[0].n == 5 and looks.looks(FP)[0].sharpe_per_bar is None
    assert looks.look_count(OTHER) == 0
    assert looks.record_look(OTHER) == 1


def test_the_count_goes_on_past_the_looks_kept(monkeypatch):
    monkeypatch.setattr(looks, "MAX_KEPT", 3)
    for i in range(5):
        looks.record_look(FP, sharpe_per_bar=float(i), n=10)
    assert looks.look_count(FP) == 5
    assert [k.sharpe_per_bar for k in looks.looks(FP)] == [2.0, 3.0, 4.0]


def test_looks_from_two_threads_all_count():
    def record():
        for _ in range(10):
            looks.record_look(FP)

    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert looks.look_count(FP) == 40


def test_an_unwritable_place_raises_export_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(looks.ENV_LOOKS_FILE, str(blocker / "looks.json"))
    with pytest.raises(ExportError, match="a_file"):
        looks.record_look(FP)
    assert looks.look_count(FP) == 0


# ------------------------------------------------------------------ evidence -------------
def test_evidence_of_a_first_look_is_the_psr_only():
    # returns 0.01, 0.03, -0.01, 0.01: mean 0.01, sample std sqrt(0.0008/3) = 0.0163299
    r = [0.01, 0.03, -0.01, 0.01]
    ev = looks.evidence(r, count=1, trial_sharpes=[0.6])
    sr = 0.01 / math.sqrt(0.0008 / 3)
    assert ev.sharpe_per_bar == pytest.approx(sr)
    # central moments: m2 = 0.0002, m3 = 0, m4 = (0.02^4 * 2) / 4 = 8e-8 -> kurtosis 2
    assert ev.skewness == pytest.approx(0.0, abs=1e-12)
    assert ev.kurtosis == pytest.approx(2.0)
    z = sr * math.sqrt(3) / math.sqrt(1 + (2 - 1) / 4 * sr**2)
    assert ev.psr == pytest.approx(NormalDist().cdf(z))
    assert ev.count == ev.n_trials == 1 and ev.n_obs == 4
    assert ev.dsr is None and ev.expected_max_sharpe is None


def test_evidence_of_a_fourth_look_deflates_by_the_recorded_sharpes():
    r = [0.01, 0.03, -0.01, 0.01]
    trial = [0.2, 0.4, 0.6, None, 0.8]  # mean 0.5; squared deviations 0.09 + 0.01 + 0.01 + 0.09
    ev = looks.evidence(r, count=4, trial_sharpes=trial)
    variance = 0.2 / 3  # ddof 1
    assert ev.sharpe_variance == pytest.approx(variance)
    g = 0.5772156649015329
    z = NormalDist()
    sr0 = math.sqrt(variance) * ((1 - g) * z.inv_cdf(1 - 1 / 4)
                                 + g * z.inv_cdf(1 - 1 / (4 * math.e)))
    assert ev.expected_max_sharpe == pytest.approx(sr0)
    sr = 0.01 / math.sqrt(0.0008 / 3)
    expected = z.cdf((sr - sr0) * math.sqrt(3) / math.sqrt(1 + 0.25 * sr**2))
    assert ev.dsr == pytest.approx(expected)
    assert ev.dsr < ev.psr


def test_evidence_without_two_recorded_sharpes_has_no_dsr():
    ev = looks.evidence([0.01, 0.02, -0.01], count=3, trial_sharpes=[None, 0.1])
    assert ev.dsr is None and ev.psr is not None


def test_look_at_test_fingerprints_counts_and_stores_the_sharpe():
    from sandbox.export import fingerprint

    idx = pd.date_range("2020-01-01", periods=6, freq="D", name="date")
    frame = pd.DataFrame({c: np.arange(1.0, 7.0) for c in
                          ("open", "high", "low", "close", "volume")}, index=idx)
    r = pd.Series([0.01, np.nan, 0.03, -0.01, 0.01])
    fp, ev = looks.look_at_test(frame, r)
    assert fp == fingerprint(frame)
    assert ev.count == 1 and looks.look_count(fp) == 1
    assert looks.looks(fp)[0].n == 4
    assert looks.looks(fp)[0].sharpe_per_bar == pytest.approx(0.01 / math.sqrt(0.0008 / 3))
    _fp, ev = looks.look_at_test(frame, r, fingerprint=fp)
    assert ev.count == 2
    assert ev.sharpe_variance == pytest.approx(0.0) and ev.dsr == pytest.approx(ev.psr)
