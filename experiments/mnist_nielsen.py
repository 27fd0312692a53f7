"""Nielsen's chapter-1 network on MNIST: 784-100-10, sigmoid units, quadratic cost, plain SGD.

"Neural Networks and Deep Learning", ch. 1 reports 96.59% test accuracy for 100 hidden
neurons, mini-batches of 10, learning rate 3.0, 30 epochs, trained on 50,000 images.
Nielsen's cost is C = 1/(2n) sum ||y - a||^2; gradfit's `mse` averages over the 10 outputs
and has no 1/2, so its gradient is 2/10 of Nielsen's: learning rate 3.0 there is 15 here.

Needs the MNIST files: GRADFIT_DATA=../shared/data python experiments/mnist_nielsen.py
"""
import argparse
import json
import platform
import time

import numpy as np

import gradfit
from gradfit import Dense, Input, Sequential

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--epochs", type=int, default=30)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", default=None, help="write the result as JSON here")
args = p.parse_args()

gradfit.set_random_seed(args.seed)
(x, y), (x_test, y_test) = gradfit.datasets.mnist(download=False)
onehot = gradfit.datasets.one_hot(y, 10)
model = Sequential([Input(shape=(784,)), Dense(100, activation="sigmoid"), Dense(10, activation="sigmoid")])
model.compile(optimizer=gradfit.optimizers.SGD(learning_rate=15.0), loss="mse", metrics=["categorical_accuracy"])
t0 = time.perf_counter()
history = model.fit(x[:50000], onehot[:50000], batch_size=10, epochs=args.epochs, verbose=2,
                    validation_data=(x[50000:], onehot[50000:]))
seconds = time.perf_counter() - t0
test_acc = float((model.predict(x_test).argmax(axis=1) == y_test).mean())
best_val = max(history.history["val_categorical_accuracy"])
result = {"test_accuracy": test_acc, "best_val_accuracy": best_val, "epochs": args.epochs,
          "seconds": round(seconds, 1), "seed": args.seed, "gradfit": gradfit.__version__,
          "numpy": np.__version__, "python": platform.python_version()}
print(json.dumps(result, indent=2))
if args.out:
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
