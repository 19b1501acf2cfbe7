"""zoo-ganqp's tab in ``zoo serve``: a grid of generated images from a seed, drawn again on every change."""

from __future__ import annotations


def build(tab) -> None:
    """Seed and number of samples in; the grid out (endpoint ``<model>_sample``): zoo-images' generator grid."""
    from zoo_images.demo import add_sample_grid

    add_sample_grid(tab, "GAN-QP samples G(z), z from a seed: (seed, samples 1-100) -> grid")
