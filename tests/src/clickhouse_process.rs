//! A private ClickHouse server for fault tests: the repository's `infra/local/clickhouse_server.py`
//! run from the chdb virtualenv (`.venv`) on a free loopback port with its own data directory,
//! so a test can stop it (SIGTERM, or SIGKILL as a crash) and start it again on the same data
//! directory without touching the shared server on port 8123.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a start may take before it is reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop may take before it is reported as failed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseProcessError {
    #[error("the chdb virtualenv is missing ({0}); run scripts/setup.sh")]
    NoVenv(PathBuf),
    #[error("could not {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the private ClickHouse on {addr} did not answer /ping within {after:?} (log: {log})")]
    NotReady {
        addr: SocketAddr,
        after: Duration,
        log: String,
    },
    #[error("the private ClickHouse (pid {pid}) did not exit within {after:?}")]
    DidNotStop { pid: u32, after: Duration },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ClickHouseProcessError {
    move |source| ClickHouseProcessError::Io { what, source }
}

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A free loopback port (bound then released; good enough for a test).
pub fn free_port() -> Result<u16, ClickHouseProcessError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free port"))?;
    Ok(l.local_addr().map_err(io("read the bound port"))?.port())
}

/// A ClickHouse server this test owns.
pub struct PrivateClickHouse {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl PrivateClickHouse {
    /// Starts a server on a free port with a fresh data directory under `dir`.
    pub async fn start(dir: PathBuf) -> Result<PrivateClickHouse, ClickHouseProcessError> {
        std::fs::create_dir_all(&dir).map_err(io("create the ClickHouse directory"))?;
        let mut ch = PrivateClickHouse {
            dir,
            port: free_port()?,
            child: None,
            starts: 0,
        };
        ch.launch().await?;
        Ok(ch)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How many times the server was started on this data directory.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    async fn launch(&mut self) -> Result<(), ClickHouseProcessError> {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        if !python.is_file() {
            return Err(ClickHouseProcessError::NoVenv(python));
        }
        self.starts += 1;
        let log_path = self.dir.join(format!("clickhouse.{}.log", self.starts));
        let log = std::fs::File::create(&log_path).map_err(io("create the ClickHouse log"))?;
        let log_err = log
            .try_clone()
            .map_err(io("clone the ClickHouse log handle"))?;
        let child = Command::new(python)
            .arg(root.join("infra/local/clickhouse_server.py"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--run-dir")
            .arg(self.dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(io("spawn the ClickHouse server"))?;
        self.child = Some(child);
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ClickHouseProcessError::Io {
                what: "build an HTTP client",
                source: std::io::Error::other(e),
            })?;
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(r) = http.get(format!("{}/ping", self.url())).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        Err(ClickHouseProcessError::NotReady {
            addr: self.addr(),
            after: started.elapsed(),
            log,
        })
    }

    /// Stops the server: `crash` sends SIGKILL, otherwise SIGTERM (a clean shutdown).
    pub async fn stop(&mut self, crash: bool) -> Result<(), ClickHouseProcessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let Some(pid) = child.id() else { return Ok(()) };
        let signal = if crash { "-KILL" } else { "-TERM" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .await
            .map_err(io("run kill"))?;
        if !status.success() {
            tracing::warn!(pid, signal, "kill failed (already exited?)");
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClickHouseProcessError::Io {
                what: "wait for the ClickHouse server",
                source: e,
            }),
            Err(_) => {
                child
                    .start_kill()
                    .map_err(io("kill the ClickHouse server"))?;
                Err(ClickHouseProcessError::DidNotStop {
                    pid,
                    after: STOP_TIMEOUT,
                })
            }
        }
    }

    /// Starts the server again on the same data directory (and port).
    pub async fn restart(&mut self) -> Result<(), ClickHouseProcessError> {
        if self.child.is_none() {
            self.launch().await?;
        }
        Ok(())
    }
}
