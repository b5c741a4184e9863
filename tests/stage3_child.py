"""Child process of the stage-3 kill-and-resume test: trains the diffusion models of a fixed tiny MUST,
slowed down so the parent can kill it part-way, and saves their weights when it finishes."""

import sys
import time

import torch
from test_models_must import tiny_items, tiny_must

from mustsurv.train.must import train_stage3

progress, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
torch.manual_seed(0)
model = tiny_must()
loss = model.ldm_loss


def slow_loss(*args, **kwargs):
    time.sleep(0.002)  # ~2 ms a step: the parent has time to kill between checkpoints
    return loss(*args, **kwargs)


model.ldm_loss = slow_loss
train_stage3(model, tiny_items(12), steps=600, lr=1e-3, batch_size=4, seed=3, validation=tiny_items(4, seed=9),
             evaluations=20, patience=None, checkpoint_every=25, progress_path=progress)
torch.save({k: v for k, v in model.state_dict().items() if k.startswith("ldm_")}, out)
