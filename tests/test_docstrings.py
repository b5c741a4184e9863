"""One docstring style across the package: Google style (``Args:``, ``Returns:``, ``Raises:`` sections).

Every public function and method of :mod:`mustsurv` whose docstring is longer than one line and that takes
parameters (besides ``self``/``cls``) must list each of them in an ``Args:`` section; no docstring may use
numpydoc section underlines (``Parameters`` followed by ``----------``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import mustsurv

NUMPYDOC_UNDERLINE = re.compile(r"^\s*[A-Z][A-Za-z ]+\n\s*-{3,}\s*$", re.MULTILINE)
SECTION = re.compile(r"^\s*(Args|Arguments|Attributes|Returns|Yields|Raises|Example|Examples|Note|Notes)\s*:\s*$",
                     re.MULTILINE)


def _modules():
    names = ["mustsurv"] + [m.name for m in pkgutil.walk_packages(mustsurv.__path__, "mustsurv.")]
    return [importlib.import_module(name) for name in sorted(names)]


MODULES = _modules()

def _members(module):
    """Yield ``(qualified name, object)`` for the functions, classes and methods defined in ``module``."""
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            for attr, member in vars(obj).items():
                func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if isinstance(member, property):
                    func = member.fget
                if inspect.isfunction(func) and func.__module__ == module.__name__:
                    yield f"{name}.{attr}", func


def _args_section(doc: str) -> str | None:
    """The text of the ``Args:`` section of ``doc`` (up to the next section), or None."""
    match = re.search(r"^\s*Args:\s*$", doc, re.MULTILINE)
    if match is None:
        return None
    rest = doc[match.end():]
    end = SECTION.search(rest)
    return rest[:end.start()] if end else rest


def _params(func) -> list[str]:
    params = inspect.signature(func).parameters.values()
    return [p.name for p in params
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_google_style_args(module):
    problems = []
    for qualname, func in _members(module):
        if inspect.isclass(func):
            continue
        public = all(not part.startswith("_") or part == "__init__" for part in qualname.split("."))
        doc = inspect.getdoc(func)
        params = _params(func)
        if not public or not params or not doc or "\n" not in doc.strip():
            continue
        section = _args_section(doc)
        if section is None:
            problems.append(f"{qualname}: multi-line docstring without an Args: section")
            continue
        missing = [p for p in params if not re.search(rf"^\s*\*{{0,2}}{p}\b[^:\n]*:", section, re.MULTILINE)]
        if missing:
            problems.append(f"{qualname}: Args: does not list {missing}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_no_numpydoc_sections(module):
    docs = [("<module>", module.__doc__)] + [(q, o.__doc__) for q, o in _members(module)]
    bad = [q for q, doc in docs if doc and NUMPYDOC_UNDERLINE.search(doc)]
    assert not bad, f"numpydoc section underlines in {bad}"


def test_every_module_has_a_docstring():
    assert not [m.__name__ for m in MODULES if not (m.__doc__ or "").strip()]
