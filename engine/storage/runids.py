"""A run named by a unique prefix of its id, as git names commits.

Run ids are 32 hex characters; people copy the first few. A prefix that names exactly
one run stands for it; one that names several is refused with the candidates listed,
never a guess.
"""

from __future__ import annotations

from engine.errors import UsageError
from engine.storage.base import Store

#: shortest prefix accepted (git's default abbreviation floor)
MIN_PREFIX = 4
_SHOWN = 5  # candidates listed in an "ambiguous" error


def resolve_run_id(store: Store, text: str) -> str:
    """The full id of the one run whose id is ``text`` or starts with it; UsageError else."""
    if store.run(text) is not None:
        return text
    where = f"journal {store.location}"
    if len(text) < MIN_PREFIX:
        raise UsageError(
            f"unknown run '{text}' ({where}; a run id prefix needs {MIN_PREFIX}+ characters)"
        )
    found = store.run_ids_starting(text, _SHOWN + 1)
    if not found:
        raise UsageError(f"unknown run '{text}' ({where})")
    if len(found) > 1:
        more = ", ..." if len(found) > _SHOWN else ""
        raise UsageError(
            f"run id prefix '{text}' is ambiguous: {', '.join(found[:_SHOWN])}{more}"
            " (give more characters)"
        )
    return found[0]
