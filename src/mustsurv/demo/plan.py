"""The demo study's plan: patients, latent factors, survival, slides — everything but the pixels.

The plan is a pure function of the cohort's demo settings, cheap to compute, so the workflow can list
every demo slide at parse time (no checkpoint needed) while the pixels are rendered by a per-slide rule.

Planted signal: three independent latent factors per patient, ``shared`` (visible in tissue *and* in
family expression), ``pathology`` (tissue appearance) and ``genomics`` (omics). The true log-hazard is
``eta = b_s*shared + b_p*pathology + b_g*genomics``; survival times are drawn from a Weibull
proportional-hazards model with that linear predictor, then independently censored.

``cross_modal`` = rho leaves a noisy trace of each modality-specific factor in the other modality, as
in real tumours, where expression programmes shape morphology and morphology shows in bulk expression:
the tissue shows ``genomics_in_tissue = rho*genomics + sqrt(1 - rho^2)*xi`` and the omics carry
``pathology_in_omics = rho*pathology + sqrt(1 - rho^2)*xi'`` (xi, xi' independent standard normals).
A modality then predicts the other one's specific factor with E[genomics | trace] = rho*trace; with
rho = 0 the specific factors are invisible to the other modality, and no imputation of a missing
modality can beat its training mean.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

WEIBULL_SHAPE = 1.5
WEIBULL_SCALE_MONTHS = 40.0
ADMIN_CENSOR_MONTHS = 150.0


@dataclass(frozen=True)
class DemoSettings:
    """Settings of one demo cohort (the config's ``cohorts.<name>.demo`` block).

    Attributes:
        seed: seed of the plan (and of the tables and slides drawn from it).
        patients: number of patients.
        two_slide_fraction: fraction of patients with pathology that get two slides.
        fraction_40x: fraction of slides scanned at 40x (the rest at 20x).
        pen_fraction: fraction of slides with a pen mark.
        missing_pathology_fraction: fraction of patients without slides.
        missing_genomics_fraction: fraction of patients without omics (never one already without slides).
        effect_shared: log-hazard coefficient b_s of the ``shared`` factor.
        effect_pathology: log-hazard coefficient b_p of the ``pathology`` factor.
        effect_genomics: log-hazard coefficient b_g of the ``genomics`` factor.
        censoring_scale: censoring times are uniform on [0, ``censoring_scale`` x the Weibull scale].
        cross_modal: rho, the strength of each specific factor's trace in the other modality.
    """

    seed: int
    patients: int = 80
    two_slide_fraction: float = 0.2
    fraction_40x: float = 0.5
    pen_fraction: float = 0.25
    missing_pathology_fraction: float = 0.0
    missing_genomics_fraction: float = 0.0
    effect_shared: float = 0.9
    effect_pathology: float = 0.7
    effect_genomics: float = 0.7
    censoring_scale: float = 2.2
    cross_modal: float = 0.0

    @classmethod
    def from_config(cls, block: dict) -> "DemoSettings":
        """Build the settings from the config's demo block.

        Args:
            block: the schema-validated block (:func:`mustsurv.config.load_config` or Snakemake's ``validate``
                filled its defaults; the dataclass's field defaults are for direct construction and agree with the
                schema, checked by ``tests/test_config_defaults.py``).

        Returns:
            The settings.
        """
        effects = block["effects"]
        return cls(
            seed=int(block["seed"]),
            patients=int(block["patients"]),
            two_slide_fraction=float(block["two_slide_fraction"]),
            fraction_40x=float(block["fraction_40x"]),
            pen_fraction=float(block["pen_fraction"]),
            missing_pathology_fraction=float(block["missing_pathology_fraction"]),
            missing_genomics_fraction=float(block["missing_genomics_fraction"]),
            effect_shared=float(effects["shared"]),
            effect_pathology=float(effects["pathology"]),
            effect_genomics=float(effects["genomics"]),
            censoring_scale=float(block["censoring_scale"]),
            cross_modal=float(block["cross_modal"]),
        )


@dataclass(frozen=True)
class SlideSpec:
    """One demo slide.

    Attributes:
        slide_id: the slide's TCGA-style id (``<patient>-01Z-00-DX<k>``).
        patient_id: the patient's barcode.
        magnification: 20 or 40.
        mpp: level-0 microns per pixel.
        width: level-0 width in pixels at ``mpp``.
        height: level-0 height in pixels at ``mpp``.
        pen_mark: the slide carries a pen mark.
        seed: seed of the slide's rendering.
    """

    slide_id: str
    patient_id: str
    magnification: int
    mpp: float
    width: int
    height: int
    pen_mark: bool
    seed: int


@dataclass(frozen=True)
class PatientSpec:
    """One demo patient.

    Latent factors, their traces in the other modality, true risk, survival and which modalities exist.

    Attributes:
        patient_id: the patient's TCGA barcode.
        shared: the factor visible in both modalities.
        pathology: the pathology-specific factor.
        genomics: the genomics-specific factor.
        genomics_in_tissue: the trace of ``genomics`` in the tissue.
        pathology_in_omics: the trace of ``pathology`` in the omics.
        eta: the true log-hazard.
        time_months: observed time (event or censoring) in months.
        event: 1 = death observed, 0 = censored.
        has_genomics: the patient has omics.
        slides: the patient's slides (empty without pathology).
    """

    patient_id: str
    shared: float
    pathology: float
    genomics: float
    genomics_in_tissue: float
    pathology_in_omics: float
    eta: float
    time_months: float
    event: int
    has_genomics: bool
    slides: tuple[SlideSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class StudyPlan:
    """A demo cohort's plan.

    Attributes:
        name: the cohort's name.
        settings: the settings it was made from.
        patients: the patients, in plan order.
        model: the settings of the cohort whose generating model this one shares (config ``like``; its seed
            gives the gene loadings), None for a cohort with a model of its own.
    """

    name: str
    settings: DemoSettings
    patients: tuple[PatientSpec, ...]
    model: DemoSettings | None = None

    @property
    def slides(self) -> list[SlideSpec]:
        """Every slide of the cohort, patient by patient."""
        return [s for p in self.patients for s in p.slides]

    def slide(self, slide_id: str) -> SlideSpec:
        """Look up a slide of the plan.

        Args:
            slide_id: the slide's id.

        Returns:
            Its spec.

        Raises:
            KeyError: the cohort has no such slide.
        """
        for s in self.slides:
            if s.slide_id == slide_id:
                return s
        raise KeyError(f"demo cohort {self.name!r} has no slide {slide_id!r}")

    def patient(self, patient_id: str) -> PatientSpec:
        """Look up a patient of the plan.

        Args:
            patient_id: the patient's barcode.

        Returns:
            Its spec.

        Raises:
            KeyError: the cohort has no such patient.
        """
        for p in self.patients:
            if p.patient_id == patient_id:
                return p
        raise KeyError(f"demo cohort {self.name!r} has no patient {patient_id!r}")


def _barcodes(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct TCGA patient barcodes ``TCGA-XX-XXXX`` over a handful of tissue-source sites."""
    alnum = np.array(list(string.ascii_uppercase + string.digits))
    sites = ["".join(rng.choice(alnum, 2)) for _ in range(max(2, n // 15))]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        code = f"TCGA-{sites[int(rng.integers(len(sites)))]}-{''.join(rng.choice(alnum, 4))}"
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def plan_from_config(name: str, block: dict) -> StudyPlan:
    """The plan of a demo cohort from its config block.

    Args:
        name: the cohort's name.
        block: its ``demo`` block as :meth:`mustsurv.study.design.StudyDesign.demo_block` resolves it (a ``like``
            cohort's block carries that cohort's block as ``model``).

    Returns:
        The plan.
    """
    model = DemoSettings.from_config(block["model"]) if "model" in block else None
    return make_plan(name, DemoSettings.from_config(block), model)


def make_plan(name: str, settings: DemoSettings, model: DemoSettings | None = None) -> StudyPlan:
    """Make the deterministic plan of a demo cohort: the same settings always give the same plan.

    Args:
        name: the cohort's name.
        settings: its demo settings.
        model: the settings of the cohort whose generating model it shares (``like``), or None.

    Returns:
        The plan.
    """
    rng = np.random.default_rng([settings.seed, 20260323])
    n = settings.patients
    ids = _barcodes(rng, n)
    latent = rng.standard_normal((n, 3))
    eta = latent @ np.array([settings.effect_shared, settings.effect_pathology, settings.effect_genomics])
    # own stream, so that the other draws of the plan do not move
    xi = np.random.default_rng([settings.seed, 20260323, 1]).standard_normal((n, 2))
    rho = settings.cross_modal
    traces = rho * latent[:, [2, 1]] + np.sqrt(1.0 - rho**2) * xi  # genomics_in_tissue, pathology_in_omics
    u = rng.uniform(size=n)
    t_event = WEIBULL_SCALE_MONTHS * (-np.log(u)) ** (1 / WEIBULL_SHAPE) * np.exp(-eta / WEIBULL_SHAPE)
    t_censor = np.minimum(
        rng.uniform(0, settings.censoring_scale * WEIBULL_SCALE_MONTHS, size=n), ADMIN_CENSOR_MONTHS
    )
    time = np.maximum(np.round(np.minimum(t_event, t_censor), 2), 0.1)
    event = (t_event <= t_censor).astype(int)

    missing_p = rng.uniform(size=n) < settings.missing_pathology_fraction
    missing_g = rng.uniform(size=n) < settings.missing_genomics_fraction
    missing_g &= ~missing_p  # every patient keeps at least one modality
    n_slides = np.where(rng.uniform(size=n) < settings.two_slide_fraction, 2, 1)
    patients = []
    for i, pid in enumerate(ids):
        slides = []
        if not missing_p[i]:
            for k in range(n_slides[i]):
                mag = 40 if rng.uniform() < settings.fraction_40x else 20
                # canvas at 20x (0.5 um/px); 40x slides are the same field at twice the pixels
                w20, h20 = int(rng.integers(1700, 2300)), int(rng.integers(1300, 1700))
                scale = mag // 20
                slides.append(
                    SlideSpec(
                        slide_id=f"{pid}-01Z-00-DX{k + 1}",
                        patient_id=pid,
                        magnification=mag,
                        mpp=0.2525 if mag == 40 else 0.5045,
                        width=w20 * scale,
                        height=h20 * scale,
                        pen_mark=bool(rng.uniform() < settings.pen_fraction),
                        seed=int(rng.integers(2**31)),
                    )
                )
        patients.append(
            PatientSpec(
                patient_id=pid,
                shared=float(latent[i, 0]),
                pathology=float(latent[i, 1]),
                genomics=float(latent[i, 2]),
                genomics_in_tissue=float(traces[i, 0]),
                pathology_in_omics=float(traces[i, 1]),
                eta=float(eta[i]),
                time_months=float(time[i]),
                event=int(event[i]),
                has_genomics=not bool(missing_g[i]),
                slides=tuple(slides),
            )
        )
    return StudyPlan(name=name, settings=settings, patients=tuple(patients), model=model)
