"""The main thread notices SIGTERM even when the kernel delivers it to another thread (the CI hang of `leather serve`)."""
import signal
import threading
import time

import pytest

from cli.stop_signals import WAKE_SECONDS, StopSignals


def _signal_from_another_thread(signum: int) -> None:
    """pthread_kill runs the C-level handler in this helper thread, as when gRPC's or TF's thread gets the signal."""
    def send() -> None:
        time.sleep(0.2)
        signal.pthread_kill(threading.get_ident(), signum)

    threading.Thread(target=send, daemon=True).start()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_received_by_another_thread_ends_the_wait(signum):
    before = signal.getsignal(signum)
    with StopSignals() as stop:
        _signal_from_another_thread(signum)
        started = time.monotonic()
        assert stop.wait() == signum
        assert time.monotonic() - started < 0.2 + 4 * WAKE_SECONDS
    assert signal.getsignal(signum) is before


@pytest.mark.timeout(20)
def test_a_signal_before_the_wait_is_not_lost():
    with StopSignals() as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.wait() == signal.SIGTERM


def test_an_unbounded_event_wait_would_have_missed_it():
    """The failure this module exists for: a bare Event.wait() does not wake for a signal another thread received."""
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        _signal_from_another_thread(signal.SIGTERM)
        started = time.monotonic()
        assert not stopped.wait(2.0), "the handler ran while the main thread was blocked"
        assert time.monotonic() - started >= 2.0
    finally:
        signal.signal(signal.SIGTERM, previous)
