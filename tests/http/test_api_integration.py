"""The API against the real services (Redis, NATS JetStream, CQL, MinIO of `clipstream stack up`).

Nothing is mocked: requests go through the Litestar app with its real services. The feed shard is
not part of this suite, so a tiny responder on the real NATS stands in for it where a test needs
pages; bus subjects use this suite's own prefix (see conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.bus.codec import decode
from clipstream.bus.messages import Follow, LikeRequest, UploadCompleted, VideoDeleted, ViewDelta
from clipstream.bus.rpc import FeedPage, FeedQuery, Query
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings
from clipstream.http.app import create_app
from clipstream.http.bootstrap import Services, open_services
from clipstream.storage.errors import NotFound
from clipstream.storage.hashtags import parse_hashtags
from clipstream.storage.ids import new_id
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.repos import now_ms
from tests.http.conftest import unique_name, with_nats

pytestmark = pytest.mark.integration

Client = AsyncTestClient[Litestar]


@pytest.fixture(scope="session")
async def client(schema: None, streams: None, base_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(base_settings)) as c:
        yield c


@pytest.fixture(scope="session")
async def nc(live_stack: None, base_settings: Settings) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(base_settings.nats.url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def svc(schema: None, streams: None, base_settings: Settings) -> AsyncIterator[Services]:
    """Services of the test's own (the app runs its own in the test client's thread and loop)."""
    async with open_services(base_settings) as services:
        yield services


class User:
    def __init__(self, user_id: int, username: str, token: str) -> None:
        self.id, self.username, self.token = user_id, username, token
        self.h = {"Authorization": f"Bearer {token}"}


async def new_user(client: Client) -> User:
    name = unique_name()
    r = await client.post(
        "/v1/auth/register", json={"username": name, "email": f"{name}@example.com", "password": "pass-word-1"}
    )
    assert r.status_code == 201, r.text
    r = await client.post("/v1/auth/login", json={"username": name, "password": "pass-word-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    return User(int(body["user_id"]), name, body["access_token"])


async def make_video(svc: Services, user: User, *, ready: bool = True, cached: bool = True, likes: int | None = None,
                     caption: str = "", low: bool = False) -> int:
    """A video row (and, if ``cached``, its Redis card) as the media pipeline would leave it (with a
    low rendition if ``low``, as since migration 6; without, as a video processed before)."""
    vid = new_id()
    video = Video(video_id=vid, author_id=user.id, status="uploading", file_size=100, file_format="mp4",
                  upload_key=f"{user.id}/{vid}.mp4", created_at=now_ms(), caption=caption,
                  hashtags=parse_hashtags(caption))
    await svc.videos.create(video)
    if ready:
        media, thumb = f"{user.id}/{vid}/video.mp4", f"{user.id}/{vid}/thumb.jpg"
        renditions = {"low_key": f"{user.id}/{vid}/video-low.mp4", "media_kbps": 1370, "low_kbps": 390} if low else {}
        await svc.videos.mark_ready(video, media, thumb, 5.0, 720, 1280, **renditions)  # type: ignore[arg-type]
        if cached:
            ready_video = msgspec.structs.replace(video, status="ready", media_key=media, thumb_key=thumb, duration=5.0,
                                                  **renditions)
            await svc.cache.put_cards([VideoCard.of(ready_video, user.username)])
    if likes is not None:
        await svc.cache.put_likes([(vid, likes)])
    return vid


async def subject_count(settings: Settings, nc: Any, subject: str) -> int:
    js = nc.jetstream()
    stream = Topology.from_settings(settings.nats).stream_for(subject)
    info = await js.stream_info(stream, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def last_message(settings: Settings, nc: Any, subject: str) -> Any:
    js = nc.jetstream()
    stream = Topology.from_settings(settings.nats).stream_for(subject)
    return decode((await js.get_last_msg(stream, subject)).data)


class TestAccounts:
    async def test_register_login_me(self, client: Client) -> None:
        user = await new_user(client)
        r = await client.get("/v1/users/me", headers=user.h)
        assert r.status_code == 200
        assert r.json() == {"user_id": str(user.id), "username": user.username, "follower_count": 0,
                            "following_count": 0, "video_count": 0, "following": False}

    async def test_taken_username_or_email_is_409(self, client: Client) -> None:
        user = await new_user(client)
        r = await client.post("/v1/auth/register", json={"username": user.username, "email": "x" + unique_name() + "@e.com",
                                                         "password": "pass-word-1"})
        assert r.status_code == 409 and "username" in r.json()["detail"]
        r = await client.post("/v1/auth/register", json={"username": unique_name(), "email": f"{user.username}@example.com",
                                                         "password": "pass-word-1"})
        assert r.status_code == 409 and "email" in r.json()["detail"]

    async def test_bad_credentials_are_401(self, client: Client) -> None:
        user = await new_user(client)
        r = await client.post("/v1/auth/login", json={"username": user.username, "password": "wrong-password"})
        assert r.status_code == 401
        r = await client.post("/v1/auth/login", json={"username": unique_name(), "password": "pass-word-1"})
        assert r.status_code == 401
        assert "password_hash" not in r.text

    async def test_token_checks(self, client: Client) -> None:
        assert (await client.get("/v1/users/me")).status_code == 401
        assert (await client.get("/v1/users/me", headers={"Authorization": "Bearer x.y.z"})).status_code == 401

    async def test_unknown_profile_is_404(self, client: Client) -> None:
        user = await new_user(client)
        assert (await client.get(f"/v1/users/{new_id()}", headers=user.h)).status_code == 404
        assert (await client.get("/v1/users/nobody", headers=user.h)).status_code == 404


class TestUpload:
    async def test_presigned_put_then_complete(self, client: Client, svc: Services, nc: Any, base_settings: Settings) -> None:
        user = await new_user(client)
        r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": 11, "file_format": "MP4"}, headers=user.h)
        assert r.status_code == 200, r.text
        body = r.json()
        vid = int(body["video_id"])
        assert body["expires_in"] == base_settings.minio.upload_url_ttl
        # Completing before the file is there is refused.
        assert (await client.post(f"/v1/videos/{vid}/complete", headers=user.h)).status_code == 409
        async with httpx.AsyncClient() as http:
            put = await http.put(body["upload_url"], content=b"hello video")
        assert put.status_code == 200, put.text
        key = f"{user.id}/{vid}.mp4"
        assert await svc.objects.upload_size(key) == 11
        # The creator sees the uploading video; others do not.
        r = await client.get(f"/v1/videos/{vid}", headers=user.h)
        assert r.status_code == 200 and r.json()["status"] == "uploading" and r.json()["video_url"] is None
        other = await new_user(client)
        assert (await client.get(f"/v1/videos/{vid}", headers=other.h)).status_code == 404
        assert (await client.post(f"/v1/videos/{vid}/complete", headers=other.h)).status_code == 403
        # complete is idempotent: JetStream de-duplicates the repeated event by its message id.
        subject = f"{base_settings.nats.subject_prefix}.video.upload_completed"
        before = await subject_count(base_settings, nc, subject)
        for _ in range(2):
            r = await client.post(f"/v1/videos/{vid}/complete", headers=user.h)
            assert r.status_code == 202 and r.json() == {"status": "processing"}
        assert await subject_count(base_settings, nc, subject) == before + 1
        msg = await last_message(base_settings, nc, subject)
        assert msg == UploadCompleted(video_id=vid, object_key=key)

    async def test_caption_is_stored_with_its_hashtags(self, client: Client) -> None:
        user = await new_user(client)
        body = {"file_size_bytes": 10, "file_format": "mp4", "caption": "Sunset run #Running #travel #running"}
        r = await client.post("/v1/videos/upload-url", json=body, headers=user.h)
        assert r.status_code == 200, r.text
        detail = (await client.get(f"/v1/videos/{r.json()['video_id']}", headers=user.h)).json()
        assert detail["caption"] == body["caption"] and detail["hashtags"] == ["running", "travel"]

    async def test_bad_caption_stores_nothing(self, client: Client, svc: Services) -> None:
        user = await new_user(client)
        body = {"file_size_bytes": 10, "file_format": "mp4", "caption": "x" * 301}
        r = await client.post("/v1/videos/upload-url", json=body, headers=user.h)
        assert r.status_code == 400 and r.json()["extra"][0]["key"] == "caption", r.text
        assert await svc.videos.by_author(user.id, None, 10) == []
        rows = await svc.videos.cql.execute("SELECT video_id FROM videos WHERE author_id = ? ALLOW FILTERING", (user.id,))
        assert list(rows) == []

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            ({"file_size_bytes": 10**12, "file_format": "mp4"}, "file too large"),
            ({"file_size_bytes": 10, "file_format": "gif"}, "file_format"),
            ({"file_size_bytes": -5, "file_format": "mp4"}, "positive"),
        ],
    )
    async def test_bad_requests_are_400(self, client: Client, body: dict[str, Any], fragment: str) -> None:
        user = await new_user(client)
        r = await client.post("/v1/videos/upload-url", json=body, headers=user.h)
        assert r.status_code == 400 and fragment in r.json()["detail"]


class TestCaptions:
    async def test_patch_is_the_creators_and_moves_the_hashtag_rows(self, client: Client, svc: Services) -> None:
        author, other = await new_user(client), await new_user(client)
        tag_a, tag_b = f"a{new_id()}", f"b{new_id()}"
        vid = await make_video(svc, author, caption=f"first #{tag_a}")
        assert [v["video_id"] for v in (await client.get(f"/v1/hashtags/{tag_a}/videos", headers=other.h)).json()["videos"]] == [str(vid)]
        # Someone else's edit is refused and changes nothing.
        r = await client.patch(f"/v1/videos/{vid}", json={"caption": "hijacked"}, headers=other.h)
        assert r.status_code == 403, r.text
        r = await client.patch(f"/v1/videos/{vid}", json={"caption": f"second #{tag_b.upper()}"}, headers=author.h)
        assert r.status_code == 200, r.text
        assert r.json()["caption"] == f"second #{tag_b.upper()}" and r.json()["hashtags"] == [tag_b]
        assert (await client.get(f"/v1/hashtags/{tag_a}/videos", headers=other.h)).json()["videos"] == []
        page = (await client.get(f"/v1/hashtags/{tag_b.upper()}/videos", headers=other.h)).json()["videos"]
        assert [v["video_id"] for v in page] == [str(vid)] and page[0]["hashtags"] == [tag_b]
        # A bad caption is a 400 and the stored one stays.
        r = await client.patch(f"/v1/videos/{vid}", json={"caption": "tab\tnot allowed"}, headers=author.h)
        assert r.status_code == 400 and r.json()["extra"][0]["key"] == "caption", r.text
        assert (await client.get(f"/v1/videos/{vid}", headers=other.h)).json()["caption"] == f"second #{tag_b.upper()}"
        # Deleted: 404 for everyone, and gone from the hashtag page.
        assert (await client.delete(f"/v1/videos/{vid}", headers=author.h)).status_code == 204
        assert (await client.patch(f"/v1/videos/{vid}", json={"caption": "x"}, headers=author.h)).status_code == 404
        assert (await client.get(f"/v1/hashtags/{tag_b}/videos", headers=other.h)).json()["videos"] == []

    async def test_hashtag_page_is_newest_first_with_cursors(self, client: Client, svc: Services) -> None:
        author, viewer = await new_user(client), await new_user(client)
        tag = f"t{new_id()}"
        vids = [await make_video(svc, author, caption=f"clip {i} #{tag}") for i in range(5)]
        r = await client.get(f"/v1/hashtags/{tag}/videos", params={"limit": 3}, headers=viewer.h)
        first = r.json()
        assert [v["video_id"] for v in first["videos"]] == [str(v) for v in vids[::-1][:3]]
        r = await client.get(f"/v1/hashtags/{tag}/videos", params={"limit": 3, "cursor": first["next_cursor"]}, headers=viewer.h)
        assert [v["video_id"] for v in r.json()["videos"]] == [str(v) for v in vids[::-1][3:]]
        assert r.json()["next_cursor"] is None

    @pytest.mark.parametrize("tag", ["two%20words", "a-b", "x" * 51, "%23cats"])
    async def test_malformed_tag_is_400(self, client: Client, tag: str) -> None:
        user = await new_user(client)
        r = await client.get(f"/v1/hashtags/{tag}/videos", headers=user.h)
        assert r.status_code == 400 and "tag" in r.text, r.text

    async def test_forged_hashtag_cursor_is_400(self, client: Client) -> None:
        user = await new_user(client)
        r = await client.get("/v1/hashtags/cats/videos", params={"cursor": "forged"}, headers=user.h)
        assert r.status_code == 400


class TestObjectStoreDown:
    async def test_upload_url_is_503(self, schema: None, streams: None, base_settings: Settings) -> None:
        # A MinIO endpoint where nothing listens: the presign would succeed, the probe must not.
        minio = msgspec.structs.replace(base_settings.minio, endpoint="127.0.0.1:9")
        settings = msgspec.structs.replace(base_settings, minio=minio)
        async with AsyncTestClient(app=create_app(settings)) as client:
            user = await new_user(client)
            r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": 10, "file_format": "mp4"},
                                  headers=user.h)
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0


class TestLikesViewsFollows:
    async def test_like_missing_unready_or_bad_action(self, client: Client, svc: Services) -> None:
        user = await new_user(client)
        assert (await client.post(f"/v1/videos/{new_id()}/like", json={"action": "like"}, headers=user.h)).status_code == 404
        unready = await make_video(svc, user, ready=False)
        assert (await client.post(f"/v1/videos/{unready}/like", json={"action": "like"}, headers=user.h)).status_code == 404
        ready = await make_video(svc, user)
        assert (await client.post(f"/v1/videos/{ready}/like", json={"action": "adore"}, headers=user.h)).status_code == 400

    async def test_like_and_view_are_published(self, client: Client, svc: Services, nc: Any, base_settings: Settings) -> None:
        author, fan = await new_user(client), await new_user(client)
        vid = await make_video(svc, author, cached=False)  # exercises the Scylla fallback + re-cache
        r = await client.post(f"/v1/videos/{vid}/like", json={"action": "like"}, headers=fan.h)
        assert r.status_code == 200 and r.json()["success"] is True and int(r.json()["read_after"]) > 0
        assert (await svc.cache.cards_and_likes([vid]))[0][0] is not None  # card re-cached
        subject = svc.publisher.subject_for(LikeRequest(user_id=fan.id, video_id=vid, author_id=author.id, like=True, at=0))
        msg = await last_message(base_settings, nc, subject)
        assert isinstance(msg, LikeRequest) and (msg.user_id, msg.video_id, msg.author_id, msg.like) == (fan.id, vid, author.id, True)
        r = await client.post(f"/v1/videos/{vid}/view", headers=fan.h)
        assert r.status_code == 202
        msg = await last_message(base_settings, nc, svc.publisher.subject_for(ViewDelta(video_id=vid, user_id=fan.id, at=0)))
        assert isinstance(msg, ViewDelta) and msg.video_id == vid

    async def test_follow(self, client: Client, svc: Services, nc: Any, base_settings: Settings) -> None:
        a, b = await new_user(client), await new_user(client)
        r = await client.post(f"/v1/users/{a.id}/follow", json={"action": "follow"}, headers=a.h)
        assert r.status_code == 400
        r = await client.post(f"/v1/users/{new_id()}/follow", json={"action": "follow"}, headers=a.h)
        assert r.status_code == 404
        r = await client.post(f"/v1/users/{b.id}/follow", json={"action": "follow"}, headers=a.h)
        assert r.status_code == 200 and r.json()["success"] is True and int(r.json()["read_after"]) > 0
        msg = await last_message(base_settings, nc, svc.publisher.subject_for(Follow(user_id=a.id, author_id=b.id, follow=True, at=0)))
        assert isinstance(msg, Follow) and (msg.user_id, msg.author_id, msg.follow) == (a.id, b.id, True)

    async def test_a_profile_says_whether_the_caller_follows_it(self, client: Client, svc: Services) -> None:
        a, b = await new_user(client), await new_user(client)
        assert (await client.get(f"/v1/users/{b.id}", headers=a.h)).json()["following"] is False
        await svc.follows.apply([(a.id, b.id, True)])  # as the follower's feed entity flushes it
        assert (await client.get(f"/v1/users/{b.id}", headers=a.h)).json()["following"] is True
        assert (await client.get(f"/v1/users/{a.id}", headers=b.h)).json()["following"] is False
        assert (await client.get(f"/v1/users/{b.id}", headers=b.h)).json()["following"] is False


class TestDelete:
    async def test_only_the_creator_deletes(self, client: Client, svc: Services, nc: Any, base_settings: Settings) -> None:
        author, other = await new_user(client), await new_user(client)
        vid = await make_video(svc, author)
        assert (await client.delete(f"/v1/videos/{vid}", headers=other.h)).status_code == 403
        assert (await client.get(f"/v1/videos/{vid}", headers=other.h)).status_code == 200
        assert (await client.delete(f"/v1/videos/{vid}", headers=author.h)).status_code == 204
        assert (await client.get(f"/v1/videos/{vid}", headers=author.h)).status_code == 404
        assert (await client.post(f"/v1/videos/{vid}/like", json={"action": "like"}, headers=other.h)).status_code == 404
        assert (await client.delete(f"/v1/videos/{vid}", headers=author.h)).status_code == 404
        assert (await svc.cache.cards_and_likes([vid]))[0][0] is None
        msg = await last_message(base_settings, nc, f"{base_settings.nats.subject_prefix}.video.video_deleted")
        assert msg == VideoDeleted(video_id=vid, author_id=author.id, at=msg.at)

    async def test_delete_removes_the_upload(self, client: Client, svc: Services) -> None:
        user = await new_user(client)
        r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": 3, "file_format": "webm"}, headers=user.h)
        vid = r.json()["video_id"]
        async with httpx.AsyncClient() as http:
            assert (await http.put(r.json()["upload_url"], content=b"abc")).status_code == 200
        assert (await client.delete(f"/v1/videos/{vid}", headers=user.h)).status_code == 204
        with pytest.raises(NotFound):
            await svc.objects.upload_size(f"{user.id}/{vid}.webm")


class TestProfileVideos:
    async def test_newest_first_with_cursor(self, client: Client, svc: Services) -> None:
        author, viewer = await new_user(client), await new_user(client)
        ids = [await make_video(svc, author, cached=i % 2 == 0, likes=i) for i in range(3)]
        await make_video(svc, author, ready=False)  # never listed
        r = await client.get(f"/v1/users/{author.id}/videos", params={"limit": 2}, headers=viewer.h)
        assert r.status_code == 200, r.text
        page1 = r.json()
        assert [v["video_id"] for v in page1["videos"]] == [str(ids[2]), str(ids[1])]
        assert page1["videos"][0]["username"] == author.username and page1["videos"][0]["like_count"] == 2
        r = await client.get(f"/v1/users/{author.id}/videos", params={"limit": 2, "cursor": page1["next_cursor"]},
                             headers=viewer.h)
        assert [v["video_id"] for v in r.json()["videos"]] == [str(ids[0])] and r.json()["next_cursor"] is None
        # A cursor of another profile is refused.
        other = await client.get(f"/v1/users/{viewer.id}/videos", params={"cursor": page1["next_cursor"]}, headers=viewer.h)
        assert other.status_code == 400
        profile = (await client.get(f"/v1/users/{author.id}", headers=viewer.h)).json()
        assert profile["video_count"] == 3
        assert (await client.get(f"/v1/users/{new_id()}/videos", headers=viewer.h)).status_code == 404


@contextlib.contextmanager
def feed_shard(url: str, prefix: str, answer: Callable[[int, FeedQuery], FeedPage | None]) -> Iterator[list[tuple[str, int, FeedQuery]]]:
    """A stand-in feed shard on the real NATS: answers ``answer(user, query)`` (None: stays silent).

    It runs on its own thread and event loop: Litestar's test client blocks the test's loop while
    a request is in flight, so a responder on that loop could never answer.
    """
    seen: list[tuple[str, int, FeedQuery]] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def on_request(msg: Any) -> None:
        query = msgspec.json.decode(msg.data, type=Query)
        body = msgspec.json.decode(query.body, type=FeedQuery)
        seen.append((msg.subject, query.key, body))
        page = answer(query.key, body)
        if page is not None:
            await msg.respond(msgspec.json.encode(page))

    async def serve() -> None:
        conn = await nats.connect(url)
        try:
            await conn.subscribe(f"{prefix}.rpc.feed.*", cb=on_request)
            await conn.flush()
            ready.set()
            await stop.wait()
        finally:
            await conn.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "stand-in shard did not subscribe"
        yield seen
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


class TestFeed:
    async def test_pages_are_hydrated_and_cursors_signed(self, client: Client, svc: Services, nc: Any, base_settings: Settings) -> None:
        author, viewer = await new_user(client), await new_user(client)
        cached = await make_video(svc, author, likes=7, low=True)
        uncached = await make_video(svc, author, cached=False)  # card and count come from Scylla
        unready = await make_video(svc, author, ready=False)
        deleted = await make_video(svc, author)
        assert (await client.delete(f"/v1/videos/{deleted}", headers=author.h)).status_code == 204
        pages = {None: FeedPage(page=4, video_ids=[cached, unready, uncached, deleted], next_page=5, flags=[3, 0, 2, 0]),
                 5: FeedPage(page=5, video_ids=[], next_page=None)}

        with feed_shard(base_settings.nats.url, base_settings.nats.subject_prefix, lambda user, q: pages[q.page]) as seen:
            r = await client.get("/v1/feed", params={"limit": 4}, headers=viewer.h)
            assert r.status_code == 200, r.text
            body = r.json()
            assert [v["video_id"] for v in body["videos"]] == [str(cached), str(uncached)]
            first = body["videos"][0]
            assert first["author_id"] == str(author.id) and first["username"] == author.username
            assert first["like_count"] == 7 and body["videos"][1]["like_count"] == 0
            # the viewer's own state, as their entity told it
            assert first["liked"] is True and first["following_author"] is True
            assert body["videos"][1]["liked"] is False and body["videos"][1]["following_author"] is True
            assert f"{author.id}/{cached}/video.mp4" in first["video_url"]
            assert f"{author.id}/{cached}/thumb.jpg" in first["thumbnail_url"]
            assert set(first) == {"video_id", "author_id", "username", "video_url", "thumbnail_url", "like_count",
                                  "duration", "created_at", "caption", "hashtags", "liked", "following_author",
                                  "video_url_low", "video_kbps", "video_low_kbps"}
            # the cached card has a low rendition; the other is a video processed before renditions
            assert f"{author.id}/{cached}/video-low.mp4" in first["video_url_low"]
            assert (first["video_kbps"], first["video_low_kbps"]) == (1370, 390)
            second = body["videos"][1]
            assert second["video_url_low"] is None and second["video_kbps"] is None
            assert f"{author.id}/{uncached}/video.mp4" in second["video_url"]
            subject, key, query = seen[-1]
            assert key == viewer.id and query == FeedQuery(limit=4, page=None)
            assert subject == svc.feed.subject_for(viewer.id)

            cursor = body["next_cursor"]
            assert cursor and "5" != cursor
            r = await client.get("/v1/feed", params={"cursor": cursor}, headers=viewer.h)
            assert r.status_code == 200 and r.json() == {"next_cursor": None, "videos": [], "feedback_at": 0}
            assert seen[-1][2] == FeedQuery(limit=10, page=5)

            # The viewer's cursor is worthless to anyone else, and a forged one is refused.
            assert (await client.get("/v1/feed", params={"cursor": cursor}, headers=author.h)).status_code == 400
            forged = await client.get("/v1/feed", params={"cursor": cursor[:-2] + "AA"}, headers=viewer.h)
            assert forged.status_code == 400 and forged.json()["detail"] == "invalid cursor"

    async def test_the_login_can_answer_the_first_page(self, client: Client, svc: Services, base_settings: Settings) -> None:
        author, viewer = await new_user(client), await new_user(client)
        video = await make_video(svc, author, likes=2)
        login = {"username": viewer.username, "password": "pass-word-1"}
        with feed_shard(base_settings.nats.url, base_settings.nats.subject_prefix,
                        lambda user, q: FeedPage(page=0, video_ids=[video], next_page=1)) as seen:
            r = await client.post("/v1/auth/login", params={"feed": 3}, json=login)
            assert r.status_code == 200, r.text
            body = r.json()
            assert [v["video_id"] for v in body["feed"]["videos"]] == [str(video)] and body["feed"]["next_cursor"]
            assert seen[-1][1:] == (viewer.id, FeedQuery(limit=3, page=None))
            me = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
            assert me.status_code == 200 and body["refresh_token"]
            # not asked: no page, and no call to the feed
            calls = len(seen)
            r = await client.post("/v1/auth/login", json=login)
            assert r.status_code == 200 and r.json()["feed"] is None and len(seen) == calls

    async def test_a_login_without_a_feed_shard_still_signs_in(self, schema: None, streams: None,
                                                                base_settings: Settings) -> None:
        async with AsyncTestClient(app=create_app(with_nats(base_settings, timeout=0.5))) as client:
            user = await new_user(client)  # nobody subscribed: the feed answers "no responders"
            r = await client.post("/v1/auth/login", params={"feed": 10},
                                  json={"username": user.username, "password": "pass-word-1"})
            assert r.status_code == 200 and r.json()["feed"] is None and r.json()["access_token"]

    async def test_no_shard_is_503_not_a_hang(self, schema: None, streams: None, base_settings: Settings, nc: Any) -> None:
        settings = with_nats(base_settings, timeout=0.5)
        async with AsyncTestClient(app=create_app(settings)) as client:
            user = await new_user(client)
            loop = asyncio.get_running_loop()
            # Nobody subscribed: NATS answers "no responders" at once.
            r = await client.get("/v1/feed", headers=user.h)
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            # A shard that never answers: the request gives up after the configured timeout.
            with feed_shard(settings.nats.url, settings.nats.subject_prefix, lambda user, q: None):
                started = loop.time()
                r = await client.get("/v1/feed", headers=user.h)
                elapsed = loop.time() - started
            assert r.status_code == 503 and "retry-after" in r.headers
            assert 0.4 <= elapsed < 3.0
