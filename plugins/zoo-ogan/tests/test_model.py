"""E and G as in the released scripts: shapes, layers, N(0, 0.02) initialisation, self-modulated BN,
encode / standardise / decode, save and load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo_core import ZooError, load_model
from zoo_images.gan import BatchNorm2d, SelfModulatedBatchNorm
from zoo_ogan.model import OGAN, standardize


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3)])
def test_output_shapes(size, channels):
    torch.manual_seed(0)
    model = OGAN.from_config({"img_size": size, "channels": channels, "z_dim": 32}).eval()
    x = model.sample(3)
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1.0
    assert model.encode(x).shape == (3, 32)
    assert model.critic(x).shape == (3,)
    torch.testing.assert_close(model.critic(x), model.encode(x).mean(1))


def test_widths_at_128_px_match_the_script():
    with torch.device("meta"):
        model = OGAN.from_config({"img_size": 128, "channels": 3})
    assert model.widths == {"E": [64, 128, 256, 512, 1024, 128], "G": [4 * 4 * 1024, 512, 256, 128, 64, 3]}
    with torch.device("meta"):
        sm = OGAN.from_config({"img_size": 256, "channels": 3, "z_dim": 256, "kernel": 4, "self_modulated": True})
    assert sm.widths["E"] == [64, 128, 256, 512, 1024, 2048, 256]


def test_layers_follow_o_gan_celeba():
    model = OGAN.from_config({"img_size": 32, "channels": 1})
    convs = [m for m in model.E.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) and c.bias is not None for c in convs)  # bias
    assert model.E.score.bias is not None and model.E.score.out_features == 128
    assert sum(isinstance(m, BatchNorm2d) for m in model.E.features) == len(convs) - 1
    # G: Dense -> Reshape -> BN per channel (not per unit, unlike GAN-QP) -> ReLU
    assert isinstance(model.G.project_norm, BatchNorm2d) and model.G.project_norm.num_features == 256
    ups = [m for m in model.G.stages if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [128, 64, 1]
    assert isinstance(list(model.G.stages)[-1], nn.Tanh)


def test_normal_initialisation():
    torch.manual_seed(0)
    model = OGAN.from_config({"img_size": 64, "channels": 3})
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if m.weight.numel() > 10_000:
                assert m.weight.mean().abs() < 2e-3, name
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.05), name
            if m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0, name
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(bn.momentum == 0.01 and bn.eps == 1e-3 for bn in bns)


def test_self_modulated_variant():
    torch.manual_seed(0)
    model = OGAN.from_config({"img_size": 32, "channels": 1, "z_dim": 16, "kernel": 4, "self_modulated": True})
    smbn = [m for m in model.G.modules() if isinstance(m, SelfModulatedBatchNorm)]
    assert len(smbn) == 3  # after the Dense and after both inner stages
    assert all(m.kernel_size == (4, 4) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    assert not smbn[0].norm.affine  # BN without centre and scale
    # the heads keep glorot-uniform (not N(0, 0.02)): their spread is far from 0.02
    assert smbn[0].beta[0].weight.std() > 0.1
    # h (gamma(z) + 1) + beta(z), both from the raw z
    layer = smbn[1].train()
    x, z = torch.randn(4, layer.norm.num_features, 8, 8), torch.randn(4, 16)
    h = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-3)
    expect = h * (layer.gamma(z)[:, :, None, None] + 1) + layer.beta(z)[:, :, None, None]
    torch.testing.assert_close(layer(x, z), expect, rtol=1e-4, atol=1e-5)
    assert model.eval().sample(2).shape == (2, 1, 32, 32)
    # modulation makes a sample depend on z through every normalisation: another z, another image
    assert not torch.allclose(model(torch.zeros(1, 16)), model(torch.ones(1, 16)))


def test_standardize_and_the_reconstruction_shapes():
    z = torch.randn(5, 12) * 3 + 7
    s = standardize(z)
    torch.testing.assert_close(s.mean(1), torch.zeros(5), atol=1e-6, rtol=0)
    torch.testing.assert_close(s.std(1, unbiased=False), torch.full((5,), 0.9), atol=1e-5, rtol=0)
    model = OGAN.from_config({"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64}).eval()
    x = torch.rand(6, 1, 32, 32) * 2 - 1
    code = model.encode(x)  # (6, 16)
    assert code.shape == (6, 16)
    recon = model.reconstruct(x)
    assert recon.shape == x.shape
    torch.testing.assert_close(recon, model(standardize(code, 0.9)))
    strip = model.interpolate(x[:2], x[2:4], steps=5)  # 2 strips of 5
    assert strip.shape == (10, 1, 32, 32)
    torch.testing.assert_close(strip[0], recon[0])
    torch.testing.assert_close(strip[4], model.reconstruct(x[2:3])[0])
    with pytest.raises(ZooError):
        model.interpolate(x[:1], x[1:2], steps=1)


def test_bad_configs_are_refused():
    for bad in ({"img_size": 48}, {"channels": 2}, {"z_dim": 2}, {"kernel": 1}, {"img_size": 32, "max_channels": 102}):
        with pytest.raises(ZooError):
            OGAN.from_config(bad)


def test_saved_and_loaded_model_gives_identical_samples_and_codes(zoo, tmp_path):
    torch.manual_seed(0)
    model = OGAN.from_config({"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64,
                              "self_modulated": True})
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.encode(model(torch.randn(8, 16)))
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    a = model.sample(8, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, loaded.sample(8, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(model.encode(a), loaded.encode(a))
