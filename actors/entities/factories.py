"""Builds each entity kind inside its shard process (actors run in their own processes)."""

from __future__ import annotations


from clipstream.actors.entities.counter import CounterKind
from clipstream.actors.entities.feed import FeedKind
from clipstream.bus.routing import Router
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings
from clipstream.storage.cache import Cache, connect_redis
from clipstream.storage.cql import connect_cql
from clipstream.storage.repos import FeedRepo, FollowRepo, LikeRepo, StatsRepo

__all__ = ["make_counter_kind", "make_feed_kind"]


def _cache(settings: Settings) -> Cache:
    return Cache(connect_redis(settings.redis))


def make_counter_kind(settings: Settings) -> CounterKind:
    """Counter entities backed by the stats table and Redis like counts."""
    cql = connect_cql(settings.cql, settings.cql.keyspace)
    return CounterKind(StatsRepo(cql), _cache(settings))


def make_feed_kind(settings: Settings) -> FeedKind:
    """UserFeed entities backed by the feed, likes and follows tables and Redis candidates."""
    cql = connect_cql(settings.cql, settings.cql.keyspace)
    router = Router(Topology.from_settings(settings.nats), settings.actors.partitions)
    return FeedKind(FeedRepo(cql), LikeRepo(cql), FollowRepo(cql), _cache(settings), router.subject_for)
