"""YAML in SOPs (front matter, example blocks): safe, dates kept as written, no aliases.

One path: ``yaml_alias_line`` refuses an alias (SOP052), then ``load_yaml`` reads the
text with the safe loader (libyaml's when present).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

__all__ = ["ALIAS_MESSAGE", "load_yaml", "yaml_alias_line"]

ALIAS_MESSAGE = (
    "{where} uses a YAML alias: aliases are not read in SOPs (a few nested ones expand "
    "to billions of values); write the values out"
)


@cache
def _loader() -> type[yaml.SafeLoader]:
    """Safe YAML (libyaml when present) that keeps dates as written: parameters are text."""
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolvers = {
        first: [(tag, rx) for tag, rx in found if tag != "tag:yaml.org,2002:timestamp"]
        for first, found in base.yaml_implicit_resolvers.items()
    }
    loader: type[yaml.SafeLoader] = type(
        "_SopYamlLoader", (base,), {"yaml_implicit_resolvers": resolvers}
    )
    return loader


def load_yaml(raw: str) -> Any:
    """``raw`` as YAML through the SOP loader; raises ``yaml.YAMLError`` on bad YAML."""
    return yaml.load(raw, Loader=_loader())


def yaml_alias_line(raw: str) -> int | None:
    """The 0-based line of the first YAML alias in ``raw``, or None.

    Why: ``yaml.load`` builds an alias as a shared reference, cheap to load, but every
    walk over the result (validation, JSON, a copy) expands it, so ten nested lists of
    ten aliases are 10**10 values. The events pass is linear in ``raw``; a text without
    ``*`` has no alias and skips it. Raises ``yaml.YAMLError`` as ``yaml.load`` would.
    """
    if "*" not in raw:
        return None
    for event in yaml.parse(raw, Loader=_loader()):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            return 0 if mark is None else int(mark.line)
    return None
