"""What the stage-3 network predicts, ε (paper Eq. 19) or v, measured on a finished run (the demo).

For every cohort and fold: stage 3 is retrained from the fold's ``stage2.pt`` once per parameterisation,
with the run's ``must.stage3`` settings and seed, and the diffusion models generate the specific component
of each test patient's missing modality from c̃ (``must.inference`` samples and DDIM steps). Reported per
cohort and parameterisation (means over folds):

* ``r2`` — 1 − ‖ū_gen − û‖² / ‖ū_train − û‖²: the n-sample mean against the patient's true û (from its
  complete data), relative to predicting the training mean (0 = as good as the mean; a perfect sampler
  of an uninformative condition scores about −1/n);
* ``sample_std`` — spread of one patient's samples in standardised latent units (the data have 1);
* ``clipped`` — share of generated coordinates at DDIM's x̂0 clip;
* ``cindex_missing_genomics`` / ``cindex_missing_pathology`` — the C-index of the resulting predictions.

Writes ``benchmarks/results/must_ldm_prediction.json``.

    python benchmarks/must_ldm_prediction.py --workdir /tmp/demo [--cohorts DEMO1 DEMO2]
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from pathlib import Path

import numpy as np
import torch
from results_io import write_result

from mustsurv.cohort.store import FeatureStore
from mustsurv.config import load_config
from mustsurv.models import collate
from mustsurv.study import layout
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY
from mustsurv.survival import risk_from_hazards
from mustsurv.survival.metrics import c_index
from mustsurv.train.data import fold_datasets
from mustsurv.train.must import complete_patients, train_stage3
from mustsurv.train.trainer import load_checkpoint

MISSING = {GENOMICS: "missing_genomics", PATHOLOGY: "missing_pathology"}  # modality -> scenario


@torch.no_grad()
def generation_scores(model, train, test, inference: dict, seed: int) -> dict[str, float]:
    """Fidelity of the generated û and C-index per missing modality for one trained fold."""
    bt, b = collate(complete_patients(train)), collate(complete_patients(test))
    dt, d = model.decompose(bt), model.decompose(b)
    time, event = b.time.numpy(), b.event.numpy()
    out: dict[str, float] = {}
    for modality, scenario in MISSING.items():
        if modality == GENOMICS:
            cond, true, mean = d.g_p - d.u_p_hat, d.u_g_hat, dt.u_g_hat.mean(0)
        else:
            cond, true, mean = d.g_g - d.u_g_hat, d.u_p_hat, dt.u_p_hat.mean(0)
        ldm, cls = model._ldm(modality)
        noise = torch.randn((len(b), inference["n_samples"], model.dim), generator=torch.Generator().manual_seed(seed))
        raw = ldm.sample(cond, cls, noise=noise, steps=inference["ddim_steps"])
        std_units = (raw - ldm.z_mean) / ldm.z_std
        gen = model.project_specific(raw.mean(dim=1))
        logits = (model.head_logits(d.u_p_hat, cond, gen) if modality == GENOMICS
                  else model.head_logits(gen, cond, d.u_g_hat))
        risk = risk_from_hazards(torch.sigmoid(logits)).numpy()
        out[f"r2_{modality}"] = float(1 - ((gen - true) ** 2).sum() / ((mean - true) ** 2).sum())
        out[f"sample_std_{modality}"] = float(std_units.std(dim=1).mean())
        clip = ldm.clip_x0 if ldm.clip_x0 is not None else float("inf")
        out[f"clipped_{modality}"] = float((std_units.abs() >= clip - 1e-4).float().mean())
        out[f"cindex_{scenario}"] = float(c_index(time, event, risk))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("."))
    ap.add_argument("--cohorts", nargs="+", default=["DEMO1", "DEMO2"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/must_ldm_prediction.json"))
    args = ap.parse_args()
    out_path = args.out.resolve()
    os.chdir(args.workdir)  # the slide summary lists feature paths relative to the working directory
    logging.disable(logging.INFO)
    torch.set_num_threads(2)
    cfg = load_config("config/config.yaml")
    must, seed = cfg["must"], int(cfg["training"]["seed"])
    result: dict[str, dict] = {}
    for cohort in args.cohorts:
        store = FeatureStore()
        per: dict[str, list[dict[str, float]]] = {"eps": [], "v": []}
        for k in range(len(glob.glob(layout.fold(cohort, "*")))):
            data = fold_datasets(**layout.fold_inputs(cohort, k), store=store, fit_on_validation=True)
            train, test = data.train, data.test
            for prediction in per:
                model, _ = load_checkpoint(layout.must_checkpoint(cohort, "must", k, 2), torch.device("cpu"))
                for ldm in (model.ldm_pathology, model.ldm_genomics):
                    ldm.prediction = prediction
                torch.manual_seed(seed)
                train_stage3(model, list(train), seed=seed, **must["stage3"])
                per[prediction].append(generation_scores(model, list(train), list(test), must["inference"], seed))
        result[cohort] = {p: {key: round(float(np.mean([f[key] for f in folds])), 4) for key in folds[0]}
                          for p, folds in per.items()}
        for p, scores in result[cohort].items():
            print(cohort, p, scores, flush=True)
    write_result({"workdir": str(Path.cwd()), "stage3": must["stage3"], "inference": must["inference"],
                            "cohorts": result}, out_path)


if __name__ == "__main__":
    main()
