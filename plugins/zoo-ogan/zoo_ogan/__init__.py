"""O-GAN (Su 2019, arXiv 1903.01931) for the kexue.fm zoo: a GAN whose discriminator is also an
encoder, with the released code's combined loss on the core's Trainer.

Import nothing heavy here: ``zoo_ogan.hooks`` is imported by ``zoo list``.
"""

__version__ = "0.1.0"
