"""The Kubernetes side of the operator tests: kmock's emulator, with the bookkeeping an API
server does that kmock leaves out, and helpers to read and write objects through it.

kmock stores bodies verbatim. kopf needs what a real API server adds: `resourceVersion` (its
finalizer JSON-patch starts with a `test` op on it, and a failed test must be a 422, not
kmock's 500), `uid`, `creationTimestamp`, and `generation` bumped when the spec changes
(for `observedGeneration`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml
from ojs_operator import crds

NS = "apps"
QUEUES = f"{crds.API_VERSION}/{crds.QUEUE_PLURAL}"
CRONS = f"{crds.API_VERSION}/{crds.CRON_PLURAL}"
DEPLOYMENTS = "apps/v1/deployments"
SCALED_OBJECTS = "keda.sh/v1alpha1/scaledobjects"
MERGE = {"Content-Type": "application/merge-patch+json"}


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock plus metadata stamping, generation bumps and 422 for a failed patch test."""

    _version: int = attrs.field(default=0, init=False)

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.data is not None:
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                self._stamp_new(request.data)
            elif request.action == kmock.action.UPDATE and request.name is not None:
                self._stamp_change(request)
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _stamp_new(self, body: dict[str, Any]) -> None:
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._next_version()

    def _stamp_change(self, request: Any) -> None:
        version = self._next_version()
        try:
            stored = self.objects[request.resource, request.namespace, request.name].raw
        except KeyError:
            stored = {}
        generation = int((stored.get("metadata") or {}).get("generation") or 1)
        if isinstance(request.data, dict):  # merge patch
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = version
            if "spec" in request.data and request.subresource is None:
                meta["generation"] = generation + 1
        elif isinstance(request.data, list):  # JSON patch: its `test` ops run first
            request.data.append(
                {"op": "add", "path": "/metadata/resourceVersion", "value": version}
            )
            if any(str(op.get("path", "")).startswith("/spec") for op in request.data):
                request.data.append(
                    {"op": "add", "path": "/metadata/generation", "value": generation + 1}
                )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(server: kmock.KubernetesEmulator, crd: dict[str, Any]) -> None:
    """Discovery for a CRD: kmock does not derive it from CRD objects."""
    spec = crd["spec"]
    for version in spec["versions"]:
        key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
        server.resources[key] = kmock.ResourceInfo(
            kind=spec["names"]["kind"],
            singular=spec["names"]["singular"],
            namespaced=spec["scope"] == "Namespaced",
            shortnames=spec["names"].get("shortNames", []),
            categories=spec["names"].get("categories", []),
            verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
            subresources=list((version.get("subresources") or {}).keys()),
        )
    server.objects[
        "apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]
    ] = crd


def register_keda(server: kmock.KubernetesEmulator) -> None:
    server.resources[SCALED_OBJECTS] = kmock.ResourceInfo(
        kind="ScaledObject",
        singular="scaledobject",
        namespaced=True,
        verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
        subresources=["status"],
    )


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": url.rstrip("/")}}],
                "users": [{"name": "kmock", "user": {"token": "test"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            }
        )
    )
    return path


def deployment(name: str, replicas: int, namespace: str = NS) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "worker", "image": "worker"}]},
            },
        },
    }


def queue(name: str, spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": crds.API_VERSION,
        "kind": crds.QUEUE_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cronjob(name: str, spec: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": crds.API_VERSION,
        "kind": crds.CRON_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def url_of(resource: str, namespace: str, name: str | None = None) -> str:
    group_version, plural = resource.rsplit("/", 1)
    prefix = "/api/" if group_version == "v1" else "/apis/"
    path = f"{prefix}{group_version}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def current(server: kmock.KubernetesEmulator, resource: str, name: str, namespace: str = NS) -> Any:
    """The stored object, or None once it is gone."""
    try:
        obj = server.objects[resource, namespace, name]
    except KeyError:
        return None
    return None if obj.deleted else obj


async def eventually(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll `check` without blocking the loop (kmock serves on it) until it is truthy."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not true within {timeout}s: {inspect.getsource(check).strip()} "
                f"(last error: {last!r})"
            )
        await asyncio.sleep(every)


def condition(obj: Any, kind: str) -> dict[str, Any]:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}
