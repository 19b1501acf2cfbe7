"""G and D as in the original scripts: shapes, channel counts, Keras initialisation and batch norm, save/load."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo_core import ZooError
from zoo_core.model import load_folder
from zoo_ganqp.model import GANQP
from zoo_images.gan import BN_EPS, BN_MOMENTUM, BatchNorm1d, BatchNorm2d, LayerNorm2d


def _convs(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (128, 3)])
def test_output_shapes(size, channels):
    torch.manual_seed(0)
    model = GANQP.from_config({"img_size": size, "channels": channels}).eval()
    with torch.no_grad():
        x = model(torch.randn(2, 128))
        scores = model.critic(x)
    assert x.shape == (2, channels, size, size)
    assert scores.shape == (2,)
    assert x.abs().max() <= 1.0  # tanh
    assert model.sample(3).shape == (3, channels, size, size)


def test_channels_at_128_px_match_the_script():
    # methods.md: D 5 Conv2D (64, 128, 256, 512, 1024); G Dense(4*4*1024) -> 512, 256, 128, 64 -> 3
    with torch.device("meta"):
        model = GANQP.from_config({"img_size": 128, "channels": 3})
    assert model.num_layers == 4 and model.max_channels == 1024
    assert model.widths == {"D": [64, 128, 256, 512, 1024], "G": [4 * 4 * 1024, 512, 256, 128, 64, 3]}
    assert model.D.score.in_features == 1024 * 4 * 4


def test_channels_at_256_and_512_px_and_at_32_px_mnist():
    with torch.device("meta"):
        m256 = GANQP.from_config({"img_size": 256})
        m512 = GANQP.from_config({"img_size": 512, "max_channels": 2048})
        m512_default = GANQP.from_config({"img_size": 512})
        m32 = GANQP.from_config({"img_size": 32, "channels": 1})
    assert m256.widths["D"] == [64, 128, 256, 512, 1024, 2048]  # 6 convolutions
    assert m512.widths["D"] == [32, 64, 128, 256, 512, 1024, 2048]  # 7 convolutions, 32 -> 2048
    assert m512_default.widths == m512.widths  # the default cap is the 512 px script's 4 * 512
    assert m32.widths == {"D": [64, 128, 256], "G": [4 * 4 * 256, 128, 64, 1]}


def test_layers_kernels_strides_and_biases():
    model = GANQP.from_config({"img_size": 64, "channels": 3})
    convs = _convs(model.D, nn.Conv2d)
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) and c.bias is None for c in convs)
    assert model.D.score.bias is None and model.D.score.out_features == 1
    # BN after every convolution but the first, then LeakyReLU(0.2)
    layers = list(model.D.features)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, BatchNorm2d) for m in layers) == len(convs) - 1
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    ups = _convs(model.G, nn.ConvTranspose2d)
    assert all(u.kernel_size == (5, 5) and u.stride == (2, 2) and u.padding == (2, 2) and u.output_padding == (1, 1)
               for u in ups)
    assert all(u.bias is not None for u in ups) and model.G.project.bias is not None  # Keras: use_bias=True
    assert isinstance(model.G.project_norm, BatchNorm1d)  # BN on the Dense output, per unit
    assert isinstance(list(model.G.stages)[-1], nn.Tanh)


def test_keras_initialisation_and_batch_norm_settings():
    torch.manual_seed(0)
    model = GANQP.from_config({"img_size": 32, "channels": 1})
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.weight
            rf = w[0, 0].numel() if w.dim() == 4 else 1
            fan_sum = (w.shape[0] + w.shape[1]) * rf
            limit = math.sqrt(6.0 / fan_sum)  # glorot uniform
            assert w.abs().max() <= limit
            assert w.abs().max() > 0.95 * limit  # it fills the interval
            # uniform on [-a, a] has variance a^2 / 3
            assert w.var().item() == pytest.approx(limit ** 2 / 3, rel=0.1 if w.numel() > 1000 else 0.5)
            if m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 + 1 + 2  # D: 2 (of 3 convs); G: Dense + 2 stages
    for bn in norms:
        assert bn.momentum == BN_MOMENTUM == 0.01 and bn.eps == BN_EPS == 1e-3
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_batch_norm_running_statistics_follow_keras_momentum():
    bn = BatchNorm2d(3)
    x = torch.randn(8, 3, 4, 4) * 2 + 5
    bn.train()
    y = bn(x)
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True)
    torch.testing.assert_close(bn.running_mean, 0.99 * torch.zeros(3) + 0.01 * mean)
    torch.testing.assert_close(bn.running_var, 0.99 * torch.ones(3) + 0.01 * var)
    expect = (x - mean.view(1, 3, 1, 1)) / torch.sqrt(x.var((0, 2, 3), unbiased=False).view(1, 3, 1, 1) + 1e-3)
    torch.testing.assert_close(y, expect, rtol=1e-5, atol=1e-5)


def test_critic_norm_variants():
    model = GANQP.from_config({"img_size": 32, "channels": 1, "critic_norm": "layer"})
    assert sum(isinstance(m, LayerNorm2d) for m in model.D.modules()) == 2
    assert not any(isinstance(m, BatchNorm2d) for m in model.D.modules())
    model = GANQP.from_config({"img_size": 32, "channels": 1, "critic_norm": "none"})
    assert not any(isinstance(m, (LayerNorm2d, BatchNorm2d)) for m in model.D.modules())
    # the norm draws no random numbers: the same seed gives the same convolutions and Dense as with batch norm
    # (so WGAN-GP's nets start where the other losses' do)
    nets = {}
    for norm in ("batch", "layer"):
        torch.manual_seed(0)
        nets[norm] = GANQP.from_config({"img_size": 32, "channels": 1, "critic_norm": norm})
    weights = {norm: {k: v for k, v in m.state_dict().items() if "weight" in k and v.dim() > 1}
               for norm, m in nets.items()}
    assert weights["batch"].keys() == weights["layer"].keys() and len(weights["batch"]) == 4 + 4
    assert all(torch.equal(weights["batch"][k], weights["layer"][k]) for k in weights["batch"])
    # a per-sample norm: a sample's score does not depend on the rest of the batch
    model = nets["layer"].train()
    x = torch.randn(4, 1, 32, 32)
    torch.testing.assert_close(model.critic(x)[:2], model.critic(x[:2]))


def test_memory_layout_is_the_configs_when_built_and_when_loaded(zoo, tmp_path):
    convs = lambda m: [p for p in m.parameters() if p.dim() == 4]
    torch.manual_seed(0)
    nhwc = GANQP.from_config({"img_size": 32, "channels": 1, "max_channels": 64})
    torch.manual_seed(0)
    plain = GANQP.from_config({"img_size": 32, "channels": 1, "max_channels": 64, "channels_last": False})
    assert nhwc.config.channels_last and convs(nhwc)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs(nhwc))
    assert sum(not p.is_contiguous() for p in convs(nhwc)) >= 4  # (those with 1 channel are both)
    assert all(p.is_contiguous() for p in convs(plain))
    assert all(torch.equal(a, b) for a, b in zip(nhwc.state_dict().values(), plain.state_dict().values()))
    nhwc.save_pretrained(tmp_path / "m")
    loaded = load_folder(tmp_path / "m")
    assert loaded.config.channels_last
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs(loaded))


def test_bad_configs_are_refused():
    for bad in ({"img_size": 48}, {"img_size": 8}, {"channels": 2}, {"critic_norm": "spectral"},
                {"img_size": 32, "max_channels": 102}):
        with pytest.raises(ZooError):
            GANQP.from_config(bad)


def test_saved_and_loaded_model_gives_identical_samples(zoo, tmp_path):
    torch.manual_seed(0)
    model = GANQP.from_config({"img_size": 32, "channels": 1, "max_channels": 64})
    model.train()
    with torch.no_grad():  # move the BN running statistics away from their initial values
        for _ in range(3):
            model.critic(model(torch.randn(8, 128)))
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_folder(tmp_path / "m")
    a = model.sample(16, generator=torch.Generator().manual_seed(7))
    b = loaded.sample(16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    c = loaded.sample(16, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)
