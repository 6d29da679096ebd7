//! A TCP fault proxy for system tests: listens on `127.0.0.1:0`, forwards every connection to
//! an upstream address, and misbehaves on command ([`Mode`]), switchable at run time:
//!
//! - [`Mode::Pass`]: forward both ways.
//! - [`Mode::Refuse`]: new connections are reset at once (RST, nothing forwarded); a live
//!   connection is reset at its next client → upstream bytes, *before* forwarding them, so a
//!   refused request never reaches the upstream (an unambiguous failure).
//! - [`Mode::Delay`]: every client → upstream chunk waits that long before being forwarded
//!   (new and live connections).
//! - [`Mode::Drop`]: every live connection is cut at once (RST to the client, in-flight
//!   requests included: an ambiguous failure), new connections are accepted and black-holed
//!   (read and discarded, never answered) and are reset when the mode changes.
//! - [`Mode::LoseReplies`]: requests are forwarded, but a connection is reset as soon as the
//!   upstream answers, so the upstream did the work and the client never hears of it (the
//!   ambiguous failure of a reply lost in the network, or a client timing out too early).
//!
//! The upstream can be changed too ([`FaultProxy::set_upstream`]), e.g. to follow a server
//! restarted on another port. [`FaultProxy::stats`] counts what happened.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Delay(Duration),
    Drop,
    LoseReplies,
}

/// Counters since the proxy started.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
    black_holed: AtomicU64,
    cut: AtomicU64,
    delayed_chunks: AtomicU64,
    lost_replies: AtomicU64,
    upstream_failed: AtomicU64,
}

/// A copy of the proxy's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from clients.
    pub accepted: u64,
    /// Connections forwarded to the upstream.
    pub forwarded: u64,
    /// Connections reset by [`Mode::Refuse`] (new or at their next request).
    pub refused: u64,
    /// Connections held without an answer by [`Mode::Drop`].
    pub black_holed: u64,
    /// Live connections cut by [`Mode::Drop`].
    pub cut: u64,
    /// Client chunks held back by [`Mode::Delay`].
    pub delayed_chunks: u64,
    /// Replies thrown away by [`Mode::LoseReplies`] (the connection was reset instead).
    pub lost_replies: u64,
    /// Connections reset because the upstream could not be reached.
    pub upstream_failed: u64,
}

struct Shared {
    mode: watch::Sender<Mode>,
    upstream: Mutex<SocketAddr>,
    counters: Counters,
}

impl Shared {
    fn upstream(&self) -> SocketAddr {
        match self.upstream.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

/// A running proxy; stops (and cuts its connections) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on an ephemeral loopback port, in [`Mode::Pass`].
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Pass);
        let shared = Arc::new(Shared {
            mode,
            upstream: Mutex::new(upstream),
            counters: Counters::default(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Switches the mode; live connections react at once (see [`Mode`]).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Forwards new connections to `upstream` from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        match self.shared.upstream.lock() {
            Ok(mut g) => *g = upstream,
            Err(poisoned) => *poisoned.into_inner() = upstream,
        }
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            black_holed: c.black_holed.load(Ordering::Relaxed),
            cut: c.cut.load(Ordering::Relaxed),
            delayed_chunks: c.delayed_chunks.load(Ordering::Relaxed),
            lost_replies: c.lost_replies.load(Ordering::Relaxed),
            upstream_failed: c.upstream_failed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Cuts every live connection: their tasks end when the mode channel closes.
        self.shared.mode.send_replace(Mode::Drop);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "fault proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(handle(client, shared.clone()));
    }
}

/// Closes `stream` with a reset (no FIN): the peer sees "connection reset".
fn reset(stream: TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "fault proxy: could not set SO_LINGER 0");
    }
    drop(stream);
}

async fn handle(client: TcpStream, shared: Arc<Shared>) {
    let mut modes = shared.mode.subscribe();
    let mode = *modes.borrow_and_update();
    match mode {
        Mode::Refuse => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            reset(client);
        }
        Mode::Drop => black_hole(client, modes, &shared).await,
        Mode::Pass | Mode::Delay(_) | Mode::LoseReplies => {
            let upstream = match TcpStream::connect(shared.upstream()).await {
                Ok(u) => u,
                Err(_) => {
                    shared
                        .counters
                        .upstream_failed
                        .fetch_add(1, Ordering::Relaxed);
                    reset(client);
                    return;
                }
            };
            if let Err(e) = upstream
                .set_nodelay(true)
                .and_then(|()| client.set_nodelay(true))
            {
                tracing::debug!(error = %e, "fault proxy: could not set TCP_NODELAY");
            }
            shared.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            forward(client, upstream, modes, &shared).await;
        }
    }
}

/// Reads and discards until the mode leaves [`Mode::Drop`], then resets the connection.
async fn black_hole(mut client: TcpStream, mut modes: watch::Receiver<Mode>, shared: &Shared) {
    shared.counters.black_holed.fetch_add(1, Ordering::Relaxed);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            changed = modes.changed() => {
                if changed.is_err() || *modes.borrow_and_update() != Mode::Drop {
                    break;
                }
            }
            n = client.read(&mut buf) => {
                if matches!(n, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    }
    reset(client);
}

async fn forward(
    mut client: TcpStream,
    mut upstream: TcpStream,
    mut modes: watch::Receiver<Mode>,
    shared: &Shared,
) {
    let mut from_client = vec![0u8; 32 * 1024];
    let mut from_upstream = vec![0u8; 32 * 1024];
    let mut client_open = true;
    let mut upstream_open = true;
    while client_open || upstream_open {
        tokio::select! {
            changed = modes.changed() => {
                let cut = changed.is_err() || *modes.borrow_and_update() == Mode::Drop;
                if cut {
                    shared.counters.cut.fetch_add(1, Ordering::Relaxed);
                    reset(client);
                    return;
                }
            }
            n = client.read(&mut from_client), if client_open => {
                let n = match n {
                    Ok(n) => n,
                    Err(_) => break,
                };
                if n == 0 {
                    client_open = false;
                    if upstream.shutdown().await.is_err() {
                        break;
                    }
                    continue;
                }
                let mode = *modes.borrow();
                match mode {
                    Mode::Pass | Mode::LoseReplies => {}
                    Mode::Delay(d) => {
                        shared.counters.delayed_chunks.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(d).await;
                    }
                    Mode::Refuse | Mode::Drop => {
                        // Never forwarded: the upstream does not see this request.
                        shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                        reset(client);
                        return;
                    }
                }
                if upstream.write_all(&from_client[..n]).await.is_err() {
                    break;
                }
            }
            n = upstream.read(&mut from_upstream), if upstream_open => {
                let n = match n {
                    Ok(n) => n,
                    Err(_) => break,
                };
                if n == 0 {
                    upstream_open = false;
                    if client.shutdown().await.is_err() {
                        break;
                    }
                    continue;
                }
                if *modes.borrow() == Mode::LoseReplies {
                    shared.counters.lost_replies.fetch_add(1, Ordering::Relaxed);
                    reset(client);
                    return;
                }
                if client.write_all(&from_upstream[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    reset(client);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server: answers every chunk with the same bytes.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    /// Sends `msg` and reads the echo, within `within`.
    async fn round_trip(
        s: &mut TcpStream,
        msg: &[u8],
        within: Duration,
    ) -> std::io::Result<Vec<u8>> {
        let work = async {
            s.write_all(msg).await?;
            let mut out = vec![0u8; msg.len()];
            s.read_exact(&mut out).await?;
            Ok(out)
        };
        match tokio::time::timeout(within, work).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer",
            )),
        }
    }

    const SHORT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn in_pass_mode_bytes_go_through_both_ways() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"hello", SHORT).await.unwrap(), b"hello");
        assert_eq!(round_trip(&mut s, b"again", SHORT).await.unwrap(), b"again");
        assert_eq!(proxy.stats().forwarded, 1);
    }

    #[tokio::test]
    async fn refuse_resets_new_connections_and_the_next_request_of_live_ones() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut live, b"one", SHORT).await.unwrap(), b"one");
        proxy.set_mode(Mode::Refuse);
        assert!(
            round_trip(&mut live, b"two", SHORT).await.is_err(),
            "a live connection's next request is refused"
        );
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        let err = round_trip(&mut fresh, b"three", SHORT).await.unwrap_err();
        assert_ne!(
            err.kind(),
            std::io::ErrorKind::TimedOut,
            "refused at once, not hung: {err}"
        );
        assert_eq!(proxy.stats().refused, 2);
        proxy.set_mode(Mode::Pass);
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut after, b"back", SHORT).await.unwrap(),
            b"back"
        );
    }

    #[tokio::test]
    async fn delay_holds_every_request_back_for_the_given_time() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
        let t = Instant::now();
        assert_eq!(round_trip(&mut s, b"slow", SHORT).await.unwrap(), b"slow");
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        proxy.set_mode(Mode::Pass);
        let t = Instant::now();
        assert_eq!(round_trip(&mut s, b"fast", SHORT).await.unwrap(), b"fast");
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert!(proxy.stats().delayed_chunks >= 1);
    }

    #[tokio::test]
    async fn drop_cuts_live_connections_and_black_holes_new_ones_until_the_mode_changes() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut live, b"one", SHORT).await.unwrap(), b"one");
        proxy.set_mode(Mode::Drop);
        assert!(
            round_trip(&mut live, b"two", SHORT).await.is_err(),
            "the live connection is cut"
        );
        let mut held = TcpStream::connect(proxy.addr()).await.unwrap();
        let err = round_trip(&mut held, b"three", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::TimedOut,
            "black-holed, not refused: {err}"
        );
        // Leaving Drop resets the held connection instead of leaving it hanging.
        proxy.set_mode(Mode::Pass);
        let mut buf = [0u8; 8];
        let end = tokio::time::timeout(SHORT, held.read(&mut buf))
            .await
            .expect("the held connection is closed");
        assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
        let stats = proxy.stats();
        assert_eq!((stats.cut, stats.black_holed), (1, 1));
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut after, b"back", SHORT).await.unwrap(),
            b"back"
        );
    }

    #[tokio::test]
    async fn lose_replies_forwards_the_request_but_resets_instead_of_answering() {
        // An upstream that records what it received.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            tx.send(buf[..n].to_vec()).unwrap();
            s.write_all(b"done").await.unwrap();
            let mut rest = [0u8; 8];
            let _closed = s.read(&mut rest).await;
        });
        let proxy = FaultProxy::start(upstream).await.unwrap();
        proxy.set_mode(Mode::LoseReplies);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut s, b"work", SHORT).await.is_err(),
            "the reply is lost"
        );
        assert_eq!(
            rx.recv().await.unwrap(),
            b"work",
            "the upstream got the request"
        );
        assert_eq!(proxy.stats().lost_replies, 1);
    }

    #[tokio::test]
    async fn a_new_upstream_serves_the_connections_opened_after_the_switch() {
        let proxy = FaultProxy::start("127.0.0.1:9".parse().unwrap())
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut s, b"x", SHORT).await.is_err(),
            "nothing listens on the discard port"
        );
        assert_eq!(proxy.stats().upstream_failed, 1);
        proxy.set_upstream(echo_server().await);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"y", SHORT).await.unwrap(), b"y");
    }
}
