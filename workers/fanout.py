"""Fan-out on write: a ready video becomes a NewVideo candidate in each follower's feed."""

from __future__ import annotations

from nats.aio.msg import Msg

from clipstream.bus.messages import NewVideo, VideoReady
from clipstream.bus.publisher import Publisher
from clipstream.storage.repos import FollowRepo

__all__ = ["Fanout"]

FANOUT_LIMIT = 100_000  # beyond this a creator's followers find the video through fresh/popular


class Fanout:
    """Handler for lifecycle events; de-duplicated per (video, follower) by message id."""

    def __init__(self, follows: FollowRepo, publisher: Publisher, batch: int = 500) -> None:
        self.follows = follows
        self.publisher = publisher
        self.batch = batch

    async def on_video_event(self, message: object, msg: Msg) -> None:
        if not isinstance(message, VideoReady):
            return
        followers = await self.follows.followers(message.author_id, FANOUT_LIMIT)
        for start in range(0, len(followers), self.batch):
            await self.publisher.publish_many(
                (NewVideo(user_id=u, video_id=message.video_id, author_id=message.author_id, at=message.at),
                 f"new:{message.video_id}:{u}")
                for u in followers[start : start + self.batch]
            )
