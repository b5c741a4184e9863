"""TransMIL layer: Nyström attention (exactness cases), pseudo-inverse, square padding, PPEG."""

from __future__ import annotations

import pytest
import torch

from mustsurv.models.layers.transmil import (
    PPEG,
    NystromAttention,
    TransMIL,
    iterative_pinv,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _full_attention_reference(attn: NystromAttention, x: torch.Tensor) -> torch.Tensor:
    """Exact softmax attention with the module's own weights and residual convolution."""
    b, n, _ = x.shape
    h, d = attn.heads, attn.dim_head
    q, k, v = (t.view(b, n, h, d).transpose(1, 2) for t in attn.to_qkv(x).chunk(3, dim=-1))
    out = torch.softmax((q * attn.scale) @ k.transpose(-1, -2), dim=-1) @ v + attn.res_conv(v)
    return attn.to_out(out.transpose(1, 2).reshape(b, n, h * d))


def test_iterative_pinv_converges_to_the_pseudo_inverse() -> None:
    torch.manual_seed(0)
    a = torch.softmax(torch.randn(2, 3, 8, 8, dtype=torch.float64) * 2, dim=-1)
    torch.testing.assert_close(iterative_pinv(a, 30), torch.linalg.pinv(a), atol=1e-8, rtol=1e-6)


def test_nystrom_is_exact_for_short_sequences_and_for_segment_constant_tokens() -> None:
    torch.manual_seed(0)
    attn = NystromAttention(32, heads=4, num_landmarks=8, pinv_iterations=40, dropout=0.0).double().eval()
    short = torch.randn(1, 8, 32, dtype=torch.float64)  # n <= landmarks: exact softmax path
    torch.testing.assert_close(attn(short), _full_attention_reference(attn, short))
    # 8 distinct tokens each repeated 5 times in a row: landmarks = the distinct tokens, so the Nyström
    # factorisation reproduces full attention exactly
    distinct = torch.randn(1, 8, 32, dtype=torch.float64)
    x = distinct.repeat_interleave(5, dim=1)
    torch.testing.assert_close(attn(x), _full_attention_reference(attn, x), atol=1e-7, rtol=1e-6)


def test_nystrom_approximates_full_attention_on_generic_input() -> None:
    torch.manual_seed(1)
    attn = NystromAttention(32, heads=4, num_landmarks=16, pinv_iterations=6, dropout=0.0).eval()
    x = torch.randn(1, 300, 32) * 0.3
    ref = _full_attention_reference(attn, x)
    err = (attn(x) - ref).norm() / ref.norm()
    assert err < 0.1


@pytest.mark.parametrize("n", [1, 2, 5, 17, 64])
def test_transmil_square_padding_returns_every_token_and_uses_all(n: int) -> None:
    torch.manual_seed(0)
    model = TransMIL(in_dim=12, dim=16, heads=2, num_landmarks=4, dropout=0.0)
    bag = torch.randn(n, 12, requires_grad=True)
    g, tokens = model(bag)
    assert g.shape == (16,) and tokens.shape == (n, 16)
    (g * torch.randn(16)).sum().backward()  # (a plain sum of a LayerNorm output is constant)
    assert torch.isfinite(bag.grad).all()
    assert (bag.grad.abs().sum(dim=1) > 0).all()  # the class output depends on every patch


def test_ppeg_keeps_class_token_and_grid_shape() -> None:
    ppeg = PPEG(8)
    x = torch.randn(2, 1 + 9, 8)
    y = ppeg(x, 3)
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="PPEG"):
        ppeg(torch.randn(1, 9, 8), 3)


def test_transmil_rejects_empty_bag() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        TransMIL(in_dim=4, dim=8, heads=2)(torch.zeros(0, 4))


def test_activation_checkpointing_gives_the_same_outputs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer above its ``checkpoint_above`` recomputes activations (one head at a time) in backward:
    outputs and gradients equal the plain layer's, dropout included; short sequences and eval mode
    never checkpoint."""
    import mustsurv.models.layers.transmil as transmil_module
    from mustsurv.models.layers.transmil import TransLayer

    torch.manual_seed(0)
    plain = TransLayer(32, heads=4, num_landmarks=8, dropout=0.2)
    ckpt = TransLayer(32, heads=4, num_landmarks=8, dropout=0.2, checkpoint_above=40)
    ckpt.load_state_dict(plain.state_dict())
    calls: list[int] = []
    real = transmil_module.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(1)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(transmil_module, "checkpoint", counting)
    x = torch.randn(1, 50, 32)
    results = []
    for layer in (plain, ckpt):
        inp = x.clone().requires_grad_()
        torch.manual_seed(1)
        out = layer(inp)
        out.square().sum().backward()
        results.append((out.detach(), inp.grad, [p.grad for p in layer.parameters()]))
    assert len(calls) == 1 + 4 + 4  # the layer, its 4 heads, and the heads again when backward recomputes
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=1e-5)
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # summation order differs (one head at a time)
    ckpt(torch.randn(1, 30, 32, requires_grad=True))  # shorter than checkpoint_above
    ckpt.eval()
    ckpt(torch.randn(1, 50, 32, requires_grad=True))  # eval mode
    assert len(calls) == 9



def test_ppeg_is_identity_plus_its_three_convolutions_with_their_gradients() -> None:
    """The fused 7x7 kernel gives TransMIL's PPEG, grid + conv7 + conv5 + conv3, and the same gradients
    for each of the three convolutions."""
    torch.manual_seed(0)
    ppeg = PPEG(8)
    x = torch.randn(2, 1 + 25, 8, requires_grad=True)
    grid = x[:, 1:].transpose(1, 2).reshape(2, 8, 5, 5)
    ref = grid + ppeg.proj7(grid) + ppeg.proj5(grid) + ppeg.proj3(grid)
    ref = torch.cat([x[:, :1], ref.flatten(2).transpose(1, 2)], dim=1)
    weight = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * weight).sum(), [x, *ppeg.parameters()])
    for blocks in (1, 3):  # whole grid, then three channel blocks recomputed in backward
        out = ppeg(x, 5, blocks)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        for got, want in zip(torch.autograd.grad((out * weight).sum(), [x, *ppeg.parameters()]), ref_grads):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_fused_projection_matches_linear_relu_dropout_and_its_gradients() -> None:
    """TransMIL's patch projection under autograd is dropout(relu(linear)): without dropout it equals the
    module stack exactly (values and gradients); with dropout, kept entries are scaled by 1/(1-p), about
    p of the positive ones are dropped, and gradients flow only through the kept entries."""
    from mustsurv.models.layers.transmil import _LinearReLUDropout

    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 16)
    x = torch.randn(400, 12, requires_grad=True)
    ref = torch.relu(lin(x))
    w = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * w).sum(), [x, lin.weight, lin.bias])
    out = _LinearReLUDropout.apply(x, lin.weight, lin.bias, 0.0)
    torch.testing.assert_close(out, ref)
    for got, want in zip(torch.autograd.grad((out * w).sum(), [x, lin.weight, lin.bias]), ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    out = _LinearReLUDropout.apply(x, lin.weight, lin.bias, 0.5)
    kept = out != 0
    torch.testing.assert_close(out[kept], 2 * ref.detach()[kept])
    assert abs(kept.sum().item() / (ref > 0).sum().item() - 0.5) < 0.05
    (gx,) = torch.autograd.grad(out.sum(), [x])
    torch.testing.assert_close(gx, kept.float() * 2 @ lin.weight)


def test_blockwise_nystrom_attention_equals_the_whole_kernels() -> None:
    """Above ``chunk_tokens`` the Nyström kernels are built block by block (softmax over N from a blockwise
    log-sum-exp): the output and the gradients of q, k, v equal the whole-kernel computation."""
    torch.manual_seed(0)
    attn = NystromAttention(16, heads=2, num_landmarks=6)
    q, k, v = (torch.randn(1, 2, 103, 8, requires_grad=True) for _ in range(3))
    w = torch.randn(1, 2, 103, 8)
    results = []
    for chunk in (10_000, 25):  # whole, then 5 blocks (the last one short)
        attn.chunk_tokens = chunk
        out = attn.attend(q, k, v)
        results.append((out, torch.autograd.grad((out * w).sum(), [q, k, v])))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    for got, want in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_residual_convolution_equals_the_2d_depthwise_convolution() -> None:
    """The 1-d form of the Nyström residual convolution gives res_conv's values and gradients."""
    torch.manual_seed(0)
    attn = NystromAttention(16, heads=2, num_landmarks=4)
    v = torch.randn(2, 2, 40, 8, requires_grad=True)
    w = torch.randn(2, 2, 40, 8)
    ref = attn.res_conv(v)
    ref_grads = torch.autograd.grad((ref * w).sum(), [v, attn.res_conv.weight])
    out = attn._residual_conv(v, attn.res_conv.weight)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(torch.autograd.grad((out * w).sum(), [v, attn.res_conv.weight]), ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_projection_under_cpu_autocast_runs_in_bfloat16_and_returns_float32_gradients() -> None:
    """The projection's custom autograd function follows autocast as nn.Linear does, the pseudo-inverse,
    softmaxes and the residual stream stay float32: outputs and gradients (in the parameters' dtype) close to
    the float32 ones."""
    torch.manual_seed(0)
    model = TransMIL(in_dim=24, dim=16, heads=2, num_landmarks=4).eval()
    bag = torch.randn(30, 24)
    ref_g, ref_tokens = model(bag)
    w_tokens, w_g = torch.randn(ref_tokens.shape), torch.randn(ref_g.shape)
    ref = torch.autograd.grad((ref_tokens * w_tokens).sum() + (ref_g * w_g).sum(), [model.fc[0].weight, model.cls_token])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g, tokens = model(bag)
    assert tokens.dtype == torch.float32  # the residual stream stays float32
    assert float((tokens - ref_tokens).abs().max().detach()) > 0  # the products did run in bfloat16
    grads = torch.autograd.grad((tokens.float() * w_tokens).sum() + (g.float() * w_g).sum(),
                                [model.fc[0].weight, model.cls_token])
    for a, b in zip(ref, grads):
        assert b.dtype == torch.float32
        assert float((a - b).abs().max()) <= 0.05 * float(a.abs().max())
    assert float((tokens.float() - ref_tokens).abs().max().detach()) <= 0.05 * float(ref_tokens.abs().max().detach())
