"""Thespian's sockets on loopback only: the one patch clipstream applies to Thespian."""

from __future__ import annotations

import os

__all__ = ["bind_loopback"]


def bind_loopback() -> None:
    """Make every Thespian socket of this process and of the processes it forks listen on
    127.0.0.1 only.

    Thespian's TCP transport unpickles whatever reaches its ports, so an admin port open on all
    interfaces lets anyone on the network run code as the node. Thespian advertises
    ``THESPIAN_BASE_IPADDR`` but always binds its listening sockets to ``''`` (every interface);
    there is no capability for the bind address, hence this patch of ``IPActorAddress``. Thespian
    forks its admin and actors from here, so they inherit it.
    """
    from thespian.system.transport import IPBase

    os.environ["THESPIAN_BASE_IPADDR"] = "127.0.0.1"
    cls = IPBase.IPActorAddress
    if getattr(cls, "_clipstream_loopback", False):
        return
    original = cls.__init__

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        if self.bindname and self.bindname[0] in ("", "0.0.0.0"):
            self.bindname = ("127.0.0.1", self.bindname[1])

    cls.__init__ = __init__
    cls._clipstream_loopback = True
