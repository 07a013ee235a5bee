"""Print the requirements the wheels in a wheelhouse have under another Python version
that the wheelhouse does not satisfy, one per line (for `pip wheel`).

`pip wheel` evaluates environment markers against the Python running it, so a marker such
as `python_full_version < "3.11.3"` asks for more under the image's Python than here.

usage: wheelhouse-extras.py WHEELHOUSE PYTHON_VERSION (e.g. 3.11.2)"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def main(wheelhouse: Path, python: str) -> int:
    environment = dict(default_environment())
    environment["python_full_version"] = python
    environment["python_version"] = ".".join(python.split(".")[:2])
    present: dict[str, str] = {}
    requirements: list[Requirement] = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        present[canonicalize_name(name)] = str(version)
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            headers = Parser().parsestr(archive.read(metadata).decode())
        for line in headers.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            # a requirement of an extra is not asked for without the extra
            if requirement.marker and "extra" in str(requirement.marker):
                continue
            if requirement.marker is None or requirement.marker.evaluate(environment):
                requirements.append(requirement)
    missing = {
        str(r.name) + str(r.specifier)
        for r in requirements
        if canonicalize_name(r.name) not in present
        or not r.specifier.contains(present[canonicalize_name(r.name)], prereleases=True)
    }
    for line in sorted(missing):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
