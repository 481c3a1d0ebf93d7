"""Evaluating candidate structures: in parallel, once each, recorded, resumable.

A searcher hands the :class:`Runner` batches of candidate structures. The runner

- scores each distinct question once: the cache is keyed by everything that changes the
  answer (:func:`cache_key`): the fitting stage, the canonical form of the structure
  (:func:`~tnml.structure_search.encoding.canonical_key`, so isomorphic candidates share one
  evaluation), the fit settings a candidate overrides, and its starts (random, or warm from
  which earlier evaluation);
- fits the rest through :class:`joblib.Parallel` with ``n_jobs`` workers, so that
  ``with joblib.parallel_config(backend="dask"):`` runs them on a Dask cluster unchanged; used
  as a context manager (``with runner:``), one pool serves the whole search, and NumPy data is
  handed to its workers once (memory-mapped) instead of with every batch;
- keeps the fitted networks that can still serve as warm starts, not all of them: the best
  one, those of the latest batch, and the ``KEPT_NETWORKS`` most recently kept or used others
  (a searcher warm-starts from its current network or the batch it just scored);
- gives every candidate a seed derived from the search's seed, its stage and its canonical
  form, so a candidate's result does not depend on the order, the worker or the batch it ran
  in: parallel and serial searches are identical;
- records every evaluation (structure, parameters, RSE, objective, seconds, seed, status;
  candidates whose fit would exceed ``max_memory`` are recorded as skipped, not crashed);
- keeps to ``max_time`` within a batch too: every fit gets the search's deadline and stops
  after the core update it falls in (one sweep of a large dense start can take minutes); its
  record is marked ``truncated``, and a resumed search, which may have more time, fits it
  again instead of replaying it;
- appends each batch to a checkpoint log (:mod:`tnml.structure_search.checkpoint`: the
  batch's records and the networks it newly kept, hashed, so that writing a batch costs
  O(batch) and a write cut short by a crash is ignored on resume), compacted when it is
  resumed and whenever dropped networks outweigh what it must hold (a uniquely named
  temporary file moved into place with :func:`os.replace`; a killed writer's temporary is
  removed by the next search on the checkpoint), holding an exclusive lock on it for the
  whole search so that a second search on the same file is refused, not interleaved. With
  ``resume=True`` the searcher is replayed from the start: every candidate found in the
  checkpoint takes its recorded result instead of being fitted again, so the resumed search
  makes exactly the decisions, and ends with exactly the history, of an uninterrupted one.
"""

import errno
import hashlib
import json
import math
import os
import time

import numpy as np

from .._config import config_context, get_config
from .._files import remove_stale_temps
from ..backend import to_numpy
from ..metrics import rse
from .checkpoint import append_batch, read_content, write_log
from .encoding import canonical_key, n_params

__all__ = ["Runner", "BudgetExhausted", "cache_key", "candidate_seed", "check_checkpoint_path"]

# A running search compacts its checkpoint once the networks it dropped take more bytes than
# this and than the rest of the file (amortised O(batch) I/O per batch).
_COMPACT_SLACK = 2**18
# Fitted networks kept for warm starts besides the best one and the latest batch's.
KEPT_NETWORKS = 64


class BudgetExhausted(Exception):
    """Raised to a searcher when the evaluation or time budget is spent."""


def candidate_seed(seed, key):
    """A 31-bit seed from the search's seed and a candidate's cache key (order-free).

    Examples
    --------
    >>> candidate_seed(0, "3:3,1,1,3") == candidate_seed(0, "3:3,1,1,3")
    True
    """
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cache_key(structure, *, stage="fit", fit_params=None, starts=("random",), parent=None):
    """The runner's cache key of a candidate: everything that changes its answer.

    ``stage|canonical form``, then the fit settings the candidate overrides (sorted JSON;
    objects by their repr),
    then its starts when they are not a plain random start, a warm one naming the cache key
    of the evaluation it starts from (``parent``, hashed: keys do not grow along a chain of
    warm starts).

    Examples
    --------
    >>> ring = [[3, 2, 0, 2], [2, 3, 2, 0], [0, 2, 3, 2], [2, 0, 2, 3]]
    >>> cache_key(ring)
    'fit|4:3,2,0,2,2,3,2,0,0,2,3,2,2,0,2,3'
    >>> cache_key(ring, stage="refit", fit_params={"max_iter": 10}).split("|")[2]
    '{"max_iter":10}'
    """
    key = f"{stage}|{canonical_key(structure)}"
    if fit_params:
        # A setting that is an object (e.g. a bond penalty) enters by its repr, which says
        # everything that changes the fit.
        key += "|" + json.dumps(fit_params, sort_keys=True, separators=(",", ":"), default=repr)
    if tuple(starts) != ("random",):
        warm = "" if parent is None else hashlib.sha256(parent.encode()).hexdigest()[:16]
        key += "|" + "+".join(f"warm<{warm}>" if s == "warm" else s for s in starts)
    return key


def _evaluate(X, train, held_out, structure, seed, init, fit_params, config, deadline=None):
    """Fit one structure (in a worker); return its RSE, the network and the time taken.

    ``init`` is None (``n_init`` random starts), a network (a warm start), or a list of
    those. The starts run in turn until one reaches ``target_error``; the one with the lowest
    training error is kept. Random starts are seeded ``seed, seed + 1, ...``. ``deadline``
    (a :func:`time.time`, which workers on other processes share) ends the fit after the
    core update it falls in; a fit that ends past it is marked ``truncated``.
    """
    from ..decompositions import best_of_starts, network_als, target_reached

    start = time.perf_counter()
    fit_params = dict(fit_params)
    n_init = fit_params.pop("n_init", 1)
    starts = init if isinstance(init, list) else [init]
    starts = [s for option in starts for s in ([None] * n_init if option is None else [option])]

    def fit(index, rng):
        option = starts[index]
        return network_als(
            X,
            structure,
            mask=train,
            init="random" if option is None else option,
            random_state=seed + index,
            max_time=None if deadline is None else max(deadline - time.time(), 0.0),
            **fit_params,
        )

    with config_context(**config):
        try:
            best = best_of_starts(
                fit, len(starts), stop=target_reached(fit_params.get("target_error"))
            )
        except MemoryError as error:  # MemoryBudgetError: refused before allocating
            return {
                "status": "skipped_memory",
                "rse": float("nan"),
                "network": None,
                "seconds": time.perf_counter() - start,
                "message": str(error),
            }
        network = best[0]
        error = rse(X, network.to_tensor(), held_out if held_out is not None else train)
    if not math.isfinite(error):
        error = float("inf")
    result = {
        "status": "ok",
        "rse": error,
        "network": network,
        "seconds": time.perf_counter() - start,
    }
    if deadline is not None and time.time() >= deadline:
        result["truncated"] = True
    return result


def _pruned_structure(network, cutoff):
    """The structure (data order) left of ``network`` by :func:`prune_network` at ``cutoff``."""
    from ..decompositions.network import prune_network

    return np.asarray(prune_network(network, cutoff)[0].adjacency).tolist()


def _network_arrays(network):
    return [to_numpy(core) for core in network.cores]


def _network_from_arrays(structure, cores):
    from ..decompositions.network import TensorNetwork

    return TensorNetwork(list(cores), np.asarray(structure))


class Runner:
    """Evaluate, cache, record and checkpoint candidate structures (see the module doc).

    Parameters
    ----------
    X : array
        The data (NaN-free; missing entries are excluded by ``train``).
    train, held_out : bool arrays or None
        Entries fitted and entries scored; None: every entry is fitted and scored.
    objective : Objective
    method : str
        Recorded with every evaluation.
    fit_params : dict
        Keyword arguments of :func:`~tnml.decompositions.network_als`.
    seed : int
    n_jobs, max_evaluations, max_time, checkpoint, resume, progress
        See :class:`~tnml.StructureSearch`; ``progress(runner)`` is called after each batch.
    fingerprint : dict
        What the checkpoint must have been written for (data shape, method, settings).
    """

    def __init__(
        self,
        X,
        train,
        held_out,
        objective,
        *,
        method,
        fit_params,
        seed,
        n_jobs=None,
        max_evaluations=None,
        max_time=None,
        checkpoint=None,
        resume=False,
        progress=None,
        fingerprint=None,
    ):
        self.X, self.train, self.held_out = X, train, held_out
        self.objective, self.method, self.fit_params = objective, method, dict(fit_params)
        self.seed, self.n_jobs = int(seed), n_jobs
        self.max_evaluations, self.max_time = max_evaluations, max_time
        self.checkpoint, self.progress = checkpoint, progress
        self.fingerprint = json.loads(json.dumps(fingerprint or {}))
        self.n_entries = math.prod(X.shape)
        self.history = []  # one record per evaluation, in the searcher's order
        # Networks kept for warm starts (evaluation -> network), least recently used first;
        # during a resumed search's replay, None for a network the checkpoint no longer held.
        self.networks = {}
        self._parallel = None
        self._cache = {}  # cache key -> record
        self._restored = {}  # cache key -> (record, network or None) from a checkpoint
        self.n_cache_hits = 0
        self.best = None
        self.best_network = None
        self._elapsed_before = 0.0
        self._start = time.perf_counter()
        self._config = get_config()
        self._lock = None
        # The checkpoint log: records written, its size, the bytes each network written to
        # it takes (dropped ones included), and whether it must be rewritten whole.
        self._persisted = 0
        self._file_size = 0
        self._network_sizes = {}
        self._rewrite = True
        if checkpoint is not None:
            self.checkpoint = checkpoint = check_checkpoint_path(checkpoint)
            directory = os.path.dirname(os.path.abspath(checkpoint))
            if not os.path.isdir(directory):
                raise ValueError(f"checkpoint {checkpoint!r}: folder {directory!r} does not exist")
            # Taken before the file is looked at: two searches never both start (or resume)
            # the same checkpoint, so neither silently replaces the other's file.
            self._lock = _CheckpointLock(checkpoint)
            try:
                # Ours now: a temporary file next to it is what a killed writer left.
                remove_stale_temps(checkpoint, include_alive=True)
                if os.path.exists(checkpoint):
                    if not resume:
                        raise ValueError(
                            f"checkpoint {checkpoint!r} already exists; pass "
                            f"resume=True to continue it, or remove it to start over"
                        )
                    self._load_checkpoint()
            except BaseException:
                self.close()
                raise

    def close(self):
        """Release the checkpoint's lock (the search is over)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    _DEFAULT = object()

    def refit(self, structure, seed, init=None, *, train=_DEFAULT, held_out=_DEFAULT):
        """Fit ``structure`` outside the search, on the runner's data, fit parameters and
        configuration; nothing is recorded.

        Parameters
        ----------
        structure : (N, N) int array
        seed : int
            Of the random starts (``seed, seed + 1, ...``).
        init : None, TensorNetwork or list of those
            None: ``n_init`` random starts; a network: a warm start.
        train, held_out : bool arrays or None, optional
            Entries fitted and scored; default the runner's.

        Returns
        -------
        dict
            ``status`` ('ok' or 'skipped_memory'), ``rse`` (on ``held_out``, else ``train``),
            ``network`` and ``seconds``.
        """
        return _evaluate(
            self.X,
            self.train if train is self._DEFAULT else train,
            self.held_out if held_out is self._DEFAULT else held_out,
            structure,
            seed,
            init,
            self.fit_params,
            self._config,
        )

    # -- budget ---------------------------------------------------------------------------------
    @property
    def n_evaluations(self):
        return len(self.history)

    @property
    def elapsed(self):
        return self._elapsed_before + time.perf_counter() - self._start

    def _remaining(self):
        if self.max_time is not None and self.elapsed >= self.max_time:
            return 0
        if self.max_evaluations is None:
            return None
        return self.max_evaluations - self.n_evaluations

    # -- pool -----------------------------------------------------------------------------------
    def __enter__(self):
        from joblib import Parallel

        # One pool for the whole search; NumPy data over 1 MB is memory-mapped once for it
        # (the folder lives until the pool closes).
        self._parallel = Parallel(n_jobs=self.n_jobs).__enter__()
        return self

    def __exit__(self, *exc_info):
        parallel, self._parallel = self._parallel, None
        return parallel.__exit__(*exc_info)

    # -- evaluation -----------------------------------------------------------------------------
    def _plan(self, candidate):
        """(cache key, seed key, starts, parent record) of a candidate (see :func:`cache_key`)."""
        structure = candidate["structure"]
        stage = candidate.get("stage", "fit")
        parent = candidate.get("warm_from")
        starts = tuple(candidate.get("starts", ("warm",) if parent is not None else ("random",)))
        if parent is None or not self.can_warm_start(parent):
            starts = tuple(s for s in starts if s != "warm") or ("random",)
        if "warm" not in starts:
            parent = None
        key = cache_key(
            structure,
            stage=stage,
            fit_params=candidate.get("fit_params"),
            starts=starts,
            parent=None if parent is None else parent["key"],
        )
        return key, f"{stage}|{canonical_key(structure)}", starts, parent

    def _starts(self, candidate, starts, parent, seed):
        """The ``init`` of :func:`_evaluate`: None for a random start, the parent's network
        for a warm one, its bonds brought to the candidate's: truncated to the largest
        singular values of a bond where the candidate's is smaller
        (:func:`~tnml.decompositions.prune_network`), padded where it is larger."""
        from ..decompositions.network import pad_network, prune_network

        inits = []
        for start in starts:
            if start == "random":
                inits.append(None)
                continue
            network = self.network(parent)
            structure = np.asarray(candidate["structure"])
            if network is None:  # replayed, and dropped before the checkpoint was written
                inits.append(None)
            elif not np.array_equal(network.adjacency, structure):
                bonds = np.maximum(network.adjacency, 1)
                wanted = np.maximum(structure, 1)
                smaller = {
                    (k, q): int(wanted[k, q])
                    for k, q in zip(*np.nonzero(np.triu(bonds > wanted, 1)))
                }
                if smaller:
                    network, _ = prune_network(network, ranks=smaller)
                if not np.array_equal(network.adjacency, structure):
                    network = pad_network(
                        network, structure, random_state=candidate.get("pad_seed", seed)
                    )
                inits.append(network)
            else:
                inits.append(network)
        return inits

    def evaluate(self, candidates):
        """Score a batch of candidates; return one record per candidate, in order.

        Parameters
        ----------
        candidates : list of dict
            ``structure`` (data-mode-ordered matrix), and optionally ``stage`` (str, e.g.
            ``"refit"``), ``fit_params`` (overrides of the runner's), ``keep`` (keep the
            fitted network for warm starts), ``warm_from`` (a record whose network, padded to
            the structure with seed ``pad_seed``, or truncated to it, is the start: ignored
            when that network is no longer kept, see :meth:`can_warm_start`) and ``starts``
            (the starts in turn, ``"random"`` and/or ``"warm"``; default the warm start when
            ``warm_from`` is given, else ``n_init`` random ones). Each of these is part of the
            cache key. ``prune`` (a cutoff) records as ``pruned`` the structure that
            :func:`~tnml.decompositions.prune_network` leaves of the fitted network at that
            cutoff: kept in the checkpoint, so a resumed search knows it without the network.

        Raises
        ------
        BudgetExhausted
            After recording what the budget allowed of this batch.
        """
        plans = [self._plan(c) for c in candidates]
        keys = [plan[0] for plan in plans]
        records = [None] * len(candidates)
        todo = []  # (position, key, candidate) to fit now
        planned = {}
        exhausted = False
        remaining = self._remaining()
        for position, (key, candidate) in enumerate(zip(keys, candidates)):
            if key in self._cache:
                records[position] = self._cache[key]
                self.n_cache_hits += 1
                continue
            if key in planned:  # an isomorphic twin earlier in this batch
                self.n_cache_hits += 1
                continue
            if remaining is not None and len(planned) >= remaining:
                exhausted = True
                break
            planned[key] = position
            todo.append((position, key, candidate))
        fresh = [(p, k, c) for p, k, c in todo if k not in self._restored]
        results = {}
        if fresh:
            from joblib import Parallel, delayed

            # Wall-clock time: the workers may be other processes (or a Dask cluster's).
            deadline = None
            if self.max_time is not None:
                deadline = time.time() + max(self.max_time - self.elapsed, 0.0)
            jobs = []
            for position, _key, candidate in fresh:
                _, seed_key, starts, parent = plans[position]
                seed = candidate_seed(self.seed, seed_key)
                jobs.append(
                    delayed(_evaluate)(
                        self.X,
                        self.train,
                        self.held_out,
                        np.asarray(candidate["structure"]),
                        seed,
                        self._starts(candidate, starts, parent, seed),
                        {**self.fit_params, **candidate.get("fit_params", {})},
                        self._config,
                        deadline,
                    )
                )
            # Outside a `with runner:` block, a pool per batch and no memmapping: a folder
            # per batch would pile up in /dev/shm until exit.
            parallel = self._parallel or Parallel(n_jobs=self.n_jobs, max_nbytes=None)
            for (_, key, _), result in zip(fresh, parallel(jobs)):
                results[key] = result
        batch = set()
        for position, key, candidate in todo:  # record in the searcher's order
            if key in self._restored:
                record, network = self._restored.pop(key)
                record = dict(record)
            else:
                result = results[key]
                record = self._record(key, candidate, result, plans[position])
                network = result["network"]
                if candidate.get("prune") is not None and network is not None:
                    record["pruned"] = _pruned_structure(network, candidate["prune"])
                # A fresh evaluation where the log holds a recorded one: a replay that
                # asked otherwise (a shorter budget, other settings) rewrites the log.
                self._rewrite |= self.n_evaluations < self._persisted
            record["evaluation"] = self.n_evaluations + 1
            if "elapsed" not in record:  # a restored record keeps its original time
                record["elapsed"] = round(self.elapsed, 3)
            self.history.append(record)
            self._cache[key] = record
            if record["status"] == "ok" and candidate.get("keep"):
                self.networks[record["evaluation"]] = network
                batch.add(record["evaluation"])
            if self.best is None or record["objective"] < self.best["objective"]:
                self.best, self.best_network = record, network
        self._forget(batch)
        for position, key in enumerate(keys):
            if records[position] is None and key in self._cache:
                records[position] = self._cache[key]
        self._write_checkpoint()
        if self.progress is not None:
            self.progress(self)
        if exhausted or self._remaining() == 0:
            raise BudgetExhausted
        return records

    def record_exact(self, structure, network):
        """Record ``network``, known to fit the data exactly (RSE 0), as one evaluation."""
        candidate = {"structure": structure}
        plan = self._plan(candidate)
        key = plan[0]
        if key in self._restored:
            record, _ = self._restored.pop(key)
            record = dict(record)
        else:
            result = {"status": "ok", "rse": 0.0, "network": network, "seconds": 0.0}
            record = self._record(key, candidate, result, plan)
            record["evaluation"] = 1
            record["elapsed"] = round(self.elapsed, 3)
        self.history.append(record)
        self._cache[key] = record
        self.networks[1] = network
        self.best, self.best_network = record, network
        self._write_checkpoint()

    def _forget(self, batch):
        """Drop the least recently used kept networks beyond ``KEPT_NETWORKS``, never the
        best one's nor the latest batch's."""
        protected = batch | {self.best["evaluation"]} if self.best is not None else batch
        excess = len(self.networks) - max(KEPT_NETWORKS, len(protected))
        for evaluation in [e for e in self.networks if e not in protected][: max(excess, 0)]:
            del self.networks[evaluation]

    def can_warm_start(self, record):
        """Whether the network of ``record`` is still kept (see the module doc)."""
        return record.get("evaluation") in self.networks

    def network(self, record):
        """The fitted network of a kept record (None when it was not kept); marks it used."""
        evaluation = record.get("evaluation")
        if evaluation not in self.networks:
            return None
        self.networks[evaluation] = self.networks.pop(evaluation)  # most recently used
        return self.networks[evaluation]

    def _record(self, key, candidate, result, plan):
        _, seed_key, starts, parent = plan
        structure = np.asarray(candidate["structure"])
        params = n_params(structure)
        error = result["rse"]
        objective = (
            float("inf")
            if result["status"] != "ok"
            else self.objective(params, self.n_entries, error)
        )
        record = {
            "method": self.method,
            "stage": candidate.get("stage", "fit"),
            "structure": structure.tolist(),
            "key": key,
            "n_params": params,
            "compression_ratio": params / self.n_entries,
            "rse": error,
            "objective": objective,
            "seconds": round(result["seconds"], 4),
            "seed": candidate_seed(self.seed, seed_key),
            "start": "+".join(starts),
            "status": result["status"],
        }
        if parent is not None:
            record["parent"] = parent["evaluation"]
        if "message" in result:
            record["message"] = result["message"]
        if result.get("truncated"):
            record["truncated"] = True
        return record

    # -- checkpoint -----------------------------------------------------------------------------
    def _write_checkpoint(self):
        """Append the records since the last write, and the networks they newly kept, to the
        checkpoint log; write it whole (compacted) when it is new, when the replay of a
        resumed search diverged from it, or when dropped networks take more than half of
        it (so it stays within about twice its compacted size, for an amortised O(batch)
        of I/O per batch)."""
        if self.checkpoint is None or (not self._rewrite and self.n_evaluations <= self._persisted):
            return  # nothing new (a resumed search replaying what the log holds)
        kept = {e: n for e, n in self.networks.items() if n is not None}  # see self.networks
        dead = sum(size for e, size in self._network_sizes.items() if e not in kept)
        if self._rewrite or dead > max(self._file_size - dead, _COMPACT_SLACK):
            self._compact(kept)
            return
        records = self.history[self._persisted :]
        fresh = {r["evaluation"] for r in records}
        networks = {e: _network_arrays(n) for e, n in kept.items() if e in fresh}
        self._network_sizes.update(
            append_batch(self.checkpoint, records, self.elapsed, list(kept), networks)
        )
        self._file_size = os.path.getsize(self.checkpoint)
        self._persisted = len(self.history)

    def _compact(self, kept, history=None, elapsed=None):
        """Write the checkpoint log whole: every record and the kept networks."""
        networks = {e: _network_arrays(n) for e, n in kept.items()}
        history = self.history if history is None else history
        self._network_sizes = write_log(
            self.checkpoint,
            self.fingerprint,
            history,
            self.elapsed if elapsed is None else elapsed,
            list(kept),
            networks,
        )
        self._file_size = os.path.getsize(self.checkpoint)
        self._persisted = len(history)
        self._rewrite = False

    def _load_checkpoint(self):
        path = self.checkpoint
        try:
            content = read_content(path)
            fingerprint, history = content["fingerprint"], content["history"]
            cores, elapsed = content["cores"], content["elapsed"]
            if not isinstance(elapsed, (int, float)) or not 0 <= elapsed < float("inf"):
                raise ValueError(f"'elapsed' must be a number of seconds, got {elapsed!r:.40}")
        except Exception as error:  # noqa: BLE001 - any failure means an unusable file
            raise ValueError(
                f"checkpoint {path!r} is corrupted or not a structure-search "
                f"checkpoint ({type(error).__name__}: {error}); it was left "
                f"untouched: remove it or give another checkpoint path"
            ) from None
        if fingerprint != self.fingerprint:
            raise ValueError(
                f"checkpoint {path!r} was written by a different search (other data, "
                f"shape or settings): {_difference(fingerprint, self.fingerprint)}"
            )
        try:
            restored = self._validated_history(history, cores)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise ValueError(
                f"checkpoint {path!r} has an invalid history ({error}); it was left "
                f"untouched: remove it or give another checkpoint path"
            ) from None
        self._restored = restored
        self._elapsed_before = float(elapsed)
        # Compacted on resume: every record, the kept networks only, no damaged tail. The
        # replay then appends only what it evaluates beyond the records.
        kept = {r["evaluation"]: n for r, n in restored.values() if n is not None}
        self._compact(kept, history, float(elapsed))

    def _validated_history(self, history, cores):
        """The records of a checkpoint's history, each checked against what this search
        would have recorded for it: the structure fits the data, the key, parameter count and
        seed follow from it, and the objective is recomputed from the RSE (never trusted)."""
        if not isinstance(history, list):
            raise ValueError("the history is not a list")
        restored = {}
        shape = tuple(self.X.shape)
        for index, record in enumerate(history, start=1):
            if not isinstance(record, dict):
                raise ValueError(f"record {index} is not a mapping")
            missing = [k for k in _RECORD_KEYS if k not in record]
            if missing:
                raise ValueError(f"record {index} lacks {missing}")
            if record["evaluation"] != index:
                raise ValueError(f"record {index} is numbered {record['evaluation']!r:.20}")
            structure = np.asarray(record["structure"])
            if (
                structure.ndim != 2
                or structure.shape[0] != structure.shape[1]
                or structure.shape[0] < len(shape)
                or structure.dtype.kind not in "iu"
                or np.any(structure < 0)
                or not np.array_equal(structure, structure.T)
                or tuple(np.diag(structure)[: len(shape)]) != shape
            ):
                raise ValueError(f"record {index}: structure does not fit data of shape {shape}")
            stage = record["stage"]
            if not isinstance(stage, str):
                raise ValueError(f"record {index}: stage must be a string")
            # The cache key starts with the stage and the canonical form, the seed's key
            # (see cache_key); what follows (settings, starts) is the searcher's to match.
            seed_key, key = f"{stage}|{canonical_key(structure)}", record["key"]
            if (
                not isinstance(key, str)
                or not (key == seed_key or key.startswith(seed_key + "|"))
                or record["seed"] != candidate_seed(self.seed, seed_key)
            ):
                raise ValueError(f"record {index}: key or seed does not match its structure")
            params = n_params(structure)
            if record["n_params"] != params:
                raise ValueError(f"record {index}: n_params is not {params}")
            rse, status = record["rse"], record["status"]
            if status == "ok":
                if not isinstance(rse, (int, float)) or not rse >= 0:
                    raise ValueError(f"record {index}: rse must be a number >= 0")
                objective = self.objective(params, self.n_entries, rse)
            elif status == "skipped_memory":
                objective = float("inf")
            else:
                raise ValueError(f"record {index}: unknown status {status!r:.40}")
            recorded = record["objective"]
            if not isinstance(recorded, (int, float)) or not (
                recorded == objective or math.isclose(recorded, objective, rel_tol=1e-9)
            ):
                raise ValueError(
                    f"record {index}: objective {recorded!r:.40} is not the {objective!r} "
                    f"its parameters and RSE give"
                )
            if "pruned" in record:
                pruned = np.asarray(record["pruned"])
                if (
                    pruned.shape != structure.shape
                    or pruned.dtype.kind not in "iu"
                    or not np.array_equal(np.diag(pruned), np.diag(structure))
                    or not np.array_equal(pruned, pruned.T)
                    or np.any(pruned < 0)
                    or np.any(np.maximum(pruned, 1) > np.maximum(structure, 1))
                ):
                    raise ValueError(f"record {index}: pruned is not a pruned structure")
            record = {**record, "compression_ratio": params / self.n_entries}
            network = None
            if index in cores:
                parts = cores.pop(index)
                if sorted(parts) != list(range(len(parts))):
                    raise ValueError(f"record {index}: its network's cores are not numbered")
                arrays = [parts[i] for i in range(len(parts))]
                if any(a.dtype.kind != "f" for a in arrays):
                    raise ValueError(f"record {index}: its network's cores are not real")
                network = _network_from_arrays(structure, arrays)
            truncated = record.get("truncated", False)
            if truncated is not False and truncated is not True:
                raise ValueError(f"record {index}: truncated must be true or false")
            if truncated:  # cut short by the time budget: not the answer, fitted again
                continue
            restored[key] = (record, network)
        if cores:
            raise ValueError(f"networks of evaluations {sorted(cores)} have no record")
        return restored


_RECORD_KEYS = (
    "evaluation",
    "method",
    "stage",
    "structure",
    "key",
    "n_params",
    "rse",
    "objective",
    "seed",
    "status",
)


def _difference(old, new):
    """What differs between two fingerprints, in words (never the whole data hash)."""
    if not isinstance(old, dict):
        return "the checkpoint has no valid fingerprint"
    if old.get("data") != new.get("data"):
        return "the data differ (content hash of the values and of the NaN pattern)"
    changed = sorted(
        k for k in set(old) | set(new) if k not in ("data", "params") and old.get(k) != new.get(k)
    )
    params = old.get("params") if isinstance(old.get("params"), dict) else {}
    changed += sorted(
        k for k in set(params) | set(new["params"]) if params.get(k) != new["params"].get(k)
    )
    return f"{', '.join(changed)} differ" if changed else "the settings differ"


def check_checkpoint_path(checkpoint):
    """``checkpoint`` as a str path: a str or path-like naming a file."""
    if isinstance(checkpoint, bytes) or not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a str, a path-like or None, got {type(checkpoint).__name__}"
        )
    path = os.fspath(checkpoint)
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"checkpoint must name a file, got {checkpoint!r}")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} is a folder; give a file name")
    return path


# What a non-blocking lock attempt reports when another holder has it (msvcrt: EDEADLOCK).
_HELD = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, getattr(errno, "EDEADLOCK", errno.EDEADLK))


class _CheckpointLock:
    """An exclusive OS lock on ``<checkpoint>.lock``, held while a search uses the checkpoint.

    The operating system drops the lock when its process ends, however it ends, so a killed
    search never leaves a stale lock; the (empty) lock file itself may stay.
    """

    def __init__(self, checkpoint):
        self.path = checkpoint + ".lock"
        self.handle = open(self.path, "a+b")  # noqa: SIM115 - held until release()
        try:
            _lock_file(self.handle)
        except OSError as error:
            self.handle.close()
            if error.errno not in _HELD:
                raise OSError(
                    error.errno, f"cannot lock checkpoint {checkpoint!r} ({error.strerror})"
                ) from None
            raise ValueError(
                f"checkpoint {checkpoint!r} is in use by another search (lock {self.path!r} "
                f"is held); wait for it to finish or give another checkpoint"
            ) from None

    def release(self):
        _unlock_file(self.handle)
        self.handle.close()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(handle):
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock_file(handle):
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(handle):
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(handle):
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
