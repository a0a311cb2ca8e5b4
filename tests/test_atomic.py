from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from sandbox import atomic
from sandbox.errors import ExportError


def test_csv_is_written_at_full_precision(tmp_path):
    frame = pd.DataFrame({"x": [0.1 + 0.2, 1 / 3, math.pi * 1e-12, np.nan]},
                         index=pd.Index([1, 2, 3, 4], name="i"))
    path = atomic.write_csv(tmp_path / "out.csv", frame)
    back = pd.read_csv(path, index_col="i")
    np.testing.assert_array_equal(back["x"].to_numpy(), frame["x"].to_numpy())
    assert os.listdir(tmp_path) == ["out.csv"]


def test_csv_in_chunks_is_byte_for_byte_one_pandas_write(tmp_path):
    rows = atomic.CSV_CHUNK_ROWS * 3 + 7  # several chunks and a short last one
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "split": ["train"] * rows},
                         index=pd.date_range("2000-01-03", periods=rows, name="date"))
    frame.iloc[5, 0] = np.nan
    path = atomic.write_csv(tmp_path / "out.csv", frame)
    assert path.read_text() == frame.to_csv(lineterminator="\n")


def test_json_turns_nan_into_null(tmp_path):
    path = atomic.write_json(tmp_path / "m.json", {"a": np.float64("nan"), "b": np.int64(3)})
    assert json.loads(path.read_text()) == {"a": None, "b": 3}


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write_with(target, boom)
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_missing_folder_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        atomic.write_text(tmp_path / "nope" / "x.txt", "hi")


def test_unwritable_folder_is_an_export_error(tmp_path, monkeypatch):
    # Tests run as root in CI, where chmod cannot make a folder unwritable: fake the OS refusal.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(ExportError, match=r"cannot write .*x\.txt: Permission denied"):
        atomic.write_text(tmp_path / "x.txt", "hi")
    assert os.listdir(tmp_path) == []


def test_full_disk_during_rename_leaves_no_temp(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(ExportError, match="No space left"):
        atomic.write_text(tmp_path / "x.txt", "hi")
    assert os.listdir(tmp_path) == []


def test_path_that_is_a_folder_is_an_export_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ExportError, match="cannot write"):
        atomic.write_text(tmp_path / "d", "hi")
    assert sorted(os.listdir(tmp_path)) == ["d"]
