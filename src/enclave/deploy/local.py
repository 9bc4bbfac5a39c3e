"""The local n-tier deployment: Linux network namespaces, veth links, nftables, real services.

Topology (hub and spoke, docs/deployment.md): one namespace per service, one ``internet``
client namespace, and one firewall namespace ``fw`` that routes between them. Every
endpoint has a point-to-point veth link (/30 inside its tier's /24) to ``fw``; nothing is
attached to the host's own network namespace, so no packet can reach the host or beyond.
Three independent layers, all generated from the tier map, must each let a flow through:

1. routes — an endpoint only has routes to the tiers it exchanges flows with (the app
   has no route to the internet namespace at all);
2. ``fw`` forwards only the map's flows, each pinned to its source and destination link;
3. each endpoint's own nftables table accepts only its inbound flows and sends only its
   outbound flows.

Every name carries a unique prefix (``enc`` + 4 hex digits) recorded in a state file
*before* the thing is created; :func:`down` removes exactly those names and processes
(by recorded pid, checked to still live in our namespace). :func:`up` tears everything
down again if any step fails. Requires root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from enclave.deploy import edge, names, nft
from enclave.deploy.tiermap import INTERNET, TierMap, parse

RUNTIME_ROOT = Path("/run/enclave-tiers")
STATE_FILE = "state.json"
PUBLIC_HOST = "enclave.test"
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 90.0
APP_USER, PG_USER, REDIS_USER = "nobody", "postgres", "redis"
CAPLESS_ROOT = "root-without-capabilities"
DB_NAME, DB_ROLE, BACKUP_ROLE = "enclave", "enclave", "enclave_backup"
# Services this module knows how to run; a map may only name these.
RUNNABLE = ("nginx", "gunicorn", "celery-worker", "celery-beat", "backup-runner", "postgres",
            "redis")
# Popen objects of services started by this process, so they can be reaped on down.
_CHILDREN: dict[int, subprocess.Popen] = {}


class DeployError(Exception):
    """The local deployment could not be brought up or down. ``str()`` is one line."""


@dataclass
class State:
    """What was created, written to ``<state dir>/state.json`` before each creation."""

    prefix: str
    runtime_dir: str
    map_text: str
    status: str = "creating"
    namespaces: list[str] = field(default_factory=list)
    processes: list[dict] = field(default_factory=list)
    public_host: str = PUBLIC_HOST
    app_user: str = APP_USER
    created_at: str = ""
    path: str = ""

    @property
    def tier_map(self) -> TierMap:
        return parse(self.map_text, origin="tier map recorded in the state file")

    @property
    def runtime(self) -> Path:
        return Path(self.runtime_dir)

    @property
    def ca_file(self) -> Path:
        return self.runtime / "edge" / "var" / "tls" / "ca.crt"

    def ns(self, endpoint: str) -> str:
        return names.namespace(self.prefix, endpoint)

    def save(self) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=2)
        tmp.replace(path)


def state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def load_state(state_dir: Path) -> State | None:
    """The recorded deployment, or None when nothing is up. Raises DeployError if corrupt."""
    path = state_path(state_dir)
    if not path.is_file():
        return None
    try:
        state = State(**json.loads(path.read_text(encoding="utf-8")))
        names.check_prefix(state.prefix)
    except (ValueError, TypeError) as exc:
        raise DeployError(f"{path}: not a valid tier state file ({exc})") from None
    state.path = str(path)
    return state


# -- commands -------------------------------------------------------------------------
def run(argv: list[str], *, input_text: str | None = None, timeout: float = 60.0,
        check: bool = True, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command; on failure raise DeployError with its last stderr line."""
    try:
        result = subprocess.run(argv, input=input_text, capture_output=True, text=True,  # noqa: S603
                                timeout=timeout, check=False, env=env, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError(f"{' '.join(_shown(argv))}: {exc}") from None
    if check and result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise DeployError(f"{' '.join(_shown(argv))} failed: {detail}")
    return result


def _shown(argv: list[str]) -> list[str]:
    """The part of a command worth naming in an error: after ip netns exec and setpriv."""
    rest = argv[4:] if argv[:3] == ["ip", "netns", "exec"] else argv
    if rest and rest[0] == "setpriv":
        rest = rest[rest.index("--") + 1:]
    return [Path(rest[0]).name, *rest[1:4]] if rest else argv


def in_ns(state: State, endpoint: str, argv: list[str], user: str | None = None) -> list[str]:
    """argv to run in an endpoint's namespace, optionally as an unprivileged user."""
    return ["ip", "netns", "exec", state.ns(endpoint), *_as_user(user), *argv]


def _as_user(user: str | None) -> list[str]:
    if user is None:
        return []
    if user == CAPLESS_ROOT:
        # uid 0 with an empty capability bounding set: owner permissions only, no privilege.
        return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all",
                "--no-new-privs", "--"]
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
            "--no-new-privs", "--"]


def app_user() -> str:
    """Who runs gunicorn and Celery: ``nobody`` when it can run this interpreter.

    A virtualenv whose interpreter lives under a private home directory (e.g. pyenv in
    /root) cannot be executed by ``nobody``; then the app runs as uid 0 stripped of every
    capability, which still confines it to owner permissions inside its namespace.
    """
    probe = [*_as_user(APP_USER), sys.executable, "-c",
             f"import sys; sys.exit(sys.version_info[:3] != {tuple(sys.version_info[:3])})"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return APP_USER if ok else CAPLESS_ROOT


def _python() -> str:
    return sys.executable


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[4]) if p.parts[4].isdigit() else 0)
    if not found:
        raise DeployError("PostgreSQL server binaries are missing; run `make tiers-deps`")
    return str(Path(found[-1]).with_name(name))


def preflight(tmap: TierMap) -> None:
    """Refuse early, before creating anything, when a prerequisite is missing."""
    if os.geteuid() != 0:
        raise DeployError("the local n-tier deployment needs root (network namespaces)")
    for tool in ("ip", "nft", "nginx", "redis-server", "redis-cli", "setpriv"):
        if shutil.which(tool) is None:
            raise DeployError(f"{tool} is missing; run `make tiers-deps`")
    _pg_bin("postgres")
    for user in (APP_USER, PG_USER, REDIS_USER, "www-data"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise DeployError(f"system user {user!r} is missing; run `make tiers-deps`") from None
    unknown = [s.name for s in tmap.services if s.name not in RUNNABLE]
    if unknown:
        raise DeployError(f"the local deployment does not know how to run {unknown[0]!r}")


# -- up ---------------------------------------------------------------------------------
def up(tmap: TierMap, state_dir: Path, *, rules_map: TierMap | None = None,
       runtime_root: Path = RUNTIME_ROOT) -> State:
    """Create namespaces, links and rules, then start the services; returns the state.

    ``rules_map`` (tests only) loads nftables rules from a different map than the one
    recorded as expected, to prove the matrix notices. Raises DeployError after removing
    everything it created if any step fails.
    """
    preflight(tmap)
    existing = load_state(state_dir)
    if existing is not None:
        raise DeployError(f"tiers are already up (prefix {existing.prefix}, state "
                          f"{existing.path}); run `enclave deploy local down` first")
    prefix = names.new_prefix()
    state = State(prefix=prefix, runtime_dir=str(Path(runtime_root) / prefix),
                  map_text=tmap.text, created_at=dt.datetime.now(dt.UTC).isoformat(),
                  path=str(state_path(state_dir)))
    state.save()
    try:
        _build_network(state, tmap, rules_map or tmap)
        _start_services(state, tmap)
    except BaseException as exc:
        teardown(state)
        if isinstance(exc, DeployError):
            raise DeployError(f"{exc} (everything created was removed)") from None
        raise
    state.status = "up"
    state.save()
    return state


def _build_network(state: State, tmap: TierMap, rules_map: TierMap) -> None:
    runtime = state.runtime
    runtime.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    runtime.mkdir(mode=0o755)
    (runtime / "logs").mkdir(mode=0o755)
    fw = names.FIREWALL
    for endpoint in (fw, *tmap.endpoints):
        ns = state.ns(endpoint)
        state.namespaces.append(ns)
        state.save()  # recorded before it exists, so a crash cannot leak it
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for key in ("all", "default"):
            run(in_ns(state, endpoint, ["sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"]))
    run(in_ns(state, fw, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
    for endpoint in tmap.endpoints:
        _link(state, tmap, endpoint)
    for endpoint in (fw, *tmap.endpoints):
        load_rules(state, rules_map, endpoint)


def _link(state: State, tmap: TierMap, endpoint: str) -> None:
    index = nft.link_index(tmap, endpoint)
    rif, eif = names.router_if(state.prefix, index), names.endpoint_if(state.prefix, index)
    fw_ns, ep_ns = state.ns(names.FIREWALL), state.ns(endpoint)
    # Both ends are created directly inside our namespaces, never in the host's.
    run(["ip", "-n", fw_ns, "link", "add", rif, "type", "veth", "peer", "name", eif,
         "netns", ep_ns])
    prefixlen = tmap.link_network(endpoint).prefixlen
    run(["ip", "-n", fw_ns, "addr", "add", f"{tmap.gateway(endpoint)}/{prefixlen}", "dev", rif])
    run(["ip", "-n", ep_ns, "addr", "add", f"{tmap.address(endpoint)}/{prefixlen}", "dev", eif])
    run(["ip", "-n", fw_ns, "link", "set", rif, "up"])
    run(["ip", "-n", ep_ns, "link", "set", eif, "up"])
    for tier in sorted({tmap.tier_of(peer) for peer in tmap.peers(endpoint)}):
        run(["ip", "-n", ep_ns, "route", "add", str(tmap.tier_network(tier)),
             "via", str(tmap.gateway(endpoint))])


def load_rules(state: State, rules_map: TierMap, endpoint: str) -> None:
    """Atomically (re)load one namespace's table from ``rules_map``."""
    text = nft.ruleset(rules_map, state.prefix, endpoint)
    run(in_ns(state, endpoint, ["nft", "-f", "-"]), input_text=text)


def reload_rules(state: State, rules_map: TierMap) -> None:
    """Reload every namespace's rules (tests: swap in a wrong rule set and back)."""
    for endpoint in (names.FIREWALL, *state.tier_map.endpoints):
        load_rules(state, rules_map, endpoint)


# -- services -------------------------------------------------------------------------
def _owned_dir(path: Path, user: str, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)
    return path


def _write(path: Path, text: str, user: str | None = None, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _spawn(state: State, name: str, endpoint: str, argv: list[str], *, user: str | None,
           env: dict[str, str], cwd: Path, stop_signal: int = signal.SIGTERM) -> None:
    log = state.runtime / "logs" / f"{name}.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(in_ns(state, endpoint, argv, user), stdout=fh,  # noqa: S603
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=cwd, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    state.processes.append({"name": name, "namespace": state.ns(endpoint), "pid": proc.pid,
                            "log": str(log), "stop_signal": int(stop_signal)})
    state.save()


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1"}


def _start_services(state: State, tmap: TierMap) -> None:
    state.app_user = app_user()
    db_password, backup_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    redis_password = secrets.token_urlsafe(24)
    _start_postgres(state, tmap, db_password, backup_password)
    _start_redis(state, tmap, redis_password)
    app_env = _app_env(state, tmap, db_password, redis_password)
    app_home = Path(app_env["HOME"])
    for command in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        run(in_ns(state, "gunicorn", [_venv_bin("enclave"), "manage", *command], state.app_user),
            timeout=180, env=app_env, cwd=app_home)
    nginx_addr = tmap.address("nginx")
    _spawn(state, "gunicorn", "gunicorn",
           [_venv_bin("gunicorn"), "--bind", f"{tmap.address('gunicorn')}:8000", "--workers", "2",
            "--forwarded-allow-ips", str(nginx_addr), "--access-logfile", "-",
            "enclave.wsgi:application"], user=state.app_user, env=app_env, cwd=app_home)
    _spawn(state, "celery-worker", "celery-worker",
           [_venv_bin("celery"), "-A", "enclave", "worker", "--pool", "solo", "--loglevel",
            "INFO", "--without-mingle", "--without-gossip", "--hostname",
            f"worker@{state.prefix}"], user=state.app_user, env=app_env, cwd=app_home)
    _spawn(state, "celery-beat", "celery-beat",
           [_venv_bin("celery"), "-A", "enclave", "beat", "--loglevel", "INFO", "--schedule",
            str(app_home / "data" / "celerybeat-schedule")],
           user=state.app_user, env=app_env, cwd=app_home)
    wait_for_port(state, "gunicorn", 8000)
    _start_nginx(state, tmap)
    wait_for_port(state, "nginx", 443)
    wait_for_health(state)
    _wait_for_log(state, "celery-worker", " ready.")
    _check_alive(state)


def _start_postgres(state: State, tmap: TierMap, db_password: str, backup_password: str) -> None:
    root = _owned_dir(state.runtime / "postgres", PG_USER)
    data, sock = root / "data", _owned_dir(root / "run", PG_USER)
    run(in_ns(state, "postgres", [_pg_bin("initdb"), "-D", str(data), "-U", "postgres",
                                  "--auth-local=peer", "--auth-host=scram-sha-256", "-E",
                                  "UTF8", "--no-instructions"], PG_USER), timeout=120)
    hba = ["# Generated from the tier map: only the flows to postgres may log in.",
           "local all postgres peer"]
    for flow in tmap.flows:
        if flow.target == "postgres":
            role = BACKUP_ROLE if tmap.tier_of(flow.source) == "backup" else DB_ROLE
            hba.append(f"host {DB_NAME} {role} {tmap.address(flow.source)}/32 scram-sha-256"
                       f"  # {flow.source}")
    _write(data / "pg_hba.conf", "\n".join(hba) + "\n", PG_USER)
    _spawn(state, "postgres", "postgres",
           [_pg_bin("postgres"), "-D", str(data),
            "-c", f"listen_addresses={tmap.address('postgres')}", "-c", "port=5432",
            "-c", f"unix_socket_directories={sock}", "-c", "password_encryption=scram-sha-256",
            "-c", "logging_collector=off"],
           user=PG_USER, env=_base_env(root), cwd=root, stop_signal=signal.SIGINT)
    _until(lambda: run(in_ns(state, "postgres", [_pg_bin("pg_isready"), "-q", "-h", str(sock)],
                             PG_USER), check=False).returncode == 0, "postgres to accept")
    psql(state, f"""
        CREATE ROLE {DB_ROLE} LOGIN PASSWORD '{db_password}';
        CREATE DATABASE {DB_NAME} OWNER {DB_ROLE};
        CREATE ROLE {BACKUP_ROLE} LOGIN PASSWORD '{backup_password}';
        GRANT pg_read_all_data TO {BACKUP_ROLE};
    """)


def psql(state: State, sql: str, database: str = "postgres") -> str:
    """Run SQL as the superuser over the data namespace's private Unix socket."""
    sock = state.runtime / "postgres" / "run"
    argv = [_pg_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(sock),
            "-U", "postgres", "-d", database]
    return run(in_ns(state, "postgres", argv, PG_USER), input_text=sql).stdout.strip()


def _start_redis(state: State, tmap: TierMap, password: str) -> None:
    root = _owned_dir(state.runtime / "redis", REDIS_USER)
    conf = root / "redis.conf"
    _write(conf, f"""# Generated for the local n-tier deployment.
bind {tmap.address("redis")}
port 6379
protected-mode yes
requirepass {password}
unixsocket {root / "redis.sock"}
unixsocketperm 700
save ""
appendonly no
dir {root}
daemonize no
""", REDIS_USER)
    _spawn(state, "redis", "redis", ["redis-server", str(conf)], user=REDIS_USER,
           env=_base_env(root), cwd=root)
    _until(lambda: redis_cli(state, "PING", check=False) == "PONG", "redis to answer")


def redis_cli(state: State, *args: str, check: bool = True) -> str:
    """Run a Redis command over the data namespace's private Unix socket."""
    root = state.runtime / "redis"
    password = next((line.split(None, 1)[1] for line in
                     (root / "redis.conf").read_text().splitlines()
                     if line.startswith("requirepass ")), "")
    argv = ["env", f"REDISCLI_AUTH={password}", "redis-cli", "-s", str(root / "redis.sock"),
            *args]
    return run(in_ns(state, "redis", argv, REDIS_USER), check=check).stdout.strip()


def _app_env(state: State, tmap: TierMap, db_password: str, redis_password: str) -> dict:
    owner = "root" if state.app_user == CAPLESS_ROOT else state.app_user
    home = _owned_dir(state.runtime / "app", owner)
    return {
        **_base_env(home),
        "DJANGO_SETTINGS_MODULE": "enclave.settings",
        "ENCLAVE_ENV": "test",
        "ENCLAVE_BEHIND_PROXY": "1",
        # The edge's X-Real-IP names the client for throttling, allowlists and audit rows.
        "ENCLAVE_TRUSTED_PROXIES": str(tmap.address("nginx")),
        "ENCLAVE_VAR_DIR": str(home),
        "ENCLAVE_PUBLIC_URL": f"https://{state.public_host}",
        "ENCLAVE_DATABASE_URL": (f"postgres://{DB_ROLE}:{db_password}@"
                                 f"{tmap.address('postgres')}:5432/{DB_NAME}"),
        "ENCLAVE_REDIS_URL": f"redis://:{redis_password}@{tmap.address('redis')}:6379/0",
    }


def _start_nginx(state: State, tmap: TierMap) -> None:
    from enclave import config
    from enclave.server import tls

    root = state.runtime / "edge"
    root.mkdir(mode=0o700)
    _owned_dir(root / "tmp", "www-data")
    cfg = config.load({"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(root / "var"),
                       "ENCLAVE_PUBLIC_URL": f"https://{state.public_host}"})
    tls.ensure_certificates(cfg)
    site = edge.EdgeSite(upstream=f"{tmap.address('gunicorn')}:8000",
                         server_name=state.public_host, certificate=cfg.tls_cert,
                         key=cfg.tls_key, runtime=root, logs=state.runtime / "logs")
    conf = root / "nginx.conf"
    _write(conf, edge.render(site), mode=0o644)
    run(in_ns(state, "nginx", ["nginx", "-t", "-q", "-c", str(conf), "-e",
                               str(site.logs / "nginx-error.log")]))
    _spawn(state, "nginx", "nginx", ["nginx", "-c", str(conf), "-e",
                                     str(site.logs / "nginx-error.log"), "-g", "daemon off;"],
           user=None, env=_base_env(root), cwd=root)


# -- readiness --------------------------------------------------------------------------
def _until(ready, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise DeployError(f"timed out waiting for {what}")


def probe_connect(state: State, endpoint: str, targets: list[str],
                  timeout: float = 1.0) -> subprocess.Popen:
    """Start the TCP probe inside an endpoint's namespace (read with ``communicate``)."""
    argv = in_ns(state, endpoint, [_python(), "-m", "enclave.deploy.probe", "connect",
                                   "--timeout", str(timeout), *targets])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603
                            text=True, env=_probe_env())


def _probe_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}


def wait_for_port(state: State, service: str, port: int) -> None:
    """Wait until ``service:port`` accepts, probing from a source the map allows."""
    tmap = state.tier_map
    source = next(f.source for f in tmap.flows if f.target == service and port in f.ports)
    target = f"{tmap.address(service)}:{port}"

    def ready() -> bool:
        out, _ = probe_connect(state, source, [target], timeout=0.5).communicate(timeout=10)
        return json.loads(out or "{}").get(target) == "open"

    _until(ready, f"{service}:{port} (probed from {source})")


def https_get(state: State, path: str, endpoint: str = INTERNET) -> dict:
    """An HTTPS GET to the edge from an endpoint's namespace (default: the internet)."""
    tmap = state.tier_map
    argv = in_ns(state, endpoint, [
        _python(), "-m", "enclave.deploy.probe", "get", f"https://{state.public_host}{path}",
        "--address", str(tmap.address("nginx")), "--ca", str(state.ca_file),
        "--header", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) enclave-tiers-probe",
        "--header", "Accept: text/html,application/json"])
    result = run(argv, timeout=30)
    return json.loads(result.stdout)


def wait_for_health(state: State) -> None:
    _until(lambda: https_get(state, "/api/v1/health").get("status") == 200,
           "GET /api/v1/health through the edge to answer 200")


def _wait_for_log(state: State, name: str, marker: str) -> None:
    log = Path(next(p["log"] for p in state.processes if p["name"] == name))
    _until(lambda: marker in log.read_text(errors="replace"), f"{name} to log {marker.strip()!r}")


def _check_alive(state: State) -> None:
    for proc in state.processes:
        if not _alive(proc):
            tail = Path(proc["log"]).read_text(errors="replace").strip().splitlines()[-1:]
            raise DeployError(f"{proc['name']} exited: {tail[0] if tail else 'no output'}")


# -- down -------------------------------------------------------------------------------
def _netns_inode(ns: str) -> int | None:
    try:
        return Path(f"/run/netns/{ns}").stat().st_ino
    except OSError:
        return None


def _alive(proc: dict) -> bool:
    """True while the recorded process still runs inside the namespace we gave it."""
    pid = int(proc["pid"])
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        ns_inode = Path(f"/proc/{pid}/ns/net").stat().st_ino
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
    return not zombie and ns_inode == _netns_inode(proc["namespace"])


def teardown(state: State) -> list[str]:
    """Stop recorded processes, delete recorded namespaces and the runtime directory.

    Only names built from the recorded prefix are touched. Returns what was removed.
    """
    names.check_prefix(state.prefix)
    removed: list[str] = []
    for proc in reversed(state.processes):
        if _alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc["pid"]), int(proc["stop_signal"]))
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_alive(p) for p in state.processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in state.processes:
        if _alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(proc["pid"]), signal.SIGKILL)
        child = _CHILDREN.pop(int(proc["pid"]), None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        removed.append(f"process {proc['name']} (pid {proc['pid']})")
    ours = {names.namespace(state.prefix, e) for e in (names.FIREWALL, *_endpoints(state))}
    for ns in reversed(state.namespaces):
        if ns not in ours and not ns.startswith(f"{state.prefix}-"):
            continue  # never ours: leave it alone
        if _netns_inode(ns) is None:
            continue
        _kill_leftovers(ns)
        run(["ip", "netns", "del", ns], check=False)
        removed.append(f"namespace {ns}")
    runtime = state.runtime
    if runtime.name == state.prefix and runtime.is_dir():
        shutil.rmtree(runtime, ignore_errors=True)
        removed.append(f"directory {runtime}")
        with contextlib.suppress(OSError):
            runtime.parent.rmdir()  # only if empty
    Path(state.path).unlink(missing_ok=True)
    return removed


def _endpoints(state: State) -> tuple[str, ...]:
    try:
        return state.tier_map.endpoints
    except ValueError:
        return ()


def _kill_leftovers(ns: str) -> None:
    """Anything still running in one of our namespaces was started by us: stop it."""
    result = run(["ip", "netns", "pids", ns], check=False)
    for pid in result.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def down(state_dir: Path) -> list[str]:
    """Remove the deployment recorded in ``state_dir``. Raises DeployError if none is up."""
    if os.geteuid() != 0:
        raise DeployError("removing the local n-tier deployment needs root")
    state = load_state(state_dir)
    if state is None:
        raise DeployError(f"no local tiers are up (no {state_path(state_dir)})")
    return teardown(state)
