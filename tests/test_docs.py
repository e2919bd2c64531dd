"""The README stays a front page and the docs site's links hold: the manual, the papers' results and the performance
tables live in docs/ (built by `tox -e docs`), so a moved or renamed page must not leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/ (the generated tables beside the records included)."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(page: Path) -> list[str]:
    """Link and image targets outside code, without their #anchor; web addresses and in-page anchors left out."""
    targets, fence = [], False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"[a-z][a-z0-9+.-]*:|#", target):
                targets.append(target.split("#", 1)[0])
    return targets


def dead_links(page: Path) -> list[str]:
    return [target for target in relative_links(page) if not (page.parent / target).exists()]


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move reference text into docs/"


def test_every_relative_link_points_to_a_file():
    checked = {page.relative_to(ROOT).as_posix(): relative_links(page) for page in pages()}
    assert len(checked["README.md"]) >= 10 and checked["docs/papers/graph_cot.md"]  # the check sees the links
    dead = {name: dead_links(ROOT / name) for name in checked}
    assert not {name: links for name, links in dead.items() if links}


def test_a_dead_link_is_found(tmp_path):
    (tmp_path / "here.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](here.png) ![gone](missing.png) [web](https://example.org) [anchor](#top)\n"
        "`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
    )
    assert dead_links(page) == ["missing.png"]


def test_the_nav_and_the_pages_agree():
    """Every page in mkdocs.yml's nav exists and every page outside docs/results/ is in the nav (`mkdocs build
    --strict` fails on either, but `tox -e docs` is not the default suite)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def entries(nav: list) -> list[str]:
        out = []
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            out += entries(value) if isinstance(value, list) else [value]
        return out

    nav = entries(config["nav"])
    assert sorted(nav) == sorted(set(nav)), "a page is in the nav twice"
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "results" not in p.relative_to(DOCS).parts}
    assert set(nav) == written
    assert config["theme"]["font"] is False  # the build must not fetch fonts
