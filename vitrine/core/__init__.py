"""The kernel: what every floor above shares, and which imports nothing above it.

Settings, errors, wire messages (``wire``), join tokens, TURN credentials, the SDP guard, the coordination
layer (``state``: memory or Redis) and the records layer (``records``: SQLite or PostgreSQL), and the
evidence file store. ``media``, ``signaling`` and ``loadtest`` build on it; the composition root
(``vitrine.cli``, ``vitrine.embedded``) wires them together.
"""
