"""An upload larger than its creator declared is rejected by processing and never served.

A presigned PUT does not bind the body's length, so a client can declare a small size and put a
large file; the media worker compares the stored object with the declaration (media/validate.py).
Uses the session's one running system (tests/e2e/conftest.py), like test_creators.
"""

from __future__ import annotations

import pytest

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.media.testsrc import make_test_video
from clipstream.storage.ids import new_id
from tests.e2e.test_creators import feed_ids

pytestmark = pytest.mark.integration


async def test_an_upload_larger_than_declared_fails_and_is_never_served(system, tmp_path) -> None:
    suffix = new_id() % 10**8
    creator = await ApiClient(system).signup(f"liz{suffix}")
    viewer = await ApiClient(system).signup(f"max{suffix}")
    try:
        clip = tmp_path / "clip.mp4"
        await make_test_video(clip, seconds=2.0, width=64, height=64, fps=10, audio=False)
        data = clip.read_bytes()  # a real, valid video: only its size is a lie
        slot = await creator.call("POST", "/v1/videos/upload-url", {"file_size_bytes": len(data) - 100, "file_format": "mp4"})
        put = await creator.http.put(slot["upload_url"], content=data)
        assert put.status_code == 200, put.text  # object storage takes it: the check is processing's
        video_id = str(slot["video_id"])

        video = await creator.wait_processed(video_id)
        assert video["status"] == "failed", video
        assert "larger than" in video["failure_reason"] and str(len(data) - 100) in video["failure_reason"], video
        assert video["video_url"] is None and video["thumbnail_url"] is None

        with pytest.raises(ApiError) as hidden:
            await viewer.video(video_id)
        assert hidden.value.status == 404
        assert video_id not in await feed_ids(viewer)
        grid = await viewer.call("GET", f"/v1/users/{creator.user_id}/videos")
        assert grid["videos"] == []
    finally:
        await creator.close()
        await viewer.close()
