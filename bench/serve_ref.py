"""``python -m clipstream.bench.serve_ref ceiling|cache PORT WORKERS``: a reference server under granian."""

from __future__ import annotations

import sys

from clipstream.http.server import serve

__all__ = ["TARGETS", "main"]

TARGETS = {"ceiling": "clipstream.bench.ref_ceiling:create_app", "cache": "clipstream.bench.ref_cache:create_app"}


def main() -> None:
    name, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    serve(TARGETS[name], "127.0.0.1", port, workers)


if __name__ == "__main__":
    main()
