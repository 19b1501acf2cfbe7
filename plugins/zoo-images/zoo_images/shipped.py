"""The weights shipped inside this package, pinned: read by the catalogue entry (hooks.py) and by the
LeNet feature extractor (metrics.py) alike, so neither imports the other. No torch here."""

# Every file of zoo_images/weights/lenet-mnist (written by `zoo train lenet-mnist`), pinned by sha256 and size:
# the catalogue entry's `package` block, and what zoo_images.metrics.LeNetFeatures checks before loading.
LENET_FILES = (
    {"path": "config.json", "size": 156,
     "sha256": "295373a7e42bd387ec7c6815d078d3009eb774c166c637df69600cff0dc42b63"},
    {"path": "model.safetensors", "size": 518208,
     "sha256": "eb19f88b0b28a17eafa165a2f9802db270818f67186f73b702ddf7f190f27341"},
    {"path": "README.md", "size": 1434,
     "sha256": "02f977025056961019aa9236d2235b67b092316ec5ffe73b38c98e37ac672fff"},
)
