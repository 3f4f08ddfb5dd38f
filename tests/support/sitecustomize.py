"""Loaded by any Python started with tests/support on PYTHONPATH (the papermill kernels and CLI runs the
test suite starts, see tests/conftest.py ``sockets_blocked``): a connection off this machine fails.

tests/test_safety.py proves it is live (a connection attempt inside a kernel is refused with the
message below) before it trusts a chapter that ran under it.
"""
import socket

MESSAGE = "network blocked by the lds test suite"
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _off_host(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    # loopback (the kernel's own ZeroMQ channels) and Unix sockets stay open
    return isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")
                                          or host.startswith("/"))


def _guarded(self, address):
    if _off_host(address):
        raise OSError(f"{MESSAGE}: {address}")
    return _connect(self, address)


def _guarded_ex(self, address):
    if _off_host(address):
        raise OSError(f"{MESSAGE}: {address}")
    return _connect_ex(self, address)


socket.socket.connect = _guarded
socket.socket.connect_ex = _guarded_ex
