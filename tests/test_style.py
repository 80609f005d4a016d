"""The readable-code rules of the developers' guide, checked on every exported module: lines of at most 120 characters,
one statement per line, modules of at most 400 lines. nbdev writes `__all__` and `_modidx.py` itself, so they are left out."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_CHARS, MAX_LINES = 120, 400
MODULES = sorted(p for p in (ROOT / "lwa").glob("*.py") if p.name != "_modidx.py")


def _blocks(node: ast.AST):
    "The statement lists directly inside `node` (a body, an else branch, a finally, the handlers of a try)."
    for field in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(node, field, None)
        if isinstance(block, list):
            yield [s for s in block if isinstance(s, (ast.stmt, ast.excepthandler))]


def style_problems(src: str, name: str = "<src>") -> list[str]:
    "Every breach of the three rules in the source `src`, as 'name:line: what' (empty when it is readable)."
    lines = src.splitlines()
    out = [f"{name}:{i}: {len(ln)} characters (at most {MAX_CHARS})" for i, ln in enumerate(lines, 1)
           if len(ln) > MAX_CHARS and not ln.startswith("__all__")]
    body_lines = [ln for ln in lines if not ln.startswith("__all__")]
    if len(body_lines) > MAX_LINES:
        out.append(f"{name}: {len(body_lines)} lines (at most {MAX_LINES}): split it into a new notebook")
    shared = set()
    for node in ast.walk(ast.parse(src)):
        for block in _blocks(node):
            starts = [s.lineno for s in block]
            shared |= {ln for ln in starts if starts.count(ln) > 1}  # `a; b`
            if isinstance(node, (ast.stmt, ast.excepthandler)) and block and block[0].lineno == node.lineno:
                shared.add(node.lineno)  # `if x: y`, `def f(): return y`, `try: z`
            for prev, nxt in zip(block, block[1:]):
                if nxt.lineno == prev.end_lineno:
                    shared.add(nxt.lineno)  # `x = (\n 1); y = 2`
    out += [f"{name}:{ln}: several statements on one line" for ln in sorted(shared)]
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_is_readable(path):
    problems = style_problems(path.read_text(), f"lwa/{path.name}")
    assert not problems, (f"{len(problems)} breaches of the guide's readable-code rules; edit the notebook that exports "
                          "the module (its cells are named in the module), then nbdev_export:\n" + "\n".join(problems[:40]))


@pytest.mark.parametrize("src, n", [
    ("x = 1\n", 0),
    ("x = 1; y = 2\n", 1),
    ("if x: y = 1\n", 1),
    ("def f(): return 1\n", 1),
    ("try:\n    a = 1\nexcept OSError: a = 2\n", 1),
    ("x = (1,\n     2); y = 3\n", 1),
    ("s = '" + "a" * 130 + "'\n", 1),
    ("__all__ = ['" + "a" * 130 + "']\n", 0),
    ("x = 1\n" * (MAX_LINES + 1), 1),
    ("def f():\n    '''doc'''\n    return 1\n", 0),
])
def test_checker_finds_each_rule(src, n):
    "The checker can fail: each rule's breach is found, and code that keeps the rules passes."
    assert len(style_problems(src)) == n, style_problems(src)
