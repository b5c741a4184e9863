"""Shared trainer (accumulation forms, resume, checkpoints) and MUST's three stages on a planted signal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mustsurv.models import MUST, build_model
from mustsurv.models.batch import PatientItem
from mustsurv.survival import c_index
from mustsurv.train import (
    OptimConfig,
    accumulate_group,
    load_checkpoint,
    predict,
    save_checkpoint,
    train_epochs,
    train_stage1,
    train_stage2,
    train_stage3,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAMILIES = [4, 4, 4, 4, 4, 4]
KWARGS = dict(family_dims=FAMILIES, pathology_dim=8, dim=16, rank=4, heads=2, num_landmarks=4, genomics_hidden=16,
              ldm_layers=1, ldm_heads=2, ldm_timesteps=200)


def planted_cohort(n: int = 16, seed: int = 0) -> list[PatientItem]:
    """Patients whose latent risk r shifts their patch features and their genomic values; time falls with r."""
    g = torch.Generator().manual_seed(seed)
    items = []
    risk = torch.linspace(-1.5, 1.5, n)[torch.randperm(n, generator=g)]
    for i, r in enumerate(risk.tolist()):
        bag = torch.randn(6 + i % 5, 8, generator=g) * 0.5 + r
        families = [torch.randn(4, generator=g) * 0.5 + r * (k % 2 * 2 - 1) for k in range(6)]
        time = float(torch.exp(torch.tensor(-r)) * 10)
        items.append(PatientItem(patient_id=f"P{i:02d}", pathology=bag, genomics=families, time=time,
                                 event=int(i % 4 != 0), bin=0))
    order = sorted(range(n), key=lambda j: items[j]["time"])
    for rank, j in enumerate(order):
        items[j]["bin"] = rank * 4 // n
    return items


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_grouped_accumulation_gives_the_same_gradient_as_batch_size_one() -> None:
    items = planted_cohort(6)
    torch.manual_seed(0)
    model = build_model("must", **KWARGS, dropout=0.0, genomics_dropout=0.0, warmup_sigma=0.0).double()
    items64 = [PatientItem(**{**it, "pathology": it["pathology"].double(),
                              "genomics": [o.double() for o in it["genomics"]]})
               for it in items]
    grads = []
    for grouped in (False, True):
        model.zero_grad()
        logs = accumulate_group(model, model.main_loss, items64, grouped, torch.device("cpu"))
        grads.append(({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, logs))
    assert grads[0][0].keys() == grads[1][0].keys() and len(grads[0][0]) > 0
    for name, g in grads[0][0].items():
        torch.testing.assert_close(g, grads[1][0][name], atol=1e-10, rtol=1e-8, msg=name)
    assert grads[0][1]["loss"] == pytest.approx(grads[1][1]["loss"], rel=1e-10)


def test_interrupted_training_resumes_to_the_same_model(tmp_path: Path) -> None:
    items = planted_cohort(6)
    torch.manual_seed(0)
    straight = build_model("must", **KWARGS)
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    train_epochs(straight, items, straight.warmup_loss, straight.parameters(),
                 OptimConfig(epochs=2, lr=1e-3, accumulation_steps=4))
    resumed = build_model("must", **KWARGS)
    resumed.load_state_dict(init)
    progress = tmp_path / "progress.pt"
    train_epochs(resumed, items, resumed.warmup_loss, resumed.parameters(),
                 OptimConfig(epochs=1, lr=1e-3, accumulation_steps=4), progress_path=progress)
    fresh = build_model("must", **KWARGS)  # a new process: weights come from the progress file
    state = train_epochs(fresh, items, fresh.warmup_loss, fresh.parameters(),
                         OptimConfig(epochs=2, lr=1e-3, accumulation_steps=4), progress_path=progress)
    assert state.epochs_done == 2 and len(state.history) == 2
    torch.testing.assert_close(_params(fresh), _params(straight))


def test_three_stages_learn_the_planted_signal_and_checkpoints_reproduce_predictions(tmp_path: Path) -> None:
    torch.manual_seed(0)
    items = planted_cohort(16)
    model: MUST = build_model("must", **KWARGS)  # type: ignore[assignment]
    h1 = train_stage1(model, items, OptimConfig(epochs=4, lr=1e-3, accumulation_steps=4, grouped=True))
    h2 = train_stage2(model, items, OptimConfig(epochs=6, lr=1e-3, accumulation_steps=4, grouped=True))
    assert h1.history[-1]["loss"] < h1.history[0]["loss"]
    assert h2.history[-1]["decomp"] < h2.history[0]["decomp"]
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("ldm_")}
    h3 = train_stage3(model, items, steps=30, lr=1e-3, batch_size=8)
    assert list(h3) == ["pathology", "genomics"]  # stage 3 trains the pathology model first
    for k, v in model.state_dict().items():  # stage 3 leaves the main model untouched
        if not k.startswith("ldm_"):
            torch.testing.assert_close(v, frozen[k])
    preds = predict(model, items, n_samples=2, steps=5, seed=3)
    assert list(preds.columns) == ["patient_id", "scenario", "risk", "time", "event", "train_median_risk",
                                   *[f"survival_{k}" for k in range(1, model.n_bins + 1)]]
    assert len(preds) == 3 * len(items)
    complete = preds[preds.scenario == "complete"]
    score = c_index(complete.time, complete.event, complete.risk)
    print(f"complete-data C-index on the planted cohort: {score:.3f}")
    assert score > 0.75
    # 30 diffusion steps learn little; the missing-modality rows must exist and be finite here, their
    # quality is measured on the demo study
    for scenario in ("missing_genomics", "missing_pathology"):
        sub = preds[preds.scenario == scenario]
        assert len(sub) == len(items) and torch.isfinite(torch.tensor(sub.risk.values)).all()
    ckpt = tmp_path / "models" / "stage3.pt"
    save_checkpoint(ckpt, model, "must", KWARGS, meta={"stage": 3})
    loaded, meta = load_checkpoint(ckpt)
    assert meta["meta"] == {"stage": 3}
    again = predict(loaded, items, n_samples=2, steps=5, seed=3, batch_size=5)
    torch.testing.assert_close(torch.tensor(again.risk.values), torch.tensor(preds.risk.values), atol=1e-5, rtol=1e-5)


def test_bad_checkpoint_and_empty_training_set_are_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="training rule"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="retrain"):
        load_checkpoint(bad)
    model = build_model("must", **KWARGS)
    items = planted_cohort(4)
    for it in items:
        it["genomics"] = None
    with pytest.raises(ValueError, match="paired"):
        train_stage2(model, items, OptimConfig(epochs=1))  # type: ignore[arg-type]


def test_bf16_precision_gives_float32_gradients_close_to_the_float32_ones() -> None:
    """training.precision bf16: the forward runs under bfloat16 autocast (gradients differ from float32),
    the gradients stay float32 and within a few per cent of the float32 ones; unknown precisions fail."""
    items = planted_cohort(4)
    torch.manual_seed(0)
    model = build_model("must", **KWARGS, dropout=0.0, genomics_dropout=0.0, warmup_sigma=0.0)
    grads = {}
    for precision in ("float32", "bf16"):
        model.zero_grad()
        accumulate_group(model, model.main_loss, items, False, torch.device("cpu"), precision)
        grads[precision] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert grads["bf16"].dtype == torch.float32
    difference = float((grads["bf16"] - grads["float32"]).norm() / grads["float32"].norm())
    assert 0 < difference < 0.05
    with pytest.raises(ValueError, match="training.precision"):
        accumulate_group(model, model.main_loss, items, False, torch.device("cpu"), "fp8")


def test_checkpoint_bytes_depend_on_values_not_on_string_identity(tmp_path):
    """A resumed stage's history has keys read back from its progress file (other string objects than the
    code's literals); its checkpoint must still be byte-identical to an uninterrupted run's."""
    model = torch.nn.Linear(2, 1)
    literal = {"history": [{"loss": 1.0}, {"loss": 2.0}]}
    read_back = {"history": [{"".join(["lo", "ss"]): 1.0}, {"".join(["lo", "ss"]): 2.0}]}
    for folder, meta in (("a", literal), ("b", read_back)):
        save_checkpoint(tmp_path / folder / "stage1.pt", model, "linear", {"d": 2}, meta)
    assert (tmp_path / "a" / "stage1.pt").read_bytes() == (tmp_path / "b" / "stage1.pt").read_bytes()
