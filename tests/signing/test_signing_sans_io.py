"""signing/ is sans-I/O: no event loop, no network, no clock. Checked on the source itself."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "signing"
FORBIDDEN_MODULES = {"aiohttp", "asyncio", "socket", "ssl", "time", "os", "subprocess", "requests", "urllib3",
                     "threading", "random", "secrets", "uuid"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "open"}


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        assert not FORBIDDEN_MODULES.intersection(names), (path.name, names)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            assert name not in FORBIDDEN_CALLS, (path.name, node.lineno, name)


@pytest.mark.parametrize("path", [p for p in modules() if p.name != "__init__.py"], ids=lambda p: p.name)
def test_module_declares_its_public_surface(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    assert any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
               for node in tree.body), f"{path.name} has no __all__"


def test_public_api_is_importable() -> None:
    import signing

    for name in signing.__all__:
        assert hasattr(signing, name), name
