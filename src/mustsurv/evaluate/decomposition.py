"""Decomposition analysis of a trained MUST model (paper §4.4, Fig. 5 and 10).

For complete test patients: cos(û_P, û_G) (should concentrate near 0), cos(ĉ_{P<-G}, ĉ_{G<-P}) (near 1),
cos(g_P, g_G), and the cosine map between the global features g and the reconstructions û + ĉ
(g_P ≈ û_P + ĉ_{G<-P}, g_G ≈ û_G + ĉ_{P<-G}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mustsurv.cohort.store import announce  # noqa: E402
from mustsurv.io import atomic_path  # noqa: E402
from mustsurv.models.batch import PatientItem, collate, item_buckets  # noqa: E402

PAIRS = {
    "cos_u_p_u_g": ("u_p_hat", "u_g_hat"),
    "cos_c_pg_c_gp": ("c_pg_hat", "c_gp_hat"),
    "cos_g_p_g_g": ("g_p", "g_g"),
}
MAP_ROWS = ("g_p", "g_g")
MAP_COLS = ("u_p_hat + c_gp_hat", "u_g_hat + c_pg_hat", "u_p_hat", "u_g_hat", "c_pg_hat", "c_gp_hat")


@torch.no_grad()
def decomposition_cosines(model, dataset: Sequence[PatientItem], batch_size: int = 16) -> dict[str, np.ndarray]:
    """Compute the decomposition cosines of the complete patients, model in eval mode.

    Args:
        model: the trained MUST.
        dataset: the patients; those lacking a modality are skipped.
        batch_size: the most patients per forward pass (:func:`~mustsurv.models.batch.item_buckets`).

    Returns:
        The cosines of :data:`PAIRS`, each (N,), and ``cosine_map`` (N, 2, 6) (rows :data:`MAP_ROWS`, columns
        :data:`MAP_COLS`).
    """
    model.eval()
    device = next(model.parameters()).device
    items = [it for it in dataset if it["pathology"] is not None and it["genomics"] is not None]
    out: dict[str, list[np.ndarray]] = {k: [] for k in [*PAIRS, "cosine_map"]}
    announce(items)
    for bucket in item_buckets(items, batch_size):
        d = model.decompose(collate(bucket).to(device))
        vec = {name: getattr(d, name) for name in ("g_p", "g_g", "u_p_hat", "u_g_hat", "c_pg_hat", "c_gp_hat")}
        vec["u_p_hat + c_gp_hat"] = d.u_p_hat + d.c_gp_hat
        vec["u_g_hat + c_pg_hat"] = d.u_g_hat + d.c_pg_hat
        for key, (a, b) in PAIRS.items():
            out[key].append(F.cosine_similarity(vec[a], vec[b], dim=1).cpu().numpy())
        grid = torch.stack([torch.stack([F.cosine_similarity(vec[r], vec[c], dim=1) for c in MAP_COLS], 1)
                            for r in MAP_ROWS], 1)
        out["cosine_map"].append(grid.cpu().numpy())
    return {k: (np.concatenate(v) if v else np.zeros((0,) if k != "cosine_map" else (0, 2, 6)))
            for k, v in out.items()}


def ecdf_figure(cos: dict[str, np.ndarray], title: str, path: str | Path) -> None:
    """Plot the ECDF of cos(û_P, û_G), cos(ĉ_{P<-G}, ĉ_{G<-P}) and cos(g_P, g_G) with their means in the legend.

    Args:
        cos: the cosines (:func:`decomposition_cosines`).
        title: the figure's title.
        path: the PNG to write.
    """
    labels = {"cos_u_p_u_g": ("cos(û_P, û_G)", "#d62728"), "cos_c_pg_c_gp": ("cos(ĉ_P←G, ĉ_G←P)", "#2ca02c"),
              "cos_g_p_g_g": ("cos(g_P, g_G)", "#7f7f7f")}
    fig, ax = plt.subplots(figsize=(5, 4))
    for key, (label, colour) in labels.items():
        x = np.sort(cos[key])
        if len(x):
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", color=colour,
                    label=f"{label}, mean {x.mean():.2f}")
    ax.set_xlim(-1, 1)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("ECDF")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def cosine_map_figure(cosine_map: np.ndarray, title: str, path: str | Path) -> None:
    """Plot a heatmap of the mean cosine between g_P, g_G and the decomposed components (2 x 6).

    Args:
        cosine_map: (N, 2, 6) per-patient cosines.
        title: the figure's title.
        path: the PNG to write.
    """
    mean = cosine_map.mean(axis=0) if len(cosine_map) else np.full((2, 6), np.nan)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    im = ax.imshow(mean, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(MAP_COLS)), [c.replace("_hat", "̂") for c in MAP_COLS], rotation=30, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(MAP_ROWS)), MAP_ROWS)
    for (i, j), v in np.ndenumerate(mean):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
