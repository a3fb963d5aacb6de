"""Independently written test peers, started by the tests on free loopback ports.

Each peer is a real program (node ``oidc-provider``, ``redis-server``,
Chromium) started with :mod:`subprocess` on ``127.0.0.1``, logged to a file in
a work directory of the test's own, and stopped by its process id. Nothing
here listens on or connects to anything but loopback.
"""
