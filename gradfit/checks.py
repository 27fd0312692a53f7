"""One vocabulary for checking public arguments, shared by the library and the command line.

Every check raises `ArgumentError` (a ValueError) whose message has one shape: what was given,
what is allowed, and how to fix it::

    batch_size must be an integer >= 1, got 0
    EarlyStopping: patience must be an integer >= 0, got -2

The message names arguments the way the caller wrote them. The library says ``batch_size``;
``gradfit train`` catches the error and says ``--batch-size`` (`ArgumentError.render` with the
command's spelling), so a command-line user is never told to "pass x_key=". A fix that names
other arguments writes them as ``{x_key}``, spelled by the same function.
"""
from __future__ import annotations

import math
import numbers


def api_spelling(name: str) -> str:
    """How the library names an argument in messages: as written (``batch_size``)."""
    return name


class SpelledError(ValueError):
    """An error whose fix names arguments as ``{name}``, spelled for whoever reads it.

    ``message`` is literal; ``fix`` (optional) is a template whose ``{name}`` fields are
    argument names: `render` spells them (``batch_size`` for the library, ``--batch-size`` for
    the command line)."""

    def __init__(self, message: str, fix: str | None = None):
        self.message, self.fix = message, fix
        super().__init__(self.render(api_spelling))

    def __reduce__(self):      # pickled whole (MPI broadcasts errors to every rank)
        return type(self), (self.message, self.fix)

    def render(self, spell) -> str:
        """The message, then the fix with every argument name spelled by ``spell(name)``."""
        if not self.fix:
            return self.message
        return f"{self.message}; {self.fix.format_map(_Spelled(spell))}"


class ArgumentError(SpelledError, TypeError):
    """A bad value of the public argument ``name`` (a ValueError, and a TypeError too, so that a
    value of the wrong type is caught as Python code expects).

    ``expected`` says what is allowed ("an integer >= 1"); ``fix`` (optional) how to repair it,
    with other arguments written ``{name}``; ``owner`` the class or function the argument
    belongs to ("EarlyStopping"), printed before it.
    """

    def __init__(self, name: str, value, expected: str, fix: str | None = None, owner=None):
        self.name, self.value, self.expected, self.owner = name, value, expected, owner
        super().__init__("", fix)

    def __reduce__(self):
        return type(self), (self.name, self.value, self.expected, self.fix, self.owner)

    def requirement(self, spell=api_spelling) -> str:
        """``must be <expected>, got <value>``: the message without the argument's name
        (``expected`` may name arguments as ``{name}`` too)."""
        expected = self.expected.format_map(_Spelled(spell))
        return f"must be {expected}, got {self.value!r}"

    def render(self, spell) -> str:
        who = f"{self.owner}: " if self.owner else ""
        self.message = f"{who}{spell(self.name)} {self.requirement(spell)}"
        return super().render(spell)


def literal(text) -> str:
    """``text`` to put inside a fix template: its braces are not argument names."""
    return str(text).replace("{", "{{").replace("}", "}}")


class _Spelled(dict):
    def __init__(self, spell):
        super().__init__()
        self.spell = spell

    def __missing__(self, key):
        return self.spell(key)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, *,
              fix=None, owner=None) -> int:
    """``value`` as an int within ``[minimum, maximum]`` (either bound optional)."""
    if not _is_int(value) or (minimum is not None and value < minimum) or \
            (maximum is not None and value > maximum):
        raise ArgumentError(name, value, "an integer" + _bounds(minimum, maximum), fix, owner)
    return int(value)


def check_number(name: str, value, minimum=None, maximum=None, *, above=None, below=None,
                 fix=None, owner=None) -> float:
    """``value`` as a finite float, ``minimum <= value <= maximum``, ``above < value < below``."""
    ok = _is_number(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = ((minimum is None or v >= minimum) and (maximum is None or v <= maximum)
              and (above is None or v > above) and (below is None or v < below))
    if not ok:
        parts = [f">= {minimum}" if minimum is not None else None,
                 f"> {above}" if above is not None else None,
                 f"<= {maximum}" if maximum is not None else None,
                 f"< {below}" if below is not None else None]
        bound = " and ".join(p for p in parts if p)
        raise ArgumentError(name, value, "a finite number" + (f" {bound}" if bound else ""), fix,
                            owner)
    return float(value)


def check_choice(name: str, value, choices, *, fix=None, owner=None):
    """``value`` if it is one of ``choices``, else an error listing them."""
    if value not in choices:
        raise ArgumentError(name, value, "one of " + literal(", ".join(map(repr, choices))), fix,
                            owner)
    return value


def check_bool(name: str, value, *, owner=None) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(name, value, "True or False", owner=owner)
    return value


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
