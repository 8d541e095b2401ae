"""Command line: ``python -m gradxform {race,schedules,lr-find,lr-sweep,train,lr-free,demo}``.

Every subcommand writes its pictures under ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import gradxform
from gradxform.playground._console import print_table, progress
from gradxform.playground._lr_study import GRID, SIGN_BASED, accuracies_at, pick_rate

# The named optimizers the CLI offers; ``momentum`` and ``nesterov`` are SGD's forms. A
# name given without a rate gets the rate of a learning-rate range test.
OPTIMIZERS = (
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "ftrl",
    "kron",
    "lamb",
    "lars",
    "lion",
    "momentum",
    "muon",
    "nadam",
    "nadamw",
    "nesterov",
    "radam",
    "rmsprop",
    "sgd",
    "shampoo",
    "sign_sgd",
    "signum",
    "soap",
    "yogi",
)


class CliError(Exception):
    """A bad command-line value; the message is printed without a traceback."""


def optimizer_factories() -> dict[str, Callable[..., Any]]:
    """Every optimizer of :data:`OPTIMIZERS` by name (``momentum``, ``nesterov``: SGD's forms)."""
    out: dict[str, Callable[..., Any]] = {
        name: getattr(gradxform, name)
        for name in OPTIMIZERS
        if name not in ("momentum", "nesterov")
    }
    out["momentum"] = lambda learning_rate: gradxform.sgd(learning_rate, momentum=0.9)
    out["nesterov"] = lambda learning_rate: gradxform.sgd(
        learning_rate, momentum=0.9, nesterov=True
    )
    return dict(sorted(out.items()))


def make_optimizer(name: str, learning_rate: Any) -> gradxform.GradientTransformation:
    factories = optimizer_factories()
    if name not in factories:
        raise CliError(f"unknown optimizer {name!r}; choose one of: {', '.join(factories)}")
    return factories[name](learning_rate)


def parse_specs(text: str) -> list[tuple[str, float | None]]:
    """``"adam:0.01,sgd"`` -> ``[("adam", 0.01), ("sgd", None)]``."""
    specs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, lr = item.partition(":")
        try:
            specs.append((name, float(lr) if lr else None))
        except ValueError:
            raise CliError(
                f"bad learning rate {lr!r} in {item!r}: expected NAME or NAME:LR"
            ) from None
    if not specs:
        raise CliError("no optimizer given")
    return specs


# ----------------------------------------------------------------------------- race

RACE_DEFAULTS = {
    "rosenbrock": "sgd:0.002,momentum:0.002,nesterov:0.001,rmsprop:0.001,adam:0.05",
    "valley": "sgd:0.07,momentum:0.03,nesterov:0.03,rmsprop:0.05,adam:0.1",
    "beale": "sgd:0.002,momentum:0.001,rmsprop:0.01,adam:0.05",
    "himmelblau": "sgd:0.005,momentum:0.002,rmsprop:0.05,adam:0.1",
    "local_minimum": "sgd:0.1,momentum:0.1,nesterov:0.1,adam:0.1",
    "saddle": "sgd:0.05,momentum:0.02,rmsprop:0.01,adam:0.05",
}


def cmd_race(args: argparse.Namespace) -> list[list[Any]]:
    from gradxform import playground

    fn = _lookup(playground.get_function, args.function)
    specs = parse_specs(args.optimizers or RACE_DEFAULTS[fn.name])
    import jax.numpy as jnp

    def rate(name: str, lr: float | None) -> float:
        if lr is not None:
            return lr
        make_optimizer(name, 1e-3)  # validates the name
        found = gradxform.find_learning_rate(
            lambda p, _: fn.fn(p),
            jnp.asarray(fn.x0),
            jnp.zeros((1, 1)),
            optimizer_factories()[name],
            min_lr=1e-6,
            num_steps=200,
        )
        return found.constant_rate(sign_based=name in SIGN_BASED)

    rates = [(n, rate(n, lr)) for n, lr in specs]
    optimizers = {f"{n} lr={lr:g}": make_optimizer(n, lr) for n, lr in rates}

    runs = playground.trajectories(fn.fn, optimizers, jnp.asarray(fn.x0), args.steps)
    out = pathlib.Path(args.out)
    images = [
        playground.plot_paths(fn, runs, out / f"race_{fn.name}.png"),
        playground.plot_losses(runs, out / f"race_{fn.name}_loss.png", fn.minimum_value),
        playground.animate_race(fn, runs, out / f"race_{fn.name}.gif"),
    ]
    rows = []
    for name, t in runs.items():
        reached = playground.steps_to_tolerance(t, fn.minimum_value, args.tol)
        rows.append([name, "-" if reached is None else reached, f"{float(t.losses[-1]):.3g}"])
    print(f"race on {fn.name} ({fn.description}) from {fn.x0}, {args.steps} steps")
    print_table(["optimizer", f"steps to f-f*<={args.tol:g}", "final loss"], rows)
    print("wrote " + ", ".join(str(p) for p in images))
    return rows


def _lookup(get: Callable[[str], Any], name: str) -> Any:
    try:
        return get(name)
    except ValueError as e:
        raise CliError(str(e)) from None


# ------------------------------------------------------------------------ schedules


def default_schedules(steps: int) -> dict[str, Any]:
    gx = gradxform
    return {
        "exponential_decay": gx.exponential_decay(0.1, steps // 10, 0.7),
        "piecewise_constant": gx.piecewise_constant_schedule(
            0.1, {steps // 2: 0.1, 3 * steps // 4: 0.1}
        ),
        "cosine_decay": gx.cosine_decay_schedule(0.1, steps),
        "sgdr (t_mul=2)": gx.sgdr_schedule(init_value=0.1, first_decay_steps=steps // 7, t_mul=2.0),
        "warmup_cosine": gx.warmup_cosine_decay_schedule(0.0, 0.1, steps // 10, steps),
        "warmup_stable_decay": gx.warmup_stable_decay_schedule(
            0.0, 0.1, steps // 10, steps, decay_fraction=0.2
        ),
        "inverse_sqrt (Noam)": gx.inverse_sqrt_schedule(0.0, 0.1, steps // 10),
        "cyclical triangular2": gx.cyclical_schedule(0.01, 0.1, steps // 8, mode="triangular2"),
        "one_cycle": gx.one_cycle_schedule(steps, 0.1),
    }


def cmd_schedules(args: argparse.Namespace) -> list[list[Any]]:
    import jax.numpy as jnp

    from gradxform import playground

    schedules = default_schedules(args.steps)
    path = playground.plot_schedules(
        schedules, args.steps, pathlib.Path(args.out) / "schedules.png"
    )
    rows = []
    for name, s in schedules.items():
        rows.append(
            [
                name,
                f"{float(s(jnp.int32(0))):.4g}",
                f"{float(s(jnp.int32(args.steps // 2))):.4g}",
                f"{float(s(jnp.int32(args.steps - 1))):.4g}",
            ]
        )
    print_table(["schedule", "step 0", f"step {args.steps // 2}", f"step {args.steps - 1}"], rows)
    print(f"wrote {path}")
    return rows


# --------------------------------------------------------------------------- lr-find


def cmd_lr_find(args: argparse.Namespace) -> float:
    import jax

    from gradxform import playground

    make_optimizer(args.optimizer, 1e-3)  # validates the name
    factories = optimizer_factories()
    data = playground.load_digits()
    params = playground.init_mlp(jax.random.key(0))
    bs = 64
    n = len(data.x_train) // bs * bs
    batches = (data.x_train[:n].reshape(-1, bs, 64), data.y_train[:n].reshape(-1, bs))
    result = gradxform.find_learning_rate(
        lambda p, b: playground.cross_entropy(p, b[0], b[1]),
        params,
        batches,
        factories[args.optimizer],
        num_steps=args.steps,
    )
    path = pathlib.Path(args.out) / f"lr_find_{args.optimizer}.png"
    result.plot(path)
    print(
        f"LR range test, {args.optimizer} on digits, {len(result.learning_rates)} steps "
        f"(diverged at step {result.diverged_at}); the loss fell by {100 * result.drop:.0f}% "
        f"before the valley"
    )
    sign_based = args.optimizer in SIGN_BASED
    print_table(
        ["rule", "learning rate"],
        [
            [
                "suggestion: valley / 3" + (" / 10 (sign-based)" if sign_based else ""),
                f"{result.constant_rate(sign_based=sign_based):.3g}",
            ],
            ["valley (lowest centred loss)", f"{result.valley:.3g}"],
            ["minimum / 10", f"{result.min_over_10:.3g}"],
            ["steepest descent", f"{result.steepest:.3g}"],
            ["the loss rises from", f"{result.rising_from:.3g}"],
        ],
    )
    print(f"wrote {path}")
    return result.constant_rate(sign_based=sign_based)


# ----------------------------------------------------------------------------- train

SCHEDULES = ("constant", "cosine", "warmup_cosine", "one_cycle", "cyclical")


def make_schedule(kind: str, peak: float, total_steps: int) -> Any:
    gx = gradxform
    if kind == "constant":
        return peak
    if kind == "cosine":
        return gx.cosine_decay_schedule(peak, total_steps)
    if kind == "warmup_cosine":
        return gx.warmup_cosine_decay_schedule(
            peak / 100, peak, max(total_steps // 10, 1), total_steps
        )
    if kind == "one_cycle":
        return gx.one_cycle_schedule(total_steps, peak)
    if kind == "cyclical":
        return gx.cyclical_schedule(peak / 10, peak, max(total_steps // 6, 1))
    raise CliError(f"unknown schedule {kind!r}; choose one of: {', '.join(SCHEDULES)}")


# Their grid runs one rate at a time: vmapped over the whole grid, Shampoo's and SOAP's
# training (and PSGD-Kron's, untested) can deadlock XLA on CPU (jaxlib 0.10.2; every
# thread waits, from about six rates and five epochs of the digits MLP on).
ONE_RATE_AT_A_TIME = frozenset({"shampoo", "soap", "kron"})


def cmd_train(args: argparse.Namespace) -> list[list[Any]]:
    from gradxform import playground

    specs = parse_specs(args.optimizers)
    for name, _ in specs:
        make_optimizer(name, 1e-3)
    make_schedule(args.schedule, 1.0, 10)
    data = playground.load_digits()
    steps_per_epoch = len(data.x_train) // 64
    rows = []
    for name, given in specs:
        factory = optimizer_factories()[name]
        lr = given if given is not None else pick_rate(factory, data, sign_based=name in SIGN_BASED)
        tx = make_optimizer(name, make_schedule(args.schedule, lr, args.epochs * steps_per_epoch))
        bar = progress(args.epochs, f"{name:>10}")

        def on_epoch(epoch: int, loss: float, bar: Any = bar) -> None:
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        start = time.perf_counter()
        result = playground.train_digits(tx, data, epochs=args.epochs, on_epoch=on_epoch)
        seconds = time.perf_counter() - start
        bar.set_postfix(loss=f"{result.final_loss:.4f}", test_acc=f"{result.test_accuracy:.3f}")
        bar.close()
        row = [
            name,
            f"{lr:.3g}" + (" (range test)" if given is None else ""),
            args.schedule,
            f"{result.final_loss:.4f}",
            f"{result.test_accuracy:.4f}",
            f"{seconds:.1f}",
        ]
        if args.compare_grid:
            chunk = 1 if name in ONE_RATE_AT_A_TIME else None
            accuracy, _ = accuracies_at(factory, data, GRID, args.epochs, chunk_size=chunk)
            best = int(np.argmax(accuracy))
            row += [f"{GRID[best]:g}", f"{accuracy[best]:.4f}"]
        rows.append(row)
    print(
        f"digits: {len(data.x_train)} train / {len(data.x_test)} test images, "
        f"{args.epochs} epochs, batch 64"
    )
    header = ["optimizer", "peak lr", "schedule", "train loss", "test accuracy"]
    header.append("wall s (incl. compile)")
    if args.compare_grid:
        header += ["best constant rate of the grid", "its test accuracy"]
    print_table(header, rows)
    if args.compare_grid:
        print(
            "grid: " + ", ".join(f"{g:g}" for g in GRID) + " (constant rates, the same "
            "initialisation and batches; picked by test accuracy, for comparison only)"
        )
    return rows


# ------------------------------------------------------------------------------ demo

DEMO_OPTIMIZERS = (
    "adamw,adam,nadam,radam,lion,lamb,adafactor,adabelief,nesterov,rmsprop,adagrad,sgd,"
    "muon,shampoo,soap,kron"
)


def cmd_demo(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out)
    print("== race: optimizers on Rosenbrock's valley ==")
    cmd_race(
        argparse.Namespace(
            function="rosenbrock", optimizers=None, steps=args.race_steps, tol=1e-4, out=out
        )
    )
    print("\n== race: escaping a local minimum ==")
    cmd_race(
        argparse.Namespace(function="local_minimum", optimizers=None, steps=300, tol=1e-4, out=out)
    )
    print("\n== schedule gallery ==")
    cmd_schedules(argparse.Namespace(steps=300, out=out))
    print("\n== learning-rate range test ==")
    cmd_lr_find(argparse.Namespace(optimizer="adamw", steps=100, out=out))
    print("\n== training on digits, each at the rate of its range test ==")
    cmd_train(
        argparse.Namespace(
            optimizers=args.optimizers, schedule="constant", epochs=args.epochs, compare_grid=True
        )
    )
    print("\n== no schedule, no learning rate: schedule-free and learning-rate-free ==")
    _cmd_lr_free(argparse.Namespace(epochs=args.epochs))
    images = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".gif"))
    print(f"\nimages in {out.resolve()}: {', '.join(images)}")
    return 0


def _cmd_lr_sweep(args: argparse.Namespace) -> float:
    from gradxform.playground._sweep import cmd_lr_sweep

    return cmd_lr_sweep(args)


def _cmd_lr_free(args: argparse.Namespace) -> list[list[Any]]:
    from gradxform.playground._lr_free import cmd_lr_free

    return cmd_lr_free(args)


# ------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gradxform", description="gradxform: see optimizers at work"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    race = sub.add_parser("race", help="optimizers on a 2-D test function")
    race.add_argument("--function", default="rosenbrock")
    race.add_argument(
        "--optimizers",
        default=None,
        help="comma-separated NAME[:LR] (default: a set tuned per function)",
    )
    race.add_argument("--steps", type=int, default=500)
    race.add_argument("--tol", type=float, default=1e-4)
    race.add_argument("--out", default="demo_out")
    race.set_defaults(func=cmd_race)

    sched = sub.add_parser("schedules", help="picture of the learning-rate schedules")
    sched.add_argument("--steps", type=int, default=300)
    sched.add_argument("--out", default="demo_out")
    sched.set_defaults(func=cmd_schedules)

    lrf = sub.add_parser("lr-find", help="learning-rate range test on the digits data")
    lrf.add_argument("--optimizer", default="adamw")
    lrf.add_argument("--steps", type=int, default=100)
    lrf.add_argument("--out", default="demo_out")
    lrf.set_defaults(func=cmd_lr_find)

    train = sub.add_parser("train", help="train an MLP on the scikit-learn digits data")
    train.add_argument(
        "--optimizers", "--optimizer", default="adamw", help="comma-separated NAME[:LR]"
    )
    train.add_argument("--schedule", default="warmup_cosine", help="|".join(SCHEDULES))
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument(
        "--compare-grid",
        action="store_true",
        help="also train at every rate of a half-decade grid and show the best",
    )
    train.set_defaults(func=cmd_train)

    sweep = sub.add_parser(
        "lr-sweep", help="train once per learning rate, one compiled program; pick the best"
    )
    sweep.add_argument("--optimizer", default="adam")
    sweep.add_argument("--rates", default=None, help="comma-separated (default: 1e-4 ... 0.1)")
    sweep.add_argument("--epochs", type=int, default=10)
    sweep.add_argument("--out", default="demo_out")
    sweep.set_defaults(func=_cmd_lr_sweep)
    free = sub.add_parser(
        "lr-free", help="schedule-free and learning-rate-free optimizers against tuned ones"
    )
    free.add_argument("--epochs", type=int, default=20)
    free.set_defaults(func=_cmd_lr_free)
    demo = sub.add_parser("demo", help="all of the above with sensible defaults")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--optimizers", default=DEMO_OPTIMIZERS)
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--race-steps", type=int, default=2000)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
