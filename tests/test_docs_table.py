"""docs/optimizers.md is the table the declarations generate (gradfit.optimizers.table)."""
from pathlib import Path

from gradfit.optimizers import OPTIMIZERS, SECOND_ORDER, table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "optimizers.md"


def test_committed_page_is_the_generated_one():
    assert PAGE.read_text(encoding="utf-8") == table.markdown(), \
        "docs/optimizers.md is stale: run `python -m gradfit.optimizers.table docs/optimizers.md`"


def test_the_page_holds_every_optimizer_and_hyperparameter():
    text = table.markdown()
    for cls in (*OPTIMIZERS.values(), *SECOND_ORDER.values()):
        section = text.split(f"## {cls.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for h in cls.hyperparameters:
            assert f"| `{h.name}`" in section and h.describe() in section, (cls.__name__, h.name)
