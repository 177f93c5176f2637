"""--bwlimit (pure): the rate's syntax and the token bucket, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from rehost.errors import UsageError
from rehost.files.throttle import CREDIT_SECONDS, Limiter, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("500", 500 * 1024),  # a plain number is KiB/s, as with rsync and rclone
        ("500K", 500 * 1024),
        ("10M", 10 * 1024**2),
        ("1.5G", 1.5 * 1024**3),
        ("2048B", 2048),
        ("10MiB", 10 * 1024**2),
        ("10m/s", 10 * 1024**2),
    ],
)
def test_rates_as_rsync_and_rclone_write_them(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["", "fast", "-1M", "10X", "0", "0.5B"])
def test_rates_that_mean_nothing_are_refused(bad):
    with pytest.raises(UsageError):
        parse_rate(bad)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_bytes_are_let_through_at_the_rate():
    clock = Clock()
    limiter = Limiter(1000.0, clock, clock.sleep)
    for _ in range(10):
        limiter.take(500)
    assert clock.now == pytest.approx(5.0)  # 5,000 bytes at 1,000/s


def test_an_idle_spell_earns_half_a_second_of_credit_at_most():
    clock = Clock()
    limiter = Limiter(1000.0, clock, clock.sleep)
    clock.now = 100.0  # long idle
    limiter.take(int(1000 * CREDIT_SECONDS))  # the credit: no wait
    assert clock.now == 100.0
    limiter.take(1000)  # beyond it: waits the full second
    assert clock.now == pytest.approx(101.0)


def test_one_buffer_larger_than_a_second_waits_its_time():
    clock = Clock()
    Limiter(100.0, clock, clock.sleep).take(1 << 20)
    assert clock.now == pytest.approx((1 << 20) / 100.0)
