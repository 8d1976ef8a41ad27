"""The feed/profile cursor signer: round trips, and refuses anything it did not make for that user."""

from __future__ import annotations

import base64

import pytest

from clipstream.http.cursors import CursorSigner, InvalidCursor

SECRET = "a-test-secret-of-enough-length"


class TestCursorSigner:
    def test_round_trip(self) -> None:
        s = CursorSigner(SECRET, "feed")
        for value in (0, 1, 42, 2**63 - 1, -5):
            assert s.verify(7, s.sign(7, value)) == value

    def test_is_opaque_and_url_safe(self) -> None:
        c = CursorSigner(SECRET, "feed").sign(7, 3)
        assert "3" not in c or len(c) > 20
        assert all(ch.isalnum() or ch in "-_" for ch in c)

    def test_other_users_cursor_is_refused(self) -> None:
        s = CursorSigner(SECRET, "feed")
        with pytest.raises(InvalidCursor):
            s.verify(8, s.sign(7, 3))

    def test_other_purpose_or_secret_is_refused(self) -> None:
        c = CursorSigner(SECRET, "feed").sign(7, 3)
        with pytest.raises(InvalidCursor):
            CursorSigner(SECRET, "profile").verify(7, c)
        with pytest.raises(InvalidCursor):
            CursorSigner(SECRET + "x", "feed").verify(7, c)

    def test_every_flipped_bit_is_refused(self) -> None:
        s = CursorSigner(SECRET, "feed")
        raw = bytearray(base64.urlsafe_b64decode(s.sign(7, 3) + "=="))
        for i in range(len(raw) * 8):
            forged = bytearray(raw)
            forged[i // 8] ^= 1 << (i % 8)
            with pytest.raises(InvalidCursor):
                s.verify(7, base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=").decode())

    @pytest.mark.parametrize("garbled", ["", "x", "!!!!", "é" * 10, "A" * 65, "AAAA" * 8, "%00%ff"])
    def test_garbage_is_refused(self, garbled: str) -> None:
        with pytest.raises(InvalidCursor):
            CursorSigner(SECRET, "feed").verify(7, garbled)

    def test_only_the_canonical_spelling_is_accepted(self) -> None:
        s = CursorSigner(SECRET, "feed")
        c = s.sign(7, 3)
        for variant in (c + "=", c[:5] + "!" + c[5:], c + "\n", " " + c):
            with pytest.raises(InvalidCursor):
                s.verify(7, variant)
