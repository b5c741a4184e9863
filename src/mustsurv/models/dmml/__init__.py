"""DMML (Zhang et al., arXiv 2508.16479): disentangled multimodal teacher and WSI-only student; importing the
package registers ``dmml`` and ``dmml_student``."""

from mustsurv.models.dmml import student, teacher

__all__ = ["student", "teacher"]
