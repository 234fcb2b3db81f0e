"""A tiny flat apt repository (`deb [trusted=yes] URL ./`): Release, Packages and one .deb from dpkg-deb."""

from __future__ import annotations

import email.utils
import hashlib
import subprocess
import tempfile
from pathlib import Path

from tests.support.file_host import File, Files

PACKAGE = "sandgate-tiny"
VERSION = "1.0"
GREETING = "hello from the tiny apt repository"
CONTROL = {
    "Package": PACKAGE, "Version": VERSION, "Architecture": "all", "Maintainer": "Sandgate tests <tests@sandgate.test>",
    "Description": "a one-file package the client-matrix tests download through the proxy",
}  # fmt: skip


def tiny_deb() -> tuple[str, bytes]:
    """The package's file name and bytes, built with `dpkg-deb --build`; it installs
    /usr/share/sandgate-tiny/greeting holding GREETING."""
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in CONTROL.items()))
        share = root / "usr" / "share" / PACKAGE
        share.mkdir(parents=True)
        (share / "greeting").write_text(GREETING + "\n")
        deb = Path(work) / "tiny.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                       check=True, capture_output=True)  # fmt: skip
        return f"{PACKAGE}_{VERSION}_all.deb", deb.read_bytes()


def flat_repository(prefix: str = "/debian") -> Files:
    """The repository under `{prefix}/`: sources entry `deb [trusted=yes] {base_url}{prefix}/ ./`."""
    filename, deb = tiny_deb()
    stanza = {**CONTROL, "Filename": f"./{filename}", "Size": str(len(deb)),
              "MD5sum": hashlib.md5(deb).hexdigest(), "SHA256": hashlib.sha256(deb).hexdigest()}  # fmt: skip
    packages = "".join(f"{k}: {v}\n" for k, v in stanza.items()).encode()
    release = (
        f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: all\n"
        f"MD5Sum:\n {hashlib.md5(packages).hexdigest()} {len(packages)} Packages\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )
    return {
        f"{prefix}/Release": File(release.encode(), "text/plain"),
        f"{prefix}/Packages": File(packages, "text/plain"),
        f"{prefix}/{filename}": File(deb, "application/vnd.debian.binary-package"),
    }
