"""deploy/k8s, checked without a cluster.

Every object validates strictly against the Kubernetes schemas that kubernetes-validate ships, for the
version .ci/run pins; every `search ...` command goes through the CLI's own parser and the installed
executable's --help, so a renamed flag breaks this test; the database is reached through Secrets only;
nothing is exposed outside the cluster (the dashboard has no authentication).
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import sqlalchemy
import yaml
from ports import free_port
from processes import SEARCH, cli_rejection

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path != KUSTOMIZATION)
IMAGE = "digit-pair-search"  # built from the Dockerfile; kustomization.yaml sets its registry and tag
STORAGE_SECRET = {"name": "search-storage", "key": "url"}  # the storage URL every `search` pod reads
CREDENTIALS_IN_URL = re.compile(r"://[^/\s@]*:[^/\s@]+@")  # user:password@ written out
# Kubernetes' quantity grammar, which the schemas leave unchecked ("1x" passes them).
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


def _pinned(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", CI_RUN.read_text(), flags=re.MULTILINE)
    assert match, f".ci/run must set {name}=... at the start of a line"
    return match.group(1)


K8S_VERSION = _pinned("K8S_VERSION")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


OBJECTS = [(path.name, document) for path in MANIFESTS for document in _documents(path)]


def _object_id(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    return obj["spec"]["template"]["spec"] if obj["kind"] in ("Job", "Deployment", "StatefulSet") else None


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod_spec(obj)
    return [] if pod is None else [*pod.get("initContainers", []), *pod["containers"]]


def _of_this_project(container: dict[str, Any]) -> bool:
    return container["image"].split(":")[0] == IMAGE


# (object/container, container) for every container of the project's image.
SEARCH_CONTAINERS = [
    (f"{_object_id(obj)}/{container['name']}", container)
    for _, obj in OBJECTS
    for container in _containers(obj)
    if _of_this_project(container)
]
# The pods that talk to the database: those that run `search`.
DATABASE_PODS = [obj for _, obj in OBJECTS if any(map(_of_this_project, _containers(obj)))]
TRAINING = [
    (where, container) for where, container in SEARCH_CONTAINERS if container["command"][1] in ("run", "evaluate-best")
]


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a parsed manifest, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@functools.cache
def _installed_help(subcommand: str) -> str:
    result = subprocess.run(
        [SEARCH, subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render_workers(n_pods: int, n_trials: int) -> dict[str, Any]:
    """workers.yaml as a user scales it: N pods (parallelism = completions), each adding T trials."""
    (job,) = copy.deepcopy(_documents(K8S / "workers.yaml"))
    job["spec"]["parallelism"] = job["spec"]["completions"] = n_pods
    (container,) = _pod_spec(job)["containers"]
    container["command"][container["command"].index("--trials") + 1] = str(n_trials)
    return job


def _ci_validation(paths: list[Path]) -> tuple[bool, str]:
    """The `kubernetes manifests` step of .ci/run: the validator's CLI must exit 0 and print only INFO lines
    (it merely warns, and exits 0, for a kind it has no schema for)."""
    validator = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(validator), "--strict", "-k", K8S_VERSION, *map(str, paths)], capture_output=True, text=True, timeout=120
    )
    report = result.stdout + result.stderr
    return result.returncode == 0 and all(line.startswith("INFO ") for line in report.splitlines()), report


def test_the_manifests_are_the_kustomization_resources() -> None:
    names = {path.name for path in MANIFESTS}
    assert names == {"postgres.yaml", "create-study.yaml", "workers.yaml", "evaluate.yaml", "dashboard.yaml"}
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(names)  # `kubectl apply -k deploy/k8s` applies them all
    assert kustomization["images"] == [{"name": IMAGE, "newName": IMAGE, "newTag": "latest"}]


@pytest.mark.parametrize("item", OBJECTS, ids=lambda item: _object_id(item[1]))
def test_every_object_validates_for_the_pinned_kubernetes(item: tuple[str, dict[str, Any]]) -> None:
    """Strict: a field the pinned version does not know is an error, not ignored."""
    assert kubernetes_validate.validate(item[1], K8S_VERSION, strict=True) == K8S_VERSION


def test_the_ci_step_passes_the_manifests_offline() -> None:
    passed, report = _ci_validation(MANIFESTS)
    assert passed, report
    assert report.count(f"against version {K8S_VERSION}") == len(OBJECTS)


@pytest.mark.parametrize(
    ("fault", "old", "new", "reported"),
    [
        ("a misspelt field", "  backoffLimit:", "  backofLimit:", "'backofLimit' was unexpected"),
        ("an unknown kind", "kind: Job", "kind: Jbo", "Couldn't find schema for kind Jbo"),
    ],
)
def test_the_ci_step_fails_a_broken_manifest(tmp_path: Path, fault: str, old: str, new: str, reported: str) -> None:
    text = (K8S / "workers.yaml").read_text()
    assert old in text
    broken = tmp_path / "workers.yaml"
    broken.write_text(text.replace(old, new, 1))
    passed, report = _ci_validation([broken])
    assert not passed, f"{fault} passed: {report}"
    assert reported in report


def test_scaled_workers_render_as_one_job_of_n_pods() -> None:
    shipped = render_workers(4, 50)
    assert shipped == _documents(K8S / "workers.yaml")[0]  # the file as it is: 4 pods x 50 trials = 200
    job = render_workers(7, 30)
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 7
    # Indexed: parallelism and completions of a running Job can then be patched together.
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["backoffLimit"] >= 1
    pod = _pod_spec(job)
    assert pod["restartPolicy"] == "OnFailure"
    (container,) = pod["containers"]
    assert container["command"][:2] == ["search", "run"]
    assert _option(container["command"], "--trials") == "30"
    assert _option(container["command"], "--workers") == "1"  # one worker process per pod
    assert kubernetes_validate.validate(job, K8S_VERSION, strict=True) == K8S_VERSION


@pytest.mark.parametrize(("where", "container"), SEARCH_CONTAINERS, ids=[name for name, _ in SEARCH_CONTAINERS])
def test_every_search_command_parses_with_the_installed_cli(where: str, container: dict[str, Any]) -> None:
    argv = container["command"]
    assert all(isinstance(part, str) for part in argv), f"{where}: quote numbers, a command is a list of strings"
    assert argv[0] == "search", f"{where} runs {argv[0]!r}, not the CLI"
    rejection = cli_rejection(argv)
    assert rejection is None, f"{where}: {rejection}"
    flags = [part for part in argv[2:] if part.startswith("--")]
    assert flags
    for flag in flags:
        assert re.search(rf"{re.escape(flag)}\b", _installed_help(argv[1])), f"{flag} not in `search {argv[1]} --help`"


def test_every_container_runs_the_cli_or_postgres() -> None:
    """The project's image runs only `search` (above); the one other image is the server CI tests against,
    also used for pg_isready while a pod waits for the database."""
    images = {container["image"] for _, obj in OBJECTS for container in _containers(obj)}
    assert images == {f"{IMAGE}:latest", f"postgres:{_pinned('PG_VERSION')}"}
    assert len(SEARCH_CONTAINERS) == 4  # create-study, workers, evaluate, dashboard


@pytest.mark.parametrize(("where", "container"), TRAINING, ids=[name for name, _ in TRAINING])
def test_training_commands_fill_exactly_their_cpus(where: str, container: dict[str, Any]) -> None:
    """The CLI counts the node's cores, not the pod's CPU limit, when it picks a layout: a training command
    names its layout, one CPU per torch thread."""
    argv = container["command"]
    threads = int(_option(argv, "--threads")) if "--threads" in argv else 1  # 1 with --workers: `search run --help`
    cpus = int(_option(argv, "--workers")) * threads
    assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"] == str(cpus)


def test_resources_are_kubernetes_quantities() -> None:
    quantities = [
        (f"{_object_id(item[1])}/{key}", value)
        for item in OBJECTS
        for container in _containers(item[1])
        for key, value in _walk(container.get("resources", {}))
        if not isinstance(value, dict)
    ]
    assert quantities
    for where, value in quantities:
        assert isinstance(value, str) and QUANTITY.fullmatch(value), f"{where}: {value!r} is not a quantity"


def test_every_database_pod_reads_the_storage_from_a_secret() -> None:
    assert {obj["metadata"]["name"] for obj in DATABASE_PODS} == {
        "search-create-study",
        "search-workers",
        "search-evaluate",
        "search-dashboard",
    }
    for obj in DATABASE_PODS:
        for container in _containers(obj):
            env = {entry["name"]: entry for entry in container["env"]}
            where = f"{_object_id(obj)}/{container['name']}"
            assert env["SEARCH_STORAGE"] == {"name": "SEARCH_STORAGE", "valueFrom": {"secretKeyRef": STORAGE_SECRET}}, (
                where
            )
            assert "--storage" not in container["command"], f"{where}: the URL comes from SEARCH_STORAGE, never argv"


def _wait_commands() -> set[tuple[str, ...]]:
    return {
        tuple(container["command"])
        for _, obj in OBJECTS
        for container in _containers(obj)
        if container["name"] == "wait-for-database"
    }


def test_every_database_pod_waits_for_the_server_first() -> None:
    """`search` stops at once when it cannot reach the storage, and the server may still be starting."""
    for obj in DATABASE_PODS:
        (first, *_) = _pod_spec(obj)["initContainers"]
        assert first["name"] == "wait-for-database", _object_id(obj)
    (command,) = _wait_commands()  # the same loop in every pod
    assert "pg_isready" in command[-1]


@pytest.mark.postgres
def test_the_wait_ends_when_the_server_answers_and_not_before(pg_url: str) -> None:
    """The initContainers' loop as the manifests write it, on this machine's pg_isready: SEARCH_STORAGE's
    SQLAlchemy URL (postgresql+psycopg://) must become one libpq reads."""
    if shutil.which("pg_isready") is None:
        pytest.fail("pg_isready is missing; .ci/run installs postgresql")
    (command,) = _wait_commands()
    ready = subprocess.run(
        command, env={**os.environ, "SEARCH_STORAGE": pg_url}, capture_output=True, text=True, timeout=30
    )
    assert ready.returncode == 0, ready.stdout + ready.stderr
    closed = sqlalchemy.engine.make_url(pg_url).set(port=free_port()).render_as_string(hide_password=False)
    waiting = subprocess.Popen(
        command, env={**os.environ, "SEARCH_STORAGE": closed}, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        ended = waiting.wait(timeout=5)
    except subprocess.TimeoutExpired:
        ended = None
        os.killpg(waiting.pid, signal.SIGKILL)  # the shell and its sleep
    output, _ = waiting.communicate(timeout=10)
    assert ended is None, f"the wait ended (exit {ended}) though nothing listens on {closed}: {output}"
    assert "waiting for the database" in output


def test_no_password_is_written_in_a_manifest() -> None:
    assert not [
        _object_id(item[1]) for item in OBJECTS if item[1]["kind"] == "Secret"
    ]  # created by hand: postgres.yaml
    for item in OBJECTS:
        for container in _containers(item[1]):
            where = f"{_object_id(item[1])}/{container['name']}"
            for part in container.get("command", []) + container.get("args", []):
                assert not CREDENTIALS_IN_URL.search(part), f"{where}: a password in its command"
            for entry in container.get("env", []):
                assert "value" not in entry or not CREDENTIALS_IN_URL.search(entry["value"]), where
                if "PASSWORD" in entry["name"]:
                    assert "secretKeyRef" in entry.get("valueFrom", {}), f"{where}: {entry['name']} is written out"


def test_postgres_keeps_its_data_and_says_when_it_is_ready() -> None:
    objects = {obj["kind"]: obj for name, obj in OBJECTS if name == "postgres.yaml"}
    service, statefulset = objects["Service"], objects["StatefulSet"]
    assert service["spec"]["clusterIP"] == "None"  # headless: the StatefulSet's pod by name
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    (container,) = _pod_spec(statefulset)["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["POSTGRES_USER"]["value"] == env["POSTGRES_DB"]["value"] == "search"
    assert env["POSTGRES_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "search-db", "key": "password"}}
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    (mount,) = container["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert Path(env["PGDATA"]["value"]).parent == Path(mount["mountPath"])  # initdb refuses the volume's lost+found


def test_the_documented_storage_url_names_this_database() -> None:
    """The `kubectl create secret ... --from-literal=url=...` the files document reaches postgres.yaml's server."""
    objects = {obj["kind"]: obj for name, obj in OBJECTS if name == "postgres.yaml"}
    (port,) = objects["Service"]["spec"]["ports"]
    env = {entry["name"]: entry.get("value") for entry in _pod_spec(objects["StatefulSet"])["containers"][0]["env"]}
    documented = {
        path.name: re.findall(r'--from-literal=url="([^"]+)"', path.read_text())
        for path in [*MANIFESTS, K8S / "README.md"]
    }
    assert documented["postgres.yaml"] and documented["README.md"]
    for url in (url for urls in documented.values() for url in urls):
        parsed = sqlalchemy.engine.make_url(url)
        assert parsed.drivername == "postgresql+psycopg", url
        assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
            env["POSTGRES_USER"],
            objects["Service"]["metadata"]["name"],
            port["port"],
            env["POSTGRES_DB"],
        ), url


def test_nothing_is_exposed_outside_the_cluster() -> None:
    services = [obj for _, obj in OBJECTS if obj["kind"] == "Service"]
    dashboard = next(obj for obj in services if obj["metadata"]["name"] == "search-dashboard")
    assert dashboard["spec"]["type"] == "ClusterIP"
    for service in services:
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", _object_id(service)
    for item in OBJECTS:
        pairs = list(_walk(item[1]))
        assert not [key for key, _ in pairs if key in ("hostPort", "nodePort", "externalIPs")], _object_id(item[1])
        assert not [key for key, value in pairs if key in ("hostNetwork", "hostPID") and value], _object_id(item[1])
        assert not [value for _, value in pairs if value in ("LoadBalancer", "NodePort")], _object_id(item[1])


def test_evaluation_waits_to_be_started() -> None:
    """Applied with the rest, it must not evaluate a search that has only begun: it starts suspended."""
    (job,) = _documents(K8S / "evaluate.yaml")
    assert job["spec"]["suspend"] is True
    assert "kubectl patch job search-evaluate" in (K8S / "README.md").read_text()


def test_kustomize_renders_every_object() -> None:
    """`kubectl apply -k deploy/k8s` as kubectl builds it (kustomize needs no cluster)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the kustomization's resources and image are checked above")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = [document for document in yaml.safe_load_all(result.stdout) if document]
    assert sorted(_object_id(obj) for obj in rendered) == sorted(_object_id(item[1]) for item in OBJECTS)
    for obj in rendered:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "digit-pair-search"
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True) == K8S_VERSION
