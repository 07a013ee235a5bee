"""A CycloneDX 1.6 SBOM of an image's file system, from the package databases read with
their formats' own parsers: dpkg's status with python-debian, Python distributions'
METADATA with the standard library's email parser (the format importlib.metadata reads),
npm's package.json as JSON; apk's `installed` database, which no maintained Python
library reads, with its documented `K:value` line format. Busybox images have no package
database: the busybox binary's own version banner names it (as syft's binary classifier
does). Package URLs are made with packageurl-python.

The document is written as the CycloneDX 1.6 JSON schema says (the tests check it
against the schema with cyclonedx-python-lib's validator), not through that library's
object model: importing it took 0.15 s and building a hundred packages' document
0.1-0.4 s on a loaded machine, more than the whole SBOM's budget (docs/signing.md)."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any

from debian.deb822 import Deb822
from packageurl import PackageURL

from slipway import __version__


@dataclass(frozen=True)
class Package:
    kind: str  # deb, apk, pypi, npm, generic
    name: str
    version: str
    arch: str = ""
    namespace: str = ""  # a deb's or apk's distro id; an npm scope

    def purl(self, distro: str) -> PackageURL:
        qualifiers = {}
        if self.arch:
            qualifiers["arch"] = self.arch
        if distro and self.kind in ("deb", "apk"):
            qualifiers["distro"] = distro
        return PackageURL(type=self.kind, namespace=self.namespace or None, name=self.name,
                          version=self.version or None, qualifiers=qualifiers or None)


def os_release(files: Mapping[str, bytes]) -> dict[str, str]:
    text = files.get("etc/os-release") or files.get("usr/lib/os-release") or b""
    fields = {}
    for line in text.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


_DPKG_FIELDS = ["Package", "Version", "Architecture", "Status"]  # only these are parsed


def dpkg_packages(files: Mapping[str, bytes], distro_id: str) -> Iterator[Package]:
    sources = [v for k, v in files.items()
               if k == "var/lib/dpkg/status" or k.startswith("var/lib/dpkg/status.d/")]
    for text in sources:
        for paragraph in Deb822.iter_paragraphs(io.BytesIO(text), use_apt_pkg=False,
                                                 fields=_DPKG_FIELDS):
            status = paragraph.get("Status", "install ok installed").split()
            if status[-1:] != ["installed"] or not paragraph.get("Package"):
                continue
            yield Package("deb", paragraph["Package"], paragraph.get("Version", ""),
                          paragraph.get("Architecture", ""), distro_id or "debian")


def apk_packages(files: Mapping[str, bytes], distro_id: str) -> Iterator[Package]:
    text = files.get("lib/apk/db/installed", b"").decode("utf-8", "replace")
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1 and key not in fields:
                fields[key] = value
        if fields.get("P"):
            yield Package("apk", fields["P"], fields.get("V", ""), fields.get("A", ""),
                          distro_id or "alpine")


def python_packages(files: Mapping[str, bytes]) -> Iterator[Package]:
    parser = BytesHeaderParser()
    for path, text in files.items():
        if path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")):
            headers = parser.parsebytes(text)
            if headers.get("Name"):
                yield Package("pypi", str(headers["Name"]), str(headers.get("Version", "")))


def npm_packages(files: Mapping[str, bytes]) -> Iterator[Package]:
    for path, text in files.items():
        if not path.endswith("/package.json") or "node_modules/" not in path:
            continue
        try:
            manifest = json.loads(text)
        except ValueError:
            continue
        name = manifest.get("name") if isinstance(manifest, dict) else None
        if not isinstance(name, str) or not name:
            continue
        scope, _, bare = name.rpartition("/")
        yield Package("npm", bare, str(manifest.get("version", "")), namespace=scope)


_BUSYBOX = re.compile(rb"BusyBox v(\d+\.\d+(?:\.\d+)?)")


def busybox_package(files: Mapping[str, bytes]) -> Iterator[Package]:
    binary = files.get("bin/busybox")
    if binary and (match := _BUSYBOX.search(binary)):
        yield Package("generic", "busybox", match.group(1).decode())


def packages(files: Mapping[str, bytes]) -> list[Package]:
    release = os_release(files)
    distro = release.get("ID", "")
    found = [*dpkg_packages(files, distro), *apk_packages(files, distro),
             *python_packages(files), *npm_packages(files)]
    if not any(p.kind in ("deb", "apk") and p.name == "busybox" for p in found):
        found += busybox_package(files)
    unique = {(p.kind, p.namespace, p.name, p.version, p.arch): p for p in found}
    return sorted(unique.values(), key=lambda p: (p.kind, p.namespace, p.name, p.version))


def for_digest(document: dict[str, Any], digest: str) -> dict[str, Any]:
    """`document`, made before the push (make_sbom with no digest), naming the digest."""
    document["metadata"]["component"]["version"] = digest
    return document


def make_sbom(files: Mapping[str, bytes], image: str, digest: str = "") -> dict[str, Any]:
    """The CycloneDX 1.6 document (as JSON data) of the image `image`@`digest` whose
    wanted files (signing/rootfs.py) are `files`: the image as the metadata's component,
    the OS and a library component per package (with its package URL as its bom-ref),
    all of them dependencies of the image (which needs which is not known)."""
    release = os_release(files)
    distro = f"{release.get('ID', '')}-{release.get('VERSION_ID', '')}".strip("-")
    components: dict[str, dict[str, Any]] = {}  # bom-ref -> component
    if release.get("ID"):
        components[f"os:{distro}"] = _drop_empty({
            "type": "operating-system", "bom-ref": f"os:{distro}", "name": release["ID"],
            "version": release.get("VERSION_ID", ""),
            "description": release.get("PRETTY_NAME")})
    for package in packages(files):
        purl = package.purl(distro).to_string()
        components.setdefault(purl, _drop_empty({
            "type": "library", "bom-ref": purl,
            "group": package.namespace if package.kind == "npm" else None,
            "name": package.name, "version": package.version, "purl": purl}))
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).isoformat(),
            "tools": {"components": [
                {"type": "application", "name": "slipway", "version": __version__}]},
            "component": _drop_empty({"type": "container", "bom-ref": "image",
                                      "name": image, "version": digest}),
        },
        "components": list(components.values()),
        "dependencies": [{"ref": "image", "dependsOn": list(components)},
                         *({"ref": ref} for ref in components)],
    }


def _drop_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "")}
