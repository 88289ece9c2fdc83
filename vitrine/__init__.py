"""Vitrine: self-hosted real-time video for online sellers."""

__version__ = "0.1.0"
