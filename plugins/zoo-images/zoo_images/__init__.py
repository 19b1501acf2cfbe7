"""zoo-images: what every image model of the zoo shares.

- ``zoo_images.data``: the datasets ``mnist`` (moved here from zoo-nice), ``fashion-mnist`` and
  ``image-folder``;
- ``zoo_images.pictures``: sample grids, interpolation strips and real-vs-reconstruction pairs;
- ``zoo_images.metrics``: FID and KID over LeNet (offline, MNIST) or Inception-v3 features;
- ``zoo_images.model`` / ``train``: the LeNet behind LeNet-FID and its recipe ``lenet-mnist``.

Importing this package imports nothing heavy; import the submodules you need.
"""

__version__ = "0.1.0"
