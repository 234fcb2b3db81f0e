"""A tiny PEP 503 simple index holding one pure-Python wheel, built here by hand (a wheel is a zip)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

from tests.support.file_host import File, Files

PROJECT = "sandgate-tiny"
VERSION = "1.0"
MODULE = "sandgate_tiny"
GREETING = "hello from the tiny index"


def tiny_wheel() -> tuple[str, bytes]:
    """The wheel's file name and bytes: one module whose GREETING the tests print after installing it."""
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    members = {
        f"{MODULE}/__init__.py": f"GREETING = {GREETING!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {VERSION}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: sandgate-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{name},sha256={_urlsafe_digest(data)},{len(data)}\n" for name, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return f"{MODULE}-{VERSION}-py3-none-any.whl", buf.getvalue()


def simple_index(prefix: str = "/simple") -> Files:
    """The index's pages and the wheel, at `{prefix}/` (the index URL to give pip) and below."""
    filename, wheel = tiny_wheel()
    digest = hashlib.sha256(wheel).hexdigest()
    link = f'<a href="{prefix}/{PROJECT}/{filename}#sha256={digest}">{filename}</a>'
    return {
        f"{prefix}/": _html(f'<a href="{prefix}/{PROJECT}/">{PROJECT}</a>'),
        f"{prefix}/{PROJECT}/": _html(link),
        f"{prefix}/{PROJECT}/{filename}": File(wheel, "application/octet-stream"),
    }


def _html(body: str) -> File:
    page = f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n"
    return File(page.encode(), "text/html")


def _urlsafe_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
