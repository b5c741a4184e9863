"""Every path of the result tree, written once.

Each function returns a path relative to the working directory. Pass a wildcard such as ``"{cohort}"``
for an argument to get a Snakemake pattern (``must_checkpoint("{cohort}", "{run}", "{fold}", 1)``). The
rules, the scripts, the benchmarks and the tests take their paths from here.

Tree::

    resources/demo/{cohort}/                    generated demo inputs (tables, slides/{slide}.svs)
    results/cohorts/{cohort}/
        omics/tokens.h5                         family tokens per patient
        cohort.tsv                              patients, survival, modalities
        splits/fold{k}.json                     train/test patients and time-bin edges of fold k
        slides/tissue/{slide}.geojson           tissue polygons (+ tissue/qc/{slide}.png)
        slides/coords/{slide}.h5                patch coordinates (main magnification, first slides.target_mpp)
        slides/features/{encoder}/{slide}.h5    patch features (TRIDENT layout)
        slides/summary.tsv                      one row per slide (status, patches, features file)
        slides/provenance.json                  the features' common encoder, dimension, MPP, patch size, weights hash
        slides/coords/mpp{mpp}/{slide}.h5       an extra magnification (DMML's 10x: mpp1), same tissue mask
        slides/features/{encoder}/mpp{mpp}/{slide}.h5
        slides/summary_mpp{mpp}.tsv
        models/{run}/fold{k}/stage{1,2,3}.pt    MUST runs (``must`` and the ablation variants ``must_*``)
        models/{method}/fold{k}/model.pt        baselines
        models/dmml/fold{k}/{stage}.pt          DMML: teacher, student (pre-trained), distilled
        predictions/{method}/fold{k}.tsv        test patients x scenarios: risk, survival at the bin edges, training
                                                median risk (+ MUST: _no_ldm.tsv, _decomposition.npz)
        cindex_folds.tsv, table1.csv, table2.csv, metrics_folds.tsv, logrank.tsv, decomposition.tsv
        bundles/{method}.mustsurv               final model(s), scaler, names, edges, cut-offs (mustsurv.deploy)
    results/external/{train}_to_{test}/         external validation of the train cohort's bundles on another cohort:
        predictions/{method}.tsv                every test patient x scenario (predictions contract, training cut-off)
        metrics.tsv, summary.csv                C-index, IBS, time-dependent AUC (long; one row per method x scenario)
        km/{method}_{scenario}.png              Kaplan–Meier split at the training cohort's median risk
    results/tables/                             study tables (table1.csv, table2.csv, cindex_folds.tsv,
                                                metrics_folds.tsv, metrics_summary.csv, ablation_*.csv, external.csv)
    results/figures/                            km/{cohort}/{method}_{scenario}.png, decomposition/, ablation_rank.png,
                                                heatmaps/{cohort}/{method}/ (target ``heatmaps``: index.tsv and per slide
                                                {slide}_heatmap.png, {slide}_gallery.png, {slide}_patches.tsv)
"""

from __future__ import annotations

from typing import Iterable

Part = str | int

DEMO_TABLES: dict[str, str] = {
    "clinical": "clinical.tsv",
    "rna": "rna.tsv",
    "cnv": "cnv.tsv",
    "maf": "mutations.maf",
    "gene_families": "gene_families.csv",
    "slide_sheet": "slides.tsv",
    "truth": "truth.tsv",
}
"""Role -> file name of the demo generator's tables (in :func:`demo_dir`)."""

MUST_STAGES: tuple[int, ...] = (1, 2, 3)
DMML_STAGES: tuple[str, ...] = ("teacher", "student", "distilled")
"""DMML's checkpoints per fold: the teacher, the student pre-trained on slides, the student after distillation."""
COHORT_REPORTS: tuple[str, ...] = ("cindex_folds.tsv", "table1.csv", "table2.csv", "metrics_folds.tsv")
STUDY_TABLES: tuple[str, ...] = ("table1.csv", "table2.csv", "cindex_folds.tsv", "metrics_folds.tsv",
                                 "metrics_summary.csv", "provenance.json")
METRICS_FOLDS = "metrics_folds.tsv"
"""Long survival metrics per fold (method, scenario, cohort, fold, metric, value, time, note): per cohort
(:func:`cohort_report`) and study-wide (:func:`study_table`)."""
METRICS_SUMMARY = "metrics_summary.csv"
"""Study-wide mean ± SD over folds of every metric per method × scenario (:func:`study_table`)."""
DECOMPOSITION_FIGURES: tuple[str, ...] = ("ecdf", "cosine_map")
EXTERNAL_TABLE = "external.csv"
"""Every external pair's metrics, one row per pair, method, scenario and metric (:func:`study_table`)."""


# --- demo inputs ---------------------------------------------------------------------------------

def demo_dir(cohort: Part) -> str:
    """Folder of a demo cohort's generated inputs.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        The folder.
    """
    return f"resources/demo/{cohort}"


def demo_slide(cohort: Part, slide: Part) -> str:
    """A generated demo slide (Aperio SVS).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        slide: the slide's id (or a wildcard).

    Returns:
        The path.
    """
    return f"{demo_dir(cohort)}/slides/{slide}.svs"


def demo_tables(cohort: Part) -> dict[str, str]:
    """The demo generator's tables of a cohort by role (see :data:`DEMO_TABLES`).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        ``{role: path}``.
    """
    return {role: f"{demo_dir(cohort)}/{name}" for role, name in DEMO_TABLES.items()}


# --- genomics, cohort assembly and folds ---------------------------------------------------------

def cohort_dir(cohort: Part) -> str:
    """Root of a cohort's results.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        The folder.
    """
    return f"results/cohorts/{cohort}"


def tokens(cohort: Part) -> str:
    """Family tokens of every patient with genomics (``omics_tokens``).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/omics/tokens.h5"


def cohort_table(cohort: Part) -> str:
    """The patient table (``cohort_table``).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/cohort.tsv"


def fold(cohort: Part, k: Part) -> str:
    """Fold ``k``'s file: train/test patients and time-bin edges.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        k: the fold index (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/splits/fold{k}.json"


def folds(cohort: Part, ks: Iterable[int]) -> list[str]:
    """The fold files of ``ks``, in order.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        ks: the fold indices.

    Returns:
        The paths.
    """
    return [fold(cohort, k) for k in ks]


def fold_inputs(cohort: Part, k: Part) -> dict[str, str]:
    """What a fold's datasets are read from (``mustsurv.train.data.fold_datasets``'s arguments).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        k: the fold index (or a wildcard).

    Returns:
        The cohort table, the fold file, the tokens and the slide summary of a cohort with both
        modalities, by argument name.
    """
    return {"cohort_tsv": cohort_table(cohort), "split_json": fold(cohort, k), "tokens_h5": tokens(cohort),
            "summary_tsv": slide_summary(cohort)}


# --- slides --------------------------------------------------------------------------------------

def slides_dir(cohort: Part) -> str:
    """Root of a cohort's slide outputs.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).

    Returns:
        The folder.
    """
    return f"{cohort_dir(cohort)}/slides"


def slide_outputs(cohort: Part, slide: Part) -> dict[str, str]:
    """Per-slide outputs of segmentation + tiling.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        slide: the slide's id (or a wildcard).

    Returns:
        ``geojson``, ``qc`` (PNG) and ``coords`` (h5) paths by role.
    """
    d = slides_dir(cohort)
    return {"geojson": f"{d}/tissue/{slide}.geojson", "qc": f"{d}/tissue/qc/{slide}.png",
            "coords": f"{d}/coords/{slide}.h5"}


def mpp_folder(mpp: Part | float) -> str:
    """The folder name of an extra magnification.

    Args:
        mpp: its µm/px (``1.0`` -> ``mpp1``), or a wildcard string kept as is (``"{mpp}"`` -> ``mpp{mpp}``).

    Returns:
        ``mpp<value>``.
    """
    return f"mpp{mpp}" if isinstance(mpp, str) else f"mpp{float(mpp):g}"


def magnification_coords(cohort: Part, slide: Part, mpp: Part | float) -> str:
    """A slide's patch coordinates at an extra magnification (tiled in the main magnification's tissue mask).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        slide: the slide's id (or a wildcard).
        mpp: the magnification's µm/px (or a wildcard).

    Returns:
        The path.
    """
    return f"{slides_dir(cohort)}/coords/{mpp_folder(mpp)}/{slide}.h5"


def features(cohort: Part, slide: Part, encoder: Part, mpp: Part | float | None = None) -> str:
    """A slide's patch features written by this workflow's encoder.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        slide: the slide's id (or a wildcard).
        encoder: the encoder's name (or a wildcard); ``timm:<arch>`` becomes the folder ``timm-<arch>``.
        mpp: None for the main magnification, else an extra one's µm/px (its own subfolder).

    Returns:
        The path.
    """
    sub = "" if mpp is None else f"{mpp_folder(mpp)}/"
    return f"{slides_dir(cohort)}/features/{str(encoder).replace(':', '-')}/{sub}{slide}.h5"


def slide_summary(cohort: Part, mpp: Part | float | None = None) -> str:
    """One row per slide of the cohort (``slides_summary``).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        mpp: None for the main magnification, else an extra one's µm/px (or a wildcard).

    Returns:
        The path.
    """
    return f"{slides_dir(cohort)}/summary{'' if mpp is None else '_' + mpp_folder(mpp)}.tsv"


def slide_provenance(cohort: Part) -> str:
    """The common provenance of the cohort's feature files (``slides_summary``; :mod:`mustsurv.slides.provenance`).

    Args:
        cohort: the cohort's name (or a wildcard).

    Returns:
        The path.
    """
    return f"{slides_dir(cohort)}/provenance.json"


# --- models and predictions ----------------------------------------------------------------------

def must_checkpoint(cohort: Part, run: Part, k: Part, stage: Part) -> str:
    """The whole MUST model of a run after a stage.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        run: ``must`` or a variant ``must_*`` (or a wildcard).
        k: the fold index (or a wildcard).
        stage: 1, 2 or 3 (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/models/{run}/fold{k}/stage{stage}.pt"


def dmml_checkpoint(cohort: Part, k: Part, stage: Part) -> str:
    """A DMML checkpoint of fold ``k``.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        k: the fold index (or a wildcard).
        stage: one of :data:`DMML_STAGES` (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/models/dmml/fold{k}/{stage}.pt"


def baseline_model(cohort: Part, method: Part, k: Part) -> str:
    """A trained baseline of fold ``k``.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        method: the baseline's name (or a wildcard).
        k: the fold index (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/models/{method}/fold{k}/model.pt"


def predictions(cohort: Part, method: Part, k: Part, ldm: bool = True) -> str:
    """Test predictions of fold ``k`` (:mod:`mustsurv.evaluate.predictions`: ``patient_id, scenario, risk, time,
    event, train_median_risk, survival_1 … survival_K``).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        method: the method, MUST run or Table 2 reference (or a wildcard).
        k: the fold index (or a wildcard).
        ldm: False: a MUST run's missing scenarios with a zero tensor in place of the missing û
            ("without LDM").

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/predictions/{method}/fold{k}{'' if ldm else '_no_ldm'}.tsv"


def decomposition_cosines(cohort: Part, run: Part, k: Part) -> str:
    """A MUST run's decomposition cosines of fold ``k``'s test patients (npz).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        run: the MUST run (or a wildcard).
        k: the fold index (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/predictions/{run}/fold{k}_decomposition.npz"


# --- reports -------------------------------------------------------------------------------------

def cohort_report(cohort: Part, name: str) -> str:
    """A per-cohort report file.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        name: ``cindex_folds.tsv``, ``table1.csv``, ``table2.csv``, ``metrics_folds.tsv``, ``logrank.tsv`` or
            ``decomposition.tsv``.

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/{name}"


def study_table(name: str) -> str:
    """A study-wide table over every cohort.

    Args:
        name: ``table1.csv``, ``table2.csv``, ``cindex_folds.tsv``, ``metrics_folds.tsv``,
            ``metrics_summary.csv`` or ``provenance.json``.

    Returns:
        The path.
    """
    return f"results/tables/{name}"


def km_figure(cohort: Part, method: Part, scenario: Part) -> str:
    """Kaplan–Meier figure of a method in a scenario, pooled over the test folds.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        method: the method (or a wildcard).
        scenario: the scenario (or a wildcard).

    Returns:
        The path.
    """
    return f"results/figures/km/{cohort}/{method}_{scenario}.png"


def decomposition_figure(cohort: Part, kind: Part) -> str:
    """MUST's decomposition figure of a cohort.

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        kind: ``ecdf`` or ``cosine_map`` (or a wildcard).

    Returns:
        The path.
    """
    return f"results/figures/decomposition/{cohort}_{kind}.png"


def heatmaps_dir(cohort: Part, method: Part) -> str:
    """Folder of a method's attention heatmaps of a cohort's test patients (``mustsurv.evaluate.heatmaps``).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        method: a heatmap method (``mustsurv.study.methods.HEATMAP_METHODS``) (or a wildcard).

    Returns:
        The path.
    """
    return f"results/figures/heatmaps/{cohort}/{method}"


def ablation_table(name: Part) -> str:
    """An analysis-experiment table.

    Args:
        name: ``warmup``, ``ldm_conditioning``, ``rank``, ``training_missingness`` or ``dmml_distillation``
            (or a wildcard).

    Returns:
        The path.
    """
    return f"results/tables/ablation_{name}.csv"


def ablation_figure(name: Part) -> str:
    """The figure drawn from an analysis-experiment table (``rank``: Fig. 4).

    Args:
        name: the table's name (or a wildcard).

    Returns:
        The path.
    """
    return f"results/figures/ablation_{name}.png"


# --- deployment and external validation ----------------------------------------------------------

def bundle(cohort: Part, method: Part) -> str:
    """A method's portable bundle trained on a cohort (:mod:`mustsurv.deploy.bundle`).

    Args:
        cohort: the cohort's name (or a wildcard such as ``"{cohort}"``).
        method: the method (or a wildcard).

    Returns:
        The path.
    """
    return f"{cohort_dir(cohort)}/bundles/{method}.mustsurv"


def external_dir(train: Part, test: Part) -> str:
    """Folder of an external validation pair.

    Args:
        train: the training cohort (or a wildcard).
        test: the test cohort (or a wildcard).

    Returns:
        The folder.
    """
    return f"results/external/{train}_to_{test}"


def external_predictions(train: Part, test: Part, method: Part) -> str:
    """A bundle's predictions of every test-cohort patient in every scenario (predictions contract, the
    ``train_median_risk`` column holding the bundle's training median).

    Args:
        train: the training cohort (or a wildcard).
        test: the test cohort (or a wildcard).
        method: the method (or a wildcard).

    Returns:
        The path.
    """
    return f"{external_dir(train, test)}/predictions/{method}.tsv"


def external_metrics(train: Part, test: Part) -> str:
    """An external pair's metrics (long: method, scenario, metric, value, time, note).

    Args:
        train: the training cohort (or a wildcard).
        test: the test cohort (or a wildcard).

    Returns:
        The path.
    """
    return f"{external_dir(train, test)}/metrics.tsv"


def external_summary(train: Part, test: Part) -> str:
    """An external pair's summary rows (``results/tables/external.csv`` concatenates them).

    Args:
        train: the training cohort (or a wildcard).
        test: the test cohort (or a wildcard).

    Returns:
        The path.
    """
    return f"{external_dir(train, test)}/summary.csv"


def external_km(train: Part, test: Part, method: Part, scenario: Part) -> str:
    """Kaplan–Meier figure of an external pair, split at the bundle's training median risk.

    Args:
        train: the training cohort (or a wildcard).
        test: the test cohort (or a wildcard).
        method: the method (or a wildcard).
        scenario: the scenario (or a wildcard).

    Returns:
        The path.
    """
    return f"{external_dir(train, test)}/km/{method}_{scenario}.png"
