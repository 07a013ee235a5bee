"""A Kubernetes API server test double: HTTPS (a trustme CA), objects in memory, and the
real API's rules where slipway relies on them:

- batch/v1 Jobs, v1 Pods/Secrets in namespaces (which must exist), v1 Namespaces and Nodes;
- metadata.generateName -> name + 5 random characters; uid, resourceVersion,
  creationTimestamp set by the server; 409 AlreadyExists, 404 NotFound, 422 Invalid (every
  created object is validated against the OpenAPI schema with kubernetes-validate), all as
  `Status` objects;
- a created Job gets its pod (as the Job controller would), owned by the Job;
- labelSelector (=, ==, !=, in, notin, exists, !exists), limit/continue paging;
- DELETE with propagationPolicy: Background/Foreground delete the dependents (owner
  references, recursively), Orphan (the batch/v1 default for Jobs) leaves them;
- bearer-token auth (401), or client certificates required by the TLS layer; RBAC from an
  allow-list (403 with the API's wording) that SelfSubjectAccessReview answers too;
- SelfSubjectReview, /version; fault injection (status codes, slow answers).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from support.k8s_selectors import parse_selector, selector_matches

K8S_VERSION = "1.30"
SA_USER = "system:serviceaccount:builder:quay-builder"

# plural -> (group, version, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "jobs": ("batch", "v1", "Job", True),
    "pods": ("", "v1", "Pod", True),
    "secrets": ("", "v1", "Secret", True),
    "namespaces": ("", "v1", "Namespace", False),
    "nodes": ("", "v1", "Node", False),
}
_VERB = {"GET": "get", "POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}


def _qualified(resource: str) -> str:
    group = RESOURCES[resource][0]
    return f"{resource}.{group}" if group else resource


def status(code: int, reason: str, message: str, **details: Any) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=code)


class ApiError(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


# ---- the double --------------------------------------------------------------------------


@dataclass
class Fault:
    status: int = 0  # 0: no error, only the delay
    message: str = ""
    delay: float = 0.0
    method: str | None = None
    path_contains: str | None = None
    times: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class K8sApiDouble:
    tmp_dir: Path
    token: str = "k8s-test-token-0123456789"
    namespaces: Iterable[str] = ("builder",)
    # "token": bearer tokens; "client-cert": TLS requires a client certificate of the CA
    auth: str = "token"
    username: str = SA_USER
    ca: trustme.CA = field(default_factory=trustme.CA)
    # (verb, group, resource, namespace) with "*" wildcards; None allows everything
    permissions: set[tuple[str, str, str, str]] | None = None
    validate: bool = True

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.store: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self._rv = 1000
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.port = 0
        for ns in self.namespaces:
            self._insert(
                "namespaces", {"metadata": {"name": ns}, "spec": {}, "status": {"phase": "Active"}}
            )
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.tmp_dir / "k8s-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))

    # -- lifecycle --

    @property
    def server(self) -> str:
        """What K8S_API_SERVER holds: host:port."""
        return f"127.0.0.1:{self.port}"

    def client_cert(self, name: str = "slipway-manager") -> tuple[Path, Path]:
        """A client certificate (cert file, key file) signed by the double's CA."""
        issued = self.ca.issue_cert(name)
        cert, key = self.tmp_dir / f"{name}.crt", self.tmp_dir / f"{name}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        return cert, key

    def start(self) -> K8sApiDouble:
        server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        pem = self.tmp_dir / "k8s-server.pem"
        server_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            ssl_certfile=str(pem),
            ssl_ca_certs=str(self.ca_path) if self.auth == "client-cert" else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if self.auth == "client-cert" else ssl.CERT_NONE,
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            ready.set()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        ready.wait(10)
        for _ in range(500):
            if self._server.started:
                break
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    # -- test controls --

    def inject(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def add_node(self, name: str, labels: dict[str, str]) -> None:
        with self.lock:
            self._insert("nodes", {"metadata": {"name": name, "labels": dict(labels)}})

    def objects(self, resource: str, namespace: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [
                json.loads(json.dumps(o))
                for (ns, _), o in sorted(self.store[resource].items())
                if not namespace or ns == namespace
            ]

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.store[resource].get((namespace, name))
            return json.loads(json.dumps(obj)) if obj else None

    def set_job_condition(self, namespace: str, name: str, condition: str) -> None:
        """Finish a Job as its controller would: a true Complete or Failed condition."""
        with self.lock:
            job = self.store["jobs"][(namespace, name)]
            now = _now()
            job.setdefault("status", {}).setdefault("conditions", []).append(
                {
                    "type": condition,
                    "status": "True",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                }
            )
            self._bump(job)

    # -- storage --

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _insert(self, resource: str, obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
        group, version, kind, namespaced = RESOURCES[resource]
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        if namespaced:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        self._bump(obj)
        self.store[resource][(namespace, meta["name"])] = obj
        return obj

    def _create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        group, _, kind, namespaced = RESOURCES[resource]
        if namespaced and ("", namespace) not in self.store["namespaces"]:
            raise ApiError(
                status(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    name=namespace,
                    kind="namespaces",
                )
            )
        meta = body.get("metadata") or {}
        if meta.get("namespace") not in (None, namespace):
            raise ApiError(
                status(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request",
                )
            )
        if self.validate:
            try:
                kubernetes_validate.validate(body, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                raise ApiError(
                    status(
                        422, "Invalid", f"{kind} is invalid: {path}: {exc.message}", kind=resource
                    )
                ) from None
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(
                    status(
                        422,
                        "Invalid",
                        f"{kind} is invalid: metadata.name: "
                        "Required value: name or generateName is required",
                    )
                )
            meta["name"] = prefix + _suffix()
        name = meta["name"]
        if (namespace, name) in self.store[resource]:
            raise ApiError(
                status(
                    409,
                    "AlreadyExists",
                    f'{_qualified(resource)} "{name}" already exists',
                    name=name,
                    group=group,
                    kind=resource,
                )
            )
        obj = json.loads(json.dumps(body))
        obj["metadata"] = meta
        if resource == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for key, value in obj.pop("stringData").items():
                data[key] = base64.b64encode(value.encode()).decode()
        created = self._insert(resource, obj, namespace)
        if resource == "jobs":
            self._run_job_controller(created)
        return created

    def _run_job_controller(self, job: dict[str, Any]) -> None:
        uid, name, ns = (
            job["metadata"]["uid"],
            job["metadata"]["name"],
            job["metadata"]["namespace"],
        )
        selector = {"batch.kubernetes.io/controller-uid": uid}
        job["spec"]["selector"] = {"matchLabels": selector}
        template = job["spec"]["template"]
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            **selector,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        template.setdefault("metadata", {})["labels"] = labels
        job["status"] = {"active": 1, "startTime": _now()}
        pod = {
            "metadata": {
                "name": f"{name}-{_suffix()}",
                "labels": dict(labels),
                "annotations": dict((template.get("metadata") or {}).get("annotations", {})),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": name,
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": json.loads(json.dumps(template["spec"])),
            "status": {"phase": "Pending"},
        }
        self._insert("pods", pod, ns)

    def _delete(
        self, resource: str, namespace: str, name: str, policy: str | None
    ) -> dict[str, Any]:
        obj = self.store[resource].get((namespace, name))
        if obj is None:
            group = RESOURCES[resource][0]
            raise ApiError(
                status(
                    404,
                    "NotFound",
                    f'{_qualified(resource)} "{name}" not found',
                    name=name,
                    group=group,
                    kind=resource,
                )
            )
        if policy is None:
            # batch/v1 Jobs still default to orphaning their pods (kubectl sends Background).
            policy = "Orphan" if resource == "jobs" else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(status(400, "BadRequest", f"unsupported propagationPolicy {policy!r}"))
        del self.store[resource][(namespace, name)]
        uid = obj["metadata"]["uid"]
        for dep_resource, objects in self.store.items():
            for (dep_ns, dep_name), dep in list(objects.items()):
                owners = dep["metadata"].get("ownerReferences") or []
                if not any(o.get("uid") == uid for o in owners):
                    continue
                if policy == "Orphan":
                    dep["metadata"]["ownerReferences"] = [o for o in owners if o.get("uid") != uid]
                    self._bump(dep)
                else:
                    self._delete(dep_resource, dep_ns, dep_name, "Background")
        return obj

    # -- HTTP --

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/{path:path}", self._handle, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]
                )
            ]
        )

    async def _handle(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return status(400, "BadRequest", "the body of the request was not valid JSON")
        path = "/" + request.path_params["path"]
        auth = request.headers.get("authorization")
        with self.lock:
            self.requests.append(
                Recorded(request.method, path, dict(request.query_params), body, auth)
            )
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.times > 0
                    and (f.method is None or f.method == request.method)
                    and (f.path_contains is None or f.path_contains in path)
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            if fault.delay and self._stopping is not None:
                try:
                    await asyncio.wait_for(self._stopping.wait(), fault.delay)
                except TimeoutError:
                    pass
            if fault.status:
                reasons = {
                    403: "Forbidden",
                    404: "NotFound",
                    409: "Conflict",
                    500: "InternalError",
                    503: "ServiceUnavailable",
                    429: "TooManyRequests",
                    401: "Unauthorized",
                }
                return status(
                    fault.status,
                    reasons.get(fault.status, "Unknown"),
                    fault.message or reasons.get(fault.status, "error"),
                )
        if path == "/version":
            return JSONResponse({"major": "1", "minor": "30", "gitVersion": "v1.30.0-double"})
        if self.auth == "token" and auth != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        try:
            with self.lock:
                return self._dispatch(request.method, path, dict(request.query_params), body)
        except ApiError as exc:
            return exc.response

    def allowed(self, verb: str, group: str, resource: str, namespace: str) -> bool:
        if self.permissions is None:
            return True
        return any(
            all(
                p in ("*", v) for p, v in zip(rule, (verb, group, resource, namespace), strict=True)
            )
            for rule in self.permissions
        )

    def _forbid(self, verb: str, group: str, resource: str, namespace: str) -> None:
        if self.allowed(verb, group, resource, namespace):
            return
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise ApiError(
            status(
                403,
                "Forbidden",
                f'{_qualified(resource)} is forbidden: User "{self.username}" cannot {verb} '
                f'resource "{resource}" in API group "{group}"{where}',
                group=group,
                kind=resource,
            )
        )

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> JSONResponse:
        if method == "POST" and path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            attrs = (body or {}).get("spec", {}).get("resourceAttributes", {})
            ok = self.allowed(
                attrs.get("verb", ""),
                attrs.get("group", ""),
                attrs.get("resource", ""),
                attrs.get("namespace", ""),
            )
            return JSONResponse(
                {**body, "status": {"allowed": ok, "reason": "allow-list" if ok else ""}},
                status_code=201,
            )
        if method == "POST" and path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            return JSONResponse(
                {
                    **body,
                    "status": {
                        "userInfo": {
                            "username": self.username,
                            "groups": ["system:serviceaccounts", "system:authenticated"],
                        }
                    },
                },
                status_code=201,
            )
        m = re.match(
            r"^/(?:api/v1|apis/(?P<group>[^/]+)/v1)(?:/namespaces/(?P<ns>[^/]+))?"
            r"/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?$",
            path,
        )
        # (/api/v1/namespaces/NAME matches with no namespace: the Namespace object itself)
        if m is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        resource, ns, name = m["resource"], m["ns"] or "", m["name"]
        if resource not in RESOURCES or (m["group"] or "") != RESOURCES[resource][0]:
            return status(404, "NotFound", "the server could not find the requested resource")
        verb = _VERB[method] if name or method != "GET" else "list"
        self._forbid(verb, RESOURCES[resource][0], resource, ns)
        if method == "POST" and name is None:
            return JSONResponse(self._create(resource, ns, body or {}), status_code=201)
        if method == "GET" and name is None:
            return self._list(resource, ns, query)
        if method == "GET":
            obj = self.store[resource].get((ns, name))
            if obj is None:
                return status(
                    404,
                    "NotFound",
                    f'{_qualified(resource)} "{name}" not found',
                    name=name,
                    group=RESOURCES[resource][0],
                    kind=resource,
                )
            return JSONResponse(obj)
        if method == "DELETE" and name is not None:
            policy = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
            obj = self._delete(resource, ns, name, policy)
            return JSONResponse(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": RESOURCES[resource][0],
                        "kind": resource,
                        "uid": obj["metadata"]["uid"],
                    },
                }
            )
        return status(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _list(self, resource: str, ns: str, query: dict[str, str]) -> JSONResponse:
        group, version, kind, _ = RESOURCES[resource]
        try:
            requirements = parse_selector(query.get("labelSelector", ""))
        except ValueError as exc:
            return status(400, "BadRequest", f"unable to parse requirement: {exc}")
        items = [
            o
            for (o_ns, _), o in sorted(self.store[resource].items())
            if (not ns or o_ns == ns)
            and selector_matches(requirements, o["metadata"].get("labels") or {})
        ]
        start = query.get("continue")
        if start:
            after = base64.urlsafe_b64decode(start.encode()).decode()
            items = [
                o
                for o in items
                if f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" > after
            ]
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        limit = int(query.get("limit") or 0)
        if limit and len(items) > limit:
            items = items[:limit]
            last = items[-1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                f"{last.get('namespace', '')}/{last['name']}".encode()
            ).decode()
        out = []
        for o in items:
            o = dict(o)
            o.pop("kind", None)
            o.pop("apiVersion", None)
            out.append(o)
        return JSONResponse(
            {
                "kind": f"{kind}List",
                "apiVersion": f"{group}/{version}" if group else version,
                "metadata": meta,
                "items": out,
            }
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix() -> str:
    """The 5 characters the API server appends to a generateName."""
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
