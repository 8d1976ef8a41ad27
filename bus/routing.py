"""Which subject a bus message goes to: entity messages to their partition, lifecycle events by name."""

from __future__ import annotations

from clipstream.bus.codec import partition_of
from clipstream.bus.messages import (
    BusMessage,
    Follow,
    FollowDelta,
    LikeDelta,
    LikeRequest,
    NewVideo,
    ViewDelta,
    Watched,
)
from clipstream.bus.topology import Topology

__all__ = ["Router"]


class Router:
    """Maps a message to its subject with one partition function for every process."""

    __slots__ = ("topology", "partitions")

    def __init__(self, topology: Topology, partitions: int) -> None:
        self.topology = topology
        self.partitions = partitions

    def subject_for(self, msg: BusMessage) -> str:
        if isinstance(msg, (LikeDelta, ViewDelta)):
            return self.topology.counter_subject(partition_of(msg.video_id, self.partitions))
        if isinstance(msg, FollowDelta):
            return self.topology.counter_subject(partition_of(msg.author_id, self.partitions))
        if isinstance(msg, (LikeRequest, Follow, NewVideo, Watched)):
            return self.topology.feed_subject(partition_of(msg.user_id, self.partitions))
        tag = msg.__struct_config__.tag  # type: ignore[attr-defined]
        return self.topology.video_subject(str(tag).split(".")[0])
