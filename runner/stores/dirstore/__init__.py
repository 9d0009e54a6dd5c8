"""The embedded ``dir://`` store: buckets are folders, keys are files.

- ``keys``: where a key lives on disk and the rules that keep it in its bucket;
- ``sidecar``: the SQLite rows of what a file system cannot hold (tags, metadata,
  storage class, ACL, versions, object lock, restore state, cached checksums);
- ``versions``: noncurrent versions set aside under ``.batchctl-store/versions/``;
- ``store``: ``DirStore``, the object-store operations over the three.
"""

from runner.stores.dirstore.keys import check_key
from runner.stores.dirstore.sidecar import NULL_VERSION, SIDECAR
from runner.stores.dirstore.store import DirStore, checksum_hex_md5

__all__ = ["NULL_VERSION", "SIDECAR", "DirStore", "check_key", "checksum_hex_md5"]
