"""One error tree: every exception class the project defines descends from LoyaltyError and
is named in edge.errors' docstring, where the tree is drawn."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import edge.errors
from edge.errors import LoyaltyError

PACKAGES = ("edge", "cloud_broker", "firmware_tools", "hw_sim", "demo")
SKIP = {"edge.__main__", "cloud_broker.__main__", "firmware_tools.__main__", "hw_sim.__main__",
        "demo.__main__"}  # fmt: skip


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        names += [
            info.name
            for info in pkgutil.walk_packages(mod.__path__, pkg + ".")
            if info.name not in SKIP
        ]
    return names


def test_every_error_is_a_loyalty_error_and_is_documented() -> None:
    doc = edge.errors.__doc__ or ""
    found: dict[str, type] = {}
    for name in _modules():
        mod = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found[f"{name}.{cls_name}"] = cls
    assert len(found) > 40, sorted(found)  # the walk really found the project's errors
    outside = sorted(k for k, c in found.items() if not issubclass(c, LoyaltyError))
    assert outside == [], f"not under LoyaltyError: {outside}"
    undocumented = sorted(k for k in found if k.rsplit(".", 1)[1] not in doc)
    assert undocumented == [], f"not in edge.errors' tree: {undocumented}"
