"""Storefront video consult: the queue, routing, call records and the desk wire protocol.

Pure models and logic live here; the service that runs them is ``signaling.consult``.
"""
