"""Command-line front end: ``tnml demo``, ``tnml complete`` and ``tnml search``.

Every user error (a missing or unreadable file, an unknown data set, an impossible option)
ends with one line on stderr and exit code 2, never a traceback.
"""

import argparse
import io
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from ._config import check_memory
from ._files import atomic_write, default_max_bytes, read_array
from .estimators.families import AUTOMATIC, FAMILIES
from .structure_search import METHODS

MODELS = ("auto", *FAMILIES)
PATTERNS = ("random", "fiber", "slice", "block")


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


# -- reading --------------------------------------------------------------------------------------
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _read_file(path, key=None):
    """The array in ``path`` (an image, ``.npy`` or ``.npz``; ``key``: the ``.npz`` entry to
    prefer) and whether it is an image. Every file goes through the limits of
    :func:`tnml.load`: what it declares may not exceed its size plus 64 MiB (nor
    ``max_memory``), checked before anything is decompressed."""
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (*_IMAGE_SUFFIXES, ".npy", ".npz"):
        raise UsageError(
            f"unsupported file type {suffix!r}; use PNG/JPEG/TIFF images, .npy or .npz"
        )
    try:
        if suffix in _IMAGE_SUFFIXES:
            return _read_image(path), True
        return read_array(path, key=key), False
    except ValueError as error:
        message = str(error)
        if not message.startswith("cannot read"):
            message = f"cannot read {path}: {message}"
        raise UsageError(message) from None
    except Exception as error:  # noqa: BLE001 - any reader failure is the file's fault
        raise UsageError(f"cannot read {path}: {error}") from None


def _read_image(path):
    from PIL import Image, UnidentifiedImageError
    from skimage import img_as_float
    from skimage import io as skio

    # The header's size is checked before any pixel is decoded: a small, highly compressed
    # image can declare gigabytes (the limit of tnml.load, on the decoded bytes).
    try:
        with Image.open(path) as header:  # reads the header only
            width, height = header.size
            channels = len(header.getbands())
            n_frames = getattr(header, "n_frames", 1)
    except UnidentifiedImageError:  # a format only skimage's other plugins read
        width = height = channels = n_frames = 0
    declared = width * height * channels * n_frames
    limit = default_max_bytes(path)
    if declared > limit:
        raise ValueError(
            f"cannot read {path}: the image declares {width} x {height} x {channels} pixels "
            f"({declared} bytes), more than the limit of {limit} bytes (its size plus 64 MiB, "
            f"or max_memory)"
        )
    check_memory(8 * declared, f"reading {path}")  # the float64 image
    image = img_as_float(skio.imread(path))
    if image.ndim == 3 and image.shape[2] == 4:  # drop alpha
        image = image[:, :, :3]
    return image


def _real_tensor(data, source):
    """``data`` as a float64 array of real numbers with at least 2 axes, or a UsageError:
    the one check of every command's input."""
    data = np.asarray(data)
    if data.dtype.kind == "c":
        raise UsageError(
            f"{source} holds complex numbers (dtype {data.dtype}); tnml works on real "
            f"tensors: give the real and imaginary parts as two files"
        )
    if data.dtype.kind not in "biuf":
        raise UsageError(f"{source} must hold real numbers, got dtype {data.dtype}")
    if data.ndim < 2:
        raise UsageError(f"{source} must have at least 2 axes, got shape {data.shape}")
    return data.astype(np.float64)


def _read_dataset(name):
    from . import datasets

    if name in ("indian_pines", "indian-pines"):
        cube = datasets.load_indian_pines()
        return cube / cube.max(), False
    if name == "kinetic":
        return datasets.load_kinetic(), False
    if name in datasets.available_images():
        return datasets.load_image(name, size=256), True
    raise UsageError(
        f"unknown dataset {name!r}; choose from indian_pines, kinetic, "
        f"{', '.join(datasets.available_images())}"
    )


# -- figures --------------------------------------------------------------------------------------
def _displayable(tensor, is_image):
    """A 2-D or RGB view of a tensor for the figures (band mean for other tensors)."""
    if is_image:
        return np.clip(np.nan_to_num(tensor, nan=1.0), 0, 1)
    view = tensor
    while view.ndim > 2:
        view = np.nanmean(view, axis=-1)
    return view


def _comparison_figure(path, observed, completed, original, scores, is_image):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("observed", observed), (f"completed: PSNR {scores['completed']:.2f} dB", completed)]
    if original is not None:
        panels.append(("original", original))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3))
    for ax, (title, tensor) in zip(np.atleast_1d(axes), panels):
        ax.imshow(_displayable(tensor, is_image), cmap=None if is_image else "viridis")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(scores.get("title", ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _save_image(stream, image):
    import imageio.v3 as iio
    from skimage import img_as_ubyte

    iio.imwrite(stream, img_as_ubyte(np.clip(image, 0, 1)), extension=".png")


# -- commands -------------------------------------------------------------------------------------
def _complete(args):
    from .datasets import make_mask
    from .estimators import TensorImputer
    from .metrics import psnr, rse

    if args.file is not None and args.dataset is not None:
        raise UsageError("give a FILE or --dataset, not both")
    if args.file is None and args.dataset is None:
        raise UsageError("give a FILE to complete or --dataset NAME")
    if args.missing is not None and not 0 <= args.missing < 1:
        raise UsageError(f"--missing must be in [0, 1), got {args.missing}")
    data, is_image = _read_file(args.file) if args.file is not None else _read_dataset(args.dataset)
    suffix = ".png" if is_image else ".npy"
    outputs = _output_paths(args, "completed" + suffix, "comparison.png", "metrics.json")
    data = _real_tensor(data, "the input")
    if np.isinf(data).any():
        raise UsageError("the input holds infinite values; only NaN may mark missing entries")
    observed = ~np.isnan(data)
    if observed.all() and args.missing is None:
        raise UsageError("the input has no missing entries; give --missing to hide a fraction")
    original = None if not observed.all() else data.copy()
    if args.missing:
        observed &= make_mask(
            data.shape, args.missing, pattern=args.pattern, random_state=args.seed
        )
    if not observed.any():
        raise UsageError("no observed entries are left to fit")
    # Fit on values scaled to at most 1 in magnitude (images already are): a fit sums squares,
    # which overflow for values near 1e155; the result is scaled back exactly.
    scale = 1.0 if is_image else float(np.max(np.abs(data[observed]))) or 1.0
    X = np.where(observed, data / scale, np.nan)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    # One whole tensor whose axes but the last are ordered (image rows and columns, space):
    # the families that assume so ('smooth', ket augmentation) are candidates.
    imputer = TensorImputer(
        args.model,
        rank="auto" if args.rank is None else args.rank,
        ordered_axes=tuple(range(data.ndim - 1)),
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    completed = imputer.fit_transform(X)
    report = imputer.summary_
    elapsed = time.perf_counter() - start
    missing = ~observed
    metrics = {
        "model": report["model"],
        "rank": report["rank"],
        "seconds": round(elapsed, 3),
        "shape": list(data.shape),
        "missing_ratio": float(missing.mean()),
        "candidates": report["candidates"],
    }
    if original is not None:
        # Scores on the scaled values: PSNR and RSE do not change with the scale.
        truth = original / scale
        data_range = 1.0 if is_image else float(np.ptp(truth))
        # A constant tensor has no dynamic range: PSNR is undefined there (null in the JSON).
        metrics["psnr_missing"] = _finite_or_none(
            psnr(truth, completed, mask=missing, data_range=data_range)
            if data_range > 0
            else float("nan")
        )
        metrics["rse_missing"] = _finite_or_none(rse(truth, completed, mask=missing))
    completed = completed * scale
    if is_image:
        _write(outputs[0], lambda stream: _save_image(stream, completed))
    else:
        _write(outputs[0], lambda stream: np.save(stream, completed))
    psnr_title = metrics.get("psnr_missing")
    scores = {
        "completed": float("nan") if psnr_title is None else psnr_title,
        "title": f"{report['model']} rank {report['rank']}, "
        f"{100 * metrics['missing_ratio']:.0f}% missing",
    }
    _write(
        outputs[1],
        lambda stream: _comparison_figure(stream, X * scale, completed, original, scores, is_image),
    )
    _write(outputs[2], lambda stream: stream.write(_json(metrics, indent=2).encode()))
    print(_json({k: v for k, v in metrics.items() if k != "candidates"}))
    return 0


def _finite_or_none(value):
    return float(value) if np.isfinite(value) else None


def _json(value, **kwargs):
    """Strict JSON (RFC 8259 has no Infinity or NaN): a non-finite number is written null."""

    def clean(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {k: clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item

    return json.dumps(clean(value), allow_nan=False, **kwargs)


def _output_paths(args, *names, inputs=()):
    """The files a command will write in ``--out``, checked before any work is done: the
    one rule of every command. An input (the FILE argument and ``inputs``) is never an
    output, whatever its name and however it is reached (symbolic or hard link); an
    existing file is replaced only with ``--overwrite``; a folder never."""
    paths = [os.path.join(args.out, name) for name in names]
    sources = [p for p in (getattr(args, "file", None), *inputs) if p is not None]
    for path in paths:
        for source in sources:
            if _same_file(path, source):
                raise UsageError(
                    f"writing {path} would replace the input file {source}; choose another --out"
                )
        if os.path.isdir(path):
            raise UsageError(f"{path} is a folder; choose another --out")
        if os.path.lexists(path) and not args.overwrite:
            raise UsageError(
                f"{path} exists; pass --overwrite to replace it, or choose another --out"
            )
    return paths


def _same_file(path, source):
    if not (os.path.exists(path) and os.path.exists(source)):
        return os.path.realpath(path) == os.path.realpath(source)
    return os.path.samefile(path, source)


def _write(path, write):
    """Write ``path`` through ``write(stream)`` atomically: a reader (or a crash) never sees a
    half-written file, and a failed write leaves the old file as it was."""
    with atomic_write(path) as stream:
        write(stream)


def _demo(args):
    """Complete a bundled image at 80% missing with every model; print a table, save a figure."""
    from .datasets import load_image, make_mask
    from .estimators import TensorImputer
    from .metrics import psnr

    (path,) = _output_paths(args, "comparison.png")
    image = load_image("astronaut", size=args.size)
    observed = make_mask(image.shape, 0.8, random_state=0)
    X = np.where(observed, image, np.nan)
    print(f"astronaut {image.shape}, 80% of the pixels missing; PSNR on the missing entries")
    print(f"{'model':<8} {'rank':>14} {'PSNR (dB)':>10} {'time (s)':>9}")
    best = None
    for name in AUTOMATIC:
        start = time.perf_counter()
        imputer = TensorImputer(name, random_state=0, ordered_axes=(0, 1))
        completed = imputer.fit_transform(X)
        report = imputer.summary_
        elapsed = time.perf_counter() - start
        score = psnr(image, completed, mask=~observed, data_range=1.0)
        print(f"{name:<8} {str(report['rank']):>14} {score:>10.2f} {elapsed:>9.1f}")
        if best is None or score > best[0]:
            best = (score, name, report["rank"], completed)
    os.makedirs(args.out, exist_ok=True)
    _write(
        path,
        lambda stream: _comparison_figure(
            stream,
            X,
            best[3],
            image,
            {"completed": best[0], "title": f"best: {best[1]} rank {best[2]}"},
            True,
        ),
    )
    print(f"wrote {path}")
    return 0


# -- structure search -----------------------------------------------------------------------------
_SEARCH_OUTPUTS = ("result.json", "history.csv", "trace.png", "network.png")
_HISTORY_COLUMNS = (
    "method",
    "evaluation",
    "stage",
    "n_params",
    "compression_ratio",
    "rse",
    "objective",
    "best_objective",
    "seconds",
    "elapsed",
    "seed",
    "status",
    "structure",
)


def _read_search_input(path):
    """A tensor from .npy, an image, or an .npz: one array, or a structure-search instance
    (``goal``; the papers' files also hold the generating structure, which is not used)."""
    return _real_tensor(_read_file(path, key="goal")[0], "the input")


def _trace_figure(path, histories):
    from .structure_search.plotting import plot_trace

    _save_figure(path, lambda ax: plot_trace(histories, ax=ax), (6.4, 4.2))


def _network_figure(path, structure, title):
    from .structure_search.plotting import plot_network

    _save_figure(path, lambda ax: plot_network(structure, ax=ax, title=title), (5.2, 5.2))


def _save_figure(path, draw, size):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _search(args):
    import csv

    from .structure_search import StructureSearch

    methods = list(dict.fromkeys(args.method))
    if args.resume and not args.checkpoint:
        raise UsageError("--resume continues a --checkpoint search; give both")
    outputs = _output_paths(args, *_SEARCH_OUTPUTS)
    checkpoints = {}
    if args.checkpoint:
        names = [f"checkpoint-{m}.npz" for m in methods]
        if args.resume:  # a checkpoint is continued, not replaced: only the input rule applies
            paths = _output_paths(argparse.Namespace(**{**vars(args), "overwrite": True}), *names)
        else:
            paths = _output_paths(args, *names)
        checkpoints = dict(zip(methods, paths))
    X = _read_search_input(args.file)
    searches = {
        method: StructureSearch(
            method,
            objective=args.objective,
            rse_weight=args.rse_weight,
            max_rse=args.max_rse,
            graph=args.graph,
            max_rank=args.max_rank,
            max_evaluations=args.max_evaluations,
            max_time=args.max_time,
            max_iter=args.max_iter,
            n_jobs=args.n_jobs,
            checkpoint=checkpoints.get(method),
            resume=args.resume,
            random_state=args.seed,
            verbose=0 if args.quiet else 1,
        )
        for method in methods
    }
    for search in searches.values():  # every argument checked before --out is created
        try:
            search._validate_params()
        except ValueError as error:
            raise UsageError(_option_message(str(error))) from None
    os.makedirs(args.out, exist_ok=True)
    results, histories, best = {}, {}, None
    for method, search in searches.items():
        checkpoint = checkpoints.get(method)
        if checkpoint and args.overwrite and not args.resume and os.path.lexists(checkpoint):
            os.remove(checkpoint)  # never the input: _output_paths refused that above
        start = time.perf_counter()
        search.fit(X)
        structure = search.best_structure_
        results[method] = {
            "best_structure": structure.tolist(),
            "n_params": search.best_network_.n_params,
            "compression_ratio": search.best_network_.n_params / X.size,
            "rse": search.reconstruction_error_,
            "objective": search.best_objective_,
            "n_evaluations": search.n_evaluations_,
            "cache_hits": search.n_cache_hits_,
            "seconds": round(time.perf_counter() - start, 3),
        }
        histories[method] = search.history_
        if best is None or search.best_objective_ < best[1]["objective"]:
            best = (method, results[method])

    def write_history(stream):
        text = io.TextIOWrapper(stream, newline="", encoding="utf-8")
        writer = csv.DictWriter(text, fieldnames=_HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for history in histories.values():
            running = float("inf")
            for record in history:
                running = min(running, record["objective"])
                writer.writerow(
                    {
                        **record,
                        "best_objective": running,
                        "structure": json.dumps(record["structure"]),
                    }
                )
        text.flush()
        text.detach()

    _write(outputs[1], write_history)
    _write(outputs[2], lambda stream: _trace_figure(stream, histories))
    method, winner = best
    _write(
        outputs[3],
        lambda stream: _network_figure(
            stream,
            winner["best_structure"],
            f"best: {method}, {winner['n_params']} parameters "
            f"(ratio {winner['compression_ratio']:.4f}), RSE {winner['rse']:.2e}",
        ),
    )
    summary = {
        "file": args.file,
        "shape": list(X.shape),
        "objective": args.objective,
        "rse_weight": args.rse_weight,
        "max_rse": args.max_rse,
        "graph": args.graph,
        "max_rank": args.max_rank,
        "seed": args.seed,
        "best_method": method,
        "methods": results,
    }
    _write(outputs[0], lambda stream: stream.write(_json(summary, indent=2).encode()))
    print(
        f"{'method':<8} {'evals':>6} {'params':>7} {'ratio':>8} {'RSE':>9} {'objective':>10} "
        f"{'time (s)':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<8} {r['n_evaluations']:>6} {r['n_params']:>7} "
            f"{r['compression_ratio']:>8.4f} {r['rse']:>9.2e} {r['objective']:>10.4f} "
            f"{r['seconds']:>9.1f}"
        )
    print(f"wrote {', '.join(outputs)}")
    return 0


def _option_message(message):
    """scikit-learn's "The 'rse_weight' parameter of StructureSearch must be ..." in the
    CLI's words (--rse-weight)."""
    import re

    match = re.search(r"The '(\w+)' parameter of \w+ (must be .*)", message)
    if match is None:
        return message
    return f"--{match.group(1).replace('_', '-')} {match.group(2)}"


def build_parser():
    parser = argparse.ArgumentParser(prog="tnml", description="tensor-network machine learning")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="complete a bundled image with every model")
    demo.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    demo.add_argument("--out", default="tnml-demo", help="folder for the figure")
    demo.add_argument(
        "--overwrite", action="store_true", help="replace an existing figure in --out"
    )
    demo.set_defaults(run=_demo)
    complete = commands.add_parser("complete", help="fill in the missing entries of a tensor")
    complete.add_argument("file", nargs="?", help="PNG/JPEG image, .npy or .npz (NaN = missing)")
    complete.add_argument("--dataset", help="a bundled data set instead of a file")
    complete.add_argument("--missing", type=float, help="fraction of entries to hide")
    complete.add_argument("--pattern", choices=PATTERNS, default="random")
    complete.add_argument("--model", choices=MODELS, default="auto")
    complete.add_argument(
        "--rank", type=int, help="model rank (default: chosen on held-out entries)"
    )
    complete.add_argument("--seed", type=int, default=0)
    complete.add_argument("--out", required=True, help="output folder")
    complete.add_argument("--quiet", action="store_true", help="no progress bar")
    complete.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs in --out (never the input file)",
    )
    complete.set_defaults(run=_complete)
    search = commands.add_parser("search", help="search a tensor-network structure for a tensor")
    search.add_argument(
        "file",
        help=".npy, .npz (one array, or a structure-search instance with 'goal') or an image",
    )
    search.add_argument(
        "--method",
        nargs="+",
        choices=METHODS,
        default=["tnale"],
        help="one or more methods, compared side by side (default tnale)",
    )
    search.add_argument("--out", required=True, help="output folder")
    search.add_argument("--objective", choices=("penalized", "constrained"), default="penalized")
    search.add_argument(
        "--rse-weight",
        type=float,
        default=200.0,
        help="lambda of params/entries + lambda * RSE^2 (default 200)",
    )
    search.add_argument(
        "--max-rse",
        type=float,
        default=1e-4,
        help="RSE bound of the constrained objective; greedy stops there",
    )
    search.add_argument("--graph", choices=("full", "ring", "chain"), default="full")
    search.add_argument("--max-rank", type=int, default=8)
    search.add_argument("--max-evaluations", type=int, default=300)
    search.add_argument("--max-time", type=float, help="seconds per method")
    search.add_argument("--max-iter", type=int, default=100, help="ALS sweeps per candidate")
    search.add_argument("--n-jobs", type=int, help="parallel fits (-1: all cores)")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument(
        "--checkpoint",
        action="store_true",
        help="write OUT/checkpoint-METHOD.npz after every batch",
    )
    search.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    search.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    search.set_defaults(run=_search)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for option in ("rank", "size", "max_rank", "max_evaluations", "max_iter"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            flag = option.replace("_", "-")
            parser.exit(2, f"tnml {args.command}: error: --{flag} must be >= 1, got {value}\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes belong in metrics, not stderr
            return args.run(args)
    except (UsageError, ValueError, TypeError, OSError, MemoryError, ArithmeticError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        parser.exit(2, f"tnml {args.command}: error: {first_line}\n")


if __name__ == "__main__":
    sys.exit(main())
