"""The docs cannot drift: generated config reference, key coverage, relative links, README size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from survival_framework.configdoc import key_paths, main, render_config_reference

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
CONFIG_README = ROOT / "config" / "README.md"
README = ROOT / "README.md"
DOC_FILES = [README, CONFIG_README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 300


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def test_config_reference_is_generated_from_schema(schema):
    expected = render_config_reference(schema)
    assert CONFIG_README.read_text(encoding="utf-8") == expected, (
        "config/README.md is out of date with config/schema.yaml: run `make docs`"
    )


def _schema_paths(node: dict, prefix: str = "") -> list[str]:
    """Key paths written independently of configdoc: properties and patternProperties."""
    out = []
    for key, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out += [path, *_schema_paths(sub, path)]
    for sub in (node.get("patternProperties") or {}).values():
        path = f"{prefix}.<name>" if prefix else "<name>"
        out += [path, *_schema_paths(sub, path)]
    return out


def test_every_schema_key_is_in_config_reference(schema):
    text = CONFIG_README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    expected = set(_schema_paths(schema)) | set(key_paths(schema))
    assert {"data.path", "cv.n_folds", "models.<name>.params"} <= expected
    missing = sorted(expected - documented)
    assert not missing, f"schema keys missing from config/README.md (run `make docs`): {missing}"


def test_render_walks_nested_pattern_and_additional_properties():
    schema = {
        "title": "t",
        "type": "object",
        "additionalProperties": False,
        "$defs": {"block": {"type": "object", "properties": {"on": {"type": "boolean"}}}},
        "properties": {
            "a": {
                "type": "object",
                "description": "block | with pipe",
                "properties": {"b": {"type": ["string", "null"], "default": None}},
                "required": ["b"],
            },
            "m": {
                "type": "object",
                "patternProperties": {"^(x|y)$": {"$ref": "#/$defs/block"}},
                "additionalProperties": {
                    "type": "object",
                    "properties": {"z": {"type": "integer"}},
                },
            },
            "r": {"type": "integer", "minimum": 1, "description": "see <file>.csv"},
        },
        "required": ["r"],
    }
    text = render_config_reference(schema)
    assert key_paths(schema) == [
        "a",
        "a.b",
        "m",
        "m.<name>",
        "m.<name>.on",
        "m.<other>",
        "m.<other>.z",
        "r",
    ]
    assert "| `a.b` | string or null | `null` |" in text
    assert "| `r` | integer, >= 1 | required | see \\<file>.csv |" in text
    assert "block \\| with pipe" in text
    assert "`^(x\\|y)$`" in text
    assert "Unknown top-level keys are rejected." in text


def test_main_writes_the_reference(tmp_path):
    out = tmp_path / "README.md"
    assert main([str(SCHEMA), str(out)]) == 0
    assert out.read_text(encoding="utf-8") == CONFIG_README.read_text(encoding="utf-8")


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and code spans (links there are not links)."""
    return _CODE.sub("", _FENCE.sub("", text))


def _anchors(path: Path) -> set[str]:
    """GitHub heading anchors of a markdown file (lower case, punctuation dropped, '-')."""
    anchors, seen = set(), {}
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _relative_links(path: Path) -> list[str]:
    targets = _LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, flags=re.I)]


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in _relative_links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"broken links in {doc.relative_to(ROOT)}: {broken}"


def test_link_checker_sees_links_and_anchors(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text(
        "# Outputs (the contract)\n## `rules/ph.smk` tests\n```\n[x](nowhere.md)\n```\n"
        'see [b](b.md#top), `[c](gone.md)`, ![img](i.png "t") and [w](https://x.org)\n',
        encoding="utf-8",
    )
    assert _anchors(doc) == {"outputs-the-contract", "rulesphsmk-tests"}
    assert _relative_links(doc) == ["b.md#top", "i.png"]


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/"
    )
    assert "## Adding a model" in README.read_text(encoding="utf-8")
