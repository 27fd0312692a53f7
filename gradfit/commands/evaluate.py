"""`gradfit evaluate MODEL --data ...`: loss and metrics of a saved model on a test set."""
from __future__ import annotations

from ..models import load_model
from .common import add_data_arguments, load_data
from .types import integer


def add_arguments(p):
    p.add_argument("model", help="a model file written by model.save / gradfit train (model.gfm)")
    add_data_arguments(p)
    p.add_argument("--split", default="test", choices=["test", "train"], help="which part of the data (default test)")
    p.add_argument("--batch-size", type=integer(1), default=256)


def run(args):
    model = load_model(args.model)
    if model.loss is None:
        raise ValueError(f"{args.model} holds no compile settings (loss); save a compiled model")
    ds = load_data(args)
    x, y = (ds.x_test, ds.y_test) if args.split == "test" else (ds.x_train, ds.y_train)
    logs = model.evaluate(x, y, batch_size=args.batch_size, return_dict=True)
    print(f"{args.model} on {ds.name} {args.split} ({len(x)} examples): "
          + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    return 0
