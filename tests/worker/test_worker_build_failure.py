"""A runtime's failure as one message: the runtimes' words (as podman 4.3 and buildah 1.28
print them here) without Go dumps or temporary paths, the failing line named."""

from __future__ import annotations

import pytest

from slipway.worker.build_failure import describe

DUMP = ('&imagebuilder.Step{Env:[]string{"PATH=/usr/local/sbin:/usr/bin"}, Command:"runn", '
        'Args:[]string{""}, Flags:[]string{}, Attrs:map[string]bool(nil), Message:"RUNN ", '
        'Original:"RUNN echo bad"}')


@pytest.mark.parametrize(("error", "dockerfile", "expected"), [
    (f'Error: building at STEP "RUNN ": Build error: Unknown instruction: "RUNN" {DUMP}',
     "FROM base\nRUN echo ok\nRUNN echo bad\n",
     "Dockerfile line 3: unknown instruction: RUNN"),
    ('Error: building at STEP "RUN make &&   make install": exit status 2',
     "# syntax\nFROM base\n\nRUN make && \\\n    make install\n",
     "Dockerfile line 4: RUN make && make install: exit status 2"),
    ('Error: building at STEP "RUN false": while running runtime: exit status 1',
     "FROM base\nRUN false\n",
     "Dockerfile line 2: RUN false: exit status 1"),
    ('Error: building at STEP "ENV ": ENV requires at least one argument',
     "FROM base\nENV\n",
     "Dockerfile line 2: ENV requires at least one argument"),
    ('Error: building at STEP "COPY a.txt /a": checking on sources under "/tmp/w/package": '
     'copier: stat: "/a.txt": no such file or directory',
     "FROM base\nCOPY a.txt /a\n",
     'Dockerfile line 2: COPY a.txt /a: checking on sources under the build context: '
     'copier: stat: "/a.txt": no such file or directory'),
    ("Error: no FROM statement found", "RUN true\n", "the build failed: no FROM statement found"),
])
def test_the_message_a_user_reads(error: str, dockerfile: str, expected: str) -> None:
    assert describe(error, dockerfile, "/tmp/w/package") == expected


def test_a_step_not_found_in_the_dockerfile_is_still_named() -> None:
    message = describe('Error: building at STEP "RUN ${CMD}": exit status 3', "FROM base\n")
    assert message == "Dockerfile: RUN ${CMD}: exit status 3"


def test_a_long_instruction_is_shortened() -> None:
    step = "RUN " + "x" * 200
    message = describe(f'Error: building at STEP "{step}": exit status 1', f"FROM b\n{step}\n")
    assert message.startswith("Dockerfile line 2: RUN xxx") and message.endswith("…: exit status 1")
    assert len(message) < 130
