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
use crate::fields::ConfigField;

/// Default limit on one run of the command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of [`Exec`]. Its arguments may carry credentials, so `Debug` shows only how many.
#[derive(Clone, Deserialize)]
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
pub struct Exec {
    command: String,
    args: Vec<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecConfig")
            .field("command", &self.command)
            .field("args", &format_args!("<{} hidden>", self.args.len()))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("command", &self.command)
            .field("args", &format_args!("<{} hidden>", self.args.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Exec {
    /// Checks the settings.
    pub fn new(config: ExecConfig) -> Result<Self> {
        if config.command.trim().is_empty() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "exec: command is empty",
            ));
        }
        let timeout = config
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::config(
                ConfigField::DnsProvider,
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
                    ConfigField::DnsProvider,
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
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Challenge,
                format!("exec: cannot run `{}`: {e}", self.command),
            )
            .with_source(e)
        })?;
        let stderr = child.stderr.take();
        let run = async {
            let tail = match stderr {
                Some(s) => stderr_tail(s).await,
                None => Vec::new(),
            };
            child.wait().await.map(|status| (status, tail))
        };
        let (status, stderr) = match tokio::time::timeout(self.timeout, run).await {
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
        if !status.success() {
            let err = String::from_utf8_lossy(&stderr);
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
                    self.command, status
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

/// The last [`STDERR_TAIL`] bytes a command writes to stderr (read to the end, so the command
/// never blocks on a full pipe; only the tail is kept).
async fn stderr_tail(mut stderr: tokio::process::ChildStderr) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    tail
}

/// Bytes of a failing command's stderr kept for its error.
const STDERR_TAIL: usize = 4096;

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

    #[tokio::test]
    async fn stderr_is_kept_to_its_tail_and_args_never_print() {
        // Megabytes on stderr, then the reason: memory holds only the tail.
        let r = DnsRecord::txt("x", "v", Duration::from_secs(60));
        let e = exec(
            "head -c 3000000 /dev/zero | tr '\\0' x >&2; echo 'the reason' >&2; exit 1",
            10,
        )
        .append_records("example.com.", &[r])
        .await
        .unwrap_err();
        assert!(e.message().contains("the reason"), "{e}");
        assert!(e.message().len() < 2000, "{} bytes", e.message().len());

        let config = ExecConfig {
            command: "/usr/local/bin/dns-hook".into(),
            args: vec!["--token=s3cr3t".into()],
            timeout_secs: None,
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Exec::new(config).unwrap()).contains("s3cr3t"));
    }
}
