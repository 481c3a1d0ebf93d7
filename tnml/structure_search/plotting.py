"""Figures of a structure search: the network as a graph, and the search trace (matplotlib)."""

import numpy as np

__all__ = ["plot_network", "plot_trace"]


def plot_network(structure, ax=None, title=None):
    """Draw a structure: cores on a circle labelled with their data mode and size, bonds
    labelled with their rank (rank-1 bonds are no bonds and are not drawn).

    Parameters
    ----------
    structure : (N, N) int matrix in data-mode order (e.g. ``StructureSearch.best_structure_``)
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    structure = np.asarray(structure)
    n = len(structure)
    angles = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    top = max(int(structure[~np.eye(n, dtype=bool)].max(initial=1)), 2)
    for i in range(n):
        for j in range(i + 1, n):
            rank = int(structure[i, j])
            if rank <= 1:
                continue
            (x0, y0), (x1, y1) = xy[i], xy[j]
            ax.plot(
                [x0, x1],
                [y0, y1],
                color="tab:blue",
                zorder=1,
                linewidth=1 + 3 * np.log(rank) / np.log(top),
            )
            # Labels sit off the midpoint so that crossing bonds keep theirs apart.
            t = 0.35 if (i + j) % 2 else 0.65
            ax.text(
                x0 + t * (x1 - x0),
                y0 + t * (y1 - y0),
                str(rank),
                ha="center",
                va="center",
                fontsize=10,
                zorder=3,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "tab:blue"},
            )
    for k in range(n):
        size = int(structure[k, k])
        label = f"mode {k}\n({size})" if size > 0 else "internal"
        ax.scatter(
            *xy[k],
            s=1500,
            color="tab:orange" if size > 0 else "lightgray",
            edgecolors="black",
            zorder=2,
        )
        ax.text(*xy[k], label, ha="center", va="center", fontsize=9, zorder=4)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_trace(histories, ax=None):
    """Best objective so far against evaluations, one line per search.

    Parameters
    ----------
    histories : dict
        Label -> ``history_`` of a :class:`~tnml.StructureSearch`.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    for label, history in histories.items():
        best = np.minimum.accumulate([h["objective"] for h in history])
        ax.step(np.arange(1, len(best) + 1), best, where="post", label=label)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best objective so far")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("structure search")
    return ax
