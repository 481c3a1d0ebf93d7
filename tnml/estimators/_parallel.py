"""tnml's configuration travels into joblib workers with scikit-learn's own.

:func:`tnml.config_context` is thread-local, like :func:`sklearn.config_context`. scikit-learn
makes its setting visible in joblib workers (threads or loky processes) by capturing
``get_config()`` when :class:`sklearn.utils.parallel.Parallel` is called and entering
``config_context(**config)`` around each task (``sklearn.utils.parallel._FuncWrapper``).
Every scikit-learn meta-estimator (``GridSearchCV``, ``cross_val_score``, ...) runs its work
that way. tnml joins that hand-over: the two names that ``sklearn.utils.parallel`` uses are
wrapped so that the captured configuration also carries tnml's, under one extra key, and the
worker enters tnml's context next to scikit-learn's. The carried value is a
:class:`_CarriedConfig`; unpickling it in a loky worker imports this module, which installs
the wrapper there before the task runs, so a worker never sees a key it does not know.
"""

from contextlib import ExitStack, contextmanager

import sklearn.utils.parallel as _sk_parallel

from .._config import config_context, get_config

__all__ = []

_KEY = "_tnml_config"


class _CarriedConfig(dict):
    """tnml's configuration inside scikit-learn's captured one (a dict tagged by its type)."""

    def __reduce__(self):
        return (_CarriedConfig, (dict(self),))


def _wrap_get_config(sklearn_get_config):
    def get_config_with_tnml():
        return {**sklearn_get_config(), _KEY: _CarriedConfig(get_config())}

    get_config_with_tnml._tnml_wrapped = sklearn_get_config
    return get_config_with_tnml


def _wrap_config_context(sklearn_config_context):
    @contextmanager
    def config_context_with_tnml(**params):
        carried = params.pop(_KEY, None)
        with ExitStack() as stack:
            stack.enter_context(sklearn_config_context(**params))
            if carried is not None:
                stack.enter_context(config_context(**carried))
            yield

    config_context_with_tnml._tnml_wrapped = sklearn_config_context
    return config_context_with_tnml


def install():
    """Wrap ``sklearn.utils.parallel``'s ``get_config`` and ``config_context`` (once)."""
    if not hasattr(_sk_parallel.get_config, "_tnml_wrapped"):
        _sk_parallel.get_config = _wrap_get_config(_sk_parallel.get_config)
    if not hasattr(_sk_parallel.config_context, "_tnml_wrapped"):
        _sk_parallel.config_context = _wrap_config_context(_sk_parallel.config_context)


install()
