"""A small client of clipstream's public HTTP API, used by the demo command, tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ApiClient", "ApiError"]


class ApiError(Exception):
    """A non-2xx answer, with its status and body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class ApiClient:
    """One user's session against the API (register/login sets its bearer token)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.AsyncClient(timeout=30)
        self.token: str | None = None
        self.user_id: str | None = None

    async def call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None,
                   expect: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        r = await self.http.request(method, self.base_url + path, json=json, params=params, headers=headers)
        body = r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r.text
        if r.status_code not in expect:
            raise ApiError(r.status_code, body)
        return body

    async def signup(self, username: str, password: str = "correct horse battery") -> "ApiClient":
        """Register (or, if the name is taken, log in) and keep the token."""
        try:
            await self.call("POST", "/v1/auth/register",
                            {"username": username, "email": f"{username}@example.test", "password": password})
        except ApiError as exc:
            if exc.status != 409:
                raise
        return await self.login(username, password)

    async def login(self, username: str, password: str) -> "ApiClient":
        body = await self.call("POST", "/v1/auth/login", {"username": username, "password": password})
        self.token, self.user_id = body["access_token"], str(body["user_id"])
        return self

    async def upload(self, path: str | os.PathLike[str], fmt: str = "mp4", complete: bool = True,
                     caption: str = "") -> str:
        """Ask for an upload URL, PUT the file to it with plain HTTP and (``complete``) say so;
        returns the video id.

        The bucket notification starts processing on its own, but MinIO delivers it through its
        on-disk event queue (so that no event is lost while NATS is away), which measured 0.9 to
        2.5 s after the PUT; the client's own "complete" starts it at once. Whichever arrives
        second finds the video claimed and changes nothing."""
        data = Path(path).read_bytes()
        body: dict[str, Any] = {"file_size_bytes": len(data), "file_format": fmt}
        if caption:
            body["caption"] = caption
        slot = await self.call("POST", "/v1/videos/upload-url", body)
        r = await self.http.put(slot["upload_url"], content=data)
        if r.status_code != 200:
            raise ApiError(r.status_code, r.text)
        if complete:
            await self.call("POST", f"/v1/videos/{slot['video_id']}/complete")
        return str(slot["video_id"])

    async def video(self, video_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/v1/videos/{video_id}")

    async def wait_processed(self, video_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll until the video is ready or failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            video = await self.video(video_id)
            if video["status"] in ("ready", "failed") or loop.time() > deadline:
                return video
            await asyncio.sleep(0.25)

    async def feed(self, limit: int = 10, cursor: str | None = None, after: str | None = None) -> dict[str, Any]:
        """A feed page; ``after``: a like's, follow's or view's ``read_after`` it must take in."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if after:
            params["after"] = after
        return await self.call("GET", "/v1/feed", params=params)

    async def like(self, video_id: str, action: str = "like") -> dict[str, Any]:
        return await self.call("POST", f"/v1/videos/{video_id}/like", {"action": action})

    async def follow(self, user_id: str, action: str = "follow") -> dict[str, Any]:
        return await self.call("POST", f"/v1/users/{user_id}/follow", {"action": action})

    async def close(self) -> None:
        await self.http.aclose()
