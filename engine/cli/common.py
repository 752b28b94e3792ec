"""Helpers shared by the command modules: parameters from the command line, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.model import Sop

#: exit codes of every command (the command-line contract)
EXIT_OK = 0  # success
EXIT_FAILED = 1  # run failed, lint errors, coverage short
EXIT_USAGE = 2  # usage or invalid parameters: nothing ran
EXIT_PAUSED = 3  # run paused for confirmation, or waiting for a performer's reports
EXIT_UNKNOWN = 4  # an action's outcome is unknown: `sop resume RUN_ID` reconciles it


def raw_params(args: argparse.Namespace) -> dict[str, Any]:
    """``--params-file`` (YAML or JSON) overlaid by each ``-p KEY=VALUE`` (still strings)."""
    params: dict[str, Any] = {}
    params_file = getattr(args, "params_file", None)
    if params_file:
        import yaml

        from engine.language.parser import yaml_alias_line

        try:
            text = Path(params_file).read_text(encoding="utf-8")
            alias = yaml_alias_line(text)  # an alias bomb would never finish validating
            if alias is not None:
                raise UsageError(
                    f"--params-file {params_file}:{alias + 1}: a YAML alias; aliases are not "
                    "read in parameters: write the values out"
                )
            loaded = yaml.load(text, Loader=_params_loader())  # a SafeLoader subclass
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"--params-file {params_file}: {str(exc).splitlines()[0]}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise UsageError(f"--params-file {params_file}: expected a mapping of parameters")
        params.update(loaded or {})
    for item in getattr(args, "param", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p {item!r}: expected KEY=VALUE")
        params[key.strip()] = value
    return params


@cache
def _params_loader() -> type[Any]:
    """YAML's safe loader, except that only plain decimal scalars (``2500``, ``-3``) are ints.

    YAML 1.1 also reads ``0x10``, ``0o17``, ``1_000``, ``0755`` (octal) and ``1:30`` (= 90)
    as integers; here they stay strings, so an integer parameter written that way is
    refused by ``engine.language.params.coerce`` (ASCII digits only) instead of changing value.
    """
    import yaml

    int_tag = "tag:yaml.org,2002:int"

    class ParamsLoader(yaml.SafeLoader):
        pass

    ParamsLoader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != int_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ParamsLoader.add_implicit_resolver(int_tag, _DECIMAL, list("-+0123456789"))

    def decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
        text = str(loader.construct_scalar(node))
        return int(text) if _DECIMAL.fullmatch(text) else text

    ParamsLoader.add_constructor(int_tag, decimal)
    return ParamsLoader


_DECIMAL = re.compile(r"[-+]?[0-9]+", re.ASCII)


def parse_params(args: argparse.Namespace, sop: Sop, *, complete: bool = True) -> dict[str, Any]:
    """Command-line parameters converted to the SOP's declared types (not yet validated).

    ``complete``: these are all the run's parameters, so a value that does not convert is
    reported with every other problem at once; False for the few a resume supplies.
    """
    from engine.language.params import coerce, coerce_checked

    params = raw_params(args)
    if complete:
        return coerce_checked(sop, params)
    strings = {k: v for k, v in params.items() if isinstance(v, str)}
    return {**params, **coerce(sop, strings)}


def emit_json(obj: Any, schema_name: str | None = None) -> None:
    """Print ``obj`` as JSON; when a published schema is named, validate against it first."""
    if schema_name is not None:
        import jsonschema

        from engine.language.resources import load_schema

        jsonschema.validate(obj, load_schema(schema_name))
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def use_sop_paths(specs: list[str]) -> None:
    """``--sop-paths A:B`` (repeatable): put the folders in front of SOP_PATH for this
    process and the processes it starts; a missing folder is one warning line and skipped."""
    if not specs:  # the common case: no catalog import (`sop lint PATH` never needs it)
        return
    from engine.language.catalog import path_list

    found: list[str] = []
    for spec in specs:
        for folder in path_list(spec):
            if folder.is_dir():
                found.append(str(folder))
            else:
                print(f"sop: warning: --sop-paths: no folder '{folder}', skipped", file=sys.stderr)
    if found:
        rest = os.environ.get("SOP_PATH", "")
        os.environ["SOP_PATH"] = os.pathsep.join([*found, *([rest] if rest else [])])
