//! Server-side printing, as the real API server does it for `kubectl get`: a request whose
//! `Accept` asks for `as=Table;g=meta.k8s.io;v=v1` (or `v1beta1`) gets a `meta.k8s.io/v1`
//! `Table` — the kind's column definitions (priority 1 = the `-o wide` ones) and one row of
//! printed cells per object, each row carrying the object as `PartialObjectMetadata`
//! (`includeObject=Metadata`, the default), the whole object (`Object`) or nothing (`None`).
//! Lists, single GETs and watches switch together: a watch event's object is a one-row Table,
//! the first one with the column definitions (later ones without, as the real server sends
//! them). Columns and cell formats follow the kube-apiserver's printers for these kinds.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Whether the `Accept` header asks for a Table (kubectl's human-readable `get` does).
pub(super) fn wanted(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        })
    })
}

/// `includeObject`: what each row carries besides its cells.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    /// The query parameter; anything else is the real server's 400.
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw {
            None | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(format!(
                "Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// One column: (name, type, format, priority, description).
type Column = (&'static str, &'static str, &'static str, u8, &'static str);

const NAME: Column = (
    "Name",
    "string",
    "name",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = (
    "Age",
    "string",
    "",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn columns(resource: &str) -> Vec<Column> {
    let wide_containers: [Column; 3] = [
        (
            "Containers",
            "string",
            "",
            1,
            "Names of each container in the template.",
        ),
        (
            "Images",
            "string",
            "",
            1,
            "Images referenced by each container in the template.",
        ),
        ("Selector", "string", "", 1, "Label selector for pods."),
    ];
    let mut c = vec![NAME];
    match resource {
        "pods" => c.extend([
            ("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
            ("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
            ("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            ("IP", "string", "", 1, "podIP address allocated to the pod."),
            ("Node", "string", "", 1, "NodeName indicates in which node this pod is scheduled."),
            ("Nominated Node", "string", "", 1, "nominatedNodeName is set when this pod preempts other pods on the node."),
            ("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ]),
        "deployments" => {
            c.extend([
                ("Ready", "string", "", 0, "Number of the pod with ready state"),
                ("Up-to-date", "integer", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                ("Available", "integer", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                AGE,
            ]);
            c.extend(wide_containers);
        }
        "replicasets" => {
            c.extend([
                ("Desired", "integer", "", 0, "Replicas is the number of desired pods."),
                ("Current", "integer", "", 0, "Replicas is the most recently observed number of replicas."),
                ("Ready", "integer", "", 0, "The number of ready replicas for this replica set."),
                AGE,
            ]);
            c.extend(wide_containers);
        }
        "statefulsets" => {
            c.extend([("Ready", "string", "", 0, "Number of the pod with ready state"), AGE]);
            c.extend(&wide_containers[..2]);
        }
        "daemonsets" => {
            c.extend([
                ("Desired", "integer", "", 0, "The total number of nodes that should be running the daemon pod."),
                ("Current", "integer", "", 0, "The number of nodes that are running at least 1 daemon pod."),
                ("Ready", "integer", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
                ("Up-to-date", "integer", "", 0, "The total number of nodes that are running updated daemon pod."),
                ("Available", "integer", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
                ("Node Selector", "string", "", 0, "NodeSelector is a selector which must be true for the pod to fit on a node."),
                AGE,
            ]);
            c.extend(wide_containers);
        }
        "services" => c.extend([
            ("Type", "string", "", 0, "The type of service."),
            ("Cluster-IP", "string", "", 0, "ClusterIP is the IP address of the service."),
            ("External-IP", "string", "", 0, "External IPs of the service."),
            ("Port(s)", "string", "", 0, "The ports exposed by the service."),
            AGE,
            ("Selector", "string", "", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ]),
        "namespaces" => c.extend([("Status", "string", "", 0, "The status of the namespace"), AGE]),
        "configmaps" => c.extend([("Data", "integer", "", 0, "Number of entries in the data."), AGE]),
        "secrets" => c.extend([
            ("Type", "string", "", 0, "The type of the secret"),
            ("Data", "integer", "", 0, "The number of entries in the data."),
            AGE,
        ]),
        "ingresses" => c.extend([
            ("Class", "string", "", 0, "The name of the IngressClass resource."),
            ("Hosts", "string", "", 0, "Hosts that incoming requests are matched against."),
            ("Address", "string", "", 0, "Address is a list of IP addresses to which the Ingress is exposed."),
            ("Ports", "string", "", 0, "Ports of TLS configurations that open."),
            AGE,
        ]),
        "events" => {
            return vec![
                ("Last Seen", "string", "", 0, "Time when this Event was last observed."),
                ("Type", "string", "", 0, "Type of this event (Normal, Warning)."),
                ("Reason", "string", "", 0, "A short, machine understandable string that gives the reason for this event being generated."),
                ("Object", "string", "", 0, "The object that this event is about."),
                ("Subobject", "string", "", 1, "The subobject (a container) that this event is about."),
                ("Source", "string", "", 1, "The component reporting this event."),
                ("Message", "string", "", 0, "A human-readable description of the status of this operation."),
                ("First Seen", "string", "", 1, "The time at which the event was first recorded."),
                ("Count", "string", "", 1, "The number of times this event has occurred."),
                ("Name", "string", "name", 1, "Name must be unique within a namespace."),
            ]
        }
        _ => c.push(AGE),
    }
    c
}

fn column_definitions(resource: &str) -> Value {
    Value::Array(
        columns(resource)
            .into_iter()
            .map(|(name, ty, format, priority, description)| {
                json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
            })
            .collect(),
    )
}

/// A duration as kubectl and the API server's printers show it: `45s`, `12m`, `5h3m`, `4d7h`,
/// `90d`, `3y120d`.
pub(super) fn human_duration(d: chrono::Duration) -> String {
    // `5h` or `5h3m`: a unit and, when not zero, the next smaller one.
    let two = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    const DAY: i64 = 86_400;
    const YEAR: i64 = 365 * DAY;
    match d.num_seconds().max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => two(s / 60, "m", s % 60, "s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => two(s / 3600, "h", (s % 3600) / 60, "m"),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * DAY => two(s / DAY, "d", (s % DAY) / 3600, "h"),
        s if s < 2 * YEAR => format!("{}d", s / DAY),
        s if s < 8 * YEAR => two(s / YEAR, "y", (s % YEAR) / DAY, "d"),
        s => format!("{}y", s / YEAR),
    }
}

fn str_at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(o: &Value, pointer: &str) -> i64 {
    o.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn age(o: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(str_at(o, pointer)) {
        Ok(t) => human_duration(now - t.with_timezone(&Utc)),
        Err(_) => "<unknown>".into(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

fn selector(map: Option<&Value>) -> String {
    let s: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    or_none(s.join(","))
}

fn template_containers(o: &Value) -> (String, String) {
    let containers = o
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let join = |key: &str| {
        containers
            .iter()
            .map(|c| c[key].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("name"), join("image"))
}

/// The pod's STATUS column: the phase, or the reason a container is waiting or terminated.
fn pod_status(o: &Value) -> String {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &statuses {
        for state in ["waiting", "terminated"] {
            if let Some(reason) = c
                .pointer(&format!("/state/{state}/reason"))
                .and_then(Value::as_str)
            {
                return reason.to_string();
            }
        }
    }
    match str_at(o, "/status/phase") {
        "" => "Unknown".into(),
        phase => phase.to_string(),
    }
}

fn cells(resource: &str, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(str_at(o, "/metadata/name"));
    let created = json!(age(o, "/metadata/creationTimestamp", now));
    match resource {
        "pods" => {
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let containers = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            let last_restart = statuses
                .iter()
                .filter_map(|c| {
                    c.pointer("/lastState/terminated/finishedAt")
                        .and_then(Value::as_str)
                })
                .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                .max();
            let restarts = match last_restart {
                Some(t) if restarts > 0 => format!(
                    "{restarts} ({} ago)",
                    human_duration(now - t.with_timezone(&Utc))
                ),
                _ => restarts.to_string(),
            };
            vec![
                name,
                json!(format!("{ready}/{containers}")),
                json!(pod_status(o)),
                json!(restarts),
                created,
                json!(or_none(str_at(o, "/status/podIP").to_string())),
                json!(or_none(str_at(o, "/spec/nodeName").to_string())),
                json!(or_none(str_at(o, "/status/nominatedNodeName").to_string())),
                json!("<none>"),
            ]
        }
        "deployments" => {
            let (containers, images) = template_containers(o);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    int_at(o, "/spec/replicas")
                )),
                json!(int_at(o, "/status/updatedReplicas")),
                json!(int_at(o, "/status/availableReplicas")),
                created,
                json!(containers),
                json!(images),
                json!(selector(o.pointer("/spec/selector/matchLabels"))),
            ]
        }
        "replicasets" => {
            let (containers, images) = template_containers(o);
            vec![
                name,
                json!(int_at(o, "/spec/replicas")),
                json!(int_at(o, "/status/replicas")),
                json!(int_at(o, "/status/readyReplicas")),
                created,
                json!(containers),
                json!(images),
                json!(selector(o.pointer("/spec/selector/matchLabels"))),
            ]
        }
        "statefulsets" => {
            let (containers, images) = template_containers(o);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    int_at(o, "/spec/replicas")
                )),
                created,
                json!(containers),
                json!(images),
            ]
        }
        "daemonsets" => {
            let (containers, images) = template_containers(o);
            vec![
                name,
                json!(int_at(o, "/status/desiredNumberScheduled")),
                json!(int_at(o, "/status/currentNumberScheduled")),
                json!(int_at(o, "/status/numberReady")),
                json!(int_at(o, "/status/updatedNumberScheduled")),
                json!(int_at(o, "/status/numberAvailable")),
                json!(selector(o.pointer("/spec/template/spec/nodeSelector"))),
                created,
                json!(containers),
                json!(images),
                json!(selector(o.pointer("/spec/selector/matchLabels"))),
            ]
        }
        "services" => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let node = p["nodePort"]
                                .as_i64()
                                .map(|n| format!(":{n}"))
                                .unwrap_or_default();
                            format!(
                                "{}{node}/{}",
                                p["port"],
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let external: Vec<String> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|i| {
                    i.iter()
                        .filter_map(|x| {
                            x["ip"]
                                .as_str()
                                .or(x["hostname"].as_str())
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ty = str_at(o, "/spec/type");
            let external = match (ty, external.is_empty()) {
                ("LoadBalancer", true) => "<pending>".to_string(),
                _ => or_none(external.join(",")),
            };
            vec![
                name,
                json!(if ty.is_empty() { "ClusterIP" } else { ty }),
                json!(or_none(str_at(o, "/spec/clusterIP").to_string())),
                json!(external),
                json!(or_none(ports.join(","))),
                created,
                json!(selector(o.pointer("/spec/selector"))),
            ]
        }
        "namespaces" => vec![name, json!(str_at(o, "/status/phase")), created],
        "configmaps" => {
            let n = ["data", "binaryData"]
                .iter()
                .map(|k| o[*k].as_object().map_or(0, |m| m.len()))
                .sum::<usize>();
            vec![name, json!(n), created]
        }
        // The number of keys, never a value.
        "secrets" => vec![
            name,
            json!(str_at(o, "/type")),
            json!(o["data"].as_object().map_or(0, |m| m.len())),
            created,
        ],
        "ingresses" => {
            let hosts: Vec<&str> = o
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(|x| x["host"].as_str()).collect())
                .unwrap_or_default();
            let address: Vec<&str> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|i| {
                    i.iter()
                        .filter_map(|x| x["ip"].as_str().or(x["hostname"].as_str()))
                        .collect()
                })
                .unwrap_or_default();
            let tls = o
                .pointer("/spec/tls")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty());
            vec![
                name,
                json!(or_none(str_at(o, "/spec/ingressClassName").to_string())),
                json!(if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                }),
                json!(address.join(",")),
                json!(if tls { "80, 443" } else { "80" }),
                created,
            ]
        }
        "events" => {
            let last = if o
                .pointer("/lastTimestamp")
                .and_then(Value::as_str)
                .is_some()
            {
                "/lastTimestamp"
            } else {
                "/metadata/creationTimestamp"
            };
            let first = if o
                .pointer("/firstTimestamp")
                .and_then(Value::as_str)
                .is_some()
            {
                "/firstTimestamp"
            } else {
                "/metadata/creationTimestamp"
            };
            let object = format!(
                "{}/{}",
                str_at(o, "/involvedObject/kind").to_lowercase(),
                str_at(o, "/involvedObject/name")
            );
            let source = [str_at(o, "/source/component"), str_at(o, "/source/host")]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                json!(age(o, last, now)),
                json!(str_at(o, "/type")),
                json!(str_at(o, "/reason")),
                json!(object),
                json!(str_at(o, "/involvedObject/fieldPath")),
                json!(source),
                json!(str_at(o, "/message").trim()),
                json!(age(o, first, now)),
                json!(int_at(o, "/count").to_string()),
                name,
            ]
        }
        _ => vec![name, created],
    }
}

fn row(resource: &str, o: &Value, include: Include, now: DateTime<Utc>) -> Value {
    let mut r = json!({"cells": cells(resource, o, now)});
    match include {
        Include::None => {}
        Include::Metadata => {
            r["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
        }
        Include::Object => r["object"] = o.clone(),
    }
    r
}

/// A Table of `objects` (each with its `kind` / `apiVersion` already set when `Object` is asked
/// for); `list_meta` is the list's metadata (resourceVersion, continue), `headers` whether the
/// column definitions are included.
pub(super) fn table(
    resource: &str,
    objects: &[Value],
    include: Include,
    list_meta: Value,
    headers: bool,
) -> Value {
    let now = Utc::now();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if headers { column_definitions(resource) } else { Value::Null },
        "rows": objects.iter().map(|o| row(resource, o, include, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_asks_for_a_table_and_plain_json_does_not() {
        assert!(wanted(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")));
        assert!(!wanted(Some("application/json")));
        assert!(!wanted(Some(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        )));
        assert!(!wanted(None));
    }

    #[test]
    fn durations_print_as_kubectl_prints_them() {
        let d = chrono::Duration::seconds;
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (1200, "20m"),
            (4 * 3600 + 60, "4h1m"),
            (30 * 3600, "30h"),
            (4 * 86_400 + 7 * 3600, "4d7h"),
            (100 * 86_400, "100d"),
            (3 * 365 * 86_400 + 86_400, "3y1d"),
        ] {
            assert_eq!(human_duration(d(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        for resource in [
            "pods",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "services",
            "namespaces",
            "configmaps",
            "secrets",
            "ingresses",
            "events",
            "other",
        ] {
            let t = table(
                resource,
                &[json!({"metadata": {"name": "x"}})],
                Include::None,
                json!({}),
                true,
            );
            assert_eq!(
                t["rows"][0]["cells"].as_array().unwrap().len(),
                t["columnDefinitions"].as_array().unwrap().len(),
                "{resource}"
            );
        }
    }
}
