use std::sync::Arc;

use axum::{
    body::to_bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use super::{api, healthz, metrics};
use crate::{
    classify::Classification,
    config::Config,
    model::{MemoryUsage, Process, ProcessKey},
    snapshot::{AppState, SourceKind, SourceStatus},
};

fn state() -> Arc<AppState> {
    let status = SourceStatus {
        source: SourceKind::Procfs,
        requested: "procfs".into(),
        fallback_reason: None,
        cgroup_layout: "v2".into(),
        memory_hierarchy: "/sys/fs/cgroup".into(),
        refresh: "procfs".into(),
    };
    let state = Arc::new(AppState::new(Arc::new(Config::default()), status));
    state.modify(|snapshot| snapshot.updated = Some(std::time::Instant::now()));
    state.change_model(|model| {
        for (pid, comm, rss) in [(1, "init", 5), (2, "big", 50), (3, "mid", 20)] {
            model.upsert_process(Process {
                key: ProcessKey {
                    pid,
                    start_ticks: 1,
                },
                ppid: 0,
                uid: 0,
                comm: comm.into(),
                cmdline: vec![comm.into()].into(),
                kernel_thread: false,
                oom_score_adj: 0,
                memory: MemoryUsage::from_parts(rss << 20, 0, 0, (100 - rss) << 20),
                cgroups: Vec::new().into(),
                memory_cgroup: Some(format!("/{comm}").into()),
                class: Classification::Host { unit: None }.into(),
                started_secs: 0.0,
            });
        }
    });
    state
}

async fn body(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("test value");
    (
        status,
        String::from_utf8(bytes.to_vec()).expect("test value"),
    )
}

async fn process_list(query: &str) -> (StatusCode, String) {
    use axum::extract::FromRequestParts as _;
    let request = axum::http::Request::builder()
        .uri(format!("/api/v1/processes?{query}"))
        .body(())
        .expect("test value");
    let (mut parts, ()) = request.into_parts();
    match api::ApiQuery::from_request_parts(&mut parts, &()).await {
        Ok(query) => body(api::processes(State(state()), query).await).await,
        Err(rejection) => body(rejection).await,
    }
}

fn pids(json: &str) -> Vec<i64> {
    serde_json::from_str::<serde_json::Value>(json)
        .expect("test value")
        .as_array()
        .expect("test value")
        .iter()
        .map(|process| process["key"]["pid"].as_i64().expect("test value"))
        .collect()
}

#[tokio::test]
async fn processes_sort_filter_and_limit() {
    let (status, json) = process_list("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pids(&json), [2, 3, 1]);
    assert_eq!(pids(&process_list("limit=1").await.1), [2]);
    assert_eq!(pids(&process_list("sort=swap").await.1), [1, 3, 2]);
    assert_eq!(pids(&process_list("sort=pid").await.1), [3, 2, 1]);
    assert_eq!(pids(&process_list("comm=mid").await.1), [3]);
    assert_eq!(pids(&process_list("cgroup=/init").await.1), [1]);
    assert_eq!(pids(&process_list("pid=2").await.1), [2]);
    let (status, json) = process_list("sort=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json.contains("error"), "{json}");
    assert_eq!(process_list("colour=red").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_reports_source_and_counts() {
    let (status, json) = body(axum::response::IntoResponse::into_response(
        api::status(State(state())).await,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&json).expect("test value");
    assert_eq!(value["source"]["source"], "procfs");
    assert_eq!(value["processes"], 3);
    assert_eq!(value["fresh"], true);
}

#[tokio::test]
async fn metrics_and_status_read_the_same_published_tick() {
    let state = state();
    for extra in 0..3 {
        let tick = state.snapshot().tick;
        let (_, json) = body(axum::response::IntoResponse::into_response(
            api::status(State(state.clone())).await,
        ))
        .await;
        let value: serde_json::Value = serde_json::from_str(&json).expect("test value");
        let (_, text) = body(metrics::metrics(State(state.clone()), HeaderMap::new()).await).await;
        assert_eq!(value["tick"], tick);
        assert_eq!(value["processes"], 3 + extra);
        assert!(
            text.contains(&format!("\nguardian_snapshot_tick {tick}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\nguardian_model_processes {}\n", 3 + extra)),
            "{text}"
        );
        // The next tick: one more process.
        state.change_model(|model| {
            model.upsert_process(Process {
                key: ProcessKey {
                    pid: 100 + extra,
                    start_ticks: 1,
                },
                ..model.process_by_pid(1).expect("init").clone()
            });
        });
    }
}

#[tokio::test]
async fn metrics_negotiates_the_content_type() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    );
    let response = metrics::metrics(State(state()), headers).await;
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("test value")
            .starts_with("application/openmetrics-text")
    );
    let (_, text) = body(response).await;
    assert!(text.ends_with("# EOF\n"));
    let response = metrics::metrics(State(state()), HeaderMap::new()).await;
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("test value")
            .starts_with("text/plain; version=0.0.4")
    );
}

#[tokio::test]
async fn healthz_is_ok_while_fresh() {
    let response = axum::response::IntoResponse::into_response(healthz(State(state())).await);
    assert_eq!(response.status(), StatusCode::OK);
}
