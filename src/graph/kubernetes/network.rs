//! Services (and the pods they select) and Ingresses (hosts, rules, backends, TLS).

use super::*;

#[derive(SimpleObject, Clone)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i32,
    pub target_port: Option<String>,
    pub protocol: Option<String>,
    pub node_port: Option<i32>,
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

k8s_object!(ServiceNode, Service, "Service", "A core/v1 Service.", {
    #[graphql(name = "type")]
    async fn service_type(&self) -> Option<&str> {
        self.obj.spec.as_ref()?.type_.as_deref()
    }
    #[graphql(name = "clusterIP")]
    async fn cluster_ip(&self) -> Option<&str> {
        self.obj.spec.as_ref()?.cluster_ip.as_deref()
    }
    async fn ports(&self) -> Vec<ServicePort> {
        self.obj
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| ServicePort {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port.as_ref().map(int_or_string),
                protocol: p.protocol.clone(),
                node_port: p.node_port,
            })
            .collect()
    }
    async fn selector(&self) -> Vec<KeyValue> {
        kv(&self.obj.spec.as_ref().and_then(|s| s.selector.clone()))
    }
    /// Load balancer ingress addresses.
    async fn external_addresses(&self) -> Vec<String> {
        self.obj
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect()
    }
    /// The pods its selector picks (same namespace).
    async fn pods(&self) -> Vec<PodNode> {
        self.pod_nodes()
    }
});

impl ServiceNode {
    fn pod_nodes(&self) -> Vec<PodNode> {
        let Some(sel) = self.obj.spec.as_ref().and_then(|s| s.selector.clone()) else {
            return Vec::new();
        };
        self.cluster
            .pods
            .list(Some(self.meta().namespace.as_deref().unwrap_or("")))
            .into_iter()
            .filter(|p| selector_matches(&sel, &labels(&p.metadata)))
            .map(|p| PodNode::new(self.cluster.clone(), p))
            .collect()
    }
}

#[derive(SimpleObject, Clone)]
pub struct IngressBackend {
    pub service_name: Option<String>,
    /// Port number or name.
    pub service_port: Option<String>,
    /// A non-service backend (`apiGroup/kind/name`).
    pub resource: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct IngressPath {
    pub path: Option<String>,
    pub path_type: String,
    pub backend: IngressBackend,
}

#[derive(SimpleObject, Clone)]
pub struct IngressRule {
    pub host: Option<String>,
    pub paths: Vec<IngressPath>,
}

#[derive(SimpleObject, Clone)]
pub struct IngressTls {
    pub hosts: Vec<String>,
    pub secret_name: Option<String>,
}

fn backend(b: &k8s_openapi::api::networking::v1::IngressBackend) -> IngressBackend {
    IngressBackend {
        service_name: b.service.as_ref().map(|s| s.name.clone()),
        service_port: b
            .service
            .as_ref()
            .and_then(|s| s.port.as_ref())
            .and_then(|p| p.number.map(|n| n.to_string()).or_else(|| p.name.clone())),
        resource: b.resource.as_ref().map(|r| {
            format!(
                "{}/{}/{}",
                r.api_group.as_deref().unwrap_or(""),
                r.kind,
                r.name
            )
        }),
    }
}

k8s_object!(
    IngressNode,
    Ingress,
    "Ingress",
    "A networking.k8s.io/v1 Ingress.",
    {
        async fn class_name(&self) -> Option<&str> {
            self.obj.spec.as_ref()?.ingress_class_name.as_deref()
        }
        async fn hosts(&self) -> Vec<String> {
            let mut h: Vec<String> = self
                .obj
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|r| r.host.clone())
                .collect();
            h.dedup();
            h
        }
        async fn rules(&self) -> Vec<IngressRule> {
            self.obj
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_ref())
                .into_iter()
                .flatten()
                .map(|r| IngressRule {
                    host: r.host.clone(),
                    paths: r
                        .http
                        .as_ref()
                        .map(|h| {
                            h.paths
                                .iter()
                                .map(|p| IngressPath {
                                    path: p.path.clone(),
                                    path_type: p.path_type.clone(),
                                    backend: backend(&p.backend),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        }
        async fn default_backend(&self) -> Option<IngressBackend> {
            self.obj
                .spec
                .as_ref()?
                .default_backend
                .as_ref()
                .map(backend)
        }
        async fn tls(&self) -> Vec<IngressTls> {
            self.obj
                .spec
                .as_ref()
                .and_then(|s| s.tls.as_ref())
                .into_iter()
                .flatten()
                .map(|t| IngressTls {
                    hosts: t.hosts.clone().unwrap_or_default(),
                    secret_name: t.secret_name.clone(),
                })
                .collect()
        }
        /// Load balancer addresses.
        async fn addresses(&self) -> Vec<String> {
            self.obj
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect()
        }
        /// The Services its rules and default backend point at (those that exist).
        async fn services(&self) -> Vec<ServiceNode> {
            let Some(spec) = self.obj.spec.as_ref() else {
                return Vec::new();
            };
            let names: BTreeSet<String> = spec
                .rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter())
                .map(|p| &p.backend)
                .chain(spec.default_backend.iter())
                .filter_map(|b| b.service.as_ref().map(|s| s.name.clone()))
                .collect();
            let ns = self.meta().namespace.clone().unwrap_or_default();
            names
                .iter()
                .filter_map(|n| self.cluster.services.get(&ns, n))
                .map(|s| ServiceNode::new(self.cluster.clone(), s))
                .collect()
        }
    }
);
