"""Which filesystem a path lies on, and whether it is a network filesystem (NFS, Lustre, GPFS ...).

SQLite's write-ahead log needs shared memory between every process that opens a database, which a network
filesystem cannot give across hosts ("WAL does not work over a network filesystem", SQLite's own docs); its
locks are unreliable there too. :mod:`afos.storage.store` therefore runs a database on a network filesystem
differently, and readers there never open another run's database while that run is running.

The type comes from ``/proc/self/mountinfo`` (Linux): the mount whose mount point is the longest prefix of
the path. ``AFOS_NETWORK_FS=1`` (or ``0``) overrides the answer for filesystems this list does not know.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Filesystem types (as mountinfo names them) shared between hosts over a network.
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "beegfs", "afs", "9p",
    "panfs", "orangefs", "pvfs2", "wekafs", "davfs", "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.s3fs",
    "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.beegfs",
})
OVERRIDE = "AFOS_NETWORK_FS"
MOUNTINFO = Path("/proc/self/mountinfo")

_ESCAPE = re.compile(r"\\([0-7]{3})")


def mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every line of a ``/proc/<pid>/mountinfo`` text."""
    found = []
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, kinds = fields.split(), tail.split()
        if len(parts) >= 5 and kinds:
            found.append((_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), parts[4]), kinds[0]))
    return found


def mount_type(path: str, mountinfo: str) -> str | None:
    """The type of the mount an absolute, resolved ``path`` lies in: the longest mount point it is below."""
    best, kind = -1, None
    for point, fs_type in mounts(mountinfo):
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > best:
            best, kind = len(point), fs_type
    return kind


def filesystem_type(path: str | Path) -> str | None:
    """The type of the filesystem ``path`` (or its nearest existing parent) lies on; None where the system
    does not say (no ``/proc``)."""
    try:
        mountinfo = MOUNTINFO.read_text()
    except OSError:
        return None
    target = Path(path).absolute()
    while not target.exists() and target != target.parent:
        target = target.parent
    return mount_type(str(target.resolve()), mountinfo)


def is_network_filesystem(path: str | Path) -> bool:
    """Whether ``path`` lies on a network filesystem (see the module docstring for the override)."""
    forced = os.environ.get(OVERRIDE, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return filesystem_type(path) in NETWORK_TYPES
