//! Restarting a systemd service through systemd's D-Bus API instead of signalling its
//! main process, so the unit's `Restart=` policy, dependencies and start-up logic stay
//! in force (systemd counts a death by SIGTERM as a clean exit: `Restart=on-failure`
//! would leave the service down).
//!
//! Leak rules use it for a process that is the main process of a service in
//! `system.slice`: its memory cgroup is `/system.slice/NAME.service` and systemd's
//! `MainPID` of that unit is its pid.

use std::time::Duration;

use zbus::zvariant::OwnedObjectPath;

use crate::{classify::Classification, model::Process};

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
/// Longest wait for one answer from systemd.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why systemd could not be asked or refused.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("D-Bus call {call} for unit {unit:?} failed: {source}")]
    Call {
        call: &'static str,
        unit: String,
        #[source]
        source: zbus::Error,
    },
    #[error("D-Bus call {call} for unit {unit:?} timed out after {}s", CALL_TIMEOUT.as_secs())]
    Timeout { call: &'static str, unit: String },
}

/// The service `process` would be the main process of, by its cgroups: a host process
/// in `/system.slice/NAME.service` itself (on the memory hierarchy, the unified one or
/// systemd's named v1 one: in a container on a hybrid host only the latter two follow
/// the units). Whether it is the main process is systemd's to say, see [`main_unit`].
pub(crate) fn candidate_unit(process: &Process) -> Option<&str> {
    let Classification::Host { unit: Some(unit) } = &*process.class else {
        return None;
    };
    if !unit.ends_with(".service") || unit.contains('/') {
        return None;
    }
    let in_unit = |path: &str| {
        path.strip_prefix("/system.slice/")
            .is_some_and(|name| name == unit)
    };
    (process.memory_cgroup.as_deref().is_some_and(in_unit)
        || process.cgroups.iter().any(|line| in_unit(&line.path)))
    .then_some(unit.as_str())
}

/// The service whose main process `process` is, asking systemd on the system bus; none
/// when it is no service's main process or systemd cannot be asked (logged).
pub(crate) async fn main_unit(process: &Process) -> Option<String> {
    let unit = candidate_unit(process)?;
    match main_pid(unit).await {
        Ok(pid) if pid == process.key.pid as u32 => Some(unit.to_string()),
        Ok(pid) => {
            tracing::debug!(
                unit,
                main_pid = pid,
                pid = process.key.pid,
                "not the unit's main process"
            );
            None
        }
        Err(error) => {
            tracing::info!(unit, pid = process.key.pid, %error, "cannot ask systemd for the unit's main process; signalling it instead");
            None
        }
    }
}

async fn timed<T>(
    call: &'static str,
    unit: &str,
    future: impl Future<Output = zbus::Result<T>>,
) -> Result<T, UnitError> {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(result) => result.map_err(|source| UnitError::Call {
            call,
            unit: unit.to_string(),
            source,
        }),
        Err(_) => Err(UnitError::Timeout {
            call,
            unit: unit.to_string(),
        }),
    }
}

/// systemd's `MainPID` of `unit` (0 when it has none).
async fn main_pid(unit: &str) -> Result<u32, UnitError> {
    let connection = timed("connect", unit, zbus::Connection::system()).await?;
    let path: OwnedObjectPath = timed("GetUnit", unit, async {
        connection
            .call_method(
                Some(DESTINATION),
                MANAGER_PATH,
                Some(MANAGER),
                "GetUnit",
                &(unit,),
            )
            .await?
            .body()
            .deserialize()
    })
    .await?;
    timed("MainPID", unit, async {
        let proxy = zbus::Proxy::new(&connection, DESTINATION, path, SERVICE).await?;
        proxy.get_property::<u32>("MainPID").await
    })
    .await
}

/// Asks systemd to restart `unit` (`RestartUnit` in "replace" mode); returns the job's
/// object path.
pub(crate) async fn restart(unit: &str) -> Result<String, UnitError> {
    let connection = timed("connect", unit, zbus::Connection::system()).await?;
    let job: OwnedObjectPath = timed("RestartUnit", unit, async {
        connection
            .call_method(
                Some(DESTINATION),
                MANAGER_PATH,
                Some(MANAGER),
                "RestartUnit",
                &(unit, "replace"),
            )
            .await?
            .body()
            .deserialize()
    })
    .await?;
    Ok(job.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessKey;

    fn process(cgroup: &str, unit: Option<&str>) -> Process {
        Process {
            key: ProcessKey {
                pid: 10,
                start_ticks: 1,
            },
            ppid: 1,
            uid: 0,
            comm: "app".into(),
            cmdline: vec!["app".to_string()].into(),
            kernel_thread: false,
            oom_score_adj: 0,
            memory: Default::default(),
            cgroups: Vec::new().into(),
            memory_cgroup: Some(cgroup.into()),
            class: Classification::Host {
                unit: unit.map(str::to_string),
            }
            .into(),
            started_secs: 1.0,
        }
    }

    #[test]
    fn the_unified_or_systemd_hierarchy_names_the_unit_when_memory_does_not() {
        let mut process = process("/", Some("app.service"));
        process.cgroups = vec![crate::classify::CgroupLine {
            hierarchy: 1,
            controllers: vec!["name=systemd".into()],
            path: "/system.slice/app.service".into(),
        }]
        .into();
        assert_eq!(candidate_unit(&process), Some("app.service"));
    }

    #[test]
    fn only_a_system_slice_service_cgroup_names_a_candidate() {
        let service = process("/system.slice/app.service", Some("app.service"));
        assert_eq!(candidate_unit(&service), Some("app.service"));
        for (cgroup, unit) in [
            ("/system.slice/app.service/child", Some("app.service")),
            (
                "/user.slice/user-1000.slice/session-2.scope",
                Some("session-2.scope"),
            ),
            ("/system.slice/cron.scope", Some("cron.scope")),
            ("/system.slice/app.service", None),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.service",
                Some("app.service"),
            ),
        ] {
            assert_eq!(candidate_unit(&process(cgroup, unit)), None, "{cgroup}");
        }
    }
}
