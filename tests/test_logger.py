"""metrics.jsonl + TensorBoard logging, resume truncation, aggregation and the progress bar."""

from __future__ import annotations

import io
import json

import numpy as np
from rich.console import Console

from ambs_verify.trainers.logger import MeanAggregator, MetricsLogger, ProgressBar, to_json_value


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_records_and_tensorboard(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        logger.write(10, {"episode/return": np.float32(1.5), "episode/length": np.int64(7), "x": float("nan")})
        logger.write(20, {"train/loss": 0.25}, histograms={"policy/prob": np.linspace(0, 1, 50)})
    records = _records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [10, 20]
    assert records[0]["episode/return"] == 1.5 and records[0]["episode/length"] == 7 and records[0]["x"] is None
    assert all(isinstance(r["time"], float) for r in records)
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    scalars, histograms = _read_events(events[0])
    assert scalars["episode/return"] == [(10, 1.5)] and scalars["train/loss"] == [(20, 0.25)]
    assert "x" not in scalars  # non-finite values are not sent to TensorBoard
    assert histograms == {"policy/prob": [20]}


def _read_events(path):
    """Parse a TFRecord event file with tensorboardX's protobufs (no TensorBoard install needed)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    scalars, histograms = {}, {}
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            if value.HasField("histo"):
                histograms.setdefault(value.tag, []).append(event.step)
            else:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars, histograms


def test_resume_drops_records_after_the_checkpoint(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        for step in (100, 200, 300, 400):
            logger.write(step, {"a": step})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5')  # torn line from a crash
    with MetricsLogger(tmp_path, resume_step=200, tensorboard=False) as logger:
        logger.write(300, {"a": -1})
    records = _records(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["a"]) for r in records] == [(100, 100), (200, 200), (300, -1)]


def test_mean_aggregator():
    agg = MeanAggregator()
    agg.add({"loss": 1.0, "prob": np.array([0.0, 0.5])}, keep_values=True)
    agg.add({"loss": 3.0, "prob": np.array([1.0])}, keep_values=True)
    assert agg.means("train/") == {"train/loss": 2.0, "train/prob": 0.5}
    np.testing.assert_array_equal(agg.values()["prob"], [0.0, 0.5, 1.0])
    agg.reset()
    assert not agg and agg.means() == {}


def test_to_json_value():
    assert to_json_value(np.float32(0.5)) == 0.5 and to_json_value(np.bool_(True)) is True
    assert to_json_value(float("inf")) is None and to_json_value(np.array(3)) == 3


def test_progress_bar_shows_rate_and_eta():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=160)
    with ProgressBar(1000, completed=100, console=console) as bar:
        bar.update(500, "return 1.0")
    text = stream.getvalue()
    assert "500/1000" in text and "steps/s" in text and "ETA" in text and "return 1.0" in text
    disabled = ProgressBar(10, enabled=False)
    disabled.update(5)
    disabled.close()
