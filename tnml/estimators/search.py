"""``tnml.StructureSearch``: tensor-network structure search as a scikit-learn estimator.

The search itself (encodings, objectives, searchers, the evaluation runner) is
:mod:`tnml.structure_search`, which re-exports this class."""

import hashlib
import numbers
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._config import MemoryBudgetError
from .._validation import check_tensor, underflow_scale
from ..backend import check_random_state, get_namespace, is_numpy, to_numpy
from ..decompositions import TensorNetwork, random_network
from ..structure_search import (
    METHODS,
    SEARCHERS,
    BudgetExhausted,
    Objective,
    Runner,
    SearchSpace,
    canonical_key,
    check_checkpoint_path,
    holdout_split,
)

__all__ = ["StructureSearch"]


def _data_hash(X):
    """SHA-256 of the data's dtype, shape, values and NaN pattern: what a checkpoint must
    have been written for (a sum would match -X, a permutation of X, or any data once one
    entry is NaN)."""
    host = np.ascontiguousarray(to_numpy(X))
    missing = np.isnan(host)
    digest = hashlib.sha256(f"{host.dtype.str}|{host.shape}|".encode())
    # NaN payloads may differ between copies of the same data: hash the pattern, not the bits.
    digest.update(np.where(missing, 0, host).tobytes())
    digest.update(np.packbits(missing).tobytes())
    return digest.hexdigest()


class StructureSearch(BaseEstimator):
    """Search the structure of a tensor network (graph, bond ranks, mode placement) for X.

    Every candidate structure is fitted by alternating least squares
    (:func:`~tnml.decompositions.network_als`) and scored by an objective that trades
    parameters against error; the search method decides which candidates to fit. Candidates
    are fitted in parallel through joblib (``n_jobs``; a Dask cluster with
    ``joblib.parallel_config(backend="dask")``), isomorphic candidates once, and the search can
    be checkpointed and resumed.

    Parameters
    ----------
    method : {'tnale', 'greedy', 'tnls', 'random', 'svdins'}, default='tnale'
        'tnale': alternating local enumeration of each bond rank and of the permutation (Li
        et al., ICML 2023). 'greedy': rank growth from all ranks 1, one edge at a time, with
        warm starts (Hashemizadeh et al.), then pruning of redundant ranks and bond exchange;
        on complete data the cheapest spanning tree, priced by the singular values of the
        unfoldings, is fitted first and bounds the growth. 'tnls': local sampling (Li et
        al., ICML 2022).
        'random': uniform random structures, the baseline. 'svdins': one regularised fit of
        the whole template, bond indices pruned as it goes, then an unpenalised refit and a
        polish of single ranks (in the spirit of SVDinsTN, Zheng et al., CVPR 2024; see
        :func:`~tnml.structure_search.svdins`); it runs ``n_init`` independent paths and
        does not search the mode placement. With the constrained objective on complete
        data it first fits the cheapest structures that explain the data's cut ranks (the
        ranks of its unfoldings at ``max_rse``), and the regularised fit runs only when
        none of them is within ``max_rse``.
    objective : {'penalized', 'constrained'}, default='penalized'
        'penalized': ``n_params / n_entries + rse_weight * RSE^2`` (the papers' score).
        'constrained': fewest parameters with ``RSE <= max_rse``.
    rse_weight : float, default=200.0
        The papers' lambda.
    max_rse : float, default=1e-4
        Error bound of the constrained objective, and the RSE at which 'greedy' stops.
    graph : {'full', 'ring', 'chain'} or (N, N) int matrix, default='full'
        Which cores may be joined by a bond. A matrix gives the template over cores in the
        encoding of :class:`~tnml.decompositions.TensorNetwork` (diagonal: mode sizes, 0 for
        an internal core such as Tucker's; non-zero off-diagonal: allowed edge, its value the
        starting rank of 'tnale' and 'tnls' with ``start='auto'``).
    permutation : sequence of int, optional
        Starting placement of the data modes on the cores (``permutation[j]`` is the mode on
        the ``j``-th core with a data mode); None: core ``k`` carries mode ``k``.
    search_permutation : 'auto' or bool, default='auto'
        Whether modes may move between cores; 'auto': unless the graph is fully connected
        (where every placement is equivalent).
    start : {'auto', 'uniform', 'random', 'ring'}, default='auto'
        Where 'tnale' and 'tnls' begin. 'uniform': the best structure with every bond rank
        equal (at ``permutation``), found by scanning the uniform rank over ``[1,
        max_rank]`` by doubling then bisection (about ``2 log2(max_rank)`` fits); the
        search then only improves on it, so it is never worse than the plain tensor ring
        (``graph='ring'``) or train (``'chain'``) of the best single rank. 'ring' ('tnale'
        on ``graph='full'``): tnale first searches the rings inside the full graph (their
        ranks and mode placement, from the best uniform ring), then sweeps every edge of the
        full graph from the best ring or chain found: never worse than the plain TR/TT it
        reaches, and it finds a permuted ring that sweeps from the uniform full graph miss.
        'random': random ranks and, when searched, a random placement (the reference
        implementations' start). 'auto': the ranks of ``graph`` when it is a matrix, else
        for 'tnale' 'ring' on the full graph and 'uniform' on a ring or chain, and 'random'
        for 'tnls' (local sampling stops after a few idle rounds, and from the uniform ring
        it often stops there before it finds the placement).
    max_rank : int, default=8
        Largest bond rank tried.
    rank_increment : int, default=1
        Rank step of 'greedy'.
    radius : int, default=1
        Half-width of the rank windows of 'tnale' (after its first sweep) and of 'tnls'.
    alpha : float, default=1e-4
        Strength of the bond penalty of 'svdins': the squared relative error one parameter
        of a bond index is worth (relative: independent of the data's scale; see
        :class:`~tnml.structure_search.BondPenalty`). Larger prunes more.
    max_evaluations : int or None, default=300
        Budget of structure fits (cache hits are free).
    max_time : float or None, default=None
        Budget in seconds. Each fit stops after the core update in which it runs out (its
        record is marked ``truncated``), so the search overruns it by about one core update.
    max_iter : int, default=100
        ALS sweeps per candidate.
    tol : float, default=1e-7
        ALS stops when the relative error changes less than this.
    n_init : int, default=2
        Random starts per candidate, tried in turn until one fits to the objective's
        resolution (ALS on a ring stalls in a local minimum from about one start in three);
        for 'svdins', independent paths of the regularised fit.
    validation_fraction : float, default=0.1
        With missing entries (NaN): share of the observed entries held out to measure the RSE.
    n_jobs : int or None, default=None
        Candidates fitted in parallel (joblib's meaning: None is 1 outside a
        ``parallel_config`` context, -1 all cores).
    checkpoint : str, path-like or None, default=None
        File written after every batch of evaluations. It records a content hash of the
        data (values, dtype, shape and NaN pattern) and the settings; a search holds an
        exclusive lock on it (``<checkpoint>.lock``, released when the search ends, however
        it ends), so a second search on the same file is refused.
    resume : bool, default=False
        Continue the search recorded in ``checkpoint`` (without it an existing checkpoint is
        an error, never overwritten). Requires ``checkpoint``; the checkpoint must have been
        written for the same data and settings, and its records are checked (objectives
        recomputed) before they are reused.
    random_state : None, int or RandomState
        Seeds the search; each candidate's fit is seeded from it and the candidate itself.
    verbose : int, default=0
        1: a progress bar with the evaluation count and the best objective.

    Attributes
    ----------
    best_structure_ : ndarray of shape (n_cores, n_cores)
        The best structure in data-mode order (row ``k`` is the core carrying mode ``k``;
        internal cores last; 0 = no edge).
    best_network_ : TensorNetwork
        Its fitted network (refitted on every observed entry when some were held out).
    decomposition_ : TensorNetwork
        Same as ``best_network_`` (the name :class:`~tnml.TensorImputer` reads).
    best_objective_ : float
    reconstruction_error_ : float
        The best structure's relative error (on the held-out entries when some are missing).
    history_ : list of dict
        One dict per evaluation: ``evaluation``, ``method``, ``stage``, ``structure``,
        ``n_params``, ``compression_ratio``, ``rse``, ``objective``, ``seconds``, ``seed``,
        ``start`` ('random', 'warm' or 'random+warm'; a warm start also gives ``parent``, the
        evaluation it started from), ``key`` (the cache key), ``status`` ('ok' or
        'skipped_memory'). ``pandas.DataFrame(history_)`` is a table.
    n_evaluations_ : int
    n_cache_hits_ : int
        Candidates answered from the cache (the same question as one fitted before: an
        isomorphic structure, with the same stage, fit settings and start).
    shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> import tnml
    >>> from tnml.decompositions import random_network
    >>> ring = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
    >>> X = random_network(ring, random_state=0).to_tensor()
    >>> search = tnml.StructureSearch(method="greedy", max_rse=1e-6, max_rank=3,
    ...                               random_state=0).fit(X)
    >>> bool(search.reconstruction_error_ < 1e-6), search.best_network_.n_params  # planted ring
    (True, 48)
    """

    _parameter_constraints = {
        "method": [StrOptions(set(METHODS))],
        "objective": [StrOptions({"penalized", "constrained"})],
        "rse_weight": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_rse": [Interval(numbers.Real, 0, None, closed="neither")],
        "graph": [StrOptions({"full", "ring", "chain"}), "array-like"],
        "permutation": ["array-like", None],
        "search_permutation": ["boolean", StrOptions({"auto"})],
        "start": [StrOptions({"auto", "uniform", "random", "ring"})],
        "max_rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "rank_increment": [Interval(numbers.Integral, 1, None, closed="left")],
        "radius": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_evaluations": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_jobs": [numbers.Integral, None],
        "checkpoint": [str, os.PathLike, None],
        "resume": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        method="tnale",
        *,
        objective="penalized",
        rse_weight=200.0,
        max_rse=1e-4,
        graph="full",
        permutation=None,
        search_permutation="auto",
        start="auto",
        max_rank=8,
        rank_increment=1,
        radius=1,
        alpha=1e-4,
        max_evaluations=300,
        max_time=None,
        max_iter=100,
        tol=1e-7,
        n_init=2,
        validation_fraction=0.1,
        n_jobs=None,
        checkpoint=None,
        resume=False,
        random_state=None,
        verbose=0,
    ):
        self.method = method
        self.objective = objective
        self.rse_weight = rse_weight
        self.max_rse = max_rse
        self.graph = graph
        self.permutation = permutation
        self.search_permutation = search_permutation
        self.start = start
        self.max_rank = max_rank
        self.rank_increment = rank_increment
        self.radius = radius
        self.alpha = alpha
        self.max_evaluations = max_evaluations
        self.max_time = max_time
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.checkpoint = checkpoint
        self.resume = resume
        self.random_state = random_state
        self.verbose = verbose

    def _space(self, shape):
        graph = self.graph if isinstance(self.graph, str) else np.asarray(self.graph)
        search_permutation = self.search_permutation
        if search_permutation == "auto":
            search_permutation = not (isinstance(graph, str) and graph == "full")
        return SearchSpace(
            shape,
            graph,
            self.permutation,
            max_rank=self.max_rank,
            search_permutation=search_permutation,
        )

    def _fingerprint(self, X, seed):
        params = {
            k: v
            for k, v in self.get_params().items()
            if k
            not in (
                "n_jobs",
                "checkpoint",
                "resume",
                "verbose",
                "max_time",
                "max_evaluations",
                "random_state",
            )
        }
        params["graph"] = (
            params["graph"]
            if isinstance(params["graph"], str)
            else np.asarray(params["graph"]).tolist()
        )
        if params["permutation"] is not None:
            params["permutation"] = np.asarray(params["permutation"]).tolist()
        return {"shape": list(X.shape), "seed": seed, "params": params, "data": _data_hash(X)}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Search a structure for X.

        Parameters
        ----------
        X : array of shape (I_1, ..., I_N), N >= 2
            NumPy or CuPy. NaN marks a missing entry: candidates are fitted on the observed
            entries and scored on a held-out ``validation_fraction`` of them.
        y : ignored

        Returns
        -------
        self
        """
        if is_numpy(get_namespace(X)):
            # Host data goes through scikit-learn's checks (sparse, complex, object, empty).
            X = check_array(
                X,
                accept_sparse=False,
                dtype=[np.float64, np.float32],
                ensure_all_finite="allow-nan",
                allow_nd=True,
                input_name="X",
            )
        X = check_tensor(X, "X", allow_nan=True)
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True continues a checkpoint: give checkpoint= as well")
        checkpoint = None if self.checkpoint is None else check_checkpoint_path(self.checkpoint)
        xp = get_namespace(X)
        observed = ~xp.isnan(X)
        complete = bool(xp.all(observed))
        if not bool(xp.any(observed)):
            raise ValueError("X has no observed entries (every entry is NaN)")
        # One seed for everything: draw it once when given a generator or None.
        rng = check_random_state(self.random_state)
        seed = (
            int(self.random_state)
            if isinstance(self.random_state, numbers.Integral)
            else int(rng.randint(2**31 - 1))
        )
        space = self._space(X.shape)
        objective = Objective(self.objective, rse_weight=self.rse_weight, max_rse=self.max_rse)
        # Hashing the data costs a pass over it (a host copy for device data): only for a
        # checkpoint, the one place it is compared.
        fingerprint = self._fingerprint(X, seed) if checkpoint is not None else None
        # Tiny data is fitted scaled by a power of two (exact), the network scaled back.
        scale = underflow_scale(X)
        if complete:
            data, train, held_out = X * scale if scale != 1 else X, None, None
        else:
            data = xp.where(observed, X * scale, 0)
            train, held_out = holdout_split(observed, self.validation_fraction, seed)
        fit_params = {
            "max_iter": self.max_iter,
            "tol": self.tol,
            "n_init": self.n_init,
            "target_error": objective.resolution(int(np.prod(X.shape))),
        }
        progress = self._progress_bar()
        runner = Runner(
            data,
            train,
            held_out,
            objective,
            method=self.method,
            fit_params=fit_params,
            seed=seed,
            n_jobs=self.n_jobs,
            max_evaluations=self.max_evaluations,
            max_time=self.max_time,
            checkpoint=checkpoint,
            resume=self.resume,
            progress=progress and progress[1],
            fingerprint=fingerprint,
        )
        start = time.perf_counter()
        zero = not bool(xp.any(data != 0))
        try:
            if zero:
                # All-zero data: the zero network of the smallest structure is exact.
                self._zero_search(runner, space, seed)
            else:
                with runner:  # one worker pool for the whole search
                    SEARCHERS[self.method](
                        runner, space, np.random.RandomState(seed), **self._searcher_params(space)
                    )
        except BudgetExhausted:
            pass
        finally:
            runner.close()
            if progress:
                progress[0].close()
        if runner.best is None:
            raise ValueError(
                f"max_time={self.max_time} s ran out before any candidate structure was "
                f"fitted; raise max_time"
            )
        if runner.best["status"] != "ok":
            raise MemoryBudgetError(
                "no candidate structure could be fitted (every one was skipped "
                "for max_memory); raise max_memory or lower max_rank"
            )
        best = runner.best
        network = runner.best_network
        structure = np.asarray(best["structure"])
        if network is None:  # not kept (or restored from a checkpoint): refit, same seed
            network = runner.refit(structure, best["seed"])["network"]
        if not complete and not zero:  # held-out entries only served to choose: refit on all
            network = runner.refit(structure, best["seed"], network, train=observed, held_out=None)[
                "network"
            ]
        if scale != 1:
            network = TensorNetwork([network.cores[0] / scale, *network.cores[1:]], structure)
        self.shape_ = tuple(X.shape)
        self.best_structure_ = structure
        self.best_network_ = self.decomposition_ = network
        self.best_objective_ = float(best["objective"])
        self.reconstruction_error_ = float(best["rse"])
        self.best_key_ = canonical_key(structure)
        self.history_ = runner.history
        self.n_evaluations_ = runner.n_evaluations
        self.n_cache_hits_ = runner.n_cache_hits
        self.search_seconds_ = time.perf_counter() - start
        return self

    @staticmethod
    def _zero_search(runner, space, seed):
        """Answer all-zero data exactly: the structure with every bond rank 1, zero cores."""
        structure = space.structure([1] * len(space.edges))
        network = random_network(structure, random_state=seed)
        xp = get_namespace(runner.X)
        zero = TensorNetwork([xp.zeros_like(xp.asarray(c)) for c in network.cores], structure)
        runner.record_exact(structure, zero)

    def _fitted_shapes(self):
        """Shapes the fitted arrays must have (checked by :func:`tnml.load`)."""
        shape = tuple(self.shape_)
        structure = np.asarray(self.best_structure_)
        if (
            structure.ndim != 2
            or structure.shape[0] < len(shape)
            or tuple(int(d) for d in np.diag(structure)[: len(shape)]) != shape
        ):
            raise ValueError(f"best_structure_ does not carry the modes of shape_={shape}")
        return {"decomposition_": shape, "best_network_": shape}

    def _searcher_params(self, space):
        return SEARCHERS[self.method].params(self.get_params(), space)

    def _progress_bar(self):
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        bar = tqdm(total=self.max_evaluations, desc=f"StructureSearch({self.method})", unit="fit")

        def update(runner):
            bar.update(runner.n_evaluations - bar.n)
            bar.set_postfix(best=f"{runner.best['objective']:.4g}" if runner.best else "-")

        return bar, update

    def reconstruction(self):
        """The best network's dense tensor."""
        check_is_fitted(self)
        return self.best_network_.to_tensor()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags
