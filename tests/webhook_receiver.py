"""A shop's webhook endpoint for tests: it lives in the load harness (loadtest/webhook_receiver.py: the records
benchmark uses it too)."""

from loadtest.webhook_receiver import (  # noqa: F401 - re-exported for the tests
    DEADLINE_S,
    Hit,
    Receiver,
    Responder,
    serve_receiver,
)
