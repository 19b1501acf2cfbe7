"""A loopback Hugging Face Hub for tests: the real ``huggingface_hub`` client talks to it over 127.0.0.1.

``LocalHub`` serves model (and dataset) repos from a folder and speaks the parts of
the Hub's HTTP protocol that ``hf_hub_download``, ``snapshot_download``,
``HfApi.list_repo_tree`` / ``repo_info`` and ``HfApi.create_repo`` /
``upload_folder`` / ``create_commit`` use (huggingface_hub 2.4.0; see
``shared/reference/hub-protocol.md``). It never sends ``X-Xet-Hash``, so the
client always stays on plain HTTP.

Typical use::

    with LocalHub(tmp_path / "hub") as hub:
        commit = hub.publish("org/tiny", {"config.json": b"{}", "model.safetensors": data})
        pin = hub.pin("org/tiny")              # a zoo_core.pins.HubPin at that commit
        os.environ["HF_ENDPOINT"] = hub.endpoint
        ...
        hub.corrupt("org/tiny", "model.safetensors")           # same length, other bytes
        hub.drop_connection("org/tiny", "model.safetensors", after_bytes=1000)
        hub.stall("org/tiny", "model.safetensors", after_bytes=1000)  # hang until release_stalls()
        assert not [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]

One job per module:

- ``storage``: ``RepoStore``, the repos, commits and content-addressed blobs under the root
  folder (one JSON file per repo, so a hub can be reopened), behind a public, locked API;
- ``faults``: fault injection (corrupt / heal, drop_connection, stall / release, fail);
- ``traffic``: the request log and the sent-bytes counters;
- ``handler``: the HTTP request handler (the Hub's protocol), which uses only the public API of the above;
- ``server``: ``LocalHub``, which starts and stops the server and is what tests hold.

Only the standard library is used (``http.server``), plus ``zoo_core.files`` for atomic writes and
``zoo_core.pins`` for ``pin()``.
"""

from __future__ import annotations

from .faults import Faults
from .server import DEFAULT_TOKEN, LocalHub
from .storage import HubError, RepoStore, git_blob_sha1, lfs_pointer
from .traffic import RequestRecord, Traffic

__all__ = ["DEFAULT_TOKEN", "Faults", "HubError", "LocalHub", "RepoStore", "RequestRecord", "Traffic",
           "git_blob_sha1", "lfs_pointer"]
