"""`slipway token create|list|revoke` and `slipway audit` against a live API
(docs/access.md)."""

from __future__ import annotations

import json
from pathlib import Path

from support.api_app import LiveApi
from typer.testing import CliRunner

from slipway.cli.main import app


def run(live: LiveApi, token: str, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), env={"SLIPWAY_URL": live.url,
                                                 "SLIPWAY_TOKEN": token, "COLUMNS": "200"})
    return r.exit_code, r.stdout, r.stderr


def test_create_list_revoke_through_the_cli(live: LiveApi) -> None:
    root = live.token({"*": "admin"}, "root")
    code, out, err = run(live, root, "token", "create", "ci-web", "--scope", "team=write",
                         "--scope", "docs=read", "--expires", "30d")
    assert code == 0, err
    made = out.strip()
    assert made.startswith("slw_") and "\n" not in made  # the token alone on stdout
    assert "ci-web" in err and "docs=read, team=write" in err and "shown only now" in err
    # the new token works, within its scopes
    code, out, err = run(live, made, "token", "create", "x", "--scope", "team=admin")
    assert code == 1 and "only an admin of namespace 'team' may grant admin" in err
    code, out, _ = run(live, root, "token", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if "ci-web" in line)
    assert "docs=read, team=write" in row and "root" in row and "active" in row
    assert made not in out
    code, out, _ = run(live, root, "token", "list", "--json")
    [listed] = [t for t in json.loads(out) if t["name"] == "ci-web"]
    code, _, err = run(live, root, "token", "revoke", listed["id"][:8])
    assert code == 0 and f"revoked token 'ci-web' (id {listed['id']})" in err
    code, _, err = run(live, made, "token", "list")
    assert code == 1 and "the API token is not valid (HTTP 401)" in err


def test_revoke_by_name_and_bad_input(live: LiveApi) -> None:
    root = live.token({"*": "admin"}, "root")
    for _ in range(2):
        assert run(live, root, "token", "create", "twin", "--scope", "ns-a=read")[0] == 0
    code, _, err = run(live, root, "token", "revoke", "twin")
    assert code == 1 and "names more than one token" in err
    code, _, err = run(live, root, "token", "revoke", "nobody")
    assert code == 1 and "no token 'nobody'" in err
    code, _, err = run(live, root, "token", "create", "x", "--scope", "team:write")
    assert code == 1 and "write NAMESPACE=ROLE" in err
    code, _, err = run(live, root, "token", "create", "x", "--scope", "ns-a=read",
                       "--expires", "soon")
    assert code == 1 and "expires_in" in err
    assert len(json.loads(run(live, root, "token", "list", "--json")[1])) == 3


def test_audit_filters_and_exports_json_lines(live: LiveApi) -> None:
    root = live.token({"*": "admin"}, "root")
    assert run(live, root, "token", "create", "one", "--scope", "ns-a=read")[0] == 0
    made = run(live, root, "token", "create", "two", "--scope", "ns-b=read")[1].strip()
    assert run(live, root, "token", "revoke", "two")[0] == 0
    code, out, err = run(live, root, "audit", "--action", "token.create")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "token.create" in line]
    assert len(rows) == 2 and all("root" in r and "127.0.0.1" in r for r in rows)
    code, out, _ = run(live, root, "audit", "--jsonl", "--since", "1h")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in lines] == ["token.create", "token.create", "token.revoke"]
    assert made not in out and root not in out
    code, out, _ = run(live, root, "audit", "--jsonl", "--until", "2000-01-01")
    assert code == 0 and out == ""
    code, _, err = run(live, root, "audit", "--since", "last tuesday")
    assert code == 1 and "give a date" in err
    reader = live.token({"ns-a": "read"}, "reader")
    code, _, err = run(live, reader, "audit")
    assert code == 1 and "HTTP 403" in err


def test_login_with_a_token_is_in_the_audit_log(live: LiveApi, tmp_path: Path) -> None:
    root = live.token({"*": "admin"}, "root")
    r = CliRunner().invoke(app, ["login", live.url, "--token-stdin"], input=root + "\n",
                           env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert r.exit_code == 0, r.stderr
    _, out, _ = run(live, root, "audit", "--jsonl", "--action", "auth.sign_in")
    [entry] = [json.loads(line) for line in out.splitlines()]
    assert (entry["actor"], entry["details"]) == ("root", {"method": "token"})
