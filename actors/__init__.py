"""clipstream.actors: the actor node. Shard actors host many entities each (Orleans-style virtual
entities), fed from NATS JetStream by an asyncio I/O thread, supervised by a Guardian.

- :mod:`.entity` — the contract an entity kind implements (load / handle / query / snapshot / flush);
  :mod:`.entities` the kinds (feed, counter); :mod:`.kinds` — ``KINDS``: name → factory path
- :mod:`.node` — :class:`~.node.Node`: start, status, clean shutdown of one actor system
- :mod:`.service` — :func:`~.service.run_node`, the node process: a Node until a signal, its status
  answered over NATS, its partitions shared through :mod:`.leases`
- :mod:`.leftovers` — the node's processes, recorded and reaped so nothing outlives it;
  :mod:`.loopback` — Thespian's sockets on 127.0.0.1 only
- :mod:`.guardian` — creates, restarts and reports on the shard actors (:mod:`.supervision`: backoff)
- :mod:`.shard` — the shard actor; :mod:`.host` its entity logic; :mod:`.bridge` its NATS I/O thread
  (its JetStream pulls are :mod:`clipstream.bus.pull`'s; :mod:`.flusher`: write-behind)
- :mod:`.messages`, :mod:`.handoff` — what the node, Guardian, shard and I/O thread tell each other
- :mod:`.testing` — kinds for tests and benchmarks

What crosses a process boundary (subjects, query envelopes, the status tree) is :mod:`clipstream.bus`'s.
"""
