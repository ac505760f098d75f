"""The deploy files as Kubernetes and App Engine read them: the image runs as a numeric user (so
`runAsNonRoot` can check it) and says the shutdown figure the bot keeps; every manifest under
deploy/kubernetes/ is valid against Kubernetes' own schemas (strict: an unknown field is an error),
and the Deployment agrees with the image and the settings (user, port, writable paths, grace period,
Secret keys, the config file's path and contents). (`make lint` runs hadolint on the Dockerfile;
tests/test_deploy_rbac.py checks the ClusterRole against the calls the bot makes.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices, SecretStr

from bot.app import SHUTDOWN_BUDGET
from bot.settings import EnvSettings, parse_file_config

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest minor the manifests promise to work on; they use only APIs that are v1 there.
KUBERNETES_VERSION = "1.33"
KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
}
NOT_OURS = {"MPLCONFIGDIR"}  # read by matplotlib, not by the bot's settings
LOG_FORMAT = "NETLOG_LOG_FORMAT"  # read by the logging set-up, before the settings are loaded

Doc = dict[str, Any]


def final_stage() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8").rsplit("\nFROM ", 1)[1]


def image_user() -> int:
    (user,) = re.findall(r"^USER (\S+)$", final_stage(), re.MULTILINE)
    return int(user)


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def all_documents() -> Iterator[Doc]:
    for path in manifest_files():
        yield from documents(path)


def one(kind: str) -> Doc:
    (found,) = (doc for doc in all_documents() if doc["kind"] == kind)
    return found


def pod_spec() -> Doc:
    spec: Doc = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> Doc:
    (bot,) = pod_spec()["containers"]
    return dict(bot)


def env() -> dict[str, Doc]:
    return {var["name"]: var for var in container()["env"]}


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    assert image_user() != 0


def test_the_shutdown_figure_is_the_bots_everywhere() -> None:
    seconds = f"{SHUTDOWN_BUDGET:.0f} s"
    assert f"exits within {seconds}" in final_stage()
    assert f"SIGTERM drains within {seconds}." in (ROOT / "README.md").read_text(encoding="utf-8")


# -- deploy/kubernetes/ -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_is_valid_for_kubernetes(path: Path) -> None:
    assert f"Kubernetes {KUBERNETES_VERSION}'s schemas" in (ROOT / "README.md").read_text(encoding="utf-8")
    docs = documents(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {where}: {error.message}")


def test_the_promised_kinds_are_there_once_each_and_no_secret_values() -> None:
    kinds = [doc["kind"] for doc in all_documents()]
    # A Secret would hold values: it is created by hand. rbac-apply.yaml adds the opt-in role.
    assert sorted(kinds) == sorted([*KINDS, "ClusterRole", "ClusterRoleBinding"])


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    opt_in = {"rbac-apply.yaml"}  # applying proposals: granted by hand (README: RBAC for the bot)
    listed = [p.name for p in manifest_files() if p.name not in opt_in]
    assert sorted(kustomization["resources"]) == listed


def test_namespaced_objects_live_in_the_namespace() -> None:
    namespace = one("Namespace")["metadata"]["name"]
    for doc in all_documents():
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == namespace, doc["kind"]
    account = one("ServiceAccount")["metadata"]
    for binding in (
        doc for doc in all_documents() if doc["kind"] == "ClusterRoleBinding"
    ):  # and the opt-in one
        (subject,) = binding["subjects"]
        assert (subject["kind"], subject["name"], subject["namespace"]) == (
            "ServiceAccount",
            account["name"],
            account["namespace"],
        )
    assert pod_spec()["serviceAccountName"] == account["name"]
    assert account["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def test_the_grace_period_covers_the_drain() -> None:
    """Kubernetes kills the container this long after SIGTERM: longer than the drain, not much."""
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert SHUTDOWN_BUDGET < grace <= SHUTDOWN_BUDGET + 10
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"given {grace} s after SIGTERM for the {SHUTDOWN_BUDGET:.0f} s drain" in " ".join(readme.split())


def test_the_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    security, own = pod_spec()["securityContext"], container()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == image_user()
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]


def test_what_the_bot_writes_is_on_a_writable_volume() -> None:
    writable = [
        PurePosixPath(m["mountPath"]) for m in container()["volumeMounts"] if not m.get("readOnly", False)
    ]

    def on_writable(path: str) -> bool:
        return any(PurePosixPath(path).is_relative_to(mount) for mount in writable)

    sqlite_default = re.search(r"NETLOG_DB_URL=sqlite:///(\S+)", final_stage())
    assert sqlite_default
    assert on_writable(str(PurePosixPath(sqlite_default[1]).parent))
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", final_stage(), re.MULTILINE)
    assert on_writable(workdir)
    assert on_writable(env()["MPLCONFIGDIR"]["value"])
    assert on_writable("/tmp")  # tempfile's default: GKE mode writes CA files there


def test_the_sqlite_store_outlives_the_pod() -> None:
    """Pub/Sub is acked once a message is stored: the default store must survive a new pod (a
    rollout, a drain), so its directory is on the folder's claim, which one pod at a time mounts."""
    sqlite_default = re.search(r"NETLOG_DB_URL=sqlite:///(\S+)", final_stage())
    assert sqlite_default
    store_dir = PurePosixPath(sqlite_default[1]).parent
    (mount,) = [m for m in container()["volumeMounts"] if store_dir.is_relative_to(m["mountPath"])]
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == mount["name"]]
    claim = one("PersistentVolumeClaim")
    security = pod_spec()["securityContext"]
    assert security["fsGroup"] == security["runAsGroup"]  # a new disk is root's: writable by the group
    claim_name = claim["metadata"]["name"]
    assert volume == {"name": mount["name"], "persistentVolumeClaim": {"claimName": claim_name}}
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployment = one("Deployment")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}  # the old pod lets go of the volume first


def test_probes_and_port_are_the_bots() -> None:
    bot = container()
    port = int(env()["NETLOG_HTTP_PORT"]["value"])
    (declared,) = bot["ports"]
    assert declared["containerPort"] == port
    probes = {name: bot[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {name: probe["path"] for name, probe in probes.items()} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert all(probe["port"] == declared["name"] for probe in probes.values())
    assert env()[LOG_FORMAT]["value"] == "json"
    assert one("Service")["spec"]["ports"][0]["targetPort"] == declared["name"]
    ingress = one("NetworkPolicy")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [port]


def env_names(secret: bool | None = None) -> set[str]:
    """The environment variables the settings read (only the secret ones, or only the others)."""
    names: set[str] = set()
    for field in EnvSettings.model_fields.values():
        if secret is not None and (SecretStr in getattr(field.annotation, "__args__", ())) != secret:
            continue
        alias = field.validation_alias
        names |= {str(a) for a in alias.choices} if isinstance(alias, AliasChoices) else {str(alias)}
    return names


def test_the_environment_names_settings_the_bot_reads() -> None:
    assert set(env()) <= env_names() | NOT_OURS | {LOG_FORMAT}


def test_secrets_come_from_the_secret_by_their_own_names() -> None:
    refs = {
        name: var["valueFrom"]["secretKeyRef"]
        for name, var in env().items()
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    # Every secret setting, and the database URL (it may hold a password).
    assert set(refs) == env_names(secret=True) | {"NETLOG_DB_URL"}
    assert all(ref["key"] == name and ref["name"] == "netlog-bot" for name, ref in refs.items())
    # The token is always needed; the others depend on the mode (HTTP or Socket) and the store.
    assert {name for name, ref in refs.items() if not ref.get("optional", False)} == {"SLACK_BOT_TOKEN"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "kubectl -n netlog create secret generic netlog-bot" in readme


def test_the_config_file_is_mounted_where_netlog_config_says_and_is_valid() -> None:
    config_map = one("ConfigMap")
    mount = next(m for m in container()["volumeMounts"] if m["mountPath"] == "/etc/netlog")
    volume = next(v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (item,) = volume["configMap"]["items"]
    assert env()["NETLOG_CONFIG"]["value"] == f"{mount['mountPath']}/{item['path']}"
    settings = parse_file_config(yaml.safe_load(config_map["data"][item["key"]]), item["key"])
    assert settings.access.operators
    (cluster,) = settings.clusters.values()
    assert (cluster.context, cluster.endpoint) == (None, None)  # the bot's own cluster, in-cluster
    for name in ("GOOGLE_CLOUD_PROJECT", "NETLOG_SUBSCRIPTION"):
        ref = env()[name]["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == config_map["metadata"]["name"]
        assert ref["key"] in config_map["data"]


def test_the_service_budget_and_policy_select_the_bots_pods() -> None:
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert one("Deployment")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one("Service")["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_the_network_policy_lets_the_bot_reach_what_it_needs() -> None:
    spec = one("NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    opened = {
        (port["protocol"], port["port"], peer.get("ipBlock", {}).get("cidr", "pods"))
        for rule in spec["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }
    assert {("UDP", 53, "pods"), ("TCP", 53, "pods")} <= opened  # kube-dns
    assert ("TCP", 443, "0.0.0.0/0") in opened  # Slack, Google's APIs, the API server
    assert ("TCP", 5432, "0.0.0.0/0") in opened  # PostgreSQL
    assert ("TCP", 80, "169.254.169.254/32") in opened  # Workload Identity's tokens
