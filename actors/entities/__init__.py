"""The entity kinds clipstream hosts in its shards: counters (videos, creators) and user feeds."""
