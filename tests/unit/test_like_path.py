"""docs/like-path.md stays true: every "`file` — `function`" step it names exists in that file."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "like-path.md"
#: a step: "`http/videos.py` — `like`"
STEP = re.compile(r"`([\w/]+\.py)` — `([\w.]+)`")
#: anything written like code of ours: a method (`Bridge._ingest`) or a private function (`_x`)
CODE = re.compile(r"`([A-Z]\w*\.\w+|_\w+)`")


def steps(text: str) -> list[tuple[str, str]]:
    return STEP.findall(text)


def missing(named: list[tuple[str, str]], root: Path = REPO) -> list[str]:
    out = []
    for path, qualname in named:
        if not (root / path).is_file():
            out.append(f"{path}: no such file")
            continue
        obj = importlib.import_module("clipstream." + path.removesuffix(".py").replace("/", "."))
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                out.append(f"{path}: no {qualname}")
                break
    return out


def test_every_step_of_the_like_path_exists() -> None:
    named = steps(DOC.read_text())
    # from the handler to the row: the API, the bus, the shard, the entity, the repository, CQL
    assert {p for p, _ in named} >= {"http/videos.py", "bus/publisher.py", "actors/bridge.py",
                                     "actors/entities/feed.py", "storage/repos.py", "storage/cql.py"}
    assert missing(named) == []
    # and none is named without its file, where it would not be checked
    assert set(CODE.findall(DOC.read_text())) <= {name for _, name in named}


def test_a_renamed_function_is_caught() -> None:
    named = steps("1. `http/videos.py` — `like_it`; 2. `bus/gone.py` — `f`; 3. `storage/cql.py` — `Cql.nope`")
    assert missing(named) == ["http/videos.py: no like_it", "bus/gone.py: no such file", "storage/cql.py: no Cql.nope"]
