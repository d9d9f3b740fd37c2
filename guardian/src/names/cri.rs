//! The Kubernetes Container Runtime Interface over its unix socket (containerd's CRI
//! plugin, CRI-O): what `crictl ps` and `crictl pods` show of one container, with the
//! generated v1 client over a fresh gRPC connection, a timeout on the whole exchange and
//! a cap on each answer's size.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    ContainerFilter, ContainerStatusRequest, ListContainersRequest, ListPodSandboxRequest,
    PodSandbox, PodSandboxFilter, runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::{Channel, Endpoint, Uri};

use super::{ContainerName, LookupError};

/// Largest answer decoded; a filtered list holds one container or pod.
const MAX_ANSWER: usize = 1 << 20;

/// The name kubelet's conventions give a pod's sandbox (pause) container.
pub const SANDBOX_NAME: &str = "POD";

/// Asks the CRI at `socket` about container `id`: its name and image, and its pod's
/// namespace, name and uid. A pod's sandbox id is named [`SANDBOX_NAME`] in its pod.
/// `Ok(None)` when the runtime knows no such container or pod.
pub async fn query(
    socket: &Path,
    id: &str,
    timeout: Duration,
) -> Result<Option<ContainerName>, LookupError> {
    tokio::time::timeout(timeout, ask(socket, id))
        .await
        .map_err(|_| LookupError::Timeout {
            socket: socket.to_path_buf(),
            timeout,
        })?
}

async fn ask(socket: &Path, id: &str) -> Result<Option<ContainerName>, LookupError> {
    let mut client = connect(socket).await?;
    let grpc = |source| LookupError::Cri {
        socket: socket.to_path_buf(),
        source: Box::new(source),
    };
    let containers = client
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                id: id.to_string(),
                ..ContainerFilter::default()
            }),
        })
        .await
        .map_err(grpc)?
        .into_inner()
        .containers;
    // The runtimes match a prefix of the id: keep only this one.
    let Some(container) = containers.into_iter().find(|container| container.id == id) else {
        return Ok(sandbox(&mut client, id)
            .await
            .map_err(grpc)?
            .map(|pod| named(SANDBOX_NAME.to_string(), None, Some(pod))));
    };
    let spec = container.image.unwrap_or_default();
    let mut image = [spec.user_specified_image, spec.image]
        .into_iter()
        .find(|image| is_image_name(image));
    if image.is_none() {
        // Kubelet creates containers from the image id; the status resolves its tag.
        image = client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(grpc)?
            .into_inner()
            .status
            .and_then(|status| status.image)
            .map(|spec| spec.image)
            .filter(|image| is_image_name(image));
    }
    let pod = sandbox(&mut client, &container.pod_sandbox_id)
        .await
        .map_err(grpc)?;
    let name = container
        .metadata
        .map(|metadata| metadata.name)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| id.to_string());
    Ok(Some(named(name, image, pod)))
}

fn named(name: String, image: Option<String>, pod: Option<PodSandbox>) -> ContainerName {
    let metadata = pod.and_then(|pod| pod.metadata).unwrap_or_default();
    let text = |value: String| Some(value).filter(|value| !value.is_empty());
    ContainerName {
        source: "cri",
        name,
        image,
        namespace: None,
        pod_name: text(metadata.name),
        pod_namespace: text(metadata.namespace),
        pod_uid: text(metadata.uid),
        init_pid: None,
    }
}

/// The pod sandbox `id`, when the runtime knows it.
async fn sandbox(
    client: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<Option<PodSandbox>, tonic::Status> {
    if id.is_empty() {
        return Ok(None);
    }
    let pods = client
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                id: id.to_string(),
                ..PodSandboxFilter::default()
            }),
        })
        .await?
        .into_inner()
        .items;
    Ok(pods.into_iter().find(|pod| pod.id == id))
}

/// An image as a user names it (`busybox`, `registry/app:1.2`), not an id (`sha256:…`,
/// or 64 bare hex digits).
fn is_image_name(image: &str) -> bool {
    let bare_id = image.len() == 64 && image.bytes().all(|b| b.is_ascii_hexdigit());
    !(image.is_empty() || image.starts_with("sha256:") || bare_id)
}

/// A client on a fresh connection to `socket` (HTTP/2 over the unix socket; the URI is
/// only a placeholder the transport needs).
async fn connect(socket: &Path) -> Result<RuntimeServiceClient<Channel>, LookupError> {
    let path: PathBuf = socket.to_path_buf();
    let channel = Endpoint::from_static("http://cri.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(|source| LookupError::CriConnect {
            socket: socket.to_path_buf(),
            source,
        })?;
    Ok(RuntimeServiceClient::new(channel).max_decoding_message_size(MAX_ANSWER))
}

#[cfg(test)]
mod tests {
    use super::is_image_name;

    #[test]
    fn image_ids_are_not_image_names() {
        assert!(is_image_name("docker.io/library/busybox:latest"));
        assert!(is_image_name("registry.k8s.io/pause:3.9"));
        assert!(!is_image_name(""));
        assert!(!is_image_name(
            "sha256:6fd955f66c231c1a946653170d096a28ac2b2052a02080c0b84ec082a07f7d12"
        ));
        assert!(!is_image_name(
            "6fd955f66c231c1a946653170d096a28ac2b2052a02080c0b84ec082a07f7d12"
        ));
    }
}
