import os
import time

import pytest
import torch

from mustsurv.train.pipeline import fresh_progress, must_kwargs
from mustsurv.train.trainer import OptimConfig, make_optimizer


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                       ("sgd", torch.optim.SGD)])
def test_optimizer_choice_carries_the_settings(name, cls):
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = make_optimizer(params, OptimConfig(optimizer=name, lr=0.01, weight_decay=0.1, momentum=0.5))
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.01, 0.1)
    if name == "sgd":
        assert group["momentum"] == 0.5
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(params, OptimConfig(optimizer="lbfgs"))


def test_stale_progress_is_removed_fresh_progress_kept(tmp_path):
    inp = tmp_path / "stage1.pt"
    out = tmp_path / "stage2.pt"
    inp.write_text("x")
    progress = fresh_progress(out, [inp, None])
    progress.write_text("epoch 3")
    assert fresh_progress(out, [inp]).exists()  # newer than its input: resume from it
    old = time.time() - 100
    os.utime(progress, (old, old))
    assert not fresh_progress(out, [inp]).exists()  # input changed after it: start over


def test_must_kwargs_put_data_sizes_before_config():
    kw = must_kwargs([3, 4, 5, 6, 7, 8], 192, 4, {"dim": 32, "rank": 8})
    assert kw == {"family_dims": [3, 4, 5, 6, 7, 8], "pathology_dim": 192, "n_bins": 4, "dim": 32, "rank": 8}


def test_training_device_follows_the_request_and_fails_clearly():
    from mustsurv.train.trainer import training_device

    assert training_device("cpu", 1) == torch.device("cpu")
    assert training_device("auto", 0) == torch.device("cpu")  # no GPU requested: CPU even where one is visible
    if torch.cuda.is_available():
        assert training_device("auto", 1) == torch.device("cuda")
    else:
        assert training_device("auto", 1) == torch.device("cpu")
        with pytest.raises(RuntimeError, match=r"training.device is cuda.*training.gpu: 1.*training.device: cpu"):
            training_device("cuda", 1)
    with pytest.raises(ValueError, match="training.device"):
        training_device("tpu", 0)
