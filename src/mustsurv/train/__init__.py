"""Training: the shared trainer, checkpoints, MUST's three stages and its prediction."""

from mustsurv.train.must import predict, train_stage1, train_stage2, train_stage3
from mustsurv.train.trainer import (
    OptimConfig,
    TrainState,
    accumulate_group,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    train_epochs,
    training_device,
)

__all__ = [
    "training_device",
    "OptimConfig",
    "TrainState",
    "accumulate_group",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
    "seed_everything",
    "train_epochs",
    "train_stage1",
    "train_stage2",
    "train_stage3",
]
