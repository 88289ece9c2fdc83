"""Consult desk test helpers: they live in the load harness (loadtest/desk.py: the records benchmark uses them too)."""

from loadtest.desk import (  # noqa: F401 - re-exported for the tests
    ALWAYS_OPEN,
    WAIT_S,
    DeskClient,
    agent_token,
    enter_shopper,
    login_agent,
    make_shop,
)
