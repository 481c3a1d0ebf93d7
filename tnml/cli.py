"""Command-line front end: ``tnml demo`` (more commands arrive with later features)."""

import argparse
import sys
import time


def _demo(args):
    """Decompose a bundled real tensor with every model and print a table."""
    import numpy as np

    from . import CP, TensorRing, TensorTrain, Tucker
    from .datasets import load_indian_pines

    X = load_indian_pines()
    X = X / np.abs(X).max()
    models = [("CP", CP(rank=args.rank, n_iter_max=50, tol=1e-6, random_state=0)),
              ("Tucker", Tucker(rank=(args.rank,) * 3, n_iter_max=50)),
              ("TensorTrain", TensorTrain(rank=args.rank)),
              ("TensorRing", TensorRing(rank=max(2, args.rank // 3), n_iter_max=30,
                                        random_state=0))]
    print(f"Indian Pines {X.shape}, {X.size:,} entries (samples = first mode: pixel rows)")
    print(f"{'model':<12} {'params':>9} {'compression':>12} {'rel. error':>11} {'time (s)':>9}")
    for name, model in models:
        start = time.perf_counter()
        model.fit(X)
        elapsed = time.perf_counter() - start
        fmt = model.decomposition_
        print(f"{name:<12} {fmt.n_params:>9,} {fmt.compression_ratio():>12.4f} "
              f"{model.reconstruction_error_:>11.4f} {elapsed:>9.2f}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tnml", description="tensor-network machine learning")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="decompose a bundled real tensor with every model")
    demo.add_argument("--rank", type=int, default=10, help="rank of each model (default 10)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "rank", 1) < 1:
        parser.exit(2, f"tnml {args.command}: error: --rank must be >= 1, got {args.rank}\n")
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as error:
        parser.exit(2, f"tnml {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
