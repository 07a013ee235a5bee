"""`slipway signing keygen` (a key pair for SIGNING) and `slipway verify IMAGE` (an image's
signature and provenance against the server's public key), docs/signing.md."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import httpx
import typer

from slipway.cli.output import stderr_console, stdout_console

app = typer.Typer(help="Signing keys (docs/signing.md).", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    stderr_console().print(f"error: {message}", markup=False)
    return typer.Exit(1)


@app.command("keygen")
def keygen(
    out: Path = typer.Option(Path("."), "--out", "-o", metavar="DIR", help="The directory to write "
                             "cosign.key (encrypted) and cosign.pub to."),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", metavar="FILE", help="Read the passphrase from this file (else "
        "SLIPWAY_SIGNING_PASSPHRASE, else a prompt)."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
) -> None:
    """Make an ECDSA P-256 key pair in the sigstore/cosign format: podman, skopeo and
    cosign read it; SIGNING.KEY_FILE names the private one."""
    from slipway.private_files import write_private
    from slipway.signing.keys import generate

    private, public = out / "cosign.key", out / "cosign.pub"
    existing = [str(p) for p in (private, public) if p.exists()]
    if existing and not force:
        raise _fail(f"{', '.join(existing)} exists; pass --force to replace it")
    if passphrase_file is not None:
        try:
            passphrase = passphrase_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise _fail(f"--passphrase-file {passphrase_file}: {exc.strerror}") from None
    elif os.environ.get("SLIPWAY_SIGNING_PASSPHRASE"):
        passphrase = os.environ["SLIPWAY_SIGNING_PASSPHRASE"]
    else:
        passphrase = getpass.getpass("passphrase for the private key: ")
        if getpass.getpass("again: ") != passphrase:
            raise _fail("the passphrases differ; nothing written")
    if len(passphrase) < 8:
        raise _fail("the passphrase has fewer than 8 characters; give a longer one")
    key = generate(passphrase)
    out.mkdir(parents=True, exist_ok=True)
    write_private(private, key.encrypted_pem)
    public.write_text(key.public_pem)
    stdout_console().print(f"wrote {private} (private, encrypted) and {public}", markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="signing")

    @root.command("verify")
    def verify(
        image: str = typer.Argument(..., metavar="IMAGE",
                                    help="registry/repository:tag or @digest"),
        key: Path | None = typer.Option(
            None, "--key", metavar="FILE", help="The public key (PEM); default the server's "
            "(/api/v1/slipway/signing/public-key)."),
        namespace: str | None = typer.Option(
            None, "--namespace", metavar="NAMESPACE",
            help="Ask the server for this namespace's key (default the image's first path "
            "component)."),
        server: str | None = typer.Option(None, "--server", envvar="SLIPWAY_URL",
                                          metavar="URL",
                                          help="slipway's URL (default the context's)."),
        insecure: bool = typer.Option(False, "--insecure", help="Read the registry over "
                                      "plain HTTP / without TLS verification."),
        as_json: bool = typer.Option(False, "--json", help="The verdict as JSON."),
    ) -> None:
        """Check IMAGE's signature and SLSA provenance against slipway's public key;
        exit 1 when either is missing or does not verify."""
        from slipway.cli.client import load_credentials
        from slipway.cli.errors import CliError
        from slipway.domain.loopback import is_loopback_registry
        from slipway.signing.keys import SigningKeyError, load_public
        from slipway.signing.verify import VerifyError, repository_of, verify_image

        repository = repository_of(image)
        registry, _, path = repository.partition("/")
        if key is not None:
            try:
                pem = key.read_text()
            except OSError as exc:
                raise _fail(f"--key {key}: {exc.strerror}") from None
        else:
            try:
                base = load_credentials(server).server
            except CliError as exc:
                raise _fail(str(exc)) from None
            ns = namespace or path.split("/", 1)[0]
            try:
                response = httpx.get(f"{base}/api/v1/slipway/signing/public-key",
                                     params={"namespace": ns}, timeout=30)
            except httpx.TransportError as exc:
                raise _fail(f"cannot reach slipway at {base}: {exc}") from None
            if response.status_code != 200:
                raise _fail(f"{base} gave no public key ({response.status_code}: "
                            f"{response.text[:300]})")
            pem = response.text
        try:
            public = load_public(pem)
        except (SigningKeyError, ValueError) as exc:
            raise _fail(f"the public key is not a PEM ECDSA key: {exc}") from None
        try:
            verdict = verify_image(image, public,
                                   insecure=insecure or is_loopback_registry(registry))
        except VerifyError as exc:
            raise _fail(str(exc)) from None
        if as_json:
            typer.echo(json.dumps({"image": image, "digest": verdict.digest,
                                   "signed": verdict.signed, "ok": verdict.ok,
                                   "provenance": verdict.provenance,
                                   "problems": verdict.problems}, indent=2))
        else:
            out = stdout_console()
            out.print(f"{image}: {verdict.digest}", markup=False)
            out.print(f"signature: {'verified' if verdict.signed else 'MISSING or invalid'}",
                      markup=False)
            for statement in verdict.provenance:
                run = statement["predicate"]["runDetails"]
                out.print(f"provenance: verified, build {run['metadata']['invocationId']} "
                          f"by {run['builder']['id']}", markup=False)
            for problem in verdict.problems:
                stderr_console().print(f"problem: {problem}", markup=False)
        if not verdict.ok:
            raise typer.Exit(1)
