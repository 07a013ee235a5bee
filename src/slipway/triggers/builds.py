"""A trigger's build of one commit, submitted through the admission every build passes
(manager/admission.py), and what its worker clones (the backend's `access`)."""

from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from slipway.config.models import AppConfig
from slipway.domain.refusals import Refusal, Refused
from slipway.manager.admission import Admission, Admitted, Submission
from slipway.manager.build_pack import GitPackage
from slipway.store.interfaces import Triggers
from slipway.store.records import NewBuild, StoredTrigger
from slipway.triggers.matching import image_tags
from slipway.triggers.spec import is_ssh
from slipway.triggers.webhooks import Push

LS_REMOTE_TIMEOUT = 60.0
DEFAULT_TOKEN_USERS = {"github": "x-access-token", "gitlab": "oauth2"}
SOURCE = "slipway"  # record.trigger["source"]: a build of one of slipway's own triggers


def default_branch(trigger: StoredTrigger, push: Push) -> str:
    return push.default_branch or str(trigger.spec.get("default_branch") or "main")


async def submit_push(admission: Admission, triggers: Triggers, config: AppConfig,
                      trigger: StoredTrigger, push: Push, *, cause: str,
                      user: str | None = None, pull: bool = False,
                      no_cache: bool = False) -> Admitted:
    """Build `push.commit` with the trigger's settings; Refused as every submit is."""
    spec = trigger.spec
    tags = image_tags(spec.get("tag_templates") or ["latest"], push,
                      default_branch(trigger, push))
    if not tags:
        raise Refused(Refusal.INVALID,
                      f"no tag template of the trigger applies to {push.ref} (templates "
                      f"{spec.get('tag_templates')}); add one such as '{{sha:7}}'")
    options: dict[str, Any] = {}
    if spec.get("platforms"):
        options["platforms"] = list(spec["platforms"])
    if pull:
        options["pull"] = True
    if no_cache:
        options["no_cache"] = True
    new = NewBuild(
        namespace=trigger.namespace,
        repository=trigger.repository,
        tags=tags,
        registry=spec.get("registry") or config.SERVER_HOSTNAME,
        display_name=f"{push.name}@{push.commit[:7]}",
        dockerfile_path=spec.get("dockerfile_path") or "Dockerfile",
        context=spec.get("context") or "",
        manual_user=user,
        build_args=dict(spec.get("build_args") or {}),
        options=options,
        trigger={"source": SOURCE, "id": trigger.id, "name": trigger.name,
                 "service": trigger.kind},
        trigger_metadata={
            "git_url": trigger.git_url, "ref": push.ref, "commit": push.commit,
            "message": push.message, "author": dict(push.author), "commit_url": push.url,
            "default_branch": default_branch(trigger, push), "cause": cause,
        },
    )
    admitted = await admission.submit(Submission(new))
    if await _posts_status(triggers, trigger):
        await triggers.track_status(admitted.record.id, trigger.id)
    return admitted


async def _posts_status(triggers: Triggers, trigger: StoredTrigger) -> bool:
    return trigger.kind in ("github", "gitlab") and "status_token" in trigger.credential_names


def clone_url(trigger_url: str, kind: str, credentials: Mapping[str, str]) -> str:
    """The URL the worker clones: an HTTPS one with the token as its password (the worker
    masks it in everything it reports; it is never stored with the build)."""
    token = credentials.get("token")
    if not token or is_ssh(trigger_url):
        return trigger_url
    user = credentials.get("token_user") or DEFAULT_TOKEN_USERS.get(kind, "git")
    parts = urlsplit(trigger_url)
    netloc = f"{quote(user, safe='')}:{quote(token, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def git_package(trigger: StoredTrigger, credentials: Mapping[str, str],
                commit: str) -> GitPackage:
    return GitPackage(url=clone_url(trigger.git_url, trigger.kind, credentials), sha=commit,
                      private_key=credentials.get("ssh_key", ""))


def git_environment(credentials: Mapping[str, str], scratch: Path) -> dict[str, str]:
    """git's environment in this process: no prompt, and the deploy key (if any) in a
    0600 file of `scratch`, the host's key learnt on first use."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    if credentials.get("ssh_key"):
        key = scratch / "id_git"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            text = credentials["ssh_key"]
            f.write(text if text.endswith("\n") else text + "\n")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -F /dev/null -i {shlex.quote(str(key))} -o IdentitiesOnly=yes "
            "-o BatchMode=yes -o StrictHostKeyChecking=accept-new "
            f"-o UserKnownHostsFile={shlex.quote(str(scratch / 'known_hosts'))}")
    return env


class RefNotFound(Exception):
    """The ref is not in the repository, or the repository cannot be read."""


async def resolve_ref(trigger: StoredTrigger, credentials: Mapping[str, str],
                      ref: str) -> tuple[str, str]:
    """(full ref, commit) of a branch or tag name (or full ref), by `git ls-remote` with
    the trigger's credentials. RefNotFound says why, without the credentials."""
    url = clone_url(trigger.git_url, trigger.kind, credentials)
    wanted = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    with tempfile.TemporaryDirectory(prefix="slipway-ls-remote-") as scratch:
        env = git_environment(credentials, Path(scratch))
        proc = await asyncio.create_subprocess_exec(
            "git", "ls-remote", "--", url, *wanted, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(LS_REMOTE_TIMEOUT):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RefNotFound(f"git ls-remote of {trigger.git_url} took more than "
                              f"{LS_REMOTE_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        text = err.decode(errors="replace")
        for secret in (credentials.get("token"), quote(credentials.get("token") or "",
                                                       safe="")):
            if secret:
                text = text.replace(secret, "***")
        raise RefNotFound(f"git ls-remote of {trigger.git_url} failed: "
                          f"{text.strip()[-500:]}")
    found: dict[str, str] = {}
    for line in out.decode().splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    for name in wanted:
        # an annotated tag: its peeled commit
        commit = found.get(f"{name}^{{}}") or found.get(name)
        if commit:
            return name, commit
    raise RefNotFound(f"{ref!r} is neither a branch nor a tag of {trigger.git_url}")
