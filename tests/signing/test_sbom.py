"""The SBOM document (signing/sbom.py): valid CycloneDX 1.6 by cyclonedx-python-lib's
schema validator, one component per package with
its package URL; and the files it is made from, found in a mounted tree (rootfs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from slipway.signing.rootfs import read_tree
from slipway.signing.sbom import for_digest, make_sbom

FILES = {
    "etc/os-release": b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n',
    "var/lib/dpkg/status": (b"Package: bash\nStatus: install ok installed\n"
                            b"Version: 5.2.15-2+b2\nArchitecture: amd64\n"
                            b"Description: the shell\n continued line\n\n"
                            b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"),
    "var/lib/dpkg/status.d/tzdata": (b"Package: tzdata\nVersion: 2024a-0+deb12u1\n"
                                     b"Architecture: all\n"),
    "usr/lib/python3/dist-packages/Foo-1.0.dist-info/METADATA":
        b"Metadata-Version: 2.1\nName: Foo\nVersion: 1.0\n",
    # the same distribution found twice: one component
    "usr/local/lib/python3.11/site-packages/foo-1.0.dist-info/METADATA":
        b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
    "app/node_modules/@scope/pkg/package.json": b'{"name": "@scope/pkg", "version": "2.0.0"}',
    "bin/busybox": b"\x7fELF... BusyBox v1.36.1 (2023-01-01) multi-call binary",
}


def valid(document: dict[str, object]) -> bool:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None


def test_the_document_is_valid_cyclonedx_with_a_component_per_package() -> None:
    document = make_sbom(FILES, "registry.example.com/team/app")
    assert valid(document)
    by_ref = {c["bom-ref"]: c for c in document["components"]}
    assert sorted(by_ref) == [
        "os:debian-12",
        "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
        "pkg:generic/busybox@1.36.1",
        "pkg:npm/%40scope/pkg@2.0.0",
        "pkg:pypi/foo@1.0",
    ]
    assert by_ref["os:debian-12"] == {"type": "operating-system", "bom-ref": "os:debian-12",
                                      "name": "debian", "version": "12",
                                      "description": "Debian GNU/Linux 12"}
    npm = by_ref["pkg:npm/%40scope/pkg@2.0.0"]
    assert (npm["group"], npm["name"], npm["type"]) == ("@scope", "pkg", "library")
    # the image depends on every component
    [image] = [d for d in document["dependencies"] if d["ref"] == "image"]
    assert sorted(image["dependsOn"]) == sorted(by_ref)
    component = document["metadata"]["component"]
    assert component == {"type": "container", "bom-ref": "image",
                         "name": "registry.example.com/team/app"}
    digest = "sha256:" + "1" * 64
    assert for_digest(document, digest)["metadata"]["component"]["version"] == digest
    assert valid(document)


def test_an_image_without_packages_is_a_valid_document_too() -> None:
    document = make_sbom({}, "registry.example.com/team/empty", "sha256:" + "2" * 64)
    assert valid(document)
    assert document.get("components", []) == []  # the library leaves out an empty list
    assert document["metadata"]["component"]["version"] == "sha256:" + "2" * 64


def test_a_mounted_tree_gives_only_the_wanted_files(tmp_path: Path) -> None:
    for path, content in {**FILES, "etc/passwd": b"root:x:0:0\n",
                          "usr/share/doc/bash/status": b"not dpkg's\n",
                          "proc/1/status": b"a process\n",
                          "usr/lib/python3/dist-packages/old.egg-info": b"Name: old\n",
                          "opt/x/site-packages/eggdir.egg-info/PKG-INFO": b"Name: eggdir\n",
                          }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    os.symlink("busybox", tmp_path / "bin" / "sh")  # a link is not followed
    os.symlink("/etc/passwd", tmp_path / "usr" / "lib" / "os-release")
    found = read_tree(tmp_path)
    assert sorted(found) == sorted([
        *FILES, "usr/lib/python3/dist-packages/old.egg-info",
        "opt/x/site-packages/eggdir.egg-info/PKG-INFO"])
    assert found["var/lib/dpkg/status"] == FILES["var/lib/dpkg/status"]
