"""Docstrings, comments and docs name only code that exists: every ``clipstream.<package>…`` dotted
name resolves (module, then attributes; ``module:function`` too) and every repository path
(``actors/node.py``, ``docs/bus.md``…) is a file. A rename that forgets a reader fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "bus", "http", "storage", "media", "workers", "bench", "config", "stack", "cli")
DOTTED = re.compile(r"\bclipstream\.(?:%s)(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_]\w*)?" % "|".join(PACKAGES))
PATH = re.compile(r"(?<![\w/.-])((?:%s|docs|tests)/[\w/.-]+\.(?:json|py|md|cql|lua|js|html|css))\b" % "|".join(PACKAGES))


def _sources() -> list[Path]:
    code = [p for p in REPO.rglob("*.py") if not {".venv", "tests", "build"} & set(p.relative_to(REPO).parts)]
    return code + sorted(REPO.glob("*.md")) + sorted((REPO / "docs").glob("*.md"))


def _resolves(name: str) -> bool:
    module, _, attr = name.partition(":")
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:] + ([attr] if attr else []):
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def stale_names(files: list[Path], root: Path = REPO) -> list[tuple[str, str]]:
    out = []
    for f in files:
        text = f.read_text(errors="replace")
        where = str(f.relative_to(root))
        out += [(where, m.group(0)) for m in DOTTED.finditer(text) if not _resolves(m.group(0))]
        out += [(where, m.group(1)) for m in PATH.finditer(text) if not (root / m.group(1)).exists()]
    return sorted(set(out))


def test_every_named_module_function_and_file_exists() -> None:
    files = _sources()
    assert len(files) > 100
    assert stale_names(files) == []


def test_a_stale_name_is_found(tmp_path: Path) -> None:
    (tmp_path / "bus").mkdir()
    (tmp_path / "bus" / "here.py").write_text("")
    doc = tmp_path / "probe.md"
    doc.write_text("See `actors/no_such_file.py` and clipstream.actors.node.no_such_function; "
                   "clipstream.bus.status.gather_status and bus/here.py are fine.")
    assert stale_names([doc], tmp_path) == [("probe.md", "actors/no_such_file.py"),
                                            ("probe.md", "clipstream.actors.node.no_such_function")]
