"""The clone's progress arithmetic (rate, ETA) and row/byte tracking, without a database."""

from __future__ import annotations

import threading

import pytest

from rehost.clone.progress import Tracker, estimate, rate


def test_no_rate_and_no_eta_before_any_row_or_time():
    for rows, elapsed in ((0, 5.0), (10, 0.0), (0, 0.0)):
        e = estimate(rows, 100, 0, elapsed)
        assert (e.rows_per_s, e.bytes_per_s, e.eta) == (None, None, None)


def test_eta_is_rows_left_at_the_average_rate():
    e = estimate(250, 1000, 5000, 5.0)
    assert e.rows_per_s == pytest.approx(50.0)
    assert e.bytes_per_s == pytest.approx(1000.0)
    assert e.eta == pytest.approx(15.0)  # 750 rows left at 50/s
    assert e.fraction == pytest.approx(0.25)


def test_done_or_past_the_count_leaves_nothing_to_wait_for():
    assert estimate(1000, 1000, 1, 2.0).eta == 0
    grown = estimate(1200, 1000, 1, 2.0)  # the source gained rows after counting
    assert grown.eta == 0
    assert grown.fraction == 1.0
    assert estimate(0, 0, 0, 1.0).fraction == 1.0


def test_rows_kept_by_resume_count_as_done_but_not_toward_the_rate():
    # 900 of 1,000 rows were kept by --resume; 50 copied in 5 s since.
    e = estimate(950, 1000, 500, 5.0, kept=900)
    assert e.rows_per_s == pytest.approx(10.0)
    assert e.eta == pytest.approx(5.0)  # 50 left at 10/s, not at 190/s
    assert e.fraction == pytest.approx(0.95)
    nothing_copied_yet = estimate(900, 1000, 0, 1.0, kept=900)
    assert (nothing_copied_yet.rows_per_s, nothing_copied_yet.eta) == (None, None)


def test_rate_per_table():
    assert rate(1000, 2.0) == pytest.approx(500.0)
    assert rate(1000, 0.0) is None  # kept by --resume: nothing measured
    assert rate(0, 3.0) is None


class Plain:
    """A plain Progress sink that records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, label, total):
        self.calls.append(("bar", label, total))

    def advance(self, n=1):
        self.calls.append(("bar+", n))

    def finish(self):
        self.calls.append(("bar-",))


class Sink(Plain):
    """A TableSink (and Progress) that records the calls."""

    def tables(self, totals):
        self.calls.append(("tables", dict(totals)))

    def table_start(self, name):
        self.calls.append(("start", name))

    def table_advance(self, name, rows, nbytes):
        self.calls.append(("advance", name, rows, nbytes))

    def table_done(self, name, rows, nbytes):
        self.calls.append(("done", name, rows, nbytes))


def test_tracker_counts_bytes_per_table_and_tells_a_table_sink():
    sink = Sink()
    tracker = Tracker(sink, {"a": 10, "b": 5})
    advance = tracker.begin("a")
    advance(4, 100)
    advance(6, 150)
    advance(0, 7)  # the last buffer, sent when the load ends
    tracker.end("a", 10)
    tracker.skip("b", 5)
    assert tracker.bytes == {"a": 257}
    assert sink.calls == [
        ("tables", {"a": 10, "b": 5}),
        ("start", "a"),
        ("advance", "a", 4, 100),
        ("advance", "a", 6, 150),
        ("advance", "a", 0, 7),
        ("done", "a", 10, 257),
        ("done", "b", 5, 0),
    ]


def test_tracker_falls_back_to_one_bar_per_table_on_a_plain_sink():
    plain = Plain()
    tracker = Tracker(plain, {"a": 3})
    advance = tracker.begin("a")
    advance(3, 30)
    tracker.end("a", 3)
    parallel = tracker.begin("a", parallel=True)  # --jobs: the caller draws one bar
    parallel(3, 30)
    tracker.end("a", 3, parallel=True)
    assert plain.calls == [("bar", "copy a", 3), ("bar+", 3), ("bar-",), ("bar+", 3)]
    assert tracker.bytes == {"a": 30}


def test_tracker_adds_up_across_threads():
    tracker = Tracker(Sink(), {f"t{i}": 1000 for i in range(4)})
    callbacks = [tracker.begin(f"t{i}", parallel=True) for i in range(4)]

    def work(advance):
        for _ in range(1000):
            advance(1, 3)

    threads = [threading.Thread(target=work, args=(cb,)) for cb in callbacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracker.bytes == {f"t{i}": 3000 for i in range(4)}
