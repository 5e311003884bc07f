//! ConfigMaps and Secrets (key names only, never values) and Namespaces.

use super::*;

k8s_object!(
    ConfigMapNode,
    ConfigMap,
    "ConfigMap",
    "A core/v1 ConfigMap (key names; values are not served).",
    {
        /// Keys of `data` and `binaryData`.
        async fn keys(&self) -> &[String] {
            &self.obj.keys
        }
    }
);

k8s_object!(
    SecretNode,
    SecretInfo,
    "Secret",
    "A core/v1 Secret: type and key names. Values are never read into memory nor served.",
    {
        #[graphql(name = "type")]
        async fn secret_type(&self) -> Option<&str> {
            self.obj.type_.as_deref()
        }
        async fn keys(&self) -> &[String] {
            &self.obj.keys
        }
    }
);

k8s_object!(
    NamespaceNode,
    Namespace,
    "Namespace",
    "A core/v1 Namespace.",
    {
        async fn phase(&self) -> Option<&str> {
            self.obj.status.as_ref()?.phase.as_deref()
        }
    }
);
