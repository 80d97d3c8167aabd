"""Modules that share their name with their main function.

``cmframe.build`` and ``cmframe.send`` name both a stage module and the
function that runs the stage. Importing the submodule rebinds the package
attribute to the module, so such a module is made callable: ``cmframe.build(df,
...)`` works whichever of the two the attribute holds, and ``cmframe.build.layout``
still reaches the module's other names.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["make_callable"]


def make_callable(module_name: str, function_name: str) -> None:
    """Let the module ``module_name`` be called as its function ``function_name``."""
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function_name)(*args, **kwargs)

    _CallableModule.__name__ = f"{function_name}_module"
    module.__class__ = _CallableModule
