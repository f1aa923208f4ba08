"""The Kubernetes API beyond what kopf does for us: worker Deployments and KEDA ScaledObjects.

The official client is synchronous, so every call runs in a worker thread (the event loop
keeps serving kopf). Objects come back as plain dicts. Replicas change only through the
Deployment's `scale` subresource, which is all the operator's RBAC allows it to write.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kubernetes

KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL = "keda.sh", "v1alpha1", "scaledobjects"

Doc = dict[str, Any]


class KubeError(Exception):
    """A Kubernetes API call failed for another reason than a missing object."""


def load_config(kubeconfig: str | None) -> kubernetes.client.Configuration:
    """In a pod: its service account. Elsewhere: the kubeconfig (path given explicitly: the
    client reads $KUBECONFIG only once, when it is imported)."""
    configuration = kubernetes.client.Configuration()
    loaders: Any = kubernetes.config  # untyped
    try:
        loaders.load_incluster_config(client_configuration=configuration)
    except loaders.ConfigException:
        loaders.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return configuration


class Kube:
    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        self._client: Any = kubernetes.client.ApiClient(configuration)
        self._apps = kubernetes.client.AppsV1Api(self._client)
        self._custom = kubernetes.client.CustomObjectsApi(self._client)

    def close(self) -> None:
        self._client.close()

    async def deployment(self, namespace: str, name: str) -> Doc | None:
        return await self._call(self._apps.read_namespaced_deployment, name, namespace)

    async def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        found = await self._call(
            self._apps.patch_namespaced_deployment_scale, name, namespace, body
        )
        if found is None:
            raise KubeError(f"Deployment {namespace}/{name} not found")

    async def scaled_object(self, namespace: str, name: str) -> Doc | None:
        return await self._call(
            self._custom.get_namespaced_custom_object,
            KEDA_GROUP,
            KEDA_VERSION,
            namespace,
            KEDA_PLURAL,
            name,
        )

    async def create_scaled_object(self, body: Doc) -> None:
        namespace = body["metadata"]["namespace"]
        await self._call(
            self._custom.create_namespaced_custom_object,
            KEDA_GROUP,
            KEDA_VERSION,
            namespace,
            KEDA_PLURAL,
            body,
        )

    async def patch_scaled_object(self, body: Doc) -> None:
        meta = body["metadata"]
        await self._call(
            self._custom.patch_namespaced_custom_object,
            KEDA_GROUP,
            KEDA_VERSION,
            meta["namespace"],
            KEDA_PLURAL,
            meta["name"],
            body,
        )

    async def delete_scaled_object(self, namespace: str, name: str) -> bool:
        """False if it was not there."""
        found = await self._call(
            self._custom.delete_namespaced_custom_object,
            KEDA_GROUP,
            KEDA_VERSION,
            namespace,
            KEDA_PLURAL,
            name,
        )
        return found is not None

    async def _call(self, method: Any, *args: Any) -> Doc | None:
        """Run one client call off the loop; the raw JSON answer, or None for a 404."""

        def run() -> Doc | None:
            try:
                response = method(*args, _preload_content=False)
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    return None
                raise KubeError(f"HTTP {exc.status}: {exc.reason}") from exc
            except Exception as exc:  # urllib3 connection errors and the like
                raise KubeError(repr(exc)) from exc
            data = response.data
            return json.loads(data) if data else {}

        return await asyncio.to_thread(run)
