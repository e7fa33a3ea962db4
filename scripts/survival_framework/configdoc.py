"""Config reference (``config/README.md``) generated from ``config/schema.yaml``.

The schema is the single source of every key's type, default and meaning; this module renders
it as one markdown table so the reference cannot drift from what the workflow validates.
``tests/test_docs.py`` checks that the committed file equals the rendering.

Run ``make docs`` or ``python -m survival_framework.configdoc config/schema.yaml config/README.md``
(with ``scripts/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = ["USAGE", "iter_keys", "key_paths", "main", "render_config_reference"]

GENERATED_NOTE = (
    "<!-- Generated from config/schema.yaml by scripts/survival_framework/configdoc.py; "
    "do not edit by hand: run `make docs`. -->"
)

# Where a run's configuration comes from: in the repository and as a module of another project
# (the Snakemake workflow catalog shows this file as the workflow's configuration page).
USAGE = """\
## Where the configuration comes from

Run in a clone of this repository, the workflow reads `config/config.yaml` (the demo), then
any `--configfile` and `--config` given on the command line. Used as a Snakemake module from
another project ([docs/module.md](../docs/module.md)), it reads the project's configuration
instead: the project's `config/config.yaml`, passed to the module with `config: config`, and
the repository's `config/config.yaml` is not read. Every key left out takes the default below,
so a project needs only the data keys:

```yaml
# <project>/config/config.yaml
data:
  path: data/my_table.csv   # relative to the project folder (the working directory)
  duration_col: time
  event_col: event
```

```python
# <project>/Snakefile (or workflow/Snakefile, as snakedeploy writes it)
configfile: "config/config.yaml"


module survival_workflow:
    snakefile:
        "/path/to/survival-workflow/Snakefile"  # a local clone
    config:
        config


use rule * from survival_workflow
```

Relative paths (`data.path`, and all outputs: `results/`, `logs/`, `benchmarks/`,
`resources/`) are relative to the working directory: the project folder, not the clone.
"""

# Placeholders for keys that are not fixed names: a patternProperties entry, an
# additionalProperties schema (e.g. one block per registry model under `models`).
_PATTERN_KEY = "<name>"
_ADDITIONAL_KEY = "<name>"
_ADDITIONAL_KEY_BESIDE_PATTERN = "<other>"


def _resolve(node: Any, root: dict) -> Any:
    """Follow a local ``$ref`` (``#/...``); other nodes are returned as they are."""
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            break
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return node
            target = target[part]
        # keys beside $ref (description, default) override the referenced ones
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _children(node: dict, root: dict) -> Iterator[tuple[str, dict, bool, str]]:
    """(key, sub-schema, required, note) of the keys one level below ``node``."""
    required = set(node.get("required") or [])
    for key, sub in (node.get("properties") or {}).items():
        yield str(key), _resolve(sub, root), key in required, ""
    patterns = node.get("patternProperties") or {}
    for i, (pattern, sub) in enumerate(patterns.items()):
        key = _PATTERN_KEY if len(patterns) == 1 else f"<name{i + 1}>"
        yield key, _resolve(sub, root), False, f"`{key}` matches `{pattern}`"
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        key = _ADDITIONAL_KEY_BESIDE_PATTERN if patterns else _ADDITIONAL_KEY
        what = "any other key" if (patterns or node.get("properties")) else "any key"
        yield key, _resolve(extra, root), False, f"`{key}`: {what}"


def iter_keys(schema: dict) -> Iterator[tuple[str, dict, bool, str]]:
    """Every key of the schema, depth first in schema order.

    Parameters
    ----------
    schema : dict
        A JSON schema (as loaded from ``config/schema.yaml``).

    Yields
    ------
    tuple
        ``(dotted path, sub-schema, required, note)``. Nested ``properties``,
        ``patternProperties`` (path part ``<name>``), ``additionalProperties`` schemas and the
        object ``items`` of arrays (path part ``[]``) are walked; local ``$ref`` are followed.
    """

    def walk(node: dict, prefix: str, depth: int) -> Iterator[tuple[str, dict, bool, str]]:
        if depth > 20 or not isinstance(node, dict):  # guards against recursive $ref
            return
        for key, sub, required, note in _children(node, schema):
            if not isinstance(sub, dict):
                continue
            path = f"{prefix}.{key}" if prefix else key
            yield path, sub, required, note
            yield from walk(sub, path, depth + 1)
            items = _resolve(sub.get("items"), schema)
            if isinstance(items, dict):
                yield from walk(items, f"{path}[]", depth + 1)

    yield from walk(_resolve(schema, schema), "", 0)


def key_paths(schema: dict) -> list[str]:
    """Dotted paths of every key of ``schema`` (see :func:`iter_keys`)."""
    return [path for path, *_ in iter_keys(schema)]


def _one_line(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _cell(text: str) -> str:
    """Table-safe cell: one line, pipes escaped, ``<`` escaped outside code spans.

    An unescaped ``<name>`` in prose would be read as an HTML tag and vanish when rendered.
    """
    parts = _one_line(text).replace("|", "\\|").split("`")
    # even parts are prose, odd parts are inside `code`
    return "`".join(p if i % 2 else p.replace("<", "\\<") for i, p in enumerate(parts))


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _code(value: Any) -> str:
    text = _literal(value)
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _base_type(node: dict) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind:
        return str(kind)
    for combiner in ("oneOf", "anyOf"):
        if isinstance(node.get(combiner), list):
            parts = [_base_type(n) for n in node[combiner] if isinstance(n, dict)]
            return " or ".join(p for p in parts if p) or "any"
    if "enum" in node or "const" in node:
        return ""
    if any(k in node for k in ("properties", "patternProperties", "additionalProperties")):
        return "object"
    return "any"


def _constraints(node: dict) -> list[str]:
    out = []
    if "enum" in node:
        out.append("one of " + ", ".join(_code(v) for v in node["enum"]))
    if "const" in node:
        out.append("= " + _code(node["const"]))
    for key, symbol in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in node and not isinstance(node[key], bool):
            out.append(f"{symbol} {_literal(node[key])}")
    if "minItems" in node and node.get("minItems") == node.get("maxItems"):
        out.append(f"{node['minItems']} items")
    else:
        if "minItems" in node:
            out.append(f">= {node['minItems']} items")
        if "maxItems" in node:
            out.append(f"<= {node['maxItems']} items")
    if "pattern" in node:
        out.append("matches " + _code(node["pattern"]))
    if node.get("additionalProperties") is False:
        out.append("no other keys")
    return out


def _type(node: dict, root: dict) -> str:
    text = _base_type(node)
    items = _resolve(node.get("items"), root)
    if isinstance(items, dict) and "array" in text:
        inner = _type(items, root)
        text = text.replace("array", f"array of ({inner})" if " " in inner else f"array of {inner}")
    extras = _constraints(node)
    if extras:
        text = f"{text}, {'; '.join(extras)}" if text else "; ".join(extras)
    return text


def _default(node: dict, required: bool) -> str:
    if "default" in node:
        return _code(node["default"])
    return "required" if required else ""


def render_config_reference(schema: dict, usage: str | None = USAGE) -> str:
    """Markdown reference of every config key: dotted path, type, default, description.

    Parameters
    ----------
    schema : dict
        The config JSON schema (``config/schema.yaml`` loaded with ``yaml.safe_load``).
    usage : str or None
        Markdown put before the key table (under a ``## Keys`` heading); default
        :data:`USAGE`, where the configuration comes from, in the repository and as a module.

    Returns
    -------
    str
        The content of ``config/README.md``, ending in a newline.
    """
    root = _resolve(schema, schema)
    title = _one_line(root.get("title") or "Configuration")
    lines = [
        GENERATED_NOTE,
        "",
        f"# Config reference: {title}",
        "",
    ]
    if root.get("description"):
        lines += [_one_line(root["description"]), ""]
    if usage:
        lines += [usage.rstrip("\n"), "", "## Keys", ""]
    if root.get("additionalProperties") is False:
        lines += ["Unknown top-level keys are rejected.", ""]
    lines += [
        "Every key of `config/schema.yaml`, in schema order. A key with a default may be left "
        "out of a config file; *required* keys must be set (where their parent block is "
        "given). Nested keys are written with dots: `cv.n_folds` is `n_folds` under `cv:`; "
        "`<name>` stands for a key chosen by the user, `[]` for each item of a list.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    for path, node, required, note in iter_keys(schema):
        description = _one_line(node.get("description") or node.get("title") or "")
        if note:
            description = f"{description} ({note})" if description else note[0].upper() + note[1:]
        cells = [_code(path), _type(node, schema), _default(node, required), description]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the config reference: ``configdoc.py SCHEMA OUTPUT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema", type=Path, help="config/schema.yaml")
    parser.add_argument("output", type=Path, help="config/README.md")
    args = parser.parse_args(argv)
    schema = yaml.safe_load(args.schema.read_text(encoding="utf-8"))
    args.output.write_text(render_config_reference(schema), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
