"""GAN-QP (Su 2018, arXiv 1811.07296) for the kexue.fm zoo: G and D of the original scripts, the
GAN-QP losses (L1, L2) and the WGAN-GP and SGAN baselines on the core's Trainer.

Import nothing heavy here: ``zoo_ganqp.hooks`` is imported by ``zoo list``.
"""

__version__ = "0.1.0"
