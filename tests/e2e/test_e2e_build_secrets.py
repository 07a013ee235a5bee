"""Build secrets through a real server, a local podman worker and a real registry: a RUN
step reads them (`RUN --mount=type=secret`), and their values are in no layer of the pushed
image, not in the build log (a RUN that echoes one shows ***), not in the API's build, not
in the database file; the encrypted row is gone once the build has ended. The secrets come
from `slipway build --secret` (a file, an environment variable) and from BUILD_SECRETS,
the submitted ones over the repository's, the repository's over the namespace's."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.registry import Registry
from support.server import RunningServer, running_server

from slipway.store.schema import build_secrets

pytestmark = pytest.mark.podman

SLIPWAY = Path(sys.executable).parent / "slipway"
DOCKERFILE = """\
FROM {base}
RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && echo used
RUN --mount=type=secret,id=token echo "token: $(cat /run/secrets/token)"
RUN --mount=type=secret,id=multi cat /run/secrets/multi
RUN --mount=type=secret,id=from_ns --mount=type=secret,id=from_repo \\
    echo "configured: $(cat /run/secrets/from_ns) $(cat /run/secrets/from_repo)"
RUN --mount=type=secret,id=token echo "token length $(wc -c < /run/secrets/token)"
RUN ls /run/secrets 2>/dev/null | wc -l > /mounted-after
"""


def executors() -> list[object]:
    return ["ephemeral", {"EXECUTORS": [{"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman"}]}]


async def cli_build(slipway: RunningServer, *args: str,
                    env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "SLIPWAY_URL": slipway.base_url,
                "SLIPWAY_TOKEN": slipway.server.admin_token or ""}
    return await asyncio.to_thread(
        subprocess.run, [str(SLIPWAY), "build", *args], capture_output=True, text=True,
        env=full_env, timeout=300)


def image_contents(reference: str, into: Path) -> dict[str, bytes]:
    """Every blob of the pushed image (config and layers), each layer unpacked: file name
    -> its bytes, plus every layer file's path and content."""
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{reference}",
                    f"dir:{into}"], check=True, capture_output=True)
    found: dict[str, bytes] = {}
    layers = 0
    for blob in sorted(into.iterdir()):
        data = blob.read_bytes()
        found[blob.name] = data
        if data[:2] == b"\x1f\x8b":  # a gzip'd layer tar
            layers += 1
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
                for member in tar.getmembers():
                    content = b""
                    if member.isfile():
                        extracted = tar.extractfile(member)
                        content = extracted.read() if extracted else b""
                    found[f"{blob.name}:{member.name}"] = content
    assert layers >= 2, sorted(found)  # the base and the build's own
    return found


async def test_secrets_reach_run_steps_and_nothing_else(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    run = uuid.uuid4().hex
    token = f"tok-{run}-submitted"
    multi_lines = [f"first-line-{run}", f"second-line-{run}"]
    from_ns, from_repo = f"ns-{run}", f"repo-{run}"
    overridden = f"overridden-{run}"
    values = [token, *multi_lines, from_ns, from_repo]
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    token_file = tmp_path / "token.txt"
    token_file.write_text(token)
    ref = f"{registry.host}/demo/secrets:latest"
    async with running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
        BUILD_MANAGER=executors(),
        BUILD_SECRETS={"demo": {"from_ns": from_ns, "token": overridden, "from_repo": "x" * 9},
                       "demo/secrets": {"from_repo": from_repo}},
    ) as slipway:
        result = await cli_build(
            slipway, str(tmp_path / "ctx"), "-t", ref,
            "--secret", f"id=token,src={token_file}", "--secret", "id=multi,env=MULTI",
            env={"MULTI": "\n".join(multi_lines) + "\n"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        [build] = (await slipway.api.get("/api/v1/repository/demo/secrets/build/")).json()[
            "builds"]
        assert build["phase"] == "complete"
        assert build["options"]["secrets"] == ["from_ns", "from_repo", "multi", "token"]
        logs = await slipway.logs("demo", "secrets", build["id"])
        api_text = json.dumps(build) + json.dumps(logs)
        async with slipway.server.store.db.read() as conn:
            left = await conn.scalar(select(func.count()).select_from(build_secrets))
    messages = [entry["message"] for entry in logs]
    assert "used" in messages
    assert "token: ***" in messages
    assert "configured: *** ***" in messages
    assert messages.count("***") == 2  # the two lines of `multi`, each masked
    assert f"token length {len(token)}" in messages  # the submitted token won
    shown = api_text + result.stdout + result.stderr
    for value in [*values, overridden]:
        assert value not in shown
    assert left == 0  # the encrypted row went with the build's end
    # the database and its WAL, the local workers' own output, the uploaded context
    kept = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.name.startswith("slipway.db") for p in kept)
    for path in kept:
        raw = path.read_bytes()
        for value in values:
            assert value.encode() not in raw, path
    for name, content in image_contents(ref, tmp_path / "image").items():
        for value in values:
            assert value.encode() not in content, name
        if name.endswith(":mounted-after"):
            assert content.strip() == b"0"  # no secret left mounted for later steps
