"""LeNet-FID of 10,000 images: zoo_images.metrics against the plain loop a user would otherwise write.

    python plugins/zoo-images/benchmarks/bench_lenet_fid.py [--n 10000] [--repeats 3]

Both sides score the same 10,000 "generated" images (MNIST test digits with a little noise, in
[-1, 1], handed out by a sample(batch) function as a generator would) against the same cached
statistics of MNIST train, with the same LeNet:

- ours: ``generator_metrics``-style path: ``LeNetFeatures`` (8-bit rounding, batches of 500,
  inference mode), ``feature_statistics`` and ``frechet_distance`` (two symmetric float64
  eigendecompositions);
- baseline: pytorch-fid's structure: batches of 50 under no_grad, features to numpy per batch,
  ``np.cov``, ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` (numpy's eigvals of the product when scipy is
  absent).

Prints the seconds of each (best of ``--repeats``), the ratio, and the two FIDs (they must agree).
The target is <= 20 s for 10,000 images on this CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def baseline_fid(model, sample, n, mu_real, sigma_real, batch_size=50):
    feats = []
    done = 0
    with torch.no_grad():
        while done < n:
            b = min(batch_size, n - done)
            x = sample(b)
            x = torch.floor((x + 1) * 127.5 + 0.5).clamp(0, 255) / 255 * 2 - 1
            feats.append(model.features(x).numpy())
            done += b
    feats = np.concatenate(feats).astype(np.float64)
    mu, sigma = feats.mean(axis=0), np.cov(feats, rowvar=False)
    diff = mu - mu_real
    try:
        from scipy import linalg

        covmean = linalg.sqrtm(sigma.dot(sigma_real))
        tr_covmean = np.trace(np.real(covmean))
    except ImportError:
        tr_covmean = np.sqrt(np.linalg.eigvals(sigma.dot(sigma_real)).real.clip(0)).sum()
    return float(diff.dot(diff) + np.trace(sigma) + np.trace(sigma_real) - 2 * tr_covmean)


def ours_fid(extractor, sample, n, mu_real, sigma_real, batch_size=500):
    from zoo_images.metrics import feature_statistics, frechet_distance

    feats, done = [], 0
    with torch.no_grad():
        while done < n:
            b = min(batch_size, n - done)
            feats.append(extractor(sample(b)))
            done += b
    mu, sigma = feature_statistics(torch.cat(feats))
    return frechet_distance(mu, sigma, mu_real, sigma_real)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from zoo_images.data import MNIST
    from zoo_images.metrics import LeNetFeatures, kid, real_statistics

    extractor = LeNetFeatures()
    t0 = time.perf_counter()
    real = real_statistics(extractor, "mnist", "train")
    print(f"real statistics of MNIST train (50,000 images; cached after the first run): "
          f"{time.perf_counter() - t0:.2f} s")
    test = MNIST(layout="image").split("test")
    pool, _ = test.batch(range(0, len(test)))
    noise = torch.randn(pool.shape, generator=torch.Generator().manual_seed(0)) * 0.05
    pool = (pool + noise).clamp(-1, 1)  # float "generator output", not already on the 8-bit grid

    def make_sampler():
        state = {"i": 0}

        def sample(b):
            i = state["i"] % pool.shape[0]
            state["i"] += b
            return pool[i:i + b].clone()

        return sample

    results = {}
    for name, fn in (("baseline (per-batch numpy, batch 50, scipy sqrtm)",
                      lambda: baseline_fid(extractor.model, make_sampler(), args.n, real["mu"], real["sigma"])),
                     ("zoo_images (LeNetFeatures + feature_statistics + frechet_distance)",
                      lambda: ours_fid(extractor, make_sampler(), args.n, real["mu"], real["sigma"]))):
        times, value = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - t)
        results[name] = (min(times), value)
        print(f"{name}: {min(times):.3f} s (best of {args.repeats}), FID {value:.4f}")
    (t_base, fid_base), (t_ours, fid_ours) = results.values()
    print(f"ratio baseline / ours: {t_base / t_ours:.2f}x; FIDs differ by {abs(fid_base - fid_ours):.2e}")
    t = time.perf_counter()
    feats = extractor(pool[: args.n])
    kid_mean, kid_std = kid(feats, real["features"])
    print(f"KID (10 subsets of 1,000) on top: {time.perf_counter() - t:.3f} s (features included), "
          f"KID {kid_mean:.4f} +- {kid_std:.4f}")
    print(f"torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
