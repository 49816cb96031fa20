"""Progressive GAN (growth schedule, fade-in, equalised LR, minibatch stddev) and FastGAN (skip-layer
excitation, self-supervised discriminator)."""

import math

import pytest
import torch
import torch.nn.functional as F

from engine.config import ConfigError
from engine.models import build_model, get_model
from engine.models.progressive import EqualConv2d, EqualLinear, ProgressiveSchedule, minibatch_stddev
from engine.train.ema import EMA

TINY_PRO = {"latent_dim": 16, "fmap_base": 256, "fmap_max": 32, "fade_images": 100, "stable_images": 50}
TINY_FAST = {"latent_dim": 16, "ngf": 4, "ndf": 4}
RESOLUTIONS = (32, 64, 128, 256)


def _pair(name, options, resolution, seed=0, **extra):
    torch.manual_seed(seed)
    return build_model(name, {**options, **extra}, resolution)


def _set(pair, images):
    pair.generator.set_progress(images)
    pair.discriminator.set_progress(images)


# ------------------------------------------------------------------ progressive


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_progressive_shapes_at_every_stage(resolution):
    pair = _pair("progressive", TINY_PRO, resolution, start_resolution=8)
    stages = pair.generator.schedule.num_stages
    assert stages == int(math.log2(resolution)) - 2
    for images in (0, 50 + 150 * (stages - 2) + 30, 10**9):  # first stage, mid-fade of the last, the end
        _set(pair, images)
        out = pair.generator(torch.randn(5, 16))  # 5: minibatch stddev falls back to groups of 1
        assert out.shape == (5, 3, resolution, resolution) and out.abs().max() <= 1
        logits = pair.discriminator(out)
        assert logits.shape == (5,) and torch.isfinite(logits).all()


def test_schedule_fades_linearly_then_holds():
    s = ProgressiveSchedule(start_resolution=4, resolution=32, fade_images=100, stable_images=50)
    assert s.num_stages == 4 and [s.stage_resolution(k) for k in range(4)] == [4, 8, 16, 32]
    assert s.at(0) == (0, 1.0) and s.at(49) == (0, 1.0)  # the first stage has no fade
    for stage, start in ((1, 50), (2, 200), (3, 350)):
        for i in range(0, 100, 7):
            assert s.at(start + i) == (stage, pytest.approx(i / 100))
        assert s.at(start + 100) == (stage, 1.0) and s.at(start + 149) == (stage, 1.0)
    assert s.at(500) == (3, 1.0) and s.at(10**12) == (3, 1.0)
    eight = ProgressiveSchedule(8, 32, 100, 50)
    assert eight.num_stages == 3 and eight.at(299) == (2, pytest.approx(0.99)) and eight.at(300) == (2, 1.0)
    assert ProgressiveSchedule(4, 32, 0, 10).at(10) == (1, 1.0)
    with pytest.raises(ConfigError):
        ProgressiveSchedule(16, 32, 100, 50)
    with pytest.raises(ConfigError):
        ProgressiveSchedule(4, 32, 0, 0)


def test_set_progress_fills_buffers_and_progress_info():
    pair = _pair("progressive", TINY_PRO, 32)
    assert pair.generator.progress_info() == {"stage_resolution": 4.0, "alpha": 1.0}
    _set(pair, 225)  # stage 2 (16 px), a quarter into its fade
    for net in (pair.generator, pair.discriminator):
        assert net.stage.item() == 2 and net.alpha.item() == 0.25
        assert {"stage", "alpha"} <= set(net.state_dict())
    assert pair.generator.progress_info() == {"stage_resolution": 16.0, "alpha": 0.25}
    known = pair.generator._known
    pair.generator(torch.randn(2, 16))
    assert pair.generator._known is known  # set_progress told it: the forward pass did not read the buffers back


def test_state_dict_round_trip_restores_stage_and_outputs():
    pair = _pair("progressive", TINY_PRO, 64)
    _set(pair, 50 + 150 + 37)  # 16 px, α = 0.37
    z, x = torch.randn(4, 16), torch.rand(4, 3, 64, 64) * 2 - 1
    images, logits = pair.generator(z), pair.discriminator(x)
    fresh = _pair("progressive", TINY_PRO, 64, seed=1)
    fresh.generator(z)  # reads (and remembers) stage 0 before loading
    fresh.generator.load_state_dict(pair.generator.state_dict())
    fresh.discriminator.load_state_dict(pair.discriminator.state_dict())
    assert fresh.generator.progress_info() == {"stage_resolution": 16.0, "alpha": pytest.approx(0.37)}
    assert torch.equal(fresh.generator(z), images) and torch.equal(fresh.discriminator(x), logits)


def test_ema_generator_follows_the_stage_through_buffer_copies():
    pair = _pair("progressive", TINY_PRO, 32)
    ema = EMA(pair.generator, halflife_images=1e9, rampup=0.0)
    z = torch.randn(3, 16)
    assert torch.equal(ema.ema(z), pair.generator(z))  # both at stage 0
    pair.generator.set_progress(260)  # stage 2, α = 0.6
    ema.update(pair.generator, batch_images=1, images_seen=260)
    assert ema.ema.progress_info() == pair.generator.progress_info()
    assert torch.allclose(ema.ema(z), pair.generator(z), atol=1e-6)


@pytest.mark.parametrize("start", [4, 8])
def test_fade_in_starts_from_the_previous_stage_output(start):
    pair = _pair("progressive", TINY_PRO, 32, start_resolution=start)
    g, schedule = pair.generator, pair.generator.schedule
    z = torch.randn(3, 16)
    for stage in range(1, schedule.num_stages):
        switch = 50 + 150 * (stage - 1)
        g.set_progress(switch - 1)
        assert g.current() == (stage - 1, 1.0)
        before = g(z)
        factor = 32 // schedule.stage_resolution(stage - 1)
        assert torch.equal(before, F.interpolate(before[:, :, ::factor, ::factor], scale_factor=factor))
        g.set_progress(switch)
        assert g.current() == (stage, 0.0)
        assert torch.allclose(g(z), before, atol=1e-6)
        g.set_progress(switch + 50)
        assert (g(z) - before).abs().max() > 1e-3  # halfway into the fade the new block shows


def test_discriminator_at_the_first_stage_ignores_fine_detail():
    pair = _pair("progressive", TINY_PRO, 32)
    x = torch.rand(4, 3, 32, 32) * 1.4 - 0.7
    checker = (torch.arange(32).view(32, 1) + torch.arange(32).view(1, 32)) % 2 * 0.6 - 0.3  # zero mean per 2×2
    d = pair.discriminator
    assert torch.allclose(d(x + checker), d(x), atol=1e-5)
    d.set_progress(10**9)  # full resolution: the detail is seen
    assert (d(x + checker) - d(x)).abs().max() > 1e-4


def test_minibatch_stddev_groups_and_fallback():
    x = torch.randn(8, 3, 2, 2)
    out = minibatch_stddev(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for i in range(8):
        group = x[i % 2::2]  # group size 4: samples with the same index mod 2
        expected = (group.var(dim=0, correction=0) + 1e-8).sqrt().mean()
        assert torch.allclose(out[i, 3], expected.expand(2, 2), atol=1e-6)
    six = minibatch_stddev(x[:6])  # 6 is not divisible by 4: groups of 3
    expected = (x[0:6:2].var(dim=0, correction=0) + 1e-8).sqrt().mean()
    assert torch.allclose(six[4, 3], expected.expand(2, 2), atol=1e-6)
    assert torch.allclose(minibatch_stddev(x[:5])[:, 3], torch.full((5, 2, 2), 1e-4))  # groups of 1


def test_equalised_learning_rate_scales_weights_and_gradients():
    conv = EqualConv2d(4, 5, 3)
    assert 0.8 < conv.weight.std().item() < 1.2 and not conv.bias.any()
    x = torch.randn(2, 4, 6, 6)
    upstream = torch.randn(2, 5, 6, 6)
    (conv(x) * upstream).sum().backward()
    he = math.sqrt(2 / (4 * 3 * 3))
    effective = (conv.weight.detach() * he).requires_grad_(True)
    reference = F.conv2d(x, effective, conv.bias.detach(), padding=1)
    (reference * upstream).sum().backward()
    assert torch.allclose(conv(x), reference, atol=1e-5)
    assert torch.allclose(conv.weight.grad, effective.grad * he, atol=1e-5)
    linear = EqualLinear(10, 3, gain=1.0)
    assert torch.allclose(linear(torch.eye(10)), linear.weight.t() / math.sqrt(10) + linear.bias, atol=1e-6)


@pytest.mark.parametrize("name,options", [("progressive", TINY_PRO), ("fastgan", TINY_FAST)])
def test_bf16_autocast_and_channels_last(name, options):
    pair = _pair(name, options, 32)
    g, d = (m.to(memory_format=torch.channels_last) for m in (pair.generator, pair.discriminator))
    if name == "progressive":
        _set(pair, 60)  # fading in the 8×8 block
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = g(torch.randn(4, 16))
        logits = d(images)
        loss = logits.float().mean() + (d.forward_with_aux(images.detach())[1] if name == "fastgan" else 0)
    loss.backward()
    assert images.shape == (4, 3, 32, 32) and logits.shape == (4,) and torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in g.parameters())


# ------------------------------------------------------------------ fastgan


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_fastgan_shapes_and_skip_layer_excitation(resolution):
    pair = _pair("fastgan", TINY_FAST, resolution)
    g, d = pair.generator, pair.discriminator
    expected = {f"{r}_{8 * r}" for r in (4, 8, 16, 32) if 8 * r <= resolution}
    assert set(g.sle.keys()) == expected
    seen = {}
    hooks = [g.sle[key].register_forward_hook(lambda m, inp, out, key=key: seen.update({key: (inp[0].shape, out)}))
             for key in expected]
    images = g(torch.randn(3, 16))
    for key, (shape, gate) in seen.items():
        low, high = map(int, key.split("_"))
        channels = g.ups[str(high)][-2].num_features // 2  # the GLU halves the last BatchNorm's channels
        assert shape[-1] == low and gate.shape == (3, channels, 1, 1)
        assert 0 < gate.min() and gate.max() < 1
    assert set(seen) == expected
    for hook in hooks:
        hook.remove()
    assert images.shape == (3, 3, resolution, resolution) and images.abs().max() <= 1
    logits, aux = d.forward_with_aux(images.detach())
    assert d(images).shape == (3,) and logits.shape == (3,) and aux.dim() == 0 and aux.item() > 0


def test_fastgan_gates_change_the_image():
    pair = _pair("fastgan", TINY_FAST, 64)
    g = pair.generator  # training mode: BatchNorm normalises with the batch's statistics
    z = torch.randn(4, 16)
    gated = g(z)
    hook = g.sle["8_64"].register_forward_hook(lambda m, inp, out: torch.ones_like(out))
    assert (g(z) - gated).abs().max() > 1e-4
    hook.remove()
    assert torch.equal(g(z), gated)


def test_fastgan_reconstruction_targets_are_as_documented():
    d = _pair("fastgan", TINY_FAST, 64).discriminator.eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.manual_seed(3)
    logits, aux = d.forward_with_aux(x)
    torch.manual_seed(3)
    row, col = divmod(int(torch.randint(4, (1,))), 2)
    with torch.no_grad():
        f16, f8 = d._features(x)
        full = F.l1_loss(d.decoder_full(f8), F.interpolate(x, size=32, mode="area"))
        crop = f16[:, :, 8 * row:8 * row + 8, 8 * col:8 * col + 8]
        part = F.l1_loss(d.decoder_part(crop), x[:, :, 32 * row:32 * row + 32, 32 * col:32 * col + 32])
    assert d.decode_size == 32
    assert torch.allclose(aux, full + part, atol=1e-6) and torch.allclose(logits, d(x))


def test_fastgan_aux_loss_trains_the_discriminator():
    d = _pair("fastgan", TINY_FAST, 32).discriminator
    smooth = F.interpolate(torch.rand(4, 3, 4, 4) * 2 - 1, size=32, mode="bilinear", align_corners=False)
    _, aux = d.forward_with_aux(smooth)
    aux.backward()
    stem = d.stem[0].parametrizations.weight.original
    assert stem.grad is not None and stem.grad.abs().sum() > 0  # into the shared trunk, not just the decoders
    assert d.decoder_part.net[-2].parametrizations.weight.original.grad.abs().sum() > 0
    opt = torch.optim.Adam(d.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        _, aux = d.forward_with_aux(smooth)
        opt.zero_grad()
        aux.backward()
        opt.step()
        losses.append(aux.item())
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5])


def test_registration():
    fast, pro = get_model("fastgan"), get_model("progressive")
    assert fast.loss == "hinge" and pro.loss is None
    assert fast.resolutions == pro.resolutions == RESOLUTIONS
    assert pro.options["latent_dim"] == 512 and fast.options["latent_dim"] == 256
    with pytest.raises(ConfigError, match="start_resolution"):
        build_model("progressive", {"start_resolution": 16}, 64)
    with pytest.raises(ConfigError, match="fastgan"):
        build_model("fastgan", {"ngf": 0}, 64)
