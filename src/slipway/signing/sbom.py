"""A CycloneDX 1.6 SBOM of an image's file system, made with cyclonedx-python-lib from the
package databases read with their formats' own parsers: dpkg's status with python-debian,
Python distributions' METADATA with the standard library's email parser (the format
importlib.metadata reads), npm's package.json as JSON; apk's `installed` database, which
no maintained Python library reads, with its documented `K:value` line format. Busybox
images have no package database: the busybox binary's own version banner names it
(as syft's binary classifier does).

The worker imports this module while the build runs (worker/signing.py: prepare) and
makes the document while the push runs: neither waits after the push."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6
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
    wanted files (signing/rootfs.py) are `files`."""
    release = os_release(files)
    distro = f"{release.get('ID', '')}-{release.get('VERSION_ID', '')}".strip("-")
    bom = Bom()
    bom.metadata.component = Component(
        name=image, version=digest or None, type=ComponentType.CONTAINER, bom_ref="image")
    bom.metadata.tools.components.add(Component(
        name="slipway", version=__version__, type=ComponentType.APPLICATION))
    if release.get("ID"):
        bom.components.add(Component(
            name=release["ID"], version=release.get("VERSION_ID", ""),
            type=ComponentType.OPERATING_SYSTEM, bom_ref=f"os:{distro}",
            description=release.get("PRETTY_NAME")))
    libraries: dict[str, Component] = {}
    for package in packages(files):
        purl = package.purl(distro)
        ref = purl.to_string()  # a purl's string is costly: made once
        if ref in libraries:  # one distribution found in two places
            continue
        libraries[ref] = Component(
            name=package.name, version=package.version or None,
            group=package.namespace if package.kind == "npm" and package.namespace else None,
            type=ComponentType.LIBRARY, purl=purl, bom_ref=ref)
    bom.components.update(libraries.values())
    # the image holds every package (the graph of which needs which is not known); set
    # whole, as register_dependency looks each component up among those before it
    held = [component.bom_ref for component in bom.components]
    bom.dependencies = [
        Dependency(ref=bom.metadata.component.bom_ref,
                   dependencies=[Dependency(ref=ref) for ref in held]),
        *(Dependency(ref=ref) for ref in held)]
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return document
