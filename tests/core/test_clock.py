"""The one clock: travel and freeze move every "now" in Enclave."""

import datetime as dt

import pytest

from enclave.core import clock


class TestClock:
    def test_now_is_timezone_aware_utc(self):
        assert clock.now().utcoffset() == dt.timedelta(0)

    def test_travel_moves_now_forward_and_back(self):
        before = clock.now()
        with clock.travel(dt.timedelta(days=120)):
            assert clock.now() - before >= dt.timedelta(days=120)
        assert clock.now() - before < dt.timedelta(days=1)

    def test_frozen_clock_stays_put_until_advanced(self):
        at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        with clock.frozen(at):
            assert clock.now() == at
            clock.advance(dt.timedelta(hours=2))
            assert clock.now() == at + dt.timedelta(hours=2)

    def test_frozen_refuses_naive_datetime(self):
        naive = dt.datetime(2030, 1, 1)
        with pytest.raises(ValueError, match="timezone-aware"), clock.frozen(naive):
            pass
