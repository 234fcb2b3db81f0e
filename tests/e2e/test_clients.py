"""The client matrix: real clients from Debian, configured only by the proxy environment Sandgate sets inside
a sandbox (plus the tests' CA through each client's standard variable or option), fetch from test hosts over
plain HTTP and HTTPS, and get Sandgate's 403 with `x-sandgate-deny-reason` for a host not on the allowlist.

One session in the `sandgate-clients` image (scripts/setup.sh builds it from
control_plane/sandbox/packages-clients.txt) serves the whole module; so do the test hosts: a file site per
scheme holding a PEP 503 index, an npm registry and a flat apt repository, a git smart-HTTP host per scheme,
and an HTTP/2 host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import SandgateClient
from tests.support import apt_repo, git_http, npm_registry, pypi_index
from tests.support.file_host import FileHost
from tests.support.git_http import GitHost
from tests.support.h2_host import H2Host
from tests.support.service import SandgateProcess
from tests.support.upstream import make_test_ca

CLIENTS_IMAGE = "sandgate-clients:latest"
ALLOWED, DENIED = "allowed.test", "other.test"  # both resolve to the test hosts on 127.0.0.1
DENY_HEADER = "x-sandgate-deny-reason: host-not-allowed"
SCHEMES = ["http", "https"]
CA = "/tmp/ca.pem"
# The tests' CA through each client's standard variable; clients with none get their CA option.
CA_ENV = {
    "SSL_CERT_FILE": CA, "REQUESTS_CA_BUNDLE": CA, "PIP_CERT": CA, "CURL_CA_BUNDLE": CA, "GIT_SSL_CAINFO": CA,
    "NODE_EXTRA_CA_CERTS": CA,
}  # fmt: skip
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Hosts:
    files: dict[str, FileHost]  # by scheme: the simple index, the npm registry and the apt repository
    git: dict[str, GitHost]  # by scheme
    h2: H2Host
    ca_pem: bytes

    def url(self, scheme: str, host: str) -> str:
        """The file site's base URL for `scheme` under the name `host`."""
        return self.files[scheme].url(host)

    def ports(self) -> list[int]:
        return [h.port for h in (*self.files.values(), *self.git.values(), self.h2)]


@dataclass(frozen=True)
class Sandbox:
    """The module's session in the clients image; `run` returns the exit code and stdout+stderr."""

    client: SandgateClient
    session_id: str

    def run(self, script: str, stdin: bytes = b"") -> tuple[int, str]:
        code, out, err = self.client.sh(self.session_id, script, stdin=stdin)
        return code, out + err


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    work = tmp_path_factory.mktemp("client-hosts")
    ca_path, tls = make_test_ca(work, [ALLOWED, DENIED])
    (work / "git").mkdir()
    git_http.make_repository(work / "git")
    with ExitStack() as stack:
        files = {"http": stack.enter_context(FileHost()), "https": stack.enter_context(FileHost(tls))}
        git = {
            "http": stack.enter_context(GitHost(work / "git")),
            "https": stack.enter_context(GitHost(work / "git", tls)),
        }
        h2 = stack.enter_context(H2Host(work / "server.pem", work / "server.key"))
        for site in files.values():
            site.files.update(pypi_index.simple_index())
            site.files.update(npm_registry.registry(site.url(ALLOWED)))
            site.files.update(apt_repo.flat_repository())
        yield Hosts(files, git, h2, ca_path.read_bytes())


@pytest.fixture(scope="module")
def sandbox(sandgate: SandgateProcess, hosts: Hosts, docker_client: docker.DockerClient) -> Iterator[Sandbox]:
    try:
        docker_client.images.get(CLIENTS_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{CLIENTS_IMAGE} is missing: scripts/setup.sh builds it")
    client = SandgateClient(sandgate)
    try:
        session = client.create(image=CLIENTS_IMAGE, env=CA_ENV, egress=[{"host": ALLOWED, "ports": hosts.ports()}])
        box = Sandbox(client, session.id)
        assert box.run(f"cat > {CA}", stdin=hosts.ca_pem) == (0, "")
        yield box
    finally:
        client.cleanup()


def assert_denied(code: int, out: str, *signs: str) -> None:
    """The client failed, and what it printed shows Sandgate's refusal (`signs`: its 403, the reason header)."""
    assert code != 0, out
    for sign in signs:
        assert sign in out, f"{sign!r} not in:\n{out}"


# ---- Python: urllib, http.client, requests, pip ----------------------------------------------------------------

URLLIB = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=30) as resp:
        print(resp.status, resp.read().decode())
except urllib.error.HTTPError as err:
    print(err.code, "x-sandgate-deny-reason:", err.headers["x-sandgate-deny-reason"])
    sys.exit(1)
"""

# http.client does not read the environment: this program takes the proxy from it, as a client library would.
HTTP_CLIENT = """
import base64, http.client, os, sys, urllib.parse
scheme, host, port, path = sys.argv[1:]
proxy = urllib.parse.urlsplit(os.environ[scheme + "_proxy"])
auth = {"Proxy-Authorization": "Basic " + base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()}
if scheme == "https":
    conn = http.client.HTTPSConnection(proxy.hostname, proxy.port, timeout=30)
    conn.set_tunnel(host, int(port), headers=auth)
    conn.request("GET", path)
else:
    conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=30)
    conn.request("GET", f"http://{host}:{port}{path}", headers=auth)
resp = conn.getresponse()
print(resp.status, "x-sandgate-deny-reason:", resp.getheader("x-sandgate-deny-reason"), resp.read().decode())
sys.exit(resp.status != 200)
"""

REQUESTS = """
import sys, requests
resp = requests.get(sys.argv[1], timeout=30)
print(resp.status_code, "x-sandgate-deny-reason:", resp.headers.get("x-sandgate-deny-reason"), resp.text)
sys.exit(resp.status_code != 200)
"""


def python_denied_signs(scheme: str) -> tuple[str, ...]:
    """Python shows a refused plain request's status and headers; a refused tunnel only as its status line."""
    return ("403 " + DENY_HEADER,) if scheme == "http" else ("Tunnel connection failed: 403 Forbidden",)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_python_urllib(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    code, out = sandbox.run(f"python3 - {hosts.url(scheme, ALLOWED)}/simple/", stdin=URLLIB.encode())
    assert code == 0 and out.startswith("200 ") and pypi_index.PROJECT in out, out
    code, out = sandbox.run(f"python3 - {hosts.url(scheme, DENIED)}/simple/", stdin=URLLIB.encode())
    assert_denied(code, out, *python_denied_signs(scheme))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_python_http_client(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    port = hosts.files[scheme].port
    code, out = sandbox.run(f"python3 - {scheme} {ALLOWED} {port} /simple/", stdin=HTTP_CLIENT.encode())
    assert code == 0 and out.startswith("200 ") and pypi_index.PROJECT in out, out
    code, out = sandbox.run(f"python3 - {scheme} {DENIED} {port} /simple/", stdin=HTTP_CLIENT.encode())
    assert_denied(code, out, *python_denied_signs(scheme))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_python_requests(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    code, out = sandbox.run(f"python3 - {hosts.url(scheme, ALLOWED)}/simple/", stdin=REQUESTS.encode())
    assert code == 0 and out.startswith("200 ") and pypi_index.PROJECT in out, out
    code, out = sandbox.run(f"python3 - {hosts.url(scheme, DENIED)}/simple/", stdin=REQUESTS.encode())
    assert_denied(code, out, *python_denied_signs(scheme))


def pip_install(base: str, scheme: str, target: str) -> str:
    """`pip install` into `target` (Debian's pip refuses the system site, PEP 668) from the index at `base`;
    -vvv shows a refused index page's status, which pip otherwise reports only as 'no matching distribution'."""
    trust = f"--trusted-host {base.split('://')[1]}" if scheme == "http" else ""  # pip skips plain-HTTP indexes
    return (
        f"python3 -m pip install -vvv --no-cache-dir --disable-pip-version-check --retries 0 --timeout 30 "
        f"--target {target} --index-url {base}/simple/ {trust} {pypi_index.PROJECT}"
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pip_install(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    target = f"/tmp/pip-{scheme}"
    code, out = sandbox.run(
        pip_install(hosts.url(scheme, ALLOWED), scheme, target)
        + f" && PYTHONPATH={target} python3 -c 'import {pypi_index.MODULE} as m; print(m.GREETING)'"
    )
    assert code == 0 and out.rstrip().endswith(pypi_index.GREETING), out
    code, out = sandbox.run(pip_install(hosts.url(scheme, DENIED), scheme, f"/tmp/pip-denied-{scheme}"))
    signs = ("403 Client Error: Forbidden",) if scheme == "http" else ("Tunnel connection failed: 403 Forbidden",)
    assert_denied(code, out, *signs)


# ---- git, npm, apt --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_git_clone(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    git = hosts.git[scheme]
    code, out = sandbox.run(
        f"git clone -q {git.url(ALLOWED)}/{git_http.REPO} /tmp/git-{scheme} && cat /tmp/git-{scheme}/README"
    )
    assert (code, out) == (0, git_http.README)
    # GIT_TRACE_CURL shows the proxy's response headers (git redacts the Proxy-Authorization it sent).
    trace = "GIT_TRACE_CURL=1 GIT_TRACE_CURL_NO_DATA=1"
    code, out = sandbox.run(f"{trace} git clone -q {git.url(DENIED)}/{git_http.REPO} /tmp/git-denied-{scheme}")
    refusal = "The requested URL returned error: 403" if scheme == "http" else "CONNECT tunnel failed, response 403"
    assert_denied(code, out, refusal, "Recv header: " + DENY_HEADER)


def npm_install(base: str, work: str) -> str:
    """`npm install` from the registry at `base` into `work`, with a cache of its own so nothing is served
    from an earlier test's cache; the CA comes from NODE_EXTRA_CA_CERTS."""
    return (
        f"mkdir -p {work} && cd {work} && npm install --no-audit --no-fund --no-update-notifier --fetch-retries 0 "
        f"--cache {work}/.npm --registry {base}/npm/ {npm_registry.PACKAGE}"
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_npm_install(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    code, out = sandbox.run(
        npm_install(hosts.url(scheme, ALLOWED), f"/tmp/npm-{scheme}")
        + f" && node -e 'console.log(require(\"{npm_registry.PACKAGE}\"))'"
    )
    assert code == 0 and out.rstrip().endswith(npm_registry.GREETING), out
    assert f"{npm_registry.PACKAGE}-{npm_registry.VERSION}.tgz" in " ".join(hosts.files[scheme].requested)
    denied = hosts.url(scheme, DENIED)
    code, out = sandbox.run(npm_install(denied, f"/tmp/npm-denied-{scheme}"))
    assert_denied(code, out, f"403 Forbidden - GET {denied}/npm/{npm_registry.PACKAGE}")


def apt_get(base: str, work: str, *debug: str) -> str:
    """apt-get update and download, as the unprivileged sandbox user: lists, cache and sources under `work`."""
    options = " ".join(
        f"-o {o}"
        for o in (
            f"Dir::Etc::SourceList={work}/sources.list", "Dir::Etc::SourceParts=/nonexistent",
            f"Dir::State::Lists={work}/lists", f"Dir::Cache={work}/cache", "Debug::NoLocking=1",
            "Acquire::Retries=0", f"Acquire::https::CAInfo={CA}", *debug,
        )
    )  # fmt: skip
    return (
        f"mkdir -p {work}/lists/partial {work}/cache/archives/partial && cd {work} && "
        f"echo 'deb [trusted=yes] {base}/debian/ ./' > sources.list && "
        f"apt-get {options} update && apt-get {options} download {apt_repo.PACKAGE}"
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_apt_get_update_and_download(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    deb = f"{apt_repo.PACKAGE}_{apt_repo.VERSION}_all.deb"
    code, out = sandbox.run(
        apt_get(hosts.url(scheme, ALLOWED), f"/tmp/apt-{scheme}")
        + f" && dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/share/{apt_repo.PACKAGE}/greeting"
    )
    assert code == 0 and out.rstrip().endswith(apt_repo.GREETING), out
    # apt shows a refused tunnel's headers in its error; a refused plain request's with Debug::Acquire::http.
    code, out = sandbox.run(
        apt_get(hosts.url(scheme, DENIED), f"/tmp/apt-denied-{scheme}", "Debug::Acquire::http=true")
    )
    refusal = "403  Forbidden [IP: 127.0.0.1 3128]" if scheme == "http" else "Invalid response from proxy: HTTP/1.1 403"
    assert_denied(code, out, refusal, DENY_HEADER)


# ---- curl, GNU wget, busybox wget -----------------------------------------------------------------------------


# curl -v shows the proxy's answer (in the request's HTTP version), to a plain request or to CONNECT alike;
# --fail makes a 403 an error.
CURL_DENIED = (" 403 Forbidden", "< " + DENY_HEADER, "The requested URL returned error: 403")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_curl_http11_proxying(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    code, out = sandbox.run(f"curl -sS --max-time 30 {hosts.url(scheme, ALLOWED)}/simple/")
    assert code == 0 and pypi_index.PROJECT in out, out
    code, out = sandbox.run(f"curl -sS -v --fail --max-time 30 {hosts.url(scheme, DENIED)}/simple/")
    assert_denied(code, out, *CURL_DENIED)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_curl_http10_proxying(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    """Plain HTTP: `GET http://... HTTP/1.0` to the proxy; HTTPS: `CONNECT host:port HTTP/1.0` (--proxy1.0)."""
    flag = "--http1.0" if scheme == "http" else '--proxy1.0 "$https_proxy"'
    code, out = sandbox.run(f"curl -sS -v {flag} --max-time 30 {hosts.url(scheme, ALLOWED)}/simple/")
    sent = "> GET http://" if scheme == "http" else "> CONNECT "
    assert code == 0 and pypi_index.PROJECT in out, out
    assert re.search(f"^{sent}.* HTTP/1.0\r?$", out, re.MULTILINE), out
    code, out = sandbox.run(f"curl -sS -v --fail {flag} --max-time 30 {hosts.url(scheme, DENIED)}/simple/")
    assert_denied(code, out, *CURL_DENIED)


def test_curl_http2_inside_tunnel(sandbox: Sandbox, hosts: Hosts) -> None:
    code, out = sandbox.run(
        f"curl -sS --http2 --max-time 30 -w ' %{{http_version}}' https://{ALLOWED}:{hosts.h2.port}/h2"
    )
    assert code == 0 and out == '{"http_version": "2", "path": "/h2"} 2', out
    code, out = sandbox.run(f"curl -sS -v --fail --http2 --max-time 30 https://{DENIED}:{hosts.h2.port}/h2")
    assert_denied(code, out, *CURL_DENIED)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_gnu_wget(sandbox: Sandbox, hosts: Hosts, scheme: str) -> None:
    wget = f"wget --tries 1 --timeout 30 --ca-certificate {CA} -O -"  # GNU wget has no CA variable
    code, out = sandbox.run(f"{wget} -q {hosts.url(scheme, ALLOWED)}/simple/")
    assert code == 0 and pypi_index.PROJECT in out, out
    code, out = sandbox.run(f"{wget} -d {hosts.url(scheme, DENIED)}/simple/")  # -d shows the proxy's headers
    refusal = "ERROR 403: Forbidden" if scheme == "http" else "Proxy tunneling failed: Forbidden"
    assert_denied(code, out, refusal, DENY_HEADER)


def test_busybox_wget(sandbox: Sandbox, hosts: Hosts) -> None:
    """Plain HTTP only: BusyBox wget 1.35 has no CONNECT; it sends an https:// URL to the proxy as a cleartext
    GET (and half-closes its socket), which Sandgate does not serve (README)."""
    code, out = sandbox.run(f"busybox wget -q -O - {hosts.url('http', ALLOWED)}/simple/")
    assert code == 0 and pypi_index.PROJECT in out, out
    for scheme in SCHEMES:  # a denied host is refused either way: Sandgate decides on the URL's host
        path = f"/busybox-{scheme}/"
        code, out = sandbox.run(f"busybox wget -O - {hosts.url(scheme, DENIED)}{path}")
        if scheme == "https":
            # The half-close races the 403: Envoy 1.40 resets an HTTP/1 stream on the client's FIN (COMPATIBILITY.md),
            # so wget sees either the refusal or no response at all. Either way nothing reached the host.
            assert code != 0 and ("403 Forbidden" in out or "error getting response" in out), out
        else:
            assert_denied(code, out, "server returned error: HTTP/1.1 403 Forbidden")
        assert all(path not in site.requested for site in hosts.files.values()), path


# ---- the README's list ----------------------------------------------------------------------------------------

VERSIONS = """
exec 2>/dev/null
echo "curl $(curl --version | head -1 | cut -d' ' -f2)"
echo "Python $(python3 -c 'import platform; print(platform.python_version())')"
echo "requests $(python3 -c 'import requests; print(requests.__version__)')"
echo "pip $(python3 -m pip --version | cut -d' ' -f2)"
echo "git $(git --version | cut -d' ' -f3)"
echo "npm $(npm --version)"
echo "Node.js $(node --version | tr -d v)"
echo "apt $(apt-get --version | head -1 | cut -d' ' -f2)"
echo "GNU Wget $(wget --version | head -1 | cut -d' ' -f3)"
echo "BusyBox $(busybox | head -1 | cut -d' ' -f2 | tr -d v)"
"""


def test_readme_lists_the_tested_versions(sandbox: Sandbox) -> None:
    """Each client's row in the README names the version in the image (major.minor: Debian's security updates
    move patch levels)."""
    code, out = sandbox.run(VERSIONS)
    assert code == 0, out
    readme = README.read_text()
    for line in out.splitlines():
        name, version = line.rsplit(" ", 1)
        listed = re.search(rf"^\| {re.escape(name)} \| (\d+\.\d+)\.", readme, re.MULTILINE)
        assert listed, f"README.md lists no `| {name} | {version} |` row"
        assert version.startswith(listed.group(1) + "."), (
            f"README.md lists {name} {listed.group(1)}, image has {version}"
        )
