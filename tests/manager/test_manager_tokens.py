"""Forged, expired, replayed and wrong-type tokens are refused and change nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker

from slipway.domain.phases import Phase
from slipway.protocol import buildman_pb2 as pb
from slipway.tokens.jwt import InvalidToken, TokenService, TokenType
from slipway.tokens.keys import load_or_create


@pytest.fixture
async def scheduled(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A build whose worker was started but has not registered."""
    harness = Harness(tmp_path)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    await harness.start([executor])
    build_id = await harness.submit()
    await harness.wait_for(lambda: len(executor.started) == 1)
    await harness.wait_phase(build_id, Phase.BUILD_SCHEDULED)
    worker = ProtocolWorker(harness.address)
    yield harness, executor.started[0], build_id, worker
    await worker.close()
    await harness.stop()


async def _refused(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


def _hs256(header: dict[str, object], claims: dict[str, object], secret: bytes) -> str:
    """Signed by hand: PyJWT rightly refuses to use a PEM key as an HMAC secret."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _forge(claims: dict[str, object], kid: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid})


async def test_forged_token_is_refused(scheduled) -> None:  # type: ignore[no-untyped-def]
    harness, spec, build_id, worker = scheduled
    genuine = jwt.decode(spec.registration_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(spec.registration_token)["kid"]
    forged = _forge(genuine, kid)  # same claims and kid, another key
    assert await _refused(worker.register(forged)) is grpc.StatusCode.UNAUTHENTICATED
    assert await _refused(worker.register(_forge(genuine, "unknown-kid"))) is (
        grpc.StatusCode.UNAUTHENTICATED)
    # nothing changed: the genuine token still works once
    assert (await harness.build(build_id)).phase is Phase.BUILD_SCHEDULED
    pack = await worker.register(spec.registration_token)
    assert pack.repository == "ns/repo"


async def test_expired_token_is_refused(scheduled) -> None:  # type: ignore[no-untyped-def]
    harness, spec, build_id, worker = scheduled
    expired = harness.tokens.mint(TokenType.REGISTRATION, build_id, spec.job_id, -10)
    assert await _refused(worker.register(expired)) is grpc.StatusCode.UNAUTHENTICATED
    assert (await harness.build(build_id)).phase is Phase.BUILD_SCHEDULED


async def test_wrong_audience_is_refused(scheduled) -> None:  # type: ignore[no-untyped-def]
    harness, spec, _, worker = scheduled
    claims = jwt.decode(spec.registration_token, options={"verify_signature": False})
    claims["aud"] = "other-manager.example.com"
    claims["exp"] = int(time.time()) + 60
    token = jwt.encode(claims, harness.tokens.key.private_pem, algorithm="ES256",
                       headers={"kid": harness.tokens.key.kid})
    assert await _refused(worker.register(token)) is grpc.StatusCode.UNAUTHENTICATED


async def test_a_token_cannot_choose_its_algorithm(scheduled) -> None:  # type: ignore[no-untyped-def]
    """HS256 signed with the published public key as the secret (the classic confusion
    attack) is refused: the key decides the algorithm, not the token's header."""
    harness, spec, build_id, worker = scheduled
    claims = jwt.decode(spec.registration_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(spec.registration_token)
    assert header["alg"] == "ES256"
    public_pem = harness.tokens.key.public_pem.encode()
    forged = _hs256({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}, claims, public_pem)
    assert await _refused(worker.register(forged)) is grpc.StatusCode.UNAUTHENTICATED
    assert (await harness.build(build_id)).phase is Phase.BUILD_SCHEDULED


async def test_replayed_registration_token_is_refused(scheduled) -> None:  # type: ignore[no-untyped-def]
    harness, spec, build_id, worker = scheduled
    await worker.register(spec.registration_token)
    entries_before = len(await harness.log(build_id))
    again = ProtocolWorker(harness.address)
    assert await _refused(again.register(spec.registration_token)) is (
        grpc.StatusCode.UNAUTHENTICATED)
    await again.close()
    assert len(await harness.log(build_id)) == entries_before


async def test_wrong_token_types_are_refused(scheduled) -> None:  # type: ignore[no-untyped-def]
    harness, spec, build_id, worker = scheduled
    await worker.register(spec.registration_token)
    job_token = worker.job_jwt
    # a job token cannot register
    assert await _refused(ProtocolWorker(harness.address).register(job_token)) is (
        grpc.StatusCode.UNAUTHENTICATED)
    # a registration token cannot set phases, log or heartbeat
    code = await _refused(worker.set_phase(pb.BUILDING, job_jwt=spec.registration_token))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    replies = await worker.logs([{"stream": "x"}], job_jwt=spec.registration_token)
    assert [r.success for r in replies] == [False]
    assert await worker.heartbeat(job_jwt=spec.registration_token) == [False]
    assert (await harness.build(build_id)).phase is Phase.BUILD_SCHEDULED
    assert [e.message for e in await harness.log(build_id)].count("x") == 0
    # while the job token does all of it
    assert (await worker.set_phase(pb.BUILDING)).success
    assert await worker.heartbeat() == [True]


async def test_an_rsa_key_of_an_earlier_version_keeps_working(tmp_path: Path) -> None:
    """Managers created their key as RSA-2048 before ES256: such a DATA_DIR still mints
    RS256 tokens that every manager verifies."""
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (key_dir / "signing.pem").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    old = load_or_create(tmp_path)
    new = load_or_create(tmp_path / "new")
    published = {old.kid: old.public_pem, new.kid: new.public_pem}

    async def lookup(kid: str) -> str | None:
        return published.get(kid)

    old_service = TokenService(old, "builder.test", lookup)
    new_service = TokenService(new, "builder.test", lookup)
    old_token = old_service.mint(TokenType.JOB, "b", "j", 60)
    new_token = new_service.mint(TokenType.JOB, "b", "j2", 60)
    assert jwt.get_unverified_header(old_token)["alg"] == "RS256"
    assert jwt.get_unverified_header(new_token)["alg"] == "ES256"
    assert (await new_service.verify(old_token, TokenType.JOB)).job_id == "j"
    assert (await old_service.verify(new_token, TokenType.JOB)).job_id == "j2"


async def test_tokens_a_manager_minted_itself_follow_the_same_rules(tmp_path: Path) -> None:
    """The minting manager knows its own tokens without a signature check; they must still
    expire, keep their type, and carry the same claims another manager reads from them."""
    key = load_or_create(tmp_path)

    async def lookup(kid: str) -> str | None:
        return key.public_pem if kid == key.kid else None

    minting = TokenService(key, "builder.test", lookup)
    other = TokenService(load_or_create(tmp_path / "other"), "builder.test", lookup)
    token = minting.mint(TokenType.REGISTRATION, "build-1", "job-1", 1.2)
    mine = await minting.verify(token, TokenType.REGISTRATION)
    assert mine == await other.verify(token, TokenType.REGISTRATION)
    assert (mine.build_id, mine.job_id) == ("build-1", "job-1")
    with pytest.raises(InvalidToken, match="wrong token type"):
        await minting.verify(token, TokenType.JOB)
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        await minting.verify(token, TokenType.REGISTRATION)
