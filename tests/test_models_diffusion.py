"""Conditional latent diffusion: schedules, batched DDIM = per-sample loop, seeding, learning."""

from __future__ import annotations

import pytest
import torch

from mustsurv.models.diffusion import ConditionalLatentDiffusion, make_beta_schedule

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine"])
def test_schedules_give_decreasing_signal(kind: str) -> None:
    betas = make_beta_schedule(kind, 1000)
    a = torch.cumprod(1 - betas, 0)
    assert ((betas > 0) & (betas < 1)).all()
    assert (a[1:] < a[:-1]).all() and a[-1] < 0.1
    with pytest.raises(ValueError, match="schedule"):
        make_beta_schedule("quadratic", 10)


def test_ddim_timesteps_are_descending_and_end_at_zero() -> None:
    ldm = ConditionalLatentDiffusion(dim=8, layers=1, heads=2, timesteps=1000)
    ts = ldm.ddim_timesteps(50)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 50 and (ts[1:] < ts[:-1]).all()


def test_batched_ddim_equals_per_sample_loop_with_the_same_noise() -> None:
    torch.manual_seed(0)
    ldm = ConditionalLatentDiffusion(dim=16, layers=2, heads=4, timesteps=100).eval()
    for p in ldm.denoiser.out.parameters():  # a non-trivial ε-predictor
        torch.nn.init.normal_(p, std=0.1)
    cond, cls = torch.randn(3, 16), torch.randn(16)
    noise = torch.randn(3, 5, 16)
    batched = ldm.sample(cond, cls, noise=noise, steps=20)
    looped = torch.stack([
        torch.stack([ldm.sample(cond[b : b + 1], cls, noise=noise[b : b + 1, s : s + 1], steps=20)[0, 0]
                     for s in range(5)])
        for b in range(3)
    ])
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)
    # seeded generators reproduce the draw
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    torch.testing.assert_close(ldm.sample(cond, cls, 4, 10, generator=g1), ldm.sample(cond, cls, 4, 10, generator=g2))


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ldm_learns_a_conditional_latent(prediction: str) -> None:
    torch.manual_seed(0)
    dim, n = 8, 256
    cond = torch.randn(n, dim)
    mix = torch.randn(dim, dim) / dim**0.5
    z0 = 3.0 + 2.0 * cond @ mix  # the latent is a deterministic function of the condition
    ldm = ConditionalLatentDiffusion(dim=dim, layers=2, heads=2, timesteps=1000, prediction=prediction)
    ldm.fit_normalisation(z0, cond)
    cls = torch.zeros(dim)
    opt = torch.optim.AdamW(ldm.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(600):
        idx = torch.randint(0, n, (64,), generator=gen)
        loss = ldm.loss(z0[idx], cond[idx], cls, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) / 50 < 0.6 * sum(losses[:20]) / 20
    # one-step denoising at ᾱ_t ≈ 0.08: without the condition no estimate of x0 from z_t correlates with
    # x0 better than sqrt(ᾱ_t) ≈ 0.28 (Gaussian prior); using the condition must beat that clearly
    ldm.eval()
    test_cond = torch.randn(256, dim)
    x0 = (3.0 + 2.0 * test_cond @ mix - ldm.z_mean) / ldm.z_std
    t = 500
    a = ldm.alphas_cumprod[t]
    z_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=gen)
    with torch.no_grad():
        out = ldm.denoiser(z_t, torch.full((256,), t), (test_cond - ldm.cond_mean) / ldm.cond_std, cls.expand(256, -1))
    x0_hat = ldm.eps_and_x0(out, z_t, a)[1]
    corr = torch.corrcoef(torch.stack([x0_hat.flatten(), x0.flatten()]))[0, 1].item()
    assert corr > a.sqrt().item() + 0.15


def test_clipping_keeps_an_untrained_denoiser_from_blowing_up_samples() -> None:
    """With ε ≡ 0 (the zero-initialised output layer) DDIM's x̂0 = z_T / √ᾱ_T is ~150× the noise; the clip
    bounds every sample to mean ± clip·std, and clip_x0=None reproduces the unclipped update."""
    torch.manual_seed(0)
    cond, cls = torch.randn(4, 8), torch.randn(8)
    noise = torch.randn(4, 3, 8)
    clipped = ConditionalLatentDiffusion(dim=8, layers=1, heads=2, timesteps=1000, clip_x0=2.0).eval()
    with torch.no_grad():
        clipped.z_mean.fill_(1.0)
        clipped.z_std.fill_(0.5)
    raw = ConditionalLatentDiffusion(dim=8, layers=1, heads=2, timesteps=1000, clip_x0=None).eval()
    raw.load_state_dict(clipped.state_dict())
    a = clipped.sample(cond, cls, noise=noise, steps=10)
    b = raw.sample(cond, cls, noise=noise, steps=10)
    assert float((a - 1.0).abs().max()) <= 2.0 * 0.5 + 1e-5
    assert float((b - 1.0).abs().max()) > 10.0  # the unclipped trajectory explodes
    # ε ≡ 0: the DDIM steps telescope to z_T / √ᾱ_T (then de-standardised)
    a_T = raw.alphas_cumprod[raw.ddim_timesteps(10)[0]]
    torch.testing.assert_close(b, noise / a_T.sqrt() * 0.5 + 1.0, rtol=1e-4, atol=1e-3)


def test_context_block_equals_the_full_block_read_at_the_query_tokens() -> None:
    """x_t attending to cached prefix keys/values gives what a full block over [x_t; prefix] gives at x_t."""
    from mustsurv.models.layers.attention import SelfAttentionBlock

    torch.manual_seed(0)
    block = SelfAttentionBlock(16, heads=4, mlp_ratio=4.0, dropout=0.0).eval()
    x, prefix = torch.randn(5, 1, 16), torch.randn(5, 3, 16)
    full = block(torch.cat([x, prefix], dim=1))[:, :1]
    torch.testing.assert_close(block.forward_with_context(x, *block.keys_values(prefix)), full)


def test_sampling_with_the_prefix_cache_equals_the_plain_denoiser() -> None:
    """DDIM's cached condition gives the same ε as calling the ε-predictor on (z_t, t, ĉ, CLS) each step,
    and the condition prefix does not depend on z_t."""
    torch.manual_seed(0)
    ldm = ConditionalLatentDiffusion(dim=16, layers=2, heads=4, timesteps=50).eval()
    torch.nn.init.normal_(ldm.denoiser.out.weight, std=0.1)
    cond, cls, noise = torch.randn(3, 16), torch.randn(16), torch.randn(3, 2, 16)
    cached = ldm.sample(cond, cls, noise=noise, steps=6)
    z = noise.reshape(6, 16)
    c = ((cond - ldm.cond_mean) / ldm.cond_std).repeat_interleave(2, dim=0)
    prior = cls.expand(6, -1)
    ts = ldm.ddim_timesteps(6)
    for i, t in enumerate(ts.tolist()):
        a_t = ldm.alphas_cumprod[t]
        a_prev = ldm.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else torch.ones_like(a_t)
        eps = ldm.denoiser(z, torch.full((6,), t), c, prior)
        x0 = ((z - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-ldm.clip_x0, ldm.clip_x0)
        eps = (z - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    torch.testing.assert_close(cached, (z * ldm.z_std + ldm.z_mean).reshape(3, 2, 16), rtol=1e-5, atol=1e-5)


class _OracleDenoiser(torch.nn.Module):
    """The exact network output for a point-mass latent x0* (standardised units): ε or v of Eq. 19."""

    def __init__(self, ldm: ConditionalLatentDiffusion, x0: torch.Tensor) -> None:
        super().__init__()
        self.ldm, self.x0 = [ldm], x0

    def condition(self, cond: torch.Tensor, cls: torch.Tensor) -> list:
        return []

    def denoise(self, z_t: torch.Tensor, t: torch.Tensor, cache: list) -> torch.Tensor:
        a = self.ldm[0].alphas_cumprod[t].unsqueeze(1)
        eps = (z_t - a.sqrt() * self.x0) / (1 - a).sqrt()
        return eps if self.ldm[0].prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * self.x0

    def forward(self, z_t, t, cond, cls):  # noqa: ANN001, ANN201 - the ε-predictor's signature
        return self.denoise(z_t, t, [])


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_exact_network_output_has_zero_loss_and_ddim_lands_on_the_latent(prediction: str) -> None:
    """For a point-mass latent the exact ε (or v) makes Eq. 19's loss 0, and DDIM from any noise ends on
    that latent (de-standardised): the ε / v conversions of loss and sampler agree."""
    torch.manual_seed(0)
    ldm = ConditionalLatentDiffusion(dim=8, layers=1, heads=2, timesteps=1000, prediction=prediction,
                                     clip_x0=None).eval()
    with torch.no_grad():
        ldm.z_mean.fill_(2.0)
        ldm.z_std.fill_(0.5)
    x0 = torch.randn(8)
    ldm.denoiser = _OracleDenoiser(ldm, x0)
    z0 = (x0 * 0.5 + 2.0).expand(6, -1)
    loss = ldm.loss(z0, torch.randn(6, 8), torch.zeros(8), generator=torch.Generator().manual_seed(1))
    assert float(loss) < 1e-8
    # the output -> (ε, x̂0) conversion inverts z_t = √ᾱ x0 + √(1−ᾱ) ε at any noise level
    eps, a = torch.randn(5, 8), ldm.alphas_cumprod[torch.tensor([0, 10, 300, 700, 999])].unsqueeze(1)
    z_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    out = eps if prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * x0
    eps_hat, x0_hat = ldm.eps_and_x0(out, z_t, a)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x0_hat, x0.expand(5, -1), rtol=1e-3, atol=1e-3)
    samples = ldm.sample(torch.randn(3, 8), torch.zeros(8), noise=torch.randn(3, 4, 8), steps=25)
    torch.testing.assert_close(samples, (x0 * 0.5 + 2.0).expand(3, 4, -1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="prediction"):
        ConditionalLatentDiffusion(dim=8, layers=1, heads=2, prediction="x0")
