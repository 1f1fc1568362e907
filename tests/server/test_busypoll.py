"""The event loop's busy polling (gateway.server.busypoll): how long it polls before it
blocks, how the window grows and shrinks, and a loop on it serving sockets and timers."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading

import pytest

from gateway.server.busypoll import (
    BusyPollSelector,
    event_loop_factory,
    polls_up_to,
)

US = 1e-6
READY: list[tuple[selectors.SelectorKey, int]] = [
    (selectors.SelectorKey(0, 0, selectors.EVENT_READ, None), selectors.EVENT_READ)]


class Scripted(BusyPollSelector):
    """A selector on a clock of its own, where the next event arrives at :attr:`arrival`
    (seconds on that clock; None: never); a poll without blocking takes a microsecond."""

    def __init__(self, max_us: float) -> None:
        self.now = 0.0
        super().__init__(max_us, clock=lambda: self.now)
        self.arrival: float | None = None
        self.polls = 0
        """Polls that did not block."""
        self.blocked: list[float | None] = []
        """The timeout of every poll that blocked."""

    def wait_for(self, after_us: float, timeout: float | None = None
                 ) -> list[tuple[selectors.SelectorKey, int]]:
        """One select, the next event arriving ``after_us`` from now."""
        self.arrival = self.now + after_us * US
        return self.select(timeout)

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            self.polls += 1
            self.now += US
        else:
            self.blocked.append(timeout)
            if self.arrival is None or (timeout is not None and
                                        self.arrival > self.now + timeout):
                self.now += timeout if timeout is not None else 3600.0
                return []
            self.now = max(self.now, self.arrival)
        if self.arrival is not None and self.now >= self.arrival:
            self.arrival = None
            return READY
        return []


def test_a_short_wait_grows_the_window_and_the_next_is_caught_polling() -> None:
    s = Scripted(200)
    assert s.wait_for(30) == READY  # no window yet: it blocks
    assert (s.polls, s.blocked) == (0, [None])
    assert s.window_ns == 50_000  # a quarter of the longest
    assert s.wait_for(30) == READY
    assert s.blocked == [None]  # caught within the window, without blocking
    assert 29 <= s.polls <= 31
    assert s.window_ns == 50_000  # it holds


def test_the_window_doubles_up_to_the_longest() -> None:
    s = Scripted(200)
    windows = []
    for _ in range(5):
        assert s.wait_for(150) == READY
        windows.append(s.window_ns // 1000)
    assert windows == [50, 100, 200, 200, 200]
    assert len(s.blocked) == 3  # the last two caught polling


def test_long_waits_halve_the_window_down_to_none() -> None:
    s = Scripted(200)
    s.window_ns = 200_000
    windows = []
    for _ in range(5):
        assert s.wait_for(1_000_000) == READY  # a second: idle
        windows.append(s.window_ns // 1000)
    assert windows == [100, 50, 25, 0, 0]
    polls = s.polls
    assert s.wait_for(1_000_000) == READY
    assert s.polls == polls  # no window: it blocks at once, polling nothing


def test_a_wait_longer_than_the_longest_window_does_not_grow_it() -> None:
    s = Scripted(200)
    assert s.wait_for(250) == READY
    assert s.window_ns == 0


def test_a_timer_due_within_the_window_ends_the_polling_at_its_time() -> None:
    s = Scripted(200)
    s.window_ns = 50_000
    assert s.wait_for(1_000_000, timeout=10 * US) == []  # the timer is due first
    assert 10 <= s.polls <= 12 and s.now == pytest.approx(10 * US, abs=2.5 * US)
    assert s.blocked == []  # (what is left of the timeout, nothing, polled)
    assert s.window_ns == 50_000  # a timer says nothing of the messages
    assert s.wait_for(1_000_000, timeout=100 * US) == []  # nor one due after the window
    assert s.blocked == [pytest.approx(50 * US, abs=2.5 * US)]
    assert s.window_ns == 50_000
    s.arrival = None
    assert s.select(1.0) == [] and s.window_ns == 25_000  # idle for a second


def test_a_wait_counts_its_polling_too() -> None:
    """A message 300 us after the wait began, past a window of 200 polled: longer than the
    longest window, though the blocking part was shorter."""
    s = Scripted(200)
    s.window_ns = 200_000
    assert s.wait_for(300) == READY
    assert len(s.blocked) == 1 and s.window_ns == 100_000


def test_no_longest_window_and_a_zero_timeout_pass_straight_through() -> None:
    off = Scripted(0)
    assert off.wait_for(30) == READY and off.wait_for(30, timeout=2.0) == READY
    assert (off.polls, off.blocked, off.window_ns) == (0, [None, 2.0], 0)
    on = Scripted(200)
    on.window_ns = 200_000
    assert on.wait_for(30, timeout=0) == []
    assert (on.polls, on.blocked) == (1, [])
    with pytest.raises(ValueError, match="busy_poll_us"):
        BusyPollSelector(-1)


def test_the_loop_factory_and_what_a_loop_says_it_polls() -> None:
    assert event_loop_factory(0) is None  # asyncio's own default, as asyncio.run makes it
    plain = asyncio.new_event_loop()
    factory = event_loop_factory(200)
    assert factory is not None
    polling = factory()
    try:
        assert polls_up_to(plain) == 0.0
        assert polls_up_to(polling) == pytest.approx(200)
    finally:
        plain.close()
        polling.close()


class Counting(BusyPollSelector):
    def __init__(self, max_us: float) -> None:
        super().__init__(max_us)
        self.polls = 0
        self.blocked = 0

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            self.polls += 1
        else:
            self.blocked += 1
        return super()._poll(timeout)


def test_a_loop_on_it_serves_a_socket_and_its_timers() -> None:
    """Round trips with a thread that answers at once (every wait far shorter than a longest
    window of 100 ms: the window grows and catches them polling), and a timer that falls due
    while the loop polls."""
    selector = Counting(100_000)
    loop = asyncio.SelectorEventLoop(selector)
    ours, theirs = socket.socketpair()

    def echo() -> None:
        with theirs:
            while data := theirs.recv(64):
                theirs.sendall(data)

    peer = threading.Thread(target=echo)
    peer.start()

    async def talk() -> tuple[list[bytes], float]:
        reader, writer = await asyncio.open_connection(sock=ours)
        answers = []
        for i in range(200):
            writer.write(b"%04d" % i)
            answers.append(await reader.readexactly(4))
        t0 = loop.time()
        fired = loop.create_future()
        loop.call_later(0.02, fired.set_result, None)
        await fired
        writer.close()
        await writer.wait_closed()
        return answers, loop.time() - t0

    try:
        answers, waited = loop.run_until_complete(talk())
    finally:
        loop.close()
        peer.join(timeout=10)
    assert answers == [b"%04d" % i for i in range(200)]
    assert waited >= 0.02
    assert selector.window_ns > 0 and selector.polls > 0
    assert selector.blocked < 200  # most answers were caught polling
