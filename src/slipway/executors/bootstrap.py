"""The Ignition config (spec 3.4.0) that turns a fresh CoreOS machine into one build worker.

Shared by the `ec2` executor (instance user data) and the `kubernetes` executor (env
`USERDATA` of the QEMU VM). The machine: trusts the configured CAs, logs in to the worker
image's registry through an auth file, pulls and runs the worker container with the worker
environment from an env file, and powers itself off after MAX_LIFETIME_S (and, unless
DEBUG, when the worker exits). Secrets live only in 0600 files, never on a command line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from slipway.domain.names import DOCKER_HUB, parse_image_ref
from slipway.executors.base import ExecutorError, WorkerSpec
from slipway.executors.ca_bundle import configured_ca_files, read_ca_certs
from slipway.executors.config_base import ExecutorConfigBase
from slipway.secret import reveal

IGNITION_VERSION = "3.4.0"
METADATA_ADDRESS = "169.254.169.254"

WORKER_UNIT = "slipway-worker.service"
LIFETIME_UNIT = "slipway-lifetime.service"
METADATA_BLOCK_UNIT = "slipway-metadata-block.service"

# Files on the machine
ETC = "/etc/slipway"
WORKER_ENV_FILE = f"{ETC}/worker.env"  # --env-file of the worker container (literal values)
PROXY_ENV_FILE = f"{ETC}/proxy.env"  # systemd EnvironmentFile for the pull and dockerd
AUTH_DIR = f"{ETC}/registry"  # docker --config dir; config.json doubles as podman --authfile
AUTH_FILE = f"{AUTH_DIR}/config.json"
CA_BUNDLE = f"{ETC}/ca-bundle.crt"
METADATA_RULES = f"{ETC}/metadata-block.nft"
ANCHORS = "/etc/pki/ca-trust/source/anchors"
# Inside the worker container
CONTAINER_CA_PATH = "/certs/ca.crt"

_SOCKETS = {
    # runtime -> (host socket, socket unit the worker depends on)
    "docker": ("/var/run/docker.sock", "docker.socket"),
    "podman": ("/run/podman/podman.sock", "podman.socket"),
}
_PROXY_KEYS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_MODE_SECRET = 0o600
_MODE_PUBLIC = 0o644


def ignition_config(
    config: ExecutorConfigBase, spec: WorkerSpec, *, block_metadata: bool = False
) -> dict[str, Any]:
    """The Ignition document for one worker of `spec`, configured by the executor `config`
    (field names = YAML keys). `block_metadata`: reject traffic to the cloud's instance
    metadata service (169.254.169.254) before the worker starts, so a build cannot read
    the instance's credentials. Raises ExecutorError for unusable configuration (a CA
    file that cannot be read, a value that cannot go into an env file)."""
    runtime = config.CONTAINER_RUNTIME  # docker, podman or buildah: the config says so
    image = f"{config.WORKER_IMAGE}:{config.WORKER_TAG}"
    ca_pems = read_ca_certs(configured_ca_files(config))
    ca_pem = "".join(ca_pems)
    proxies = _proxies(config, spec)
    debug = config.DEBUG
    lifetime = config.MAX_LIFETIME_S

    files: list[dict[str, Any]] = [
        # An OS update rebooting the machine mid-build would kill the build.
        _file(
            "/etc/zincati/config.d/90-slipway-no-updates.toml",
            "[updates]\nenabled = false\n",
            _MODE_PUBLIC,
        ),
        _file(
            WORKER_ENV_FILE,
            _env_file(_worker_env(spec, runtime, ca_pem, proxies)),
            _MODE_SECRET,
        ),
    ]
    if proxies:
        files.append(_file(PROXY_ENV_FILE, _systemd_env_file(proxies), _MODE_SECRET))
        if runtime == "docker":
            # docker pulls in the daemon, so the daemon needs the proxies.
            files.append(
                _file(
                    "/etc/systemd/system/docker.service.d/90-slipway-proxy.conf",
                    f"[Service]\nEnvironmentFile={PROXY_ENV_FILE}\n",
                    _MODE_PUBLIC,
                )
            )
    auth = _registry_auth(config, image)
    if auth is not None:
        files.append(_file(AUTH_FILE, auth, _MODE_SECRET))
    if ca_pem:
        files.append(_file(CA_BUNDLE, ca_pem, _MODE_PUBLIC))
        for index, pem in enumerate(ca_pems):
            files.append(_file(f"{ANCHORS}/slipway-ca-{index}.crt", pem, _MODE_PUBLIC))
    if block_metadata:
        files.append(_file(METADATA_RULES, _metadata_rules(), _MODE_PUBLIC))

    units = [
        _unit(
            WORKER_UNIT,
            _worker_unit(runtime, image, ca_pem, proxies, auth is not None, debug, block_metadata),
        ),
        _unit(LIFETIME_UNIT, _lifetime_unit(lifetime)),
    ]
    if block_metadata:
        units.append(_unit(METADATA_BLOCK_UNIT, _metadata_block_unit()))

    document: dict[str, Any] = {
        "ignition": {"version": IGNITION_VERSION},
        "storage": {"files": files},
        "systemd": {"units": units},
    }
    keys = list(config.SSH_AUTHORIZED_KEYS)
    if keys:
        document["passwd"] = {"users": [{"name": "core", "sshAuthorizedKeys": keys}]}
    return document


def ignition_json(
    config: ExecutorConfigBase, spec: WorkerSpec, *, block_metadata: bool = False
) -> str:
    """ignition_config as compact JSON (EC2 user data, the VM's USERDATA)."""
    return json.dumps(
        ignition_config(config, spec, block_metadata=block_metadata), separators=(",", ":")
    )


# -- the worker ------------------------------------------------------------------------


def _launcher(runtime: str) -> str:
    """The program on the machine that pulls and runs the worker container."""
    return "docker" if runtime == "docker" else "podman"


def _worker_env(
    spec: WorkerSpec, runtime: str, ca_pem: str, proxies: Mapping[str, str]
) -> dict[str, str]:
    env = {k: str(v) for k, v in spec.environment.items()}
    env.setdefault("TOKEN", spec.registration_token)
    env.setdefault("SERVER", spec.manager_address)
    env.setdefault("BUILD_UUID", spec.build_id)
    env["CONTAINER_RUNTIME"] = runtime
    for key, value in proxies.items():
        env.setdefault(key, value)
    # A manager-side TLS_CERT_PATH means nothing inside the machine: the CA travels in
    # the Ignition config and is mounted at CONTAINER_CA_PATH.
    env.pop("TLS_CERT_PATH", None)
    if ca_pem:
        env["TLS_CERT_PATH"] = CONTAINER_CA_PATH
    if runtime in _SOCKETS:
        socket = _SOCKETS[runtime][0]
        env["DOCKER_HOST"] = f"unix://{socket}"
        if runtime == "podman":
            env["CONTAINER_HOST"] = f"unix://{socket}"
    return env


def _worker_unit(
    runtime: str,
    image: str,
    ca_pem: str,
    proxies: Mapping[str, str],
    with_auth: bool,
    debug: bool,
    block_metadata: bool,
) -> str:
    launcher = f"/usr/bin/{_launcher(runtime)}"
    if not with_auth:
        pull = f"{launcher} pull {image}"
    elif runtime == "docker":
        pull = f"{launcher} --config {AUTH_DIR} pull {image}"
    else:
        pull = f"{launcher} pull --authfile {AUTH_FILE} {image}"
    run = [
        launcher,
        "run",
        "--rm",
        "--name slipway-worker",
        "--net=host",
        "--privileged",
        f"--env-file {WORKER_ENV_FILE}",
    ]
    needs = ["network-online.target"]
    if runtime in _SOCKETS:
        socket, socket_unit = _SOCKETS[runtime]
        run.append(f"-v {socket}:{socket}")
        needs.append(socket_unit)
    if ca_pem:
        run.append(f"-v {CA_BUNDLE}:{CONTAINER_CA_PATH}:ro")
    run.append(image)
    lines = ["[Unit]", "Description=slipway build worker", f"Wants={' '.join(needs)}"]
    if block_metadata:
        # Requires: no worker at all if the block could not be put in place.
        needs.append(METADATA_BLOCK_UNIT)
        lines.append(f"Requires={METADATA_BLOCK_UNIT}")
    lines += [
        f"After={' '.join(needs)}",
        "",
        "[Service]",
        "Type=simple",
        "Restart=no",
        "TimeoutStartSec=0",
    ]
    if proxies:
        lines.append(f"EnvironmentFile={PROXY_ENV_FILE}")
    if ca_pem:
        lines.append("ExecStartPre=/usr/bin/update-ca-trust extract")
    lines += [f"ExecStartPre={pull}", f"ExecStart={' '.join(run)}"]
    if not debug:
        # The build is over: the machine has no further use (DEBUG keeps it to inspect).
        lines.append("ExecStopPost=/usr/bin/systemctl --no-block poweroff")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _lifetime_unit(seconds: int) -> str:
    return "\n".join(
        [
            "[Unit]",
            "Description=slipway: power off after MAX_LIFETIME_S",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart=/usr/bin/sleep {seconds}",
            "ExecStopPost=/usr/bin/systemctl --no-block poweroff",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def _metadata_rules() -> str:
    # Its own table, so it neither touches nor is flushed by docker's/podman's rules;
    # output covers host-network containers, forward covers bridged build containers.
    reject = f"ip daddr {METADATA_ADDRESS} reject"
    return (
        "table inet slipway_metadata {\n"
        f"  chain output {{ type filter hook output priority 0; {reject}; }}\n"
        f"  chain forward {{ type filter hook forward priority 0; {reject}; }}\n"
        "}\n"
    )


def _metadata_block_unit() -> str:
    return "\n".join(
        [
            "[Unit]",
            f"Description=slipway: block builds from the metadata service {METADATA_ADDRESS}",
            # after afterburn fetched the EC2 key pair's SSH key from the metadata service
            "After=network-online.target afterburn.service afterburn-sshkeys@core.service",
            f"Before={WORKER_UNIT}",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"ExecStart=/usr/sbin/nft -f {METADATA_RULES}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


# -- inputs ----------------------------------------------------------------------------


def _proxies(config: ExecutorConfigBase, spec: WorkerSpec) -> dict[str, str]:
    """The proxy variables, also in lower case: curl, git and many build tools read only
    `http_proxy`/`https_proxy`/`no_proxy`."""
    out: dict[str, str] = {}
    for key in _PROXY_KEYS:
        value = getattr(config, key) or spec.environment.get(key)
        if value:
            out[key] = out[key.lower()] = value
    return out


def _registry_auth(config: ExecutorConfigBase, image: str) -> str | None:
    username = config.QUAY_USERNAME
    password = reveal(config.QUAY_PASSWORD)
    if not username or not password:
        return None
    registry = parse_image_ref(image).registry
    # docker keys Docker Hub by its legacy index URL; podman accepts both.
    keys = [registry] + (["https://index.docker.io/v1/"] if registry == DOCKER_HUB else [])
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {key: {"auth": token} for key in keys}}, indent=2) + "\n"


# -- encoding --------------------------------------------------------------------------


def _env_file(env: Mapping[str, str]) -> str:
    """docker/podman --env-file: one KEY=VALUE per line, the value taken literally."""
    lines = []
    for key, value in env.items():
        if "\n" in value or "\r" in value or "\n" in key or "=" in key:
            raise ExecutorError(
                f"worker environment variable {key!r} cannot go into an env file "
                "(a line break in its value or '=' in its name)"
            )
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def _systemd_env_file(env: Mapping[str, str]) -> str:
    """systemd EnvironmentFile: double quotes keep spaces and special characters."""
    lines = []
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            raise ExecutorError(f"{key} must not contain a line break")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{escaped}"')
    return "\n".join(lines) + "\n"


def data_url(text: str) -> str:
    return "data:;base64," + base64.b64encode(text.encode()).decode()


def decode_data_url(url: str) -> str:
    """Inverse of data_url (for tests and debugging)."""
    header, _, payload = url.partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(payload).decode()
    return unquote(payload)


def _file(path: str, contents: str, mode: int) -> dict[str, Any]:
    return {
        "path": path,
        "mode": mode,
        "overwrite": True,
        "user": {"name": "root"},
        "group": {"name": "root"},
        "contents": {"source": data_url(contents)},
    }


def _unit(name: str, contents: str) -> dict[str, Any]:
    return {"name": name, "enabled": True, "contents": contents}


def files_by_path(document: Mapping[str, Any]) -> dict[str, str]:
    """path -> decoded contents of every file of an Ignition document."""
    files: Iterable[Mapping[str, Any]] = document.get("storage", {}).get("files", [])
    return {f["path"]: decode_data_url(f["contents"]["source"]) for f in files}
