"""simrun: simulate human populations with LLM personas.

Plugins import ``hookimpl`` from here and the component base classes from
``simrun.components``; nothing in this package imports a plugin.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("simrun")

__all__ = ["__version__", "hookimpl"]
