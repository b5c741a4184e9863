"""Subspace knowledge distillation from DMML's frozen teacher to its WSI-only student.

Per magnification: w_kl · KL(softmax(z_teacher / T) ‖ softmax(z_student / T)) · T² on the hazard logits, plus
w_feat · MSE between the student's aggregated tokens [c0; c1] and the teacher's subspace features [f_t; f_m].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, student_tokens: Tensor,
                      teacher_features: Tensor, temperature: float = 2.0, kl_weight: float = 0.01,
                      feature_weight: float = 0.01) -> Tensor:
    """Distillation loss of one magnification.

    Args:
        student_logits: (B, K) student logits.
        teacher_logits: (B, K) teacher logits (no gradient needed).
        student_tokens: (B, 2D) the student's aggregated tokens.
        teacher_features: (B, 2D) the teacher's subspace features.
        temperature: T.
        kl_weight: weight of the KL term.
        feature_weight: weight of the feature term.

    Returns:
        Scalar loss; zero when the student's logits and tokens equal the teacher's.
    """
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                  reduction="batchmean", log_target=True) * t * t
    return kl_weight * kl + feature_weight * F.mse_loss(student_tokens, teacher_features)
