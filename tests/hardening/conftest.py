"""Fixtures of the hardening suites: every test here runs under the log-leak guard."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.hardening.support import PATIENT, LeakGuard, Probe
from tests.servers import RunningServer, embedded_server


@pytest.fixture(autouse=True)
def leak_guard(caplog: pytest.LogCaptureFixture) -> Iterator[LeakGuard]:
    caplog.set_level(logging.DEBUG)
    guard = LeakGuard(caplog)
    try:
        yield guard
        guard.check()
    finally:
        guard.detach()


@pytest.fixture
async def server(leak_guard: LeakGuard) -> AsyncIterator[RunningServer]:
    """The embedded server (overrides conftest's) with idle and join timeouts a slow machine cannot hit."""
    async with embedded_server(**PATIENT) as running:
        leak_guard.attach_non_propagating()
        yield running


@pytest.fixture
async def probes() -> AsyncIterator[list[Probe]]:
    """Probes created by a test, closed after it."""
    created: list[Probe] = []
    yield created
    for probe in reversed(created):
        with contextlib.suppress(Exception):
            await probe.close()
