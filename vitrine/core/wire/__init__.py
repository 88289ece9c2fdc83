"""Every message that crosses a process or a network boundary, defined once.

``rtc``: the ``/v1/rtc`` protocol (clients and signaling), with the messages the products carry on it:
``live`` (a show's log entries and numbers) and ``inspect_actions`` (an inspection's camera controls
and notices), and ``inspect`` (cases and their artifacts, which media workers store). ``rpc``: signaling
and media workers. These sit in the kernel, not in the product packages, because media workers and
load-test clients below signaling speak them too: LiveKit keeps every product's messages in its
``protocol`` module for the same reason. A product's server code lives in ``signaling/<product>/``.
"""
