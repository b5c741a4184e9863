"""Conditional latent diffusion for a modality-specific component (paper §3.5, Eq. 17–21).

The latent ``z0`` is a D-dimensional vector (û_P or û_G). The ε-predictor is a small transformer over
the condition tokens ``[ĉ; class-token prior]`` and the noisy-latent token ``x_t`` (z_t embedded, plus the
timestep's embedding); the output at the x_t position, linearly projected, is the predicted noise. The
condition tokens form a prefix: in every block they attend only to each other, while x_t attends to
itself and to them. Their keys and values therefore depend on the patient alone and are computed once
per patient, and each of the 50 DDIM steps runs only the x_t token through the blocks (a KV cache, as
in prefix language models). Latents and conditions are standardised per dimension with statistics
fitted on the training targets (buffers saved with the model), the usual scale normalisation of latent
diffusion.

Sampling is deterministic DDIM (Eq. 21) from ``z_T ~ N(0, I)``. All samples of all patients are one
batch of ``B * S`` rows through the denoiser at every step; the initial noise can be given explicitly or
drawn from a seeded generator, so results are reproducible and independent of how rows are batched.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mustsurv.models.layers.attention import SelfAttentionBlock


def make_beta_schedule(
    kind: str = "linear", timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> Tensor:
    """Make the noise schedule β_1..β_T.

    Args:
        kind: ``linear`` (DDPM), ``scaled_linear`` (latent diffusion: linear in sqrt β) or ``cosine``
            (Nichol & Dhariwal, β clipped at 0.999).
        timesteps: T, at least 2.
        beta_start: first β (linear schedules).
        beta_end: last β (linear schedules).

    Returns:
        (T,) float64 betas.

    Raises:
        ValueError: fewer than 2 timesteps or an unknown ``kind``.
    """
    if timesteps < 2:
        raise ValueError(f"the diffusion needs at least 2 timesteps, got {timesteps}")
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float64) ** 2
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {kind!r}; use 'linear', 'scaled_linear' or 'cosine'")


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Embed integer timesteps sinusoidally.

    Args:
        t: (B,) integer timesteps.
        dim: embedding dimension.

    Returns:
        (B, dim) embeddings.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    return nn.functional.pad(emb, (0, dim - emb.shape[1]))


KVCache = list[tuple[Tensor, Tensor]]


class EpsilonTransformer(nn.Module):
    """ε_θ(z_t, t, cond, cls): (B, D) inputs -> predicted noise (B, D).

    The condition prefix is [ĉ; CLS] (``use_cls=False``: [ĉ] alone, the paper's Table 3(b) ablation),
    each token embedded to D plus a learned type embedding; the x_t token is embed(z_t) + embed(t).
    :meth:`condition` gives the prefix's keys and values in every block (it never sees x_t);
    :meth:`denoise` runs the x_t token through the blocks against them; ``forward`` does both.
    """

    def __init__(self, dim: int = 256, layers: int = 4, heads: int = 8, dropout: float = 0.0,
                 mlp_ratio: float = 4.0, use_cls: bool = True) -> None:
        """Build the ε-predictor.

        Args:
            dim: latent and token dimension D.
            layers: number of self-attention blocks.
            heads: attention heads.
            dropout: dropout of the blocks.
            mlp_ratio: FFN width of the blocks over D.
            use_cls: condition on [ĉ; CLS] (True) or on [ĉ] alone.
        """
        super().__init__()
        self.dim = dim
        self.use_cls = use_cls
        self.embed_x = nn.Linear(dim, dim)
        self.embed_cond = nn.Linear(dim, dim)
        self.embed_cls = nn.Linear(dim, dim) if use_cls else None
        self.embed_time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.token_type = nn.Parameter(torch.randn(2 if use_cls else 1, dim) * 0.02)  # prefix token types
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, heads, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(layers))
        self.out = nn.Linear(dim, dim)  # no final LayerNorm: it would drop the scale of z_t that ε depends on
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def condition(self, cond: Tensor, cls: Tensor) -> KVCache:
        """Compute the condition prefix's keys and values in every block.

        Args:
            cond: (B, D) conditions ĉ.
            cls: (B, D) class-token prior (ignored when ``use_cls`` is False).

        Returns:
            Per block, keys and values (B, H, L_prefix, D/H).
        """
        parts = [self.embed_cond(cond)]
        if self.embed_cls is not None:
            parts.append(self.embed_cls(cls))
        prefix = torch.stack(parts, dim=1) + self.token_type
        cache: KVCache = []
        for i, block in enumerate(self.blocks):
            cache.append(block.keys_values(prefix))
            if i + 1 < len(self.blocks):
                prefix = block(prefix)
        return cache

    def denoise(self, z_t: Tensor, t: Tensor, cache: KVCache) -> Tensor:
        """Predict the network output for ``z_t`` given the prefix ``cache``.

        Args:
            z_t: (B, D) noisy latents.
            t: (B,) integer steps.
            cache: the prefix keys and values from :meth:`condition`.

        Returns:
            (B, D) predicted noise (or v).
        """
        x = (self.embed_x(z_t) + self.embed_time(timestep_embedding(t, self.dim))).unsqueeze(1)
        for block, (k, v) in zip(self.blocks, cache):
            x = block.forward_with_context(x, k, v)
        return self.out(x[:, 0])

    def forward(self, z_t: Tensor, t: Tensor, cond: Tensor, cls: Tensor) -> Tensor:
        """Condition and denoise in one call.

        Args:
            z_t: (B, D) noisy latents.
            t: (B,) integer steps.
            cond: (B, D) conditions.
            cls: (B, D) class-token prior.

        Returns:
            (B, D) predicted noise (or v).
        """
        return self.denoise(z_t, t, self.condition(cond, cls))


class ConditionalLatentDiffusion(nn.Module):
    """A DDPM-trained, DDIM-sampled generator of a D-dim latent conditioned on ``[ĉ; CLS]``."""

    def __init__(
        self,
        dim: int = 256,
        layers: int = 4,
        heads: int = 8,
        timesteps: int = 1000,
        schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        dropout: float = 0.0,
        clip_x0: float | None = 4.0,
        mlp_ratio: float = 4.0,
        use_cls: bool = True,
        prediction: str = "eps",
    ) -> None:
        """Build the ε-predictor and the schedule buffers.

        Args:
            dim: latent dimension D.
            layers: blocks of the ε-predictor.
            heads: attention heads of the ε-predictor.
            timesteps: diffusion steps T.
            schedule: noise schedule kind (see :func:`make_beta_schedule`).
            beta_start: first β.
            beta_end: last β.
            dropout: dropout of the ε-predictor.
            clip_x0: bound of the predicted clean latent in standardised units during sampling (None =
                off). An under-trained ε-predictor otherwise lets DDIM's x̂0 = (z_t − √(1−ᾱ)ε)/√ᾱ blow up at
                large t (1/√ᾱ_T ≈ 150); clipping x̂0 and re-deriving ε from it is DDPM's ``clip_denoised`` for a
                standardised latent (about 99.99 % of a unit normal lies within ±4).
            mlp_ratio: FFN width of the ε-predictor's blocks over D (the paper gives depth 4 and width D only).
            use_cls: condition on [ĉ; CLS] (paper) or on [ĉ] alone (Table 3(b) ablation).
            prediction: what the network outputs. ``"eps"`` is Eq. 19 literally (the network predicts ε).
                ``"v"`` predicts v = √ᾱ ε − √(1−ᾱ) x0 (Salimans & Ho 2022) and is trained on the v error; ε and
                x̂0 follow exactly from v and z_t (ε = √(1−ᾱ) z_t + √ᾱ v, x̂0 = √ᾱ z_t − √(1−ᾱ) v), so the sampler
                is the same DDIM. It matters when the ε-predictor is small or trained briefly: at large t an
                ε error is amplified by 1/√ᾱ (≈150 at T = 1000) in x̂0, while a v error is not.

        Raises:
            ValueError: ``prediction`` is neither ``"eps"`` nor ``"v"``, or the schedule is invalid.
        """
        super().__init__()
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        self.prediction = prediction
        self.dim = dim
        self.clip_x0 = clip_x0
        self.timesteps = timesteps
        self.denoiser = EpsilonTransformer(dim, layers, heads, dropout, mlp_ratio, use_cls)
        betas = make_beta_schedule(schedule, timesteps, beta_start, beta_end)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, dim=0).float())
        for name in ("z_mean", "cond_mean"):
            self.register_buffer(name, torch.zeros(dim))
        for name in ("z_std", "cond_std"):
            self.register_buffer(name, torch.ones(dim))

    @torch.no_grad()
    def fit_normalisation(self, z0: Tensor, cond: Tensor, min_std: float = 1e-4) -> None:
        """Set the per-dimension mean/std of the targets and conditions.

        Args:
            z0: (N, D) training targets.
            cond: (N, D) training conditions.
            min_std: lower bound of each standard deviation.

        Raises:
            ValueError: fewer than two training patients.
        """
        if z0.shape[0] < 2:
            raise ValueError("fitting the latent normalisation needs at least two training patients")
        self.z_mean.copy_(z0.mean(0))
        self.z_std.copy_(z0.std(0).clamp_min(min_std))
        self.cond_mean.copy_(cond.mean(0))
        self.cond_std.copy_(cond.std(0).clamp_min(min_std))

    def _expand_cls(self, cls: Tensor, n: int) -> Tensor:
        """The class-token prior as (n, D), from (D,) or (n, D)."""
        return cls.reshape(1, -1).expand(n, -1) if cls.ndim == 1 else cls

    def loss(self, z0: Tensor, cond: Tensor, cls: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Compute the denoising loss of Eq. 19; t uniform in [0, T).

        The squared error of the predicted ε (``prediction="eps"``) or of the predicted v (``"v"``).

        Args:
            z0: (B, D) targets.
            cond: (B, D) conditions.
            cls: (D,) or (B, D) class-token prior.
            generator: source of t and the noise; the global one when None.

        Returns:
            Scalar loss.
        """
        b = z0.shape[0]
        x0 = (z0 - self.z_mean) / self.z_std
        t = torch.randint(0, self.timesteps, (b,), device=z0.device, generator=generator)
        noise = torch.randn(x0.shape, device=z0.device, generator=generator, dtype=x0.dtype)
        a = self.alphas_cumprod[t].unsqueeze(1)
        z_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        c = (cond - self.cond_mean) / self.cond_std
        pred = self.denoiser(z_t, t, c, self._expand_cls(cls, b))
        target = noise if self.prediction == "eps" else a.sqrt() * noise - (1 - a).sqrt() * x0
        return ((pred - target) ** 2).mean()

    def eps_and_x0(self, out: Tensor, z_t: Tensor, a_t: Tensor) -> tuple[Tensor, Tensor]:
        """Derive the noise ε and the clean latent x̂0 implied by the network's output (unclipped).

        Args:
            out: (B, D) network output (ε or v).
            z_t: (B, D) noisy latent.
            a_t: signal level ᾱ_t, a scalar or (B, 1).

        Returns:
            ε and x̂0, each (B, D).
        """
        if self.prediction == "eps":
            return out, (z_t - (1 - a_t).sqrt() * out) / a_t.sqrt()
        return (1 - a_t).sqrt() * z_t + a_t.sqrt() * out, a_t.sqrt() * z_t - (1 - a_t).sqrt() * out

    def ddim_timesteps(self, steps: int) -> Tensor:
        """Make the descending, distinct timesteps of a DDIM schedule (from T-1 to 0).

        Args:
            steps: number of DDIM steps, in [1, T].

        Returns:
            (steps,) timesteps.

        Raises:
            ValueError: ``steps`` is outside [1, T].
        """
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"DDIM steps must lie in [1, {self.timesteps}], got {steps}")
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().unique_consecutive()

    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,
        cls: Tensor,
        n_samples: int = 5,
        steps: int = 50,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Run deterministic DDIM (Eq. 21) for B patients x S samples in one batch.

        Args:
            cond: (B, D) shared components c̃ (conditions).
            cls: (D,) or (B, D) class-token prior.
            n_samples: S samples per patient.
            steps: number of DDIM steps.
            noise: optional (B, S, D) initial z_T; drawn from ``generator`` otherwise.
            generator: source of the initial noise when ``noise`` is None.

        Returns:
            (B, S, D) generated latents in the original (de-standardised) space.

        Raises:
            ValueError: ``noise`` has the wrong shape or ``steps`` is out of range.
        """
        b, d = cond.shape
        if noise is None:
            noise = torch.randn((b, n_samples, d), device=cond.device, generator=generator, dtype=cond.dtype)
        if noise.shape[:1] != (b,) or noise.shape[2] != d:
            raise ValueError(f"noise must be ({b}, S, {d}), got {tuple(noise.shape)}")
        s = noise.shape[1]
        z = noise.reshape(b * s, d)
        c = (cond - self.cond_mean) / self.cond_std
        cache = [(k.repeat_interleave(s, dim=0), v.repeat_interleave(s, dim=0))  # once per patient, not per step
                 for k, v in self.denoiser.condition(c, self._expand_cls(cls, b))]
        ts = self.ddim_timesteps(steps).to(cond.device)
        for i, t in enumerate(ts.tolist()):
            a_t = self.alphas_cumprod[t]
            a_prev = self.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else torch.ones_like(a_t)
            out = self.denoiser.denoise(z, torch.full((b * s,), t, device=z.device, dtype=torch.long), cache)
            eps, x0 = self.eps_and_x0(out, z, a_t)
            if self.clip_x0 is not None:
                x0 = x0.clamp(-self.clip_x0, self.clip_x0)
                eps = (z - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        return (z * self.z_std + self.z_mean).reshape(b, s, d)
