"""``docs/optimizers.md``, generated from the optimizers' declarations.

    python -m gradfit.optimizers.table docs/optimizers.md     # rewrite the page
    python -m gradfit.optimizers.table                        # print it

``tests/test_docs_table.py`` checks that the committed page is what ``markdown()`` gives.
"""
from __future__ import annotations

import inspect
import sys

from . import NAMES, OPTIMIZERS, SECOND_ORDER


def _summary(cls) -> tuple[str, str]:
    """(first paragraph, first literal block) of the class docstring: the name and the rule."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    head, _, rest = doc.partition("::")
    paragraph = " ".join(head.split("\n\n")[0].split())
    block = []
    for line in rest.split("\n")[1:]:
        if line and not line.startswith(" "):
            break
        block.append(line[4:])
    return paragraph.rstrip(":"), "\n".join(block).strip("\n")


def _value(v) -> str:
    return "None" if v is None else f"`{v!r}`"


def _section(cls) -> list[str]:
    paragraph, rule = _summary(cls)
    decay = "decoupled, theta <- theta (1 - lr wd)" if cls.decoupled_weight_decay else \
        "coupled L2, g <- g + wd theta"
    torch = f"`torch.optim.{cls.torch_class}`" if cls.torch_class else "none"
    lines = [f"## {cls.__name__}", "", paragraph, ""]
    if rule:
        lines += ["```", rule, "```", ""]
    lines += [f"`{inspect.getmodule(cls).__name__}` · state: {', '.join(cls.slots) or 'none'} · "
              f"weight decay: {decay} · torch: {torch}", "",
              "| hyperparameter | default | allowed | Keras | torch | meaning |",
              "|---|---|---|---|---|---|"]
    for h in cls.hyperparameters:
        name = f"`{h.name}`" + (" (keyword-only)" if h.keyword_only else "")
        keras = f"`{h.keras_name}`" if h.keras_name else "-"
        torch_name = f"`{h.torch}`" if h.torch and cls.torch_class else "-"
        lines.append(f"| {name} | {_value(h.default)} | {h.describe()} | {keras} | {torch_name} "
                     f"| {h.doc} |")
    return lines + [""]


def _second_order_section(cls) -> list[str]:
    paragraph, rule = _summary(cls)
    lines = [f"## {cls.__name__}", "", paragraph, ""]
    if rule:
        lines += ["```", rule, "```", ""]
    lines += [f"`{inspect.getmodule(cls).__name__}` · name `{cls.name}` · full batch: one "
              "epoch of `fit` is one iteration", "",
              "| hyperparameter | default | allowed | meaning |", "|---|---|---|---|"]
    for h in cls.hyperparameters:
        name = f"`{h.name}`" + (" (keyword-only)" if h.keyword_only else "")
        lines.append(f"| {name} | {_value(h.default)} | {h.describe()} | {h.doc} |")
    return lines + [""]


def markdown() -> str:
    """The page: the names ``get`` knows, then one section per registered optimizer."""
    lines = ["# Optimizers", "",
             "Generated from the declarations in `gradfit/optimizers/` by "
             "`python -m gradfit.optimizers.table docs/optimizers.md`; a test checks that this "
             "page is current.  Every hyperparameter is also a flag of `gradfit train` "
             "(`beta_2` is `--beta-2`, `amsgrad` is `--amsgrad` / `--no-amsgrad`).", "",
             "Names for `compile(optimizer=...)`, `gradfit.optimizers.get` and "
             "`gradfit train --optimizer`:", "",
             "| name | optimizer | preset |", "|---|---|---|"]
    for name, (cls, preset) in NAMES.items():
        args = ", ".join(f"{k}={v!r}" for k, v in preset.items())
        lines.append(f"| `{name}` | {cls.__name__} | {args and f'`{args}`'} |")
    for name, cls in SECOND_ORDER.items():
        lines.append(f"| `{name}` | {cls.__name__} (second order) |  |")
    lines.append("")
    for cls in OPTIMIZERS.values():
        lines += _section(cls)
    lines += ["# Second-order methods", "",
              "Full-batch methods over the flat float64 weights (`gradfit.optimizers.second_order`; "
              "docs/second-order.md): `fit` takes one iteration per epoch on the whole training "
              "set, and refuses a smaller batch unless the method was built with "
              "`allow_mini_batch=True`.  Keras and torch.optim have none of these "
              "hyperparameters; MATLAB's and SciPy's names are in the meanings.", ""]
    for cls in SECOND_ORDER.values():
        lines += _second_order_section(cls)
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = markdown()
    if argv:
        with open(argv[0], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
