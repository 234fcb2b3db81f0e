"""A tiny npm registry: one package's metadata document and its tarball, as `npm install NAME` fetches them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

from tests.support.file_host import File, Files

PACKAGE = "sandgate-tiny"
VERSION = "1.0.0"
GREETING = "hello from the tiny registry"


def tiny_tarball() -> bytes:
    """The package tarball (gzip'd tar with everything under `package/`), exporting GREETING."""
    members = {
        "package/package.json": json.dumps({"name": PACKAGE, "version": VERSION, "main": "index.js"}).encode(),
        "package/index.js": f"module.exports = {json.dumps(GREETING)};\n".encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def registry(base_url: str, prefix: str = "/npm") -> Files:
    """The registry under `{prefix}/` (give npm `--registry {base_url}{prefix}/`); the metadata names the
    tarball by its absolute URL, so `base_url` is the one the clients use, e.g. `http://allowed.test:40123`."""
    tarball = tiny_tarball()
    tarball_path = f"{prefix}/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    manifest = {
        "name": PACKAGE, "version": VERSION, "main": "index.js",
        "dist": {"tarball": base_url + tarball_path, "shasum": hashlib.sha1(tarball).hexdigest(),
                 "integrity": integrity},
    }  # fmt: skip
    document = {"name": PACKAGE, "dist-tags": {"latest": VERSION}, "versions": {VERSION: manifest}}
    return {
        f"{prefix}/{PACKAGE}": File(json.dumps(document).encode(), "application/json"),
        tarball_path: File(tarball, "application/octet-stream"),
    }
