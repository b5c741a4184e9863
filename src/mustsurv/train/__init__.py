"""Training: the shared trainer, checkpoints, MUST's three stages and its prediction."""

from mustsurv.train.must import predict, train_stage1, train_stage2, train_stage3
from mustsurv.train.trainer import (
    OptimConfig,
    TrainState,
    accumulate_group,
    default_device,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    train_epochs,
)

__all__ = [
    "OptimConfig",
    "TrainState",
    "accumulate_group",
    "default_device",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
    "seed_everything",
    "train_epochs",
    "train_stage1",
    "train_stage2",
    "train_stage3",
]
