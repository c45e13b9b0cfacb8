//! Runs a user command to add and remove records, in the style of lego's and acme.sh's hooks:
//! `<command> present <fqdn> <value>` and `<command> cleanup <fqdn> <value>`, where `fqdn` has
//! its trailing dot. The zone is in `CERTMAGIC_DNS_ZONE` and the TTL (seconds) in
//! `CERTMAGIC_DNS_TTL`. A non-zero exit or a run longer than the timeout is an error carrying
//! the end of the command's stderr.
//!
//! JSON: `{"provider": "exec", "command": "/path/to/hook", "args": [], "timeout_secs": 60}`.
//! Environment (lego's names): `EXEC_PATH`, and `EXEC_TIMEOUT` in seconds.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use super::{env_any, env_required};
use crate::dns::provider::{DnsProvider, DnsRecord};
use crate::error::{Error, ErrorKind, Result};

/// Default limit on one run of the command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of [`Exec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program to run.
    pub command: String,
    /// Arguments placed before `present|cleanup <fqdn> <value>`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Limit on one run, in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Calls a user command.
#[derive(Debug)]
pub struct Exec {
    command: String,
    args: Vec<String>,
    timeout: Duration,
}

impl Exec {
    /// Checks the settings.
    pub fn new(config: ExecConfig) -> Result<Self> {
        if config.command.trim().is_empty() {
            return Err(Error::config("dns.provider", "exec: command is empty"));
        }
        let timeout = config
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::config(
                "dns.provider",
                "exec: timeout_secs must be more than 0",
            ));
        }
        Ok(Self {
            command: config.command,
            args: config.args,
            timeout,
        })
    }

    /// From `EXEC_PATH` and `EXEC_TIMEOUT`.
    pub fn from_env() -> Result<Self> {
        let timeout_secs = match env_any(&["EXEC_TIMEOUT"]) {
            Some(t) => Some(t.trim().parse().map_err(|_| {
                Error::config(
                    "dns.provider",
                    format!("exec: EXEC_TIMEOUT `{t}` is not a number of seconds"),
                )
            })?),
            None => None,
        };
        Self::new(ExecConfig {
            command: env_required("exec", &["EXEC_PATH"])?,
            args: Vec::new(),
            timeout_secs,
        })
    }

    async fn run(&self, action: &str, zone: &str, record: &DnsRecord) -> Result<()> {
        let fqdn = record.fqdn(zone);
        let mut cmd = tokio::process::Command::new(&self.command);
        cmd.args(&self.args)
            .args([action, &fqdn, &record.value])
            .env("CERTMAGIC_DNS_ZONE", zone)
            .env("CERTMAGIC_DNS_TTL", record.ttl.as_secs().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Challenge,
                format!("exec: cannot run `{}`: {e}", self.command),
            )
            .with_source(e)
        })?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| {
                Error::new(
                    ErrorKind::Challenge,
                    format!("exec: `{}`: {e}", self.command),
                )
            })?,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "exec: `{} {action} {fqdn}` ran longer than {:?} and was killed",
                        self.command, self.timeout
                    ),
                ));
            }
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .trim()
                .chars()
                .rev()
                .take(500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Error::new(
                ErrorKind::Challenge,
                format!(
                    "exec: `{} {action} {fqdn}` failed ({}): {tail}",
                    self.command, out.status
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl DnsProvider for Exec {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        for r in records {
            self.run("present", zone, r).await?;
        }
        Ok(records.to_vec())
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        for r in records {
            self.run("cleanup", zone, r).await?;
        }
        Ok(records.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(script: &str, timeout_secs: u64) -> Exec {
        Exec::new(ExecConfig {
            command: "sh".into(),
            args: vec!["-c".into(), script.into(), "hook".into()],
            timeout_secs: Some(timeout_secs),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn passes_action_name_value_and_zone() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let p = exec(
            &format!(
                "echo \"$1 $2 $3 $CERTMAGIC_DNS_ZONE $CERTMAGIC_DNS_TTL\" >> {}",
                out.display()
            ),
            10,
        );
        let r = DnsRecord::txt("_acme-challenge.www", "v1", Duration::from_secs(60));
        p.append_records("example.com.", std::slice::from_ref(&r))
            .await
            .unwrap();
        p.delete_records("example.com.", &[r]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "present _acme-challenge.www.example.com. v1 example.com. 60\ncleanup _acme-challenge.www.example.com. v1 example.com. 60\n"
        );
    }

    #[tokio::test]
    async fn failure_and_timeout_are_clear() {
        let r = DnsRecord::txt("x", "v", Duration::from_secs(60));
        let e = exec("echo 'zone is locked' >&2; exit 3", 10)
            .append_records("example.com.", std::slice::from_ref(&r))
            .await
            .unwrap_err();
        assert!(
            e.message().contains("zone is locked") && e.message().contains("present"),
            "{e}"
        );
        let e = exec("sleep 5", 1)
            .append_records("example.com.", &[r])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    }
}
