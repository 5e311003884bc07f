"""The official Python Kubernetes client (strict models) against the simulated API server:
lists and watches every kind the demo serves, and prints one JSON line with what it got. A missing required field fails deserialization, so this only succeeds when the
simulation's objects have the shape the API promises.

usage: python3 kube_client.py <API server URL>
"""
import json
import sys

from kubernetes import client, watch

url = sys.argv[1]
conf = client.Configuration()
conf.host = url
api = client.ApiClient(conf)
core = client.CoreV1Api(api)
apps = client.AppsV1Api(api)
net = client.NetworkingV1Api(api)

counts = {
    "namespaces": len(core.list_namespace().items),
    "pods": len(core.list_pod_for_all_namespaces().items),
    "services": len(core.list_service_for_all_namespaces().items),
    "configmaps": len(core.list_config_map_for_all_namespaces().items),
    "secrets": len(core.list_secret_for_all_namespaces().items),
    "events": len(core.list_event_for_all_namespaces().items),
    "deployments": len(apps.list_deployment_for_all_namespaces().items),
    "replicasets": len(apps.list_replica_set_for_all_namespaces().items),
    "statefulsets": len(apps.list_stateful_set_for_all_namespaces().items),
    "daemonsets": len(apps.list_daemon_set_for_all_namespaces().items),
    "ingresses": len(net.list_ingress_for_all_namespaces().items),
}
pod = core.list_pod_for_all_namespaces().items[0]
image_ids = [c.image_id for c in pod.status.container_statuses]
rs = apps.list_replica_set_for_all_namespaces().items[0]
selector = rs.spec.selector.match_labels

# Watches decode each event into the model too.
watched = {}
every_kind = [
    ("namespaces", core.list_namespace),
    ("pods", core.list_pod_for_all_namespaces),
    ("services", core.list_service_for_all_namespaces),
    ("configmaps", core.list_config_map_for_all_namespaces),
    ("secrets", core.list_secret_for_all_namespaces),
    ("events", core.list_event_for_all_namespaces),
    ("deployments", apps.list_deployment_for_all_namespaces),
    ("replicasets", apps.list_replica_set_for_all_namespaces),
    ("statefulsets", apps.list_stateful_set_for_all_namespaces),
    ("daemonsets", apps.list_daemon_set_for_all_namespaces),
    ("ingresses", net.list_ingress_for_all_namespaces),
]
for name, fn in every_kind:
    w = watch.Watch()
    n = 0
    for event in w.stream(fn, timeout_seconds=1, _request_timeout=5):
        assert event["object"].metadata.name
        n += 1
    watched[name] = n

print(json.dumps({"counts": counts, "image_ids": image_ids, "selector": selector, "watched": watched}))
