"""A private Apache (mpm_event, one child) with mod_proxy, and mod_auth_openidc or not.

::

    site = ApacheSite(port, backend_url, oidc=OidcSite(...))   # or oidc=None
    apache = start_apache(workdir / "apache-shm", site, core=1)
    apache.stop()

Each instance has its own ``ServerRoot``, ``PidFile``, ``DefaultRuntimeDir``,
``Mutex`` directory, error log and port on 127.0.0.1, and runs in the
foreground (``-DFOREGROUND``) as a child of the benchmark, so it is stopped by
its process id like every other peer; Debian's apache2 service is never used.
One child process with 64 threads, as PERF.md measured it; keep-alive
connections are never closed by count, so wrk does not see reconnects.

With ``oidc``, the whole site needs a mod_auth_openidc session
(``AuthType openid-connect``, ``Require valid-user``), its redirect URI is
``/redirect_uri``, and the session cache is shm (the default) or redis.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from peers.gate import wait_until_answers
from peers.process import Running, spawn, terminate

__all__ = ["ApacheSite", "OidcSite", "apache_binary", "missing_apache", "start_apache"]

MODULE_DIR = Path("/usr/lib/apache2/modules")
MODULES = (
    "mpm_event",
    "authz_core",
    "authz_user",
    "authn_core",
    "alias",
    "mime",
    "proxy",
    "proxy_http",
)
OIDC_MODULE = "auth_openidc"
REDIRECT_PATH = "/redirect_uri"
MIME_TYPES = Path("/etc/mime.types")


def apache_binary() -> str | None:
    return shutil.which("apache2") or shutil.which("apache2", path="/usr/sbin:/usr/local/sbin")


def missing_apache() -> str | None:
    """What is missing to run Apache with mod_auth_openidc, or None."""
    if apache_binary() is None:
        return "apache2 is not installed (scripts/install-bench.sh)"
    for module in (*MODULES, OIDC_MODULE):
        if not (MODULE_DIR / f"mod_{module}.so").is_file():
            return f"{MODULE_DIR}/mod_{module}.so is missing (scripts/install-bench.sh)"
    return None


@dataclass(frozen=True)
class OidcSite:
    """mod_auth_openidc's relying-party settings."""

    issuer: str
    client_id: str
    client_secret: str
    redis: str | None = None  # "127.0.0.1:PORT": OIDCCacheType redis; None: shm


@dataclass(frozen=True)
class ApacheSite:
    """One Apache instance: where it listens, what it proxies to, how it signs in."""

    port: int
    backend: str  # http://127.0.0.1:PORT
    oidc: OidcSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return self.url + REDIRECT_PATH


def render_config(root: Path, site: ApacheSite) -> str:
    """The whole httpd.conf for ``site``, with everything under ``root``."""
    modules = [*MODULES, *((OIDC_MODULE,) if site.oidc else ())]
    lines = [f'ServerRoot "{root}"', f'PidFile "{root}/httpd.pid"']
    lines += [f'DefaultRuntimeDir "{root}/run"', f"Mutex file:{root}/lock default"]
    lines += [f"LoadModule {m}_module {MODULE_DIR}/mod_{m}.so" for m in modules]
    if os.geteuid() == 0:
        lines += ["User www-data", "Group www-data"]
    lines += [
        f"Listen 127.0.0.1:{site.port}",
        "ServerName 127.0.0.1",
        f"TypesConfig {MIME_TYPES if MIME_TYPES.is_file() else '/dev/null'}",
        f'ErrorLog "{root}/error.log"',
        "LogLevel warn",
        "ServerTokens Prod",
        "ServerSignature Off",
        "StartServers 1",
        "ServerLimit 1",
        "ThreadLimit 64",
        "ThreadsPerChild 64",
        "MinSpareThreads 1",
        "MaxSpareThreads 64",
        "MaxRequestWorkers 64",
        "MaxConnectionsPerChild 0",
        "KeepAlive On",
        "MaxKeepAliveRequests 0",
        "KeepAliveTimeout 30",
        f"ProxyPass {REDIRECT_PATH} !",
        f"ProxyPass / {site.backend}/",
    ]
    if site.oidc is not None:
        lines += _oidc_lines(site, site.oidc)
    return "\n".join(lines) + "\n"


def _oidc_lines(site: ApacheSite, oidc: OidcSite) -> list[str]:
    lines = [
        f"OIDCProviderMetadataURL {oidc.issuer}/.well-known/openid-configuration",
        f"OIDCClientID {oidc.client_id}",
        f"OIDCClientSecret {oidc.client_secret}",
        f"OIDCRedirectURI {site.redirect_uri}",
        f"OIDCCryptoPassphrase {secrets.token_urlsafe(32)}",
        'OIDCScope "openid email profile"',
        "OIDCPKCEMethod S256",
        "OIDCSessionInactivityTimeout 7200",
    ]
    if oidc.redis is not None:
        lines += ["OIDCCacheType redis", f"OIDCRedisCacheServer {oidc.redis}"]
    lines += [
        "<Location />",
        "    AuthType openid-connect",
        "    Require valid-user",
        "</Location>",
    ]
    return lines


def start_apache(root: Path, site: ApacheSite, *, core: int | None = 1) -> Running:
    """Start Apache for ``site`` in the foreground (pinned to ``core``) and wait until
    it answers; its files live in ``root``."""
    binary = apache_binary()
    if binary is None:
        raise FileNotFoundError("apache2 is not installed (scripts/install-bench.sh)")
    for sub in ("", "run", "lock"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).chmod(0o755)  # Apache's children run as www-data
    config = root / "httpd.conf"
    config.write_text(render_config(root, site))
    config.chmod(0o600)  # holds the client secret and the crypto passphrase
    argv = [binary, "-f", str(config), "-DFOREGROUND"]
    if core is not None:
        argv = ["taskset", "-c", str(core), *argv]
    log_path = root / "stdout.log"
    process = spawn(argv, log_path=log_path, cwd=root)
    try:
        wait_until_answers(site.url + "/", process, log_path, timeout=20)
    except RuntimeError as exc:
        terminate(process)
        raise RuntimeError(f"{exc}\nerror.log:\n{_tail(root / 'error.log')}") from None
    except BaseException:
        terminate(process)
        raise
    return Running(process, site.port, log_path)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(none)"
