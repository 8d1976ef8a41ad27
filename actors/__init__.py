"""clipstream.actors: the actor node. Shard actors host many entities each (Orleans-style virtual
entities), fed from NATS JetStream by an asyncio I/O thread, supervised by a Guardian.

- :mod:`.entity` — the contract an entity kind implements (load / handle / query / snapshot / flush)
- :mod:`.kinds` — ``KINDS``: name → factory path of the kinds a node runs
- :mod:`.node` — :class:`~.node.Node` and :func:`~.node.run_node`: start, status, clean shutdown
- :mod:`.guardian` — creates, restarts and reports on the shard actors
- :mod:`.shard` — the shard actor; :mod:`.host` its entity logic; :mod:`.bridge` its NATS I/O thread
- :mod:`.rpc` — partition subjects and the request/reply envelope of entity queries
- :mod:`.testing` — kinds for tests and benchmarks
"""
