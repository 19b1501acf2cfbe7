"""zoo-nice: NICE (Dinh, Krueger, Bengio 2014) on MNIST for the kexue.fm model zoo.

Import the heavy parts from their modules (``zoo_nice.model``, ``zoo_nice.train``); this
package file stays torch-free so the plugin's hooks load fast. The MNIST dataset the recipe
trains on is zoo-images' ``"mnist"`` (flat layout, dequantised), shared with the GAN plugins.
"""

__version__ = "0.1.0"
