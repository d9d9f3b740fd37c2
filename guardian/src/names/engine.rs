//! The Docker Engine API over a unix socket (Docker's, or Podman's Docker-compatible
//! service): `GET /containers/<id>/json`, with hyper's HTTP/1 client, a timeout on the
//! whole exchange and a cap on the answer's size.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{Request, StatusCode, body::Bytes, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::ContainerName;

/// Largest answer read from a socket; an inspect answer is a few KiB.
const MAX_ANSWER: usize = 1 << 20;

/// Why a runtime could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("connecting to {socket}: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange on {socket}: {source}")]
    Http {
        socket: PathBuf,
        #[source]
        source: hyper::Error,
    },
    #[error("{socket} answered {status} to {path}")]
    Status {
        socket: PathBuf,
        path: String,
        status: StatusCode,
    },
    #[error("reading the answer from {socket}: {detail}")]
    Body { socket: PathBuf, detail: String },
    #[error("{socket} sent an answer that is not a container: {source}")]
    Json {
        socket: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("connecting to the CRI at {socket}: {source}")]
    CriConnect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// A gRPC status (the CRI plugin disabled answers `Unimplemented`).
    #[error("the CRI at {socket} answered: {source}")]
    Cri {
        socket: PathBuf,
        #[source]
        source: Box<tonic::Status>,
    },
    #[error("{socket} did not answer within {timeout:?}")]
    Timeout { socket: PathBuf, timeout: Duration },
}

/// The parts of `GET /containers/<id>/json` used here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    name: String,
    #[serde(default)]
    config: InspectConfig,
    #[serde(default)]
    state: InspectState,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    image: Option<String>,
    #[serde(default)]
    labels: Option<std::collections::HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    pid: Option<i32>,
}

/// Asks the Engine API at `socket` about container `id`; `Ok(None)` when it does not
/// know the id (404).
pub async fn inspect(
    socket: &Path,
    id: &str,
    timeout: Duration,
) -> Result<Option<ContainerName>, LookupError> {
    let path = format!("/containers/{id}/json");
    let exchange = get(socket, &path);
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| LookupError::Timeout {
            socket: socket.to_path_buf(),
            timeout,
        })??;
    let Some(body) = answer else {
        return Ok(None);
    };
    parse_inspect(socket, &body).map(Some)
}

/// Reads an inspect answer.
pub(super) fn parse_inspect(socket: &Path, body: &[u8]) -> Result<ContainerName, LookupError> {
    let inspect: Inspect = serde_json::from_slice(body).map_err(|source| LookupError::Json {
        socket: socket.to_path_buf(),
        source,
    })?;
    let labels = inspect.config.labels.unwrap_or_default();
    let label = |key: &str| labels.get(key).filter(|value| !value.is_empty()).cloned();
    Ok(ContainerName {
        source: "docker-api",
        // Kubernetes through cri-dockerd names containers k8s_<...>; its labels say
        // what the pod spec called the container.
        name: label("io.kubernetes.container.name")
            .unwrap_or_else(|| inspect.name.trim_start_matches('/').to_string()),
        image: inspect.config.image.filter(|image| !image.is_empty()),
        namespace: None,
        pod_name: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_uid: label("io.kubernetes.pod.uid"),
        init_pid: inspect.state.pid.filter(|pid| *pid > 0),
    })
}

/// One GET on a fresh connection: the body on 200, `None` on 404.
async fn get(socket: &Path, path: &str) -> Result<Option<Bytes>, LookupError> {
    let http = |source| LookupError::Http {
        socket: socket.to_path_buf(),
        source,
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| LookupError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let answer = async {
        let request = Request::get(path)
            .header(header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|error| LookupError::Body {
                socket: socket.to_path_buf(),
                detail: error.to_string(),
            })?;
        let response = sender.send_request(request).await.map_err(http)?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            status => {
                return Err(LookupError::Status {
                    socket: socket.to_path_buf(),
                    path: path.to_string(),
                    status,
                });
            }
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|error| LookupError::Body {
                socket: socket.to_path_buf(),
                detail: error.to_string(),
            })?;
        Ok(Some(body.to_bytes()))
    }
    .await;
    driver.abort();
    answer
}
