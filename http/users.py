"""Profiles, follow/unfollow and a creator's video grid."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import get, post
from litestar.exceptions import ClientException
from litestar.params import JSONBody, Parameter

from clipstream.bus.messages import Follow
from clipstream.http.bootstrap import CurrentUser, ServicesDep
from clipstream.http.errors import errors, parse_id
from clipstream.http.schemas import FollowRequest, UserProfile, VideoList, WriteResponse
from clipstream.storage.repos import now_ms

__all__ = ["USER_HANDLERS"]

UserIdPath = Annotated[str, Parameter(description="user id (decimal string)")]


async def _profile(svc: ServicesDep, user_id: int, viewer: int | None = None) -> UserProfile:
    # Independent reads in flight together; a missing user raises NotFound (404).
    user, stats, following, video_count, followed = await asyncio.gather(
        svc.users.get(user_id),
        svc.stats.get_many([user_id]),
        svc.follows.following(user_id),
        svc.videos.count_by_author(user_id),
        svc.follows.is_following(viewer, user_id) if viewer is not None and viewer != user_id else _false(),
    )
    followers = stats[user_id].followers if user_id in stats else 0
    return UserProfile(
        user_id=str(user.user_id),
        username=user.username,
        follower_count=max(followers, 0),
        following_count=len(following),
        video_count=video_count,
        following=followed,
    )


async def _false() -> bool:
    return False


@get("/v1/users/me", tags=["users"], responses=errors(401, 404, 503))
async def my_profile(svc: ServicesDep, me: CurrentUser) -> UserProfile:
    """The caller's own profile."""
    return await _profile(svc, me.user_id)


@get("/v1/users/{user_id:str}", tags=["users"], responses=errors(401, 404, 503))
async def user_profile(user_id: UserIdPath, svc: ServicesDep, me: CurrentUser) -> UserProfile:
    """A user's public profile (``following``: whether the caller follows them); 404 if unknown."""
    return await _profile(svc, parse_id(user_id, "user"), me.user_id)


@post("/v1/users/{user_id:str}/follow", status_code=200, tags=["users"], responses=errors(400, 401, 404, 413, 415, 503))
async def follow(user_id: UserIdPath, data: JSONBody[FollowRequest], svc: ServicesDep, me: CurrentUser) -> WriteResponse:
    """Follow or unfollow a creator (idempotent); durable before it answers."""
    author_id = parse_id(user_id, "user")
    if author_id == me.user_id:
        raise ClientException("you cannot follow yourself")
    await svc.users.get(author_id)  # NotFound -> 404
    seq = await svc.publisher.publish(
        Follow(user_id=me.user_id, author_id=author_id, follow=data.action == "follow", at=now_ms())
    )
    return WriteResponse(read_after=str(seq))


@get("/v1/users/{user_id:str}/videos", tags=["users"], responses=errors(400, 401, 404, 503))
async def user_videos(
    user_id: UserIdPath,
    svc: ServicesDep,
    limit: Annotated[int, Parameter(ge=1, le=50, description="videos per page")] = 20,
    cursor: Annotated[str | None, Parameter(max_length=64, description="next_cursor of the previous page")] = None,
) -> VideoList:
    """A creator's ready videos, newest first."""
    author_id = parse_id(user_id, "user")
    signer = svc.security.profile_cursors
    before = signer.verify(author_id, cursor) if cursor else None  # InvalidCursor -> 400
    if before is None:
        # First page: an unknown user is a 404, not an empty grid.
        _, ids = await asyncio.gather(svc.users.get(author_id), svc.videos.by_author(author_id, None, limit))
    else:
        ids = await svc.videos.by_author(author_id, before, limit)
    items = await svc.cards.items(ids)
    next_cursor = signer.sign(author_id, ids[-1]) if len(ids) == limit else None
    return VideoList(videos=items, next_cursor=next_cursor)


USER_HANDLERS = [my_profile, user_profile, follow, user_videos]
