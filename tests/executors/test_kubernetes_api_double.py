"""The Kubernetes API test double keeps the real API's rules (the executor tests rely on
them): checked here over plain HTTPS, as any client would see them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.k8s_api import K8sApiDouble

JOBS = "/apis/batch/v1/namespaces/builder/jobs"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[K8sApiDouble]:
    double = K8sApiDouble(tmp_path / "k8s").start()
    yield double
    double.stop()


@pytest.fixture
def http(api: K8sApiDouble) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"https://{api.server}",
        verify=ssl.create_default_context(cafile=str(api.ca_path)),
        headers={"Authorization": f"Bearer {api.token}"},
    ) as client:
        yield client


def job(labels: dict[str, str], name: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = "build-"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            }
        },
    }


def test_generate_name_server_fields_and_conflicts(http: httpx.Client) -> None:
    created = http.post(JOBS, json=job({"a": "1"})).json()
    meta = created["metadata"]
    assert meta["name"].startswith("build-") and len(meta["name"]) == len("build-") + 5
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert http.post(JOBS, json=job({}, name="fixed")).status_code == 201
    conflict = http.post(JOBS, json=job({}, name="fixed"))
    assert conflict.status_code == 409
    assert conflict.json() | {"details": None} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch "fixed" already exists',
        "reason": "AlreadyExists",
        "code": 409,
        "details": None,
    }
    missing = http.get(f"{JOBS}/nope").json()
    assert (missing["code"], missing["reason"], missing["message"]) == (
        404,
        "NotFound",
        'jobs.batch "nope" not found',
    )
    no_ns = http.post("/apis/batch/v1/namespaces/elsewhere/jobs", json=job({}))
    assert no_ns.status_code == 404
    assert no_ns.json()["message"] == 'namespaces "elsewhere" not found'


def test_invalid_objects_are_rejected_as_the_api_would(http: httpx.Client) -> None:
    bad = job({})
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    answer = http.post(JOBS, json=bad)
    assert answer.status_code == 422
    assert answer.json()["reason"] == "Invalid"


def test_label_selectors(http: httpx.Client) -> None:
    for labels in ({"env": "prod", "tier": "a"}, {"env": "dev"}, {"tier": "b"}):
        http.post(JOBS, json=job(labels))

    def count(selector: str) -> int:
        return len(http.get(JOBS, params={"labelSelector": selector}).json()["items"])

    assert count("env=prod") == 1
    assert count("env==prod,tier=a") == 1
    assert count("env!=prod") == 2  # includes the Job without the label
    assert count("env in (prod, dev)") == 2
    assert count("env notin (prod)") == 2
    assert count("tier") == 2
    assert count("!tier") == 1
    assert count("") == 3
    assert http.get(JOBS, params={"labelSelector": "env=(x"}).status_code == 400


def test_auth(api: K8sApiDouble, http: httpx.Client) -> None:
    with httpx.Client(
        base_url=f"https://{api.server}", verify=ssl.create_default_context(cafile=str(api.ca_path))
    ) as anonymous:
        denied = anonymous.get(JOBS)
        assert denied.status_code == 401
        assert denied.json()["reason"] == "Unauthorized"
        wrong = anonymous.get(JOBS, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    api.permissions = {("list", "batch", "jobs", "builder")}
    assert http.get(JOBS).status_code == 200
    forbidden = http.post(JOBS, json=job({}))
    assert forbidden.status_code == 403
    assert 'cannot create resource "jobs" in API group "batch"' in forbidden.json()["message"]
    review = http.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": "builder",
                    "verb": "create",
                    "group": "batch",
                    "resource": "jobs",
                }
            },
        },
    ).json()
    assert review["status"]["allowed"] is False


def test_delete_propagation(api: K8sApiDouble, http: httpx.Client) -> None:
    first = http.post(JOBS, json=job({})).json()["metadata"]["name"]
    second = http.post(JOBS, json=job({})).json()["metadata"]["name"]
    assert len(api.objects("pods", "builder")) == 2
    # batch/v1's default is to orphan the pods
    assert http.delete(f"{JOBS}/{first}").status_code == 200
    orphans = api.objects("pods", "builder")
    assert len(orphans) == 2
    assert sum(1 for p in orphans if not p["metadata"]["ownerReferences"]) == 1
    assert (
        http.delete(f"{JOBS}/{second}", params={"propagationPolicy": "Foreground"}).status_code
        == 200
    )
    assert len(api.objects("pods", "builder")) == 1
    assert http.delete(f"{JOBS}/{second}").status_code == 404


def test_fault_injection(api: K8sApiDouble, http: httpx.Client) -> None:
    api.inject(status=500, message="boom", method="GET")
    answer = http.get(JOBS)
    assert (answer.status_code, answer.json()["message"]) == (500, "boom")
    assert http.get(JOBS).status_code == 200  # once only
    api.inject(delay=5)
    with pytest.raises(httpx.ReadTimeout):
        http.get(JOBS, timeout=0.5)
