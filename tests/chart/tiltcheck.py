"""An offline check of the Tiltfile, without the tilt binary (which no package registry ships).

The Tiltfile is parsed and linted with starlark-rust (PyPI `starlark-pyo3`), then evaluated
with stand-ins for Tilt's built-ins that refuse keyword arguments Tilt does not have and
record every call. `helm()` runs the real `helm template`, so the names given to
`k8s_resource`, the ports forwarded and the images built can be checked against the workloads
the chart renders. Tilt's dialect (go.starlark.net) differs from starlark-rust only in corners
a Tiltfile rarely touches.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl
import yaml

#: Tilt's built-ins used here and their keyword parameters, in positional order
#: (docs.tilt.dev/api.html). Anything else is an error, as in Tilt.
SIGNATURES: dict[str, list[str]] = {
    "allow_k8s_contexts": ["contexts"],
    "docker_build": ["ref", "context", "build_args", "dockerfile", "dockerfile_contents",
                     "live_update", "match_in_env_vars", "ignore", "only", "entrypoint",
                     "target", "ssh", "network", "secret", "extra_tag", "container_args",
                     "cache_from", "pull", "platform", "env_vars", "extra_hosts"],
    "k8s_yaml": ["yaml", "allow_duplicates"],
    "k8s_resource": ["workload", "new_name", "port_forwards", "extra_pod_selectors",
                     "trigger_mode", "resource_deps", "objects", "auto_init", "pod_readiness",
                     "links", "labels", "discovery_strategy"],
    "local_resource": ["name", "cmd", "deps", "trigger_mode", "resource_deps", "ignore",
                       "auto_init", "serve_cmd", "cmd_bat", "serve_cmd_bat", "allow_parallel",
                       "links", "tags", "env", "serve_env", "readiness_probe", "dir",
                       "serve_dir", "labels"],
    "sync": ["local_path", "remote_path"],
    "run": ["cmd", "trigger", "echo_off"],
    "fall_back_on": ["files"],
    "watch_file": ["file_name"],
    "link": ["url", "name"],
    "local": ["command", "quiet", "command_bat", "echo_off", "env", "dir", "stdin"],
    "read_file": ["file_path", "default"],
    "warn": ["msg"],
    "fail": ["msg"],
}
HELM_PARAMS = ["pathToChartDir", "name", "namespace", "values", "set", "kube_version",
               "skip_crds"]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


@dataclass
class Result:
    lints: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    docs: list[dict[str, Any]] = field(default_factory=list)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [args for call, args in self.calls if call == name]


class _Recorder:
    def __init__(self, result: Result, root: Path, helm_bin: str) -> None:
        self.result, self.root, self.helm_bin = result, root, helm_bin

    def bind(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        params = SIGNATURES[name]
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise TypeError(f"{name}() has no parameter(s) {unknown}")
        if len(args) > len(params):
            raise TypeError(f"{name}() takes at most {len(params)} positional arguments")
        bound = dict(zip(params, args, strict=False)) | kwargs
        self.result.calls.append((name, bound))
        return bound

    def builtin(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = self.bind(name, args, kwargs)
            if name == "k8s_yaml":
                texts = bound["yaml"] if isinstance(bound["yaml"], list) else [bound["yaml"]]
                for text in texts:
                    path = self.root / str(text)
                    source = path.read_text() if "\n" not in str(text) and path.exists() else text
                    self.result.docs.extend(d for d in yaml.safe_load_all(source) if d)
            elif name == "fail":
                raise RuntimeError(f"fail(): {bound['msg']}")
            elif name == "read_file":
                path = self.root / bound["file_path"]
                return path.read_text() if path.exists() else bound.get("default", "")
            elif name == "local":
                return ""  # never run commands while checking
            return None

        return call

    def helm(self, *args: Any, **kwargs: Any) -> str:
        unknown = sorted(set(kwargs) - set(HELM_PARAMS))
        if unknown:
            raise TypeError(f"helm() has no parameter(s) {unknown}")
        bound = dict(zip(HELM_PARAMS, args, strict=False)) | kwargs
        self.result.calls.append(("helm", bound))
        command = [self.helm_bin, "template", bound.get("name") or "chart",
                   str(self.root / bound["pathToChartDir"])]
        if bound.get("namespace"):
            command += ["--namespace", bound["namespace"]]
        for values in bound.get("values") or []:
            command += ["--values", str(self.root / values)]
        for item in bound.get("set") or []:
            command += ["--set", item]
        if not bound.get("skip_crds"):
            command.append("--include-crds")
        out = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"helm template failed: {out.stderr.strip()}")
        return out.stdout


_PRELUDE = """
os = struct(getenv=_getenv, path=struct(join=_join, exists=_exists))
config = struct(define_bool=_define, define_string=_define, define_string_list=_define,
                parse=_parse)
shlex = struct(quote=_quote)
"""


def check(tiltfile: Path, helm_bin: str, cli_args: dict[str, Any] | None = None) -> Result:
    """Parse, lint and evaluate `tiltfile`; then cross-check it against what it deploys."""
    result = Result()
    root = tiltfile.parent
    source = tiltfile.read_text()
    try:
        module_ast = sl.parse(str(tiltfile), source, sl.Dialect.extended())
    except sl.StarlarkError as exc:
        result.errors.append(f"syntax: {exc}")
        return result
    result.lints = [str(lint) for lint in module_ast.lint()]

    recorder = _Recorder(result, root, helm_bin)
    module = sl.Module()
    for name in SIGNATURES:
        module.add_callable(name, recorder.builtin(name))
    module.add_callable("helm", recorder.helm)
    module.add_callable("_getenv", lambda key, default=None: os.environ.get(key, default))
    module.add_callable("_join", lambda *parts: os.path.join(*parts))
    module.add_callable("_exists", lambda path: (root / path).exists())
    module.add_callable("_quote", shlex.quote)
    module.add_callable("_define", lambda name, args=False, usage="": None)
    module.add_callable("_parse", lambda: dict(cli_args or {}))
    for mode in ("TRIGGER_MODE_AUTO", "TRIGGER_MODE_MANUAL"):
        module[mode] = mode
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType,
                                       sl.LibraryExtension.Print, sl.LibraryExtension.Json])
    sl.eval(module, sl.parse("prelude", _PRELUDE, sl.Dialect.extended()), globals_)

    # Extensions (load('ext://...')) are Tilt's own downloads: record their calls.
    exported = {load.module_id: load.symbols for load in module_ast.loads()}

    def load(module_id: str) -> Any:
        ext = sl.Module()
        for symbol in exported.get(module_id, {}).values():
            def record(*args: Any, _name: str = f"{module_id}:{symbol}", **kwargs: Any) -> None:
                result.calls.append((_name, {"args": args, **kwargs}))
            ext.add_callable(symbol, record)
        return ext.freeze()

    try:
        sl.eval(module, module_ast, globals_, sl.FileLoader(load))
    except sl.StarlarkError as exc:
        result.errors.append(f"evaluation: {exc}")
        return result
    result.errors.extend(_cross_check(result))
    return result


def _built_images(result: Result) -> set[str]:
    refs = {args["ref"] for args in result.named("docker_build")}
    for call, args in result.calls:
        if call.endswith(":docker_build_with_restart"):
            refs.add(args["args"][0] if args["args"] else args["ref"])
    return refs


def _cross_check(result: Result) -> list[str]:
    errors = []
    workloads = {d["metadata"]["name"]: d for d in result.docs if d.get("kind") in WORKLOAD_KINDS}
    local_names = {args["name"] for args in result.named("local_resource")}
    for args in result.named("k8s_resource"):
        name = args.get("workload")
        if name not in workloads:
            errors.append(f"k8s_resource({name!r}): no such workload; have {sorted(workloads)}")
            continue
        ports = {p["containerPort"] for c in workloads[name]["spec"]["template"]["spec"]
                 ["containers"] for p in c.get("ports", [])}
        for forward in args.get("port_forwards") or []:
            if int(str(forward).rsplit(":", 1)[-1]) not in ports:
                errors.append(f"k8s_resource({name!r}): no container port for {forward}")
        for dep in args.get("resource_deps") or []:
            if dep not in workloads and dep not in local_names:
                errors.append(f"k8s_resource({name!r}): unknown resource_deps {dep!r}")
    images = {c["image"].rsplit(":", 1)[0] for d in workloads.values()
              for c in d["spec"]["template"]["spec"]["containers"]}
    for ref in _built_images(result):
        if ref not in images:
            errors.append(f"image {ref!r} is built but no workload runs it; have {sorted(images)}")
    return errors
