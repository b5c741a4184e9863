"""Could any imputation of the missing specific component beat zero-filling, on a finished run (the demo)?

For every cohort and fold, with the fold's trained MUST (``stage3.pt``) and its complete test patients:
the C-index of MUST's missing-modality prediction φ([û_P; c̃; ũ_G]) (and symmetric) with ũ from

* ``ldm_S``: the diffusion model, mean of S DDIM samples (S from ``--samples``; the paper uses 5),
* ``true``: the patient's own û (upper bound), ``training_mean``, ``ridge`` (linear conditional mean
  of û given c̃, fitted on the training patients), ``zero`` (no ũ),

and of zero-filling the missing input of the complete-data model (``zero_filled``). ``r2_*`` says how much
closer to the true û each imputation is than the training mean (0 = no closer); ``surrogate_error`` is
‖c̃ − ĉ‖ / ‖ĉ‖ on the test patients (how far the head's shared input moves when a modality is missing;
0 once the decomposition is exact). Means over folds, and
paired per-fold differences against ``zero_filled``.

    python benchmarks/must_imputation.py --workdir /tmp/demo --samples 5 50
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np
import torch
from must_zero_fill import paired
from results_io import write_result

from mustsurv.config import load_config
from mustsurv.evaluate.imputation import (
    components,
    imputed_risk,
    r2_against_mean,
    reference_imputations,
)
from mustsurv.evaluate.zero_fill import zero_fill_cindex
from mustsurv.study import layout
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY
from mustsurv.survival.metrics import c_index
from mustsurv.train.data import fold_datasets
from mustsurv.train.trainer import load_checkpoint

MISSING = (GENOMICS, PATHOLOGY)  # the modality a scenario removes, and whose diffusion model imputes it


def fold_scores(cohort: str, fold: int, samples: list[int], steps: int, seed: int) -> dict[str, float]:
    model, _ = load_checkpoint(layout.must_checkpoint(cohort, "must", fold, 3), torch.device("cpu"))
    data = fold_datasets(**layout.fold_inputs(cohort, fold), fit_on_validation=True)
    train, test = data.train, data.test
    tr, te = components(model, list(train)), components(model, list(test))
    complete = [it for it in test if it["pathology"] is not None and it["genomics"] is not None]
    time = [float(it["time"]) for it in complete]
    event = [int(it["event"]) for it in complete]
    ids = [it["patient_id"] for it in complete]
    out: dict[str, float] = {}
    for missing in MISSING:
        imputations = reference_imputations(tr, te, missing)
        with torch.no_grad():
            for s in samples:
                imputations[f"ldm_{s}"] = model.sample_specific(missing, te.surrogate(missing), ids,
                                                                n_samples=s, steps=steps, seed=seed)
        mean = tr.specific(missing).mean(0)
        for name, u in imputations.items():
            out[f"{missing}/{name}"] = c_index(time, event, imputed_risk(model, te, missing, u).numpy())
            if name not in ("true", "training_mean"):
                out[f"{missing}/r2_{name}"] = r2_against_mean(u, te.specific(missing), mean)
        out[f"{missing}/zero_filled"] = zero_fill_cindex(model, complete, missing)
        out[f"{missing}/surrogate_error"] = te.surrogate_error(missing)
    return out


def summarise(folds: list[dict[str, float]]) -> dict[str, object]:
    keys = folds[0].keys()
    res: dict[str, object] = {k: round(float(np.mean([f[k] for f in folds])), 4) for k in keys}
    for k in keys:
        missing, name = k.split("/")
        if name.startswith("r2_") or name in ("zero_filled", "surrogate_error"):
            continue
        res[f"{k}-minus-zero_filled"] = paired([f[k] for f in folds],
                                               [f[f"{missing}/zero_filled"] for f in folds])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("."))
    ap.add_argument("--cohorts", nargs="+", default=["DEMO1", "DEMO2"])
    ap.add_argument("--samples", nargs="+", type=int, default=[5, 50])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/must_imputation.json"))
    args = ap.parse_args()
    out = args.out.resolve()
    os.chdir(args.workdir)  # the slide summary lists feature paths relative to the working directory
    torch.set_num_threads(2)
    cfg = load_config("config/config.yaml")
    steps, seed = int(cfg["must"]["inference"]["ddim_steps"]), int(cfg["training"]["seed"])
    result = {}
    for cohort in args.cohorts:
        n = len(glob.glob(layout.fold(cohort, "*")))
        result[cohort] = summarise([fold_scores(cohort, k, args.samples, steps, seed) for k in range(n)])
        for missing in MISSING:
            print(cohort, missing, {k.split("/")[1]: v for k, v in result[cohort].items()
                                    if k.startswith(missing) and not isinstance(v, dict)}, flush=True)
    write_result({"workdir": str(Path.cwd()), "samples": args.samples, "ddim_steps": steps,
                  "cohorts": result}, out)


if __name__ == "__main__":
    main()
