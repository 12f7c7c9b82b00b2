"""Where a simulator's code came from, for its cache identity: an upgraded or edited plugin never serves the answers
its older code gave."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _editable(dist: importlib.metadata.Distribution) -> bool:
    try:
        return bool(json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def _digest(file: str) -> str:
    return "sha256:" + hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]


@functools.cache
def plugin_source(cls: type) -> dict[str, str]:
    """``{"code": ...}``: an installed plugin's distribution and version (and its source's hash when installed
    editable, since editing does not change the version); a ``--plugins-dir`` file's name and hash. simrun's own
    simulators add nothing: their ``identity()`` names what changes their answers, so a simrun upgrade keeps the
    cache of API calls paid for."""
    top = cls.__module__.split(".")[0]
    if top == "simrun":
        return {}
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    names = _distributions().get(top, [])
    if names:
        dist = importlib.metadata.distribution(names[0])
        code = f"{dist.metadata['Name']} {dist.version}"
        return {"code": f"{code} {_digest(file)}" if file and _editable(dist) else code}
    return {"code": f"{Path(file).name} {_digest(file)}"} if file else {}
