"""Static browser assets served by the signaling server (no build step)."""

from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent
