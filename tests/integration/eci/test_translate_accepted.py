"""A rich Jenkins-shaped pod's create plan, sent through EciClient and the real SDK, is accepted by the emulator's
CreateContainerGroup as ECI documents it."""

from __future__ import annotations

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from vnode.config import EciProviderSettings
from vnode.providers.base import EnvVar, PodRef, RegistryAuth, ResolvedPod, ResolvedVolume, VolumeFile
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.credentials import Credentials, StaticCredentials
from vnode.providers.eci.translate import TAG_UID, plan_create
from vnode.sandbox.eci.server import EciEmulator

WORKSPACE = "/home/jenkins/agent"
REF = PodRef("ci", "build-42-agent-x7k2p", "2f0c7d1e-0000-4000-8000-000000000042")


def jenkins_pod() -> ResolvedPod:
    mounts = [{"name": "workspace-volume", "mountPath": WORKSPACE}]
    pod = {
        "metadata": {"namespace": REF.namespace, "name": REF.name, "uid": REF.uid,
                     "annotations": {"k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo",
                                     "k8s.aliyun.com/eci-image-cache": "true"}},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "hostname": "agent-x7k2p",
            "imagePullSecrets": [{"name": "registry"}],
            "containers": [
                {"name": "jnlp", "image": "registry.example.com/ci/inbound-agent:3206", "workingDir": WORKSPACE,
                 "args": ["$(JENKINS_SECRET)", "$(JENKINS_NAME)"],
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                 "volumeMounts": [*mounts, {"name": "secrets", "mountPath": "/var/run/ci", "readOnly": True}]},
                {"name": "build", "image": "maven:3.9-eclipse-temurin-21", "command": ["cat"], "tty": True,
                 "stdin": True, "workingDir": WORKSPACE,
                 "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "3Gi"}},
                 "ports": [{"name": "debug", "containerPort": 5005}],
                 "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5},
                 "livenessProbe": {"tcpSocket": {"port": "debug"}, "initialDelaySeconds": 10},
                 "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["SYS_PTRACE"]}},
                 "volumeMounts": mounts},
            ],
            "volumes": [{"name": "workspace-volume", "emptyDir": {}},
                        {"name": "secrets", "projected": {"sources": [{"secret": {"name": "ci-token"}}]}}],
        },
    }
    env = {"jnlp": (EnvVar("JENKINS_SECRET", "0123abcd", sensitive=True), EnvVar("JENKINS_NAME", REF.name),
                    EnvVar("JENKINS_URL", "http://jenkins.ci.svc:8080/"), EnvVar("POD_IP", ""))}
    volumes = {"workspace-volume": ResolvedVolume("workspace-volume", "emptyDir"),
               "secrets": ResolvedVolume("secrets", "files", files=(VolumeFile("token", b"s3cr3t", 0o400),))}
    return ResolvedPod(REF, pod, env=env, volumes=volumes,
                       registry_auth=(RegistryAuth("registry.example.com", "robot", "robot-pass"),))


async def test_a_jenkins_agent_plan_is_accepted_by_create_container_group(emulator: EciEmulator) -> None:
    settings = EciProviderSettings(region_id=REGION, endpoint=emulator.endpoint, cluster_name="ci-cluster",
                                   security_group_id="sg-1", vswitch_ids=("vsw-1", "vsw-2"))
    plan = plan_create(jenkins_pod(), settings, node_name="test-vnode")
    client = EciClient(region_id=REGION, endpoint=emulator.endpoint,
                       credentials=StaticCredentials(Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)))
    try:
        group_id = await client.create_container_group(plan.attempt_params(plan.shapes[0], spot=True))
    finally:
        await client.aclose()
    assert [c.http_status for c in emulator.calls("CreateContainerGroup")] == [200]
    (group,) = [g for g in emulator.store.select() if (TAG_UID, REF.uid) in g.tags]
    assert (group.id, group.name) == (group_id, plan.name)
    assert [c.name for c in group.containers] == ["jnlp", "build"]
    assert [(v.name, v.type) for v in group.volumes] == [("workspace-volume", "EmptyDirVolume"),
                                                          ("secrets", "ConfigFileVolume")]
    assert (group.cpu, group.memory) == (plan.shapes[0].cpu, plan.shapes[0].memory)
