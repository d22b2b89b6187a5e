"""The toy suite: procedurally generated beginner problems, the embedded default task source.

Each task is one *problem* of a *family*: a template filled with constants, conditions,
operations and label words. Families, with the statements their solutions use:

========== ============ ================================================ ==================
family     interface    problem                                          control flow
========== ============ ================================================ ==================
arith      stdin/stdout two integers, print one of 2-3 expressions       if/else, if/elif
classify   call         map a number to one of 2-4 labels by ranges       if/elif/else
strings    call         transform a word depending on its properties      if/else, if/elif
lists      call         fold the numbers that satisfy a condition         for + if (+ elif)
search     both         first match, any/all, or a default (early exit)   for/return, for-else
steps      call         update n while a condition holds; digit loops     while (+ if)
parse      stdin/stdout sum/count/max of the tokens that parse as ints    for + try/except
========== ============ ================================================ ==================

Difficulty is ``"easy"`` (one decision), ``"medium"`` (a loop, or two decisions) or ``"hard"``
(a loop with two decisions, or try/except). Solutions are at most 12 lines, so a tiny model can
learn much of the suite on a CPU. A family is a few *templates*, each of one difficulty, and
every problem of every template is enumerated: the suite is finite, and
:func:`problem_counts` gives its exact size per family and split (``codegym tasks stats toy``).
Problems whose output does not depend on their input are left out by construction.

Train/test split by behaviour: a problem's *fingerprint* is what it computes on a fixed list
of inputs shared by its whole family (a template answers ``None`` outside its domain); the
problem is held out (``"test"``) when the first byte of ``sha1(fingerprint)`` is below 64,
about a quarter. Two problems that compute the same function there (``x >= 5`` and ``x > 4``,
a reworded or relabelled twin) always fall in the same split, and neither the tests nor the
load seed play any part: no prompt and no canonical solution of the test split occurs in the
train split, whatever ``n`` and seed.

Sampling: a load is a stream seeded by ``seed``. Families take turns (round-robin, in an order
shuffled each round), so each family has an equal share, within one task: 1/7 of a load of
all seven, in both splits. Inside a family a template is drawn by its weight (in
:data:`FAMILIES`), then that template's next problem of the split in a seeded shuffle; a
template with no problem left leaves the draw (the two small digit templates of ``steps`` run
out first, after some 1,500 and 3,500 train tasks of all families). A problem appears
at most once per load. The stream ends when any family has no problem left, and asking
:func:`load` for more raises :class:`~codegym.errors.UsageError` with the number available.
A longer load starts with the shorter one.

Task ids: ``toy/<family>/<sha1 of the canonical solution>``: an id names one problem, with the
same prompt and tests, whatever the seed.

Tests: 40 candidate inputs are drawn (seeded by the task id, not the load seed; values at the
problem's constants are favoured); the reference implementation (written independently of the
solution text, from the same parameters) gives the expected output and the branch taken; the
tests cover every branch that occurs, then fill up to 8 with distinct other inputs. The first
2 (of different branches) are public, the rest private.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import random
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from codegym.errors import UsageError
from codegym.sandbox.types import TestCase
from codegym.tasks.loading import LoadReport, reject_options, select_split
from codegym.tasks.task import Task

SPLITS = ("train", "test")
DIFFICULTIES = ("easy", "medium", "hard")
_NUM_TESTS = 8
_NUM_PUBLIC = 2
_DEFAULT_N = 1000
#: A problem is held out when the first byte of its fingerprint's sha1 is below this (1/4).
_TEST_BELOW = 64

Params = tuple[Any, ...]
Input = tuple[Any, ...]


@dataclass(frozen=True)
class _Cond:
    """A condition: code (``{v}`` stands for the variable where there is one), words, test.

    Attributes:
        near: Values at the condition's boundary, favoured when drawing test inputs.
    """

    code: str
    text: str
    fn: Callable[..., bool]
    near: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Expr:
    code: str
    text: str
    fn: Callable[..., Any]


@dataclass
class _Spec:
    """A generated problem before tests: everything but the inputs."""

    prompt: str
    solution: str
    entry_point: str | None
    reference: Callable[[Input], tuple[Any, Any]]  # input -> (output, branch id)
    draw: Callable[[random.Random], Input]  # a random input


@dataclass(frozen=True)
class _Template:
    """One stratum of a family: its problems are ``build(p) for p in space()``."""

    name: str
    difficulty: str
    weight: float
    space: Callable[[], list[Params]]
    build: Callable[[Params], _Spec]


@dataclass(frozen=True)
class _Family:
    """A family's templates, and the inputs on which its problems' behaviour is compared.

    Every template of the family answers every probe (``None`` outside a template's domain,
    such as a negative n for a loop that needs a positive one), so two of its problems that
    compute the same function get the same fingerprint.
    """

    name: str
    templates: tuple[_Template, ...]
    probes: Callable[[], list[Input]]


@dataclass(frozen=True)
class _Chain:
    """An if/elif/else: one or two conditions, and one more expression than conditions."""

    conds: tuple[_Cond, ...]
    exprs: tuple[_Expr, ...]

    def code(self, indent: str, act: Callable[[str], str]) -> list[str]:
        """The chain's lines; ``act`` turns an expression into its branch's statement."""
        c, e = self.conds, self.exprs
        lines = [f"{indent}if {c[0].code}:", f"{indent}    {act(e[0].code)}"]
        if len(c) == 2:
            lines += [f"{indent}elif {c[1].code}:", f"{indent}    {act(e[1].code)}"]
        return [*lines, f"{indent}else:", f"{indent}    {act(e[-1].code)}"]

    def text(self, verb: str) -> str:
        """The chain in words: "If ..., print ...; otherwise print ..."."""
        c, e = self.conds, self.exprs
        text = f"If {c[0].text}, {verb} {e[0].text}"
        if len(c) == 2:
            text += f"; otherwise, if {c[1].text}, {verb} {e[1].text}"
        return text + f"; otherwise {verb} {e[-1].text}."

    def run(self, *args: Any) -> tuple[Any, int]:
        """The value of the branch taken on ``args``, and that branch's index."""
        for i, cond in enumerate(self.conds):
            if cond.fn(*args):
                return self.exprs[i].fn(*args), i
        return self.exprs[-1].fn(*args), len(self.conds)


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _fixed_rng(name: str) -> random.Random:
    """A generator for data that the suite's definition fixes (probes), not any seed."""
    return random.Random(f"toy-probes/{name}")


# ------------------------------------------------------------- conditions on one integer


@functools.cache
def _int_conds() -> tuple[_Cond, ...]:
    """Conditions on one integer ``{v}``; ``text`` completes "numbers that are ..."."""
    conds: list[_Cond] = []
    near: tuple[int, ...]
    for k in range(-5, 21):
        near = (k - 1, k, k + 1)
        conds += [
            _Cond(f"{{v}} > {k}", f"greater than {k}", lambda x, k=k: x > k, near),
            _Cond(f"{{v}} < {k}", f"less than {k}", lambda x, k=k: x < k, near),
            _Cond(f"{{v}} >= {k}", f"at least {k}", lambda x, k=k: x >= k, near),
            _Cond(f"{{v}} <= {k}", f"at most {k}", lambda x, k=k: x <= k, near),
            _Cond(f"{{v}} == {k}", f"equal to {k}", lambda x, k=k: x == k, near),
            _Cond(f"{{v}} != {k}", f"not equal to {k}", lambda x, k=k: x != k, near),
        ]
    for k in range(3, 10):  # 2 is "even"
        near = (0, k, 2 * k, -k, k + 1)
        conds += [
            _Cond(f"{{v}} % {k} == 0", f"divisible by {k}", lambda x, k=k: x % k == 0, near),
            _Cond(f"{{v}} % {k} != 0", f"not divisible by {k}", lambda x, k=k: x % k != 0, near),
        ]
    conds += [
        _Cond("{v} % 2 == 1", "odd", lambda x: x % 2 == 1, (-1, 0, 1)),
        _Cond("{v} % 2 == 0", "even", lambda x: x % 2 == 0, (-1, 0, 1)),
    ]
    return tuple(conds)


def _cond_index(text: str) -> int:
    return next(i for i, c in enumerate(_int_conds()) if c.text == text)


def _int_value(near: Sequence[int]) -> Callable[[random.Random], int]:
    """Random integers for inputs, a third of them from ``near``."""

    def value(r: random.Random) -> int:
        return r.choice(near) if near and r.random() < 0.35 else r.randint(-9, 24)

    return value


def _values(
    r: random.Random, value: Callable[[random.Random], int], keep: Callable[[int], bool], n: int
) -> list[int]:
    """Up to ``n`` values that ``keep`` accepts (fewer where they are rare)."""
    found: list[int] = []
    for _ in range(8 * n):
        if len(found) == n:
            break
        x = value(r)
        if keep(x):
            found.append(x)
    return found


def _int_list_probes() -> list[Input]:
    # every value of the conditions' range starts a list, so each condition shows
    r = _fixed_rng("int lists")
    probes: list[Input] = [([],)]
    probes += [([v, v, r.randint(-8, 24)],) for v in range(-8, 25)]
    probes += [([r.randint(-8, 24) for _ in range(r.randint(1, 6))],) for _ in range(20)]
    return probes


# ---------------------------------------------------------------------------------- arith


@functools.cache
def _pair_conds() -> tuple[_Cond, ...]:
    """Conditions on ``a`` and ``b``: the three relations first, then properties."""
    conds = [
        _Cond("a > b", "a is greater than b", lambda a, b: a > b),
        _Cond("a < b", "a is less than b", lambda a, b: a < b),
        _Cond("a == b", "a equals b", lambda a, b: a == b),
        _Cond("(a + b) % 2 == 0", "a + b is even", lambda a, b: (a + b) % 2 == 0),
    ]
    for k in (3, 4, 5, 6):
        conds += [
            _Cond(f"a % {k} == 0", f"a is divisible by {k}", lambda a, b, k=k: a % k == 0),
            _Cond(f"b % {k} == 0", f"b is divisible by {k}", lambda a, b, k=k: b % k == 0),
        ]
    for k in (0, 10, 20, 30):
        conds.append(
            _Cond(f"a + b > {k}", f"a + b is greater than {k}", lambda a, b, k=k: a + b > k)
        )
    for k in (0, 10, 20):
        conds += [
            _Cond(f"a > {k}", f"a is greater than {k}", lambda a, b, k=k: a > k),
            _Cond(f"b < {k}", f"b is less than {k}", lambda a, b, k=k: b < k),
        ]
    return tuple(conds)


_RELATIONS = 3

_PAIR_EXPRS = (  # the first six are the ones of the two-condition chains
    _Expr("a + b", "a + b", lambda a, b: a + b),
    _Expr("a - b", "a - b", lambda a, b: a - b),
    _Expr("b - a", "b - a", lambda a, b: b - a),
    _Expr("a * b", "a * b", lambda a, b: a * b),
    _Expr("max(a, b)", "the larger of a and b", max),
    _Expr("min(a, b)", "the smaller of a and b", min),
    _Expr("abs(a - b)", "the absolute value of a - b", lambda a, b: abs(a - b)),
    _Expr("a", "a", lambda a, b: a),
    _Expr("b", "b", lambda a, b: b),
    _Expr("a * 2", "a * 2", lambda a, b: a * 2),
    _Expr("b * 2", "b * 2", lambda a, b: b * 2),
    _Expr("a + 1", "a + 1", lambda a, b: a + 1),
    _Expr("b + 1", "b + 1", lambda a, b: b + 1),
)


def _arith_one_space() -> list[Params]:
    pairs = itertools.permutations(range(len(_PAIR_EXPRS)), 2)
    return [((c,), es) for es in pairs for c in range(len(_pair_conds()))]


def _arith_two_space() -> list[Params]:
    # a relation, then a property: two relations partition the plane, so reordering them
    # would make the same function look like several problems
    triples = list(itertools.permutations(range(6), 3))
    props = range(_RELATIONS, len(_pair_conds()))
    return [((r, p), es) for r in range(_RELATIONS) for p in props for es in triples]


def _arith(params: Params) -> _Spec:
    cond_ids, expr_ids = params
    chain = _Chain(
        tuple(_pair_conds()[i] for i in cond_ids), tuple(_PAIR_EXPRS[i] for i in expr_ids)
    )

    def reference(inp: Input) -> tuple[str, int]:
        value, branch = chain.run(*inp)
        return f"{value}\n", branch

    return _Spec(
        prompt="Read two integers a and b from one line of standard input. " + chain.text("print"),
        solution=_lines("a, b = map(int, input().split())", *chain.code("", _print)),
        entry_point=None,
        reference=reference,
        draw=_draw_pair,
    )


def _print(expr: str) -> str:
    return f"print({expr})"


def _draw_pair(r: random.Random) -> Input:
    a = r.randint(-10, 40)
    return (a, a) if r.random() < 0.2 else (a, r.randint(-10, 40))


def _pair_probes() -> list[Input]:
    r = _fixed_rng("pairs")
    return [(a, a) for a in (-6, 0, 5, 12, 30)] + [_draw_pair(r) for _ in range(35)]


# ------------------------------------------------------------------------------- classify

_LABELS = (
    ("temperature", ("cold", "mild", "warm", "hot")),
    ("score", ("fail", "pass", "good", "excellent")),
    ("size", ("small", "medium", "large", "huge")),
    ("speed", ("slow", "steady", "fast", "blazing")),
    ("level", ("low", "moderate", "high", "extreme")),
    ("age", ("child", "teen", "adult", "senior")),
    ("weight", ("light", "average", "heavy", "massive")),
    ("volume", ("quiet", "normal", "loud", "deafening")),
)
_CUTS = range(5, 100, 5)


def _classify_space(bands: int) -> Callable[[], list[Params]]:
    def space() -> list[Params]:
        return [
            (theme, cuts, labels)
            for theme in range(len(_LABELS))
            for cuts in itertools.combinations(_CUTS, bands - 1)
            for labels in itertools.combinations(range(4), bands)
        ]

    return space


def _classify(params: Params) -> _Spec:
    theme_id, cuts, label_ids = params
    theme, words = _LABELS[theme_id]
    labels = [words[i] for i in label_ids]
    lines = [f"def classify_{theme}(n):"]
    parts = []
    for i, cut in enumerate(cuts):
        lines += [f"    {'if' if i == 0 else 'elif'} n < {cut}:", f"        return {labels[i]!r}"]
        parts.append(f"'{labels[i]}' if {'n' if i == 0 else 'it'} is below {cut}")
    lines += ["    else:", f"        return {labels[-1]!r}"]
    parts.append(f"'{labels[-1]}' otherwise")

    def reference(inp: Input) -> tuple[str, int]:
        i = next((i for i, cut in enumerate(cuts) if inp[0] < cut), len(cuts))
        return labels[i], i

    def draw(r: random.Random) -> Input:
        if r.random() < 0.5:
            return (r.choice(cuts) + r.choice([-1, 0, 1]),)
        return (r.randint(-5, 105),)

    return _Spec(
        prompt=f"Write a function classify_{theme}(n) that takes an integer n and returns "
        + ", ".join(parts)
        + ".",
        solution=_lines(*lines),
        entry_point=f"classify_{theme}",
        reference=reference,
        draw=draw,
    )


def _classify_probes() -> list[Input]:
    # cuts are multiples of 5, so the answer is the same from one multiple to the next
    return [(v,) for v in range(0, 100, 5)]


# -------------------------------------------------------------------------------- strings

_LETTERS = "abcde"


@functools.cache
def _string_conds() -> tuple[_Cond, ...]:
    """Conditions on ``s``: length and palindrome first (six), then letter tests."""
    conds = [
        _Cond(f"len(s) > {k}", f"s is longer than {k} characters", lambda s, k=k: len(s) > k)
        for k in range(2, 7)
    ]
    conds.append(_Cond("s == s[::-1]", "s is a palindrome", lambda s: s == s[::-1]))
    for c in _LETTERS:
        conds += [
            _Cond(f"s.startswith({c!r})", f"s starts with '{c}'", lambda s, c=c: s.startswith(c)),
            _Cond(f"s.endswith({c!r})", f"s ends with '{c}'", lambda s, c=c: s.endswith(c)),
            _Cond(f"{c!r} in s", f"s contains '{c}'", lambda s, c=c: c in s),
        ]
    return tuple(conds)


_SHAPE_CONDS = 6


@functools.cache
def _string_ops() -> tuple[_Expr, ...]:
    """Operations on ``s``: six letter-free ones first (those of two-condition chains)."""
    ops = [
        _Expr("s.upper()", "s in upper case", str.upper),
        _Expr("s[::-1]", "s reversed", lambda s: s[::-1]),
        _Expr("s + s", "s repeated twice", lambda s: s + s),
        _Expr("s[1:]", "s without its first character", lambda s: s[1:]),
        _Expr("s[:-1]", "s without its last character", lambda s: s[:-1]),
        _Expr("s[:3]", "the first 3 characters of s", lambda s: s[:3]),
    ]
    for k in (2, 4, 5):
        ops.append(_Expr(f"s[:{k}]", f"the first {k} characters of s", lambda s, k=k: s[:k]))
    ops.append(_Expr("s[-2:]", "the last 2 characters of s", lambda s: s[-2:]))
    for c, after in zip(_LETTERS, _LETTERS[1:] + _LETTERS[0], strict=True):
        ops += [
            _Expr(f"s + {c!r}", f"s followed by '{c}'", lambda s, c=c: s + c),
            _Expr(f"{c!r} + s", f"s with '{c}' in front", lambda s, c=c: c + s),
            _Expr(
                f"s.replace({c!r}, {after!r})",
                f"s with every '{c}' replaced by '{after}'",
                lambda s, c=c, after=after: s.replace(c, after),
            ),
        ]
    return tuple(ops)


def _strings_one_space() -> list[Params]:
    pairs = itertools.permutations(range(len(_string_ops())), 2)
    return [((c,), es) for es in pairs for c in range(len(_string_conds()))]


def _strings_two_space() -> list[Params]:
    triples = list(itertools.permutations(range(6), 3))
    letters = range(_SHAPE_CONDS, len(_string_conds()))
    return [((a, b), es) for a in range(_SHAPE_CONDS) for b in letters for es in triples]


def _strings(params: Params) -> _Spec:
    cond_ids, op_ids = params
    chain = _Chain(
        tuple(_string_conds()[i] for i in cond_ids), tuple(_string_ops()[i] for i in op_ids)
    )
    return _Spec(
        prompt="Write a function transform(s) that takes a lowercase string s. "
        + chain.text("return"),
        solution=_lines("def transform(s):", *chain.code("    ", lambda x: f"return {x}")),
        entry_point="transform",
        reference=lambda inp: chain.run(*inp),
        draw=_draw_word,
    )


def _draw_word(r: random.Random) -> Input:
    if r.random() < 0.2:
        half = "".join(r.choice(_LETTERS) for _ in range(r.randint(0, 5)))
        return (half + half[::-1][r.randint(0, 1) :],)
    return ("".join(r.choice(_LETTERS) for _ in range(r.randint(1, 9))),)


def _word_probes() -> list[Input]:
    r = _fixed_rng("words")
    return [("",), ("a",), ("abcba",), ("deed",)] + [_draw_word(r) for _ in range(36)]


# ---------------------------------------------------------------------------------- lists

_FOLD_CODE = """\
def fold(nums):
    total = {init}
    for x in nums:
        if {cond}:
            {stmt}
{second}    return total
"""
_FOLD_SECOND = "        elif {cond}:\n            total -= x\n"

_FOLDS = (  # (statement, start value, words, step)
    ("total += x", 0, "the sum of the numbers in nums that are {}", lambda t, x: t + x),
    ("total += 1", 0, "how many numbers in nums are {}", lambda t, x: t + 1),
    (
        "total += x * x",
        0,
        "the sum of the squares of the numbers in nums that are {}",
        lambda t, x: t + x * x,
    ),
    (
        "total += abs(x)",
        0,
        "the sum of the absolute values of the numbers in nums that are {}",
        lambda t, x: t + abs(x),
    ),
    (
        "total *= x",
        1,
        "the product of the numbers in nums that are {} (1 if there are none)",
        lambda t, x: t * x,
    ),
)

#: Second conditions of the two-condition lists problems.
_SECOND = (
    "odd",
    "even",
    "divisible by 3",
    "divisible by 4",
    "divisible by 5",
    "not divisible by 3",
    "less than 0",
    "equal to 0",
    "greater than 10",
    "at least 15",
)


def _implies(a: _Cond, b: _Cond) -> bool:
    return all(b.fn(x) for x in range(-60, 61) if a.fn(x))


def _lists_one_space() -> list[Params]:
    # these folds of "equal to 0" (or the product of "equal to 1") are constant
    constant = {(_cond_index("equal to 0"), f) for f in (0, 2, 3)}
    constant.add((_cond_index("equal to 1"), 4))
    return [
        (c, f, None)
        for f in range(len(_FOLDS))
        for c in range(len(_int_conds()))
        if (c, f) not in constant
    ]


def _lists_two_space() -> list[Params]:
    conds = _int_conds()
    return [
        (c, f, c2)
        for c2 in map(_cond_index, _SECOND)
        for f in range(3)
        for c in range(len(conds))
        if c != c2 and not _implies(conds[c2], conds[c])  # else the elif never runs
    ]


def _lists(params: Params) -> _Spec:
    c_id, fold_id, c2_id = params
    c = _int_conds()[c_id]
    c2 = None if c2_id is None else _int_conds()[c2_id]
    stmt, init, words, step = _FOLDS[fold_id]
    text = words.format(c.text)
    second = ""
    if c2 is not None:
        text += f", minus the sum of the other numbers that are {c2.text}"
        second = _FOLD_SECOND.format(cond=c2.code.format(v="x"))

    def reference(inp: Input) -> tuple[int, int]:
        total, hit = init, 0
        for x in inp[0]:
            if c.fn(x):
                total, hit = step(total, x), hit | 1
            elif c2 is not None and c2.fn(x):
                total, hit = total - x, hit | 2
        return total, hit

    value = _int_value(c.near + (c2.near if c2 else ()))
    return _Spec(
        prompt=f"Write a function fold(nums) that takes a list of integers and returns {text}."
        + ("" if init else " An empty list gives 0."),
        solution=_FOLD_CODE.format(init=init, cond=c.code.format(v="x"), stmt=stmt, second=second),
        entry_point="fold",
        reference=reference,
        draw=lambda r: ([value(r) for _ in range(r.randint(0, 7))],),
    )


# --------------------------------------------------------------------------------- search

#: Search problems by kind: (entry point or None for stdin/stdout, code, prompt).
_SEARCHES: dict[str, tuple[str | None, str, str]] = {
    "index": (
        "first_index",
        """\
def first_index(nums):
    for i, x in enumerate(nums):
        if {cond}:
            return i
    return -1
""",
        "Write a function first_index(nums) that returns the index of the first number in "
        "the list nums that is {what}, or -1 if there is none.",
    ),
    "before": (
        "count_before",
        """\
def count_before(nums):
    count = 0
    for x in nums:
        if {cond}:
            break
        count += 1
    return count
""",
        "Write a function count_before(nums) that returns how many numbers of the list nums "
        "come before the first one that is {what} (all of them if none is).",
    ),
    "any": (
        "has_match",
        """\
def has_match(nums):
    for x in nums:
        if {cond}:
            return True
    return False
""",
        "Write a function has_match(nums) that returns True if some number in the list nums "
        "is {what}, and False otherwise.",
    ),
    "all": (
        "all_match",
        """\
def all_match(nums):
    for x in nums:
        if not {cond}:
            return False
    return True
""",
        "Write a function all_match(nums) that returns True if every number in the list nums "
        "is {what} (True for an empty list), and False otherwise.",
    ),
    "value": (
        "first_match",
        """\
def first_match(nums):
    for x in nums:
        if {cond}:
            return x
    return {extra}
""",
        "Write a function first_match(nums) that returns the first number in the list nums "
        "that is {what}, or {extra} if there is none.",
    ),
    "stdio": (
        None,
        """\
nums = list(map(int, input().split()))
for x in nums:
    if {cond}:
        print(x)
        break
else:
    print({extra!r})
""",
        "Read a line of integers separated by spaces. Print the first one that is {what}; "
        "if there is none, print '{extra}'.",
    ),
}
_WORDS = ("none", "nothing", "missing", "no match", "not found", "empty")
_DEFAULTS = (-1, 0, 100)


def _search_call_space() -> list[Params]:
    conds = range(len(_int_conds()))
    plain = [(kind, c, None) for kind in ("index", "before", "any", "all") for c in conds]
    return plain + [
        ("value", c, d)
        for d in _DEFAULTS
        for c in conds
        if _int_conds()[c].text != f"equal to {d}"  # always d
    ]


def _search_stdio_space() -> list[Params]:
    return [("stdio", c, w) for w in _WORDS for c in range(len(_int_conds()))]


def _search(params: Params) -> _Spec:
    kind, c_id, extra = params
    c = _int_conds()[c_id]
    name, code, prompt = _SEARCHES[kind]

    def reference(inp: Input) -> tuple[Any, Any]:
        nums = inp[0]
        i = next((i for i, x in enumerate(nums) if c.fn(x)), -1)
        found = i >= 0
        if kind == "all":
            every = all(map(c.fn, nums))
            return every, (every, not nums)
        branch = (min(i, 2), not nums)  # no match, the first, a later one; an empty list
        if kind in ("index", "before", "any"):
            return {"index": i, "before": i if found else len(nums), "any": found}[kind], branch
        first = nums[i] if found else extra
        return (first if kind == "value" else f"{first}\n"), branch

    value = _int_value(c.near)

    def draw(r: random.Random) -> Input:
        n, mode = r.randint(0, 6), r.random()
        if mode < 0.2:  # every number matches: rare by chance, and "all" needs it
            return (_values(r, value, c.fn, n),)
        if mode < 0.45:  # the first ones do not match: "before" and "index" need it
            head = _values(r, value, lambda x: not c.fn(x), r.randint(1, 3))
            return (head + [value(r) for _ in range(n)],)
        return ([value(r) for _ in range(n)],)

    return _Spec(
        prompt=prompt.format(what=c.text, extra=extra),
        solution=code.format(cond=c.code.format(v="x"), extra=extra),
        entry_point=name,
        reference=reference,
        draw=draw,
    )


# ---------------------------------------------------------------------------------- steps

_COUNT_CODE = """\
def count_steps(n):
    count = 0
    while {head}:
        {update}
        count += 1
    return count
"""
_FINAL_CODE = """\
def {name}(n):
    while {head}:
        {update}
    return n
"""

#: Loops ``while n <cmp> k: n <op>= d``: (name, comparison, words for "until", operator,
#: values of k, values of d (None: d is k), whether n must be positive for the loop to end).
_LOOPS: tuple[tuple[str, str, str, str, range, range | None, bool], ...] = (
    ("floor", ">", "at most", "//", range(0, 41), range(2, 6), False),
    ("floor_ge", ">=", "less than", "//", range(1, 41), range(2, 6), False),
    ("sub", ">", "at most", "-", range(-10, 31), range(1, 10), False),
    ("add", "<", "at least", "+", range(2, 41), range(1, 10), False),
    ("mul", "<", "at least", "*", range(2, 101), range(2, 5), True),
    ("div", "%", "", "//", range(2, 10), None, True),
)
_WHILE = {">": "greater than", ">=": "at least", "<": "less than"}
_APPLY: dict[str, Callable[[int, int], int]] = {
    "//": lambda n, d: n // d,
    "-": lambda n, d: n - d,
    "+": lambda n, d: n + d,
    "*": lambda n, d: n * d,
}


def _steps_loop_space() -> list[Params]:
    return [
        (i, k, d, result)
        for i, (*_, ks, ds, _positive) in enumerate(_LOOPS)
        for k in ks
        for d in (ds if ds is not None else (k,))
        for result in ("count", "final")
    ]


def _steps_loop(params: Params) -> _Spec:
    loop_id, k, d, result = params
    loop, cmp, until, op, _, _, positive = _LOOPS[loop_id]
    kind = "a positive integer" if positive else "an integer"
    if loop == "div":  # divide by k while divisible by k
        head, done = f"n % {k} == 0", lambda n: n % k != 0
        as_long = f"divides n by {k} as long as it is divisible by {k}"
        times = f"can be divided by {k} without remainder (dividing each time)"
    else:
        head, done = f"n {cmp} {k}", _stop(cmp, k)
        as_long = f"replaces n by n {op} {d} as long as it is {_WHILE[cmp]} {k}"
        times = f"must be replaced by n {op} {d} until it is {until} {k}"
    update = f"n {op}= {d}"
    if result == "count":
        name = "count_steps"
        solution = _COUNT_CODE.format(head=head, update=update)
        prompt = f"takes {kind} n and returns how many times n {times}"
    else:
        name = "strip_factor" if loop == "div" else "settle"
        solution = _FINAL_CODE.format(name=name, head=head, update=update)
        prompt = f"takes {kind} n, {as_long}, and returns the final value of n"
    apply = _APPLY[op]

    def reference(inp: Input) -> tuple[int | None, Any]:
        if positive and inp[0] < 1:
            return None, None  # the loop would not end; only a probe asks this
        n, count = inp[0], 0
        while not done(n):
            n, count = apply(n, d), count + 1
        # ending exactly on k tells "greater than" from "at least": keep such a test
        return (count if result == "count" else n), (min(count, 2), n == k, inp[0] < 0)

    return _Spec(
        prompt=f"Write a function {name}(n) that {prompt}.",
        solution=solution,
        entry_point=name,
        reference=reference,
        draw=_steps_draw(loop, k, d),
    )


def _stop(cmp: str, k: int) -> Callable[[int], bool]:
    if cmp == ">":
        return lambda n: n <= k
    if cmp == ">=":
        return lambda n: n < k
    return lambda n: n >= k


def _steps_draw(loop: str, k: int, d: int) -> Callable[[random.Random], Input]:
    """Inputs for a loop, 40% of them ending exactly at (or next to) ``k``."""

    def far(r: random.Random) -> int:
        if loop in ("floor", "floor_ge"):
            return r.randint(-30, 0) if r.random() < 0.15 else r.randint(1, 2000)
        if loop == "mul":
            return r.randint(1, k + 10)
        return r.randint(k - 30, k + 60) if loop == "sub" else r.randint(k - 60, k + 30)

    def near(r: random.Random) -> int:
        if loop in ("floor", "floor_ge"):
            return (k + r.randint(-1, 1)) * d ** r.randint(0, 3)
        if loop == "mul":
            return max(1, -(-k // d ** r.randint(0, 3)) + r.randint(-1, 0))
        step = d if loop == "sub" else -d
        return k + step * r.randint(0, 8) + r.randint(0, 1)

    def draw(r: random.Random) -> Input:
        if loop == "div":
            return (r.randint(1, 9) * k ** r.randint(0, 4),)
        return (near(r) if r.random() < 0.4 else far(r),)

    return draw


_DIGITS_CODE = """\
def {name}(n):
    total = 0
    while n > 0:
        {stmt}
        n //= {b}
    return total
"""

#: Digit statistics: (name, words, statement, the thresholds ``t`` that are neither always
#: nor never true in base ``b``, or None where there is no threshold).
_DIGIT_STATS: tuple[tuple[str, str, str, Callable[[int], range] | None], ...] = (
    ("digit_sum", "the sum of its digits", "total += n % {b}", None),
    ("count_digits", "how many digits it has", "total += 1", None),
    ("largest_digit", "its largest digit", "total = max(total, n % {b})", None),
    (
        "count_digits",
        "how many of its digits are equal to {t}",
        "if n % {b} == {t}:\n            total += 1",
        range,
    ),
    (
        "count_digits",
        "how many of its digits are greater than {t}",
        "if n % {b} > {t}:\n            total += 1",
        lambda b: range(b - 1),
    ),
    (
        "count_digits",
        "how many of its digits are less than {t}",
        "if n % {b} < {t}:\n            total += 1",
        lambda b: range(1, b),
    ),
)


def _digits_space(threshold: bool) -> Callable[[], list[Params]]:
    def space() -> list[Params]:
        return [
            (s, b, t)
            for s, (*_, ts) in enumerate(_DIGIT_STATS)
            if (ts is not None) == threshold
            for b in range(2, 11)
            for t in (ts(b) if ts is not None else (None,))
            if (s, b) != (2, 2)  # the largest binary digit of a positive n is always 1
        ]

    return space


def _digits(params: Params) -> _Spec:
    s, b, t = params
    name, words, stmt, _ = _DIGIT_STATS[s]
    keep = {3: lambda x: x == t, 4: lambda x: x > t, 5: lambda x: x < t}.get(s)

    def reference(inp: Input) -> tuple[int, int]:
        digits, n = [], inp[0]
        while n > 0:
            n, digit = divmod(n, b)
            digits.append(digit)
        if keep is not None:
            total = sum(map(keep, digits))
        else:
            total = [sum(digits), len(digits), max(digits, default=0)][s]
        return total, min(total, 2)

    return _Spec(
        prompt=f"Write a function {name}(n) that takes a positive integer n and returns "
        f"{words.format(t=t)}{'' if b == 10 else f' in base {b}'}.",
        solution=_DIGITS_CODE.format(name=name, stmt=stmt.format(b=b, t=t), b=b),
        entry_point=name,
        reference=reference,
        draw=lambda r: (r.randint(1, 9) if r.random() < 0.1 else r.randint(1, 5000),),
    )


def _number_probes() -> list[Input]:
    r = _fixed_rng("numbers")
    return [(n,) for n in range(-12, 41)] + [(r.randint(41, 300),) for _ in range(20)]


# ---------------------------------------------------------------------------------- parse

_PARSE_CODE = {
    "sum": """\
total = 0
for tok in input().split():
    try:
        value = int(tok)
    except ValueError:
        continue
    if {cond}:
        total += {add}
print(total)
""",
    "bad": """\
bad = 0
for tok in input().split():
    try:
        value = int(tok)
    except ValueError:
        bad += 1
        continue
    if not {cond}:
        bad += 1
print(bad)
""",
    "extreme": """\
found = []
for tok in input().split():
    try:
        value = int(tok)
    except ValueError:
        continue
    if {cond}:
        found.append(value)
print({fn}(found) if found else {word!r})
""",
}
_JUNK = ("cat", "x", "1.5", "two", "-", "7a", "ok")


def _parse_fold_space() -> list[Params]:
    conds = range(len(_int_conds()))
    zero = _cond_index("equal to 0")  # its sum is always 0
    return (
        [("sum", c, m) for m in range(1, 6) for c in conds if c != zero]
        + [("count", c, None) for c in conds]
        + [("bad", c, None) for c in conds]
    )


def _parse_extreme_space() -> list[Params]:
    conds = range(len(_int_conds()))
    return [(fn, c, w) for fn in ("max", "min") for w in _WORDS[:3] for c in conds]


def _parse(params: Params) -> _Spec:
    kind, c_id, extra = params
    c = _int_conds()[c_id]
    cond = c.code.format(v="value")
    if kind == "sum":
        code = _PARSE_CODE["sum"].format(
            cond=cond, add="value" if extra == 1 else f"value * {extra}"
        )
        what = f"the sum of the integer tokens that are {c.text}" + (
            "" if extra == 1 else f", times {extra}"
        )
    elif kind == "count":
        code = _PARSE_CODE["sum"].format(cond=cond, add="1")
        what = f"how many tokens are integers that are {c.text}"
    elif kind == "bad":
        code = _PARSE_CODE["bad"].format(cond=cond)
        what = f"how many tokens are not integers or are integers that are not {c.text}"
    else:
        code = _PARSE_CODE["extreme"].format(cond=cond, fn=kind, word=extra)
        what = (
            f"the {'largest' if kind == 'max' else 'smallest'} of the integer tokens that are "
            f"{c.text}, or '{extra}' if there is none"
        )
    if kind != "bad":
        what += " (ignore the other tokens)"

    def reference(inp: Input) -> tuple[str, int]:
        tokens, ints = _integers(inp[0])
        good = [v for v in ints if c.fn(v)]
        branch = (len(ints) < tokens) + 2 * bool(good) + 4 * (len(good) < len(ints))
        if kind in ("sum", "count", "bad"):
            result = {"sum": sum(good) * (extra or 1), "count": len(good)}.get(
                kind, tokens - len(good)
            )
        else:
            result = (max(good) if kind == "max" else min(good)) if good else extra
        return f"{result}\n", branch

    value = _int_value(c.near)

    def draw(r: random.Random) -> Input:
        toks = (
            str(value(r)) if r.random() < 0.6 else r.choice(_JUNK) for _ in range(r.randint(0, 6))
        )
        return (" ".join(toks),)

    return _Spec(
        prompt=f"Read one line of space-separated tokens and print {what}.",
        solution=code,
        entry_point=None,
        reference=reference,
        draw=draw,
    )


@functools.lru_cache(maxsize=4096)
def _integers(line: str) -> tuple[int, tuple[int, ...]]:
    """How many tokens ``line`` has, and the values of those that are integers."""
    values = []
    tokens = line.split()
    for token in tokens:
        try:
            values.append(int(token))
        except ValueError:
            pass
    return len(tokens), tuple(values)


def _token_probes() -> list[Input]:
    # every value of the conditions' range appears, next to a token that is not an integer
    r = _fixed_rng("tokens")
    probes: list[Input] = [("",), ("cat x",)]
    probes += [(f"{v} {r.choice(_JUNK)} {r.randint(-8, 24)}",) for v in range(-8, 25)]
    for _ in range(15):
        toks = [str(r.randint(-8, 24)) if r.random() < 0.7 else r.choice(_JUNK) for _ in range(5)]
        probes.append((" ".join(toks),))
    return probes


# ------------------------------------------------------------------------------- registry

#: The families by name, in the order of the module docstring's table.
FAMILIES: dict[str, _Family] = {
    f.name: f
    for f in (
        _Family(
            "arith",
            (
                _Template("one", "easy", 1.0, _arith_one_space, _arith),
                _Template("two", "medium", 1.0, _arith_two_space, _arith),
            ),
            _pair_probes,
        ),
        _Family(
            "classify",
            tuple(
                _Template(f"{b}bands", d, 1.0, _classify_space(b), _classify)
                for b, d in ((2, "easy"), (3, "medium"), (4, "hard"))
            ),
            _classify_probes,
        ),
        _Family(
            "strings",
            (
                _Template("one", "easy", 1.0, _strings_one_space, _strings),
                _Template("two", "medium", 1.0, _strings_two_space, _strings),
            ),
            _word_probes,
        ),
        _Family(
            "lists",
            (
                _Template("one", "medium", 0.6, _lists_one_space, _lists),
                _Template("two", "hard", 0.4, _lists_two_space, _lists),
            ),
            _int_list_probes,
        ),
        _Family(
            "search",
            (
                _Template("call", "medium", 0.6, _search_call_space, _search),
                _Template("stdio", "medium", 0.4, _search_stdio_space, _search),
            ),
            _int_list_probes,
        ),
        _Family(
            "steps",
            (
                _Template("loop", "medium", 0.7, _steps_loop_space, _steps_loop),
                _Template("digits", "medium", 0.1, _digits_space(False), _digits),
                _Template("digit_test", "hard", 0.2, _digits_space(True), _digits),
            ),
            _number_probes,
        ),
        _Family(
            "parse",
            (
                _Template("fold", "hard", 0.6, _parse_fold_space, _parse),
                _Template("extreme", "hard", 0.4, _parse_extreme_space, _parse),
            ),
            _token_probes,
        ),
    )
}


# ------------------------------------------------------------------ behaviour and splits


@functools.cache
def _space(family: str, template: int) -> tuple[Params, ...]:
    return tuple(FAMILIES[family].templates[template].space())


@functools.cache
def _probes(family: str) -> tuple[Input, ...]:
    return tuple(FAMILIES[family].probes())


@functools.cache
def _behaviour(family: str, template: int, params: Params) -> tuple[str, bool]:
    """A problem's split, and whether its output is the same on every probe."""
    spec = FAMILIES[family].templates[template].build(params)
    outputs = [spec.reference(p)[0] for p in _probes(family)]
    digest = hashlib.sha1(f"{family}|{outputs!r}".encode()).digest()
    split = "test" if digest[0] < _TEST_BELOW else "train"
    return split, all(out == outputs[0] for out in outputs)


def problem_counts(families: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Distinct problems per family and split: ``{family: {"train": n, "test": m}}``.

    This fingerprints every problem of the families asked for (seconds for all of them).
    """
    counts = {}
    for name in _check_families(families):
        per_split = Counter(
            _behaviour(name, t, params)[0]
            for t in range(len(FAMILIES[name].templates))
            for params in _space(name, t)
        )
        counts[name] = {s: per_split[s] for s in SPLITS}
    return counts


def _check_families(families: Sequence[str] | None) -> list[str]:
    names = list(FAMILIES) if families is None else list(families)
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown or not names:
        raise UsageError(f"toy: unknown families {unknown}; choose one or more of {list(FAMILIES)}")
    return names


# ------------------------------------------------------------------------------- generation


def _tests(spec: _Spec, rng: random.Random) -> list[TestCase]:
    """Tests covering every branch seen among 40 drawn inputs, up to ``_NUM_TESTS``."""
    by_branch: dict[Any, list[tuple[Any, Any]]] = {}
    seen = set()
    for _ in range(40):
        inp = spec.draw(rng)
        key = repr(inp)
        if key in seen:
            continue
        seen.add(key)
        out, branch = spec.reference(inp)
        by_branch.setdefault(branch, []).append((inp, out))
    chosen = [cases.pop(0) for cases in by_branch.values()]  # one per branch, first two public
    rest = [c for cases in by_branch.values() for c in cases]
    rng.shuffle(rest)
    chosen += rest[: max(0, _NUM_TESTS - len(chosen))]
    if spec.entry_point is None:
        return [TestCase.stdio(_stdin(inp), out) for inp, out in chosen]
    return [TestCase.call(list(inp), out) for inp, out in chosen]


def _stdin(inp: Input) -> str:
    if len(inp) == 2 and all(isinstance(x, int) for x in inp):
        return f"{inp[0]} {inp[1]}\n"
    (value,) = inp
    return (" ".join(map(str, value)) if isinstance(value, list) else value) + "\n"


def _task(family: str, template: int, params: Params) -> Task:
    tmpl = FAMILIES[family].templates[template]
    spec = tmpl.build(params)
    key = hashlib.sha1(spec.solution.encode()).hexdigest()
    # Seeded by the problem alone: a task id means the same tests whatever the seed.
    tests = _tests(spec, random.Random(key))
    return Task(
        task_id=f"toy/{family}/{key[:10]}",
        prompt=spec.prompt,
        entry_point=spec.entry_point,
        canonical_solutions=(spec.solution,),
        public_tests=tuple(tests[:_NUM_PUBLIC]),
        private_tests=tuple(tests[_NUM_PUBLIC:]),
        difficulty=tmpl.difficulty,
        source="toy",
        time_limit_s=1.0,
        metadata={
            "family": family,
            "template": tmpl.name,
            "params": repr(params),
            "split": _behaviour(family, template, params)[0],
        },
    )


def _in_split(
    family: str, template: int, order: list[Params], split: str | None
) -> Iterator[tuple[int, Params]]:
    for params in order:
        if split is None or _behaviour(family, template, params)[0] == split:
            yield template, params


def _family_stream(
    family: str, seed: int, split: str | None, difficulties: Sequence[str] | None
) -> Iterator[tuple[int, Params]]:
    """One family's problems of the split as (template, params), each at most once."""
    live: list[tuple[float, Iterator[tuple[int, Params]]]] = []
    for t, tmpl in enumerate(FAMILIES[family].templates):
        if difficulties is None or tmpl.difficulty in difficulties:
            order = list(_space(family, t))
            random.Random(f"{seed}/{family}/{tmpl.name}").shuffle(order)
            live.append((tmpl.weight, _in_split(family, t, order, split)))
    pick = random.Random(f"{seed}/{family}")
    while live:
        i = pick.choices(range(len(live)), [w for w, _ in live])[0]
        item = next(live[i][1], None)
        if item is None:
            del live[i]
        else:
            yield item


def generate(
    *,
    seed: int = 0,
    split: str | None = "train",
    families: Sequence[str] | None = None,
    difficulties: Sequence[str] | None = None,
) -> Generator[Task, None, str]:
    """Toy tasks, families in turn, until a family has no problem left in the split.

    Args:
        seed: Seed of the stream: the same seed gives the same tasks in the same order.
        split: ``"train"``, ``"test"`` or ``None`` for both.
        families: Restrict to these families (default: all of :data:`FAMILIES`).
        difficulties: Restrict to these difficulties (``"easy"``, ``"medium"``, ``"hard"``);
            a family with no template of them leaves the rotation.

    Returns:
        A generator of tasks; its return value (``StopIteration.value``) is the family that
        ran out.

    Raises:
        UsageError: an unknown family, difficulty or split, or no family has the difficulties.
    """
    names = _check_families(families)
    bad = sorted(set(difficulties or ()) - set(DIFFICULTIES))
    if bad:
        raise UsageError(f"toy: unknown difficulties {bad}; choose from {list(DIFFICULTIES)}")
    if split is not None and split not in SPLITS:
        raise UsageError(f"toy: unknown split {split!r}; choose one of {list(SPLITS)} or None")
    if difficulties is not None:
        names = [
            f for f in names if any(t.difficulty in difficulties for t in FAMILIES[f].templates)
        ]
        if not names:
            raise UsageError(
                f"toy: no family among {list(families or FAMILIES)} has {list(difficulties)} "
                "problems; see the family table in codegym.tasks.toy"
            )
    return _round_robin(names, seed, split, difficulties)


def _round_robin(
    names: list[str], seed: int, split: str | None, difficulties: Sequence[str] | None
) -> Generator[Task, None, str]:
    streams = {f: _family_stream(f, seed, split, difficulties) for f in names}
    rounds = random.Random(f"{seed}/rounds")
    while True:
        order = list(names)
        rounds.shuffle(order)
        for family in order:
            item = next(streams[family], None)
            if item is None:
                return family
            yield _task(family, *item)


def load(
    *,
    split: str | None,
    n: int | None,
    seed: int,
    path: str | os.PathLike[str] | None,
    report: LoadReport,
    families: Sequence[str] | None = None,
    difficulties: Sequence[str] | None = None,
    **options: Any,
) -> list[Task]:
    """The first ``n`` tasks (default 1,000) of :func:`generate`'s stream for ``split``.

    ``split`` is ``"train"``, ``"test"`` or ``None`` (both).

    Options:
        families: Restrict to these families.
        difficulties: Restrict to these difficulties.

    Raises:
        UsageError: ``n`` is more than the split holds with equal family shares (the message
            gives the number it holds), or an unknown family, difficulty or split.
    """
    reject_options(options, "toy")
    if path is not None:
        raise UsageError("toy: the toy suite is generated and reads no file; drop path=")
    split = select_split(split, SPLITS, source="toy")
    want = _DEFAULT_N if n is None else n
    stream = generate(seed=seed, split=split, families=families, difficulties=difficulties)
    tasks: list[Task] = []
    while len(tasks) < want:
        try:
            tasks.append(next(stream))
        except StopIteration as stop:
            raise UsageError(_exhausted(want, tasks, stop.value, split, difficulties)) from None
    return tasks


def _exhausted(
    want: int,
    tasks: list[Task],
    family: str,
    split: str | None,
    difficulties: Sequence[str] | None,
) -> str:
    where = "train and test together" if split is None else f"split {split!r}"
    if difficulties is not None:
        where += f" at difficulties {list(difficulties)}"
    has = sum(t.metadata["family"] == family for t in tasks)
    return (
        f"toy: n={want} tasks asked, but {where} holds {len(tasks)} distinct problems with "
        f"equal family shares (family {family!r} has {has}); ask for n <= {len(tasks)}, or "
        "leave out the smallest families with families=[...] (`codegym tasks stats toy` "
        "lists the problems per family and split)"
    )
