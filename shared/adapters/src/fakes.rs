//! In-memory fakes of the ports (`MemoryObjectStore`, `MemoryQueue`) for handler unit
//! tests, with fault-injection switches (`fail_next_put`, `set_down`, ...).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use crate::object_store::{ListPage, MultipartUpload, ObjectInfo, ObjectStore, StoreError};
use crate::queue::{MessageId, MessageQueue, QueueError, ReceivedMessage};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes one pending injected failure, if any.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub body: Bytes,
    pub content_type: String,
}

#[derive(Debug, Default)]
struct StoreState {
    objects: Mutex<BTreeMap<String, StoredObject>>,
    down: AtomicBool,
    fail_puts: AtomicU32,
    fail_gets: AtomicU32,
    puts: AtomicU64,
}

/// [`ObjectStore`] in memory. Clones share the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryObjectStore {
    state: Arc<StoreState>,
    page_size: usize,
}

impl MemoryObjectStore {
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            page_size: 1000,
        }
    }

    /// A store whose `list_page` returns at most `page_size` objects (to test paging).
    pub fn with_page_size(page_size: usize) -> Self {
        Self {
            state: Arc::default(),
            page_size: page_size.max(1),
        }
    }

    /// While down, every call fails with `StoreError::Unavailable`.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The next put (of any kind, including a multipart completion) fails as unavailable.
    pub fn fail_next_put(&self) {
        self.fail_puts(1);
    }

    /// The next `n` puts fail as unavailable.
    pub fn fail_puts(&self, n: u32) {
        self.state.fail_puts.store(n, Ordering::SeqCst);
    }

    /// The next get (whole or ranged) fails as unavailable.
    pub fn fail_next_get(&self) {
        self.state.fail_gets.store(1, Ordering::SeqCst);
    }

    /// Stores an object directly, bypassing fault injection (test setup).
    pub fn insert(&self, key: &str, body: impl Into<Bytes>, content_type: &str) {
        lock(&self.state.objects).insert(
            key.to_owned(),
            StoredObject {
                body: body.into(),
                content_type: content_type.to_owned(),
            },
        );
    }

    /// A stored object, bypassing fault injection (test assertions).
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        lock(&self.state.objects).get(key).cloned()
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.state.objects).keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.state.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Successful puts so far.
    pub fn put_count(&self) -> u64 {
        self.state.puts.load(Ordering::SeqCst)
    }

    fn check_up(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        if self.state.down.load(Ordering::SeqCst) {
            return Err(unavailable(
                operation,
                key,
                "store is down (fault injected)",
            ));
        }
        Ok(())
    }

    fn check_put(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        self.check_up(operation, key)?;
        if take(&self.state.fail_puts) {
            return Err(unavailable(operation, key, "put failed (fault injected)"));
        }
        Ok(())
    }

    fn check_get(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        self.check_up(operation, key)?;
        if take(&self.state.fail_gets) {
            return Err(unavailable(operation, key, "get failed (fault injected)"));
        }
        Ok(())
    }
}

fn unavailable(operation: &'static str, key: &str, message: &str) -> StoreError {
    StoreError::Unavailable {
        operation,
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.check_put("put", key)?;
        self.insert(key, body, content_type);
        self.state.puts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.check_put("put_if_absent", key)?;
        let mut objects = lock(&self.state.objects);
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(
            key.to_owned(),
            StoredObject {
                body,
                content_type: content_type.to_owned(),
            },
        );
        self.state.puts.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.check_get("get", key)?;
        Ok(self.object(key).map(|o| o.body))
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        self.check_get("get_range", key)?;
        Ok(self.object(key).map(|o| {
            let size = o.body.len();
            let start = usize::try_from(offset).unwrap_or(size).min(size);
            let end = usize::try_from(offset.saturating_add(len))
                .unwrap_or(size)
                .min(size);
            o.body.slice(start..end)
        }))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.check_up("head", key)?;
        Ok(self.object(key).map(|o| o.body.len() as u64))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check_up("delete", key)?;
        lock(&self.state.objects).remove(key);
        Ok(())
    }

    async fn list_page(
        &self,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, StoreError> {
        self.check_up("list", prefix)?;
        let objects = lock(&self.state.objects);
        let mut page: Vec<ObjectInfo> = objects
            .range(continuation.clone().unwrap_or_default()..)
            .filter(|(k, _)| continuation.as_deref() != Some(k.as_str()))
            .filter(|(k, _)| k.starts_with(prefix))
            .take(self.page_size + 1)
            .map(|(k, o)| ObjectInfo {
                key: k.clone(),
                size: o.body.len() as u64,
            })
            .collect();
        let next = if page.len() > self.page_size {
            page.truncate(self.page_size);
            page.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(ListPage {
            objects: page,
            next,
        })
    }

    fn multipart(
        &self,
        key: &str,
        content_type: &str,
        part_size: usize,
    ) -> Box<dyn MultipartUpload> {
        Box::new(MemoryMultipart {
            store: self.clone(),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            buffer: BytesMut::new(),
            part_size: part_size.max(1),
            parts: 0,
        })
    }
}

/// Multipart upload into a [`MemoryObjectStore`]; the object appears on `complete`.
#[derive(Debug)]
pub struct MemoryMultipart {
    store: MemoryObjectStore,
    key: String,
    content_type: String,
    buffer: BytesMut,
    part_size: usize,
    parts: usize,
}

#[async_trait]
impl MultipartUpload for MemoryMultipart {
    async fn write_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.store.check_up("upload_part", &self.key)?;
        let before = self.buffer.len() / self.part_size;
        self.buffer.extend_from_slice(&data);
        self.parts += self.buffer.len() / self.part_size - before;
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<u64, StoreError> {
        let len = self.buffer.len() as u64;
        self.store
            .put(&self.key, self.buffer.freeze(), &self.content_type)
            .await?;
        Ok(len)
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.buffer.len() as u64
    }
}

#[derive(Debug, Clone)]
struct QueuedMessage {
    id: MessageId,
    body: String,
    receive_count: u32,
    visible_at: Instant,
    receipt_handle: Option<String>,
}

#[derive(Debug, Default)]
struct QueueState {
    messages: Mutex<VecDeque<QueuedMessage>>,
    sent: Mutex<Vec<String>>,
    dead: Mutex<Vec<String>>,
    down: AtomicBool,
    fail_sends: AtomicU32,
    next_id: AtomicU64,
}

/// [`MessageQueue`] in memory, with visibility timeouts and an optional dead-letter limit.
/// Clones share the same queue. `wait_secs` is ignored (receive never blocks).
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    state: Arc<QueueState>,
    max_receive_count: Option<u32>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue that moves a message to its dead letters once it has been received
    /// `max_receive_count` times without being deleted (like an SQS redrive policy).
    pub fn with_max_receive_count(max_receive_count: u32) -> Self {
        Self {
            state: Arc::default(),
            max_receive_count: Some(max_receive_count),
        }
    }

    /// While down, every call fails with `QueueError::Unavailable`.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The next send (single or batch) fails as unavailable.
    pub fn fail_next_send(&self) {
        self.fail_sends(1);
    }

    /// The next `n` sends fail as unavailable.
    pub fn fail_sends(&self, n: u32) {
        self.state.fail_sends.store(n, Ordering::SeqCst);
    }

    /// Bodies of every message ever accepted, in order (test assertions).
    pub fn sent(&self) -> Vec<String> {
        lock(&self.state.sent).clone()
    }

    /// Bodies moved to the dead letters.
    pub fn dead_letters(&self) -> Vec<String> {
        lock(&self.state.dead).clone()
    }

    /// Messages not yet deleted (visible or in flight).
    pub fn len(&self) -> usize {
        lock(&self.state.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_up(&self, operation: &'static str) -> Result<(), QueueError> {
        if self.state.down.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                operation,
                message: "queue is down (fault injected)".into(),
            });
        }
        Ok(())
    }

    fn check_send(&self, operation: &'static str) -> Result<(), QueueError> {
        self.check_up(operation)?;
        if take(&self.state.fail_sends) {
            return Err(QueueError::Unavailable {
                operation,
                message: "send failed (fault injected)".into(),
            });
        }
        Ok(())
    }

    fn enqueue(&self, body: String) -> MessageId {
        let n = self.state.next_id.fetch_add(1, Ordering::SeqCst);
        let id = MessageId(format!("mem-{n}"));
        lock(&self.state.sent).push(body.clone());
        lock(&self.state.messages).push_back(QueuedMessage {
            id: id.clone(),
            body,
            receive_count: 0,
            visible_at: Instant::now(),
            receipt_handle: None,
        });
        id
    }
}

#[async_trait]
impl MessageQueue for MemoryQueue {
    async fn send(&self, body: String) -> Result<MessageId, QueueError> {
        self.check_send("send")?;
        Ok(self.enqueue(body))
    }

    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<MessageId>, QueueError> {
        self.check_send("send_batch")?;
        Ok(bodies.into_iter().map(|b| self.enqueue(b)).collect())
    }

    async fn receive(
        &self,
        max: u32,
        _wait_secs: u32,
        visibility_secs: u32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.check_up("receive")?;
        let now = Instant::now();
        let max = usize::try_from(max.clamp(1, 10)).unwrap_or(10);
        let mut messages = lock(&self.state.messages);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (index, m) in messages.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            if m.visible_at > now {
                continue;
            }
            if self
                .max_receive_count
                .is_some_and(|limit| m.receive_count >= limit)
            {
                dead.push(index);
                continue;
            }
            m.receive_count += 1;
            m.visible_at = now + Duration::from_secs(u64::from(visibility_secs));
            let handle = format!("{}#{}", m.id, m.receive_count);
            m.receipt_handle = Some(handle.clone());
            out.push(ReceivedMessage {
                id: m.id.clone(),
                receipt_handle: handle,
                body: m.body.clone(),
                receive_count: m.receive_count,
            });
        }
        for index in dead.into_iter().rev() {
            if let Some(m) = messages.remove(index) {
                lock(&self.state.dead).push(m.body);
            }
        }
        Ok(out)
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.check_up("delete")?;
        lock(&self.state.messages).retain(|m| m.receipt_handle.as_deref() != Some(receipt_handle));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_round_trips_and_honours_ranges() {
        let store = MemoryObjectStore::new();
        store
            .put("a/1", Bytes::from_static(b"hello world"), "text/plain")
            .await
            .expect("put");
        assert_eq!(
            store.get("a/1").await.expect("get"),
            Some(Bytes::from_static(b"hello world"))
        );
        assert_eq!(
            store.get_range("a/1", 6, 100).await.expect("range"),
            Some(Bytes::from_static(b"world"))
        );
        assert_eq!(
            store.get_range("a/1", 50, 1).await.expect("range"),
            Some(Bytes::new())
        );
        assert_eq!(store.head("a/1").await.expect("head"), Some(11));
        assert_eq!(store.get("missing").await.expect("get"), None);
        assert_eq!(
            store.object("a/1").map(|o| o.content_type),
            Some("text/plain".to_owned())
        );
    }

    #[tokio::test]
    async fn fail_next_put_fails_exactly_one_put() {
        let store = MemoryObjectStore::new();
        store.fail_next_put();
        let first = store.put("k", Bytes::new(), "x").await;
        assert!(matches!(first, Err(ref e) if e.is_transient()));
        assert!(store.put("k", Bytes::new(), "x").await.is_ok());
        assert_eq!(store.put_count(), 1);
    }

    #[tokio::test]
    async fn a_down_store_fails_every_call_until_it_is_up_again() {
        let store = MemoryObjectStore::new();
        store.insert("k", Bytes::from_static(b"v"), "x");
        store.set_down(true);
        assert!(store.get("k").await.is_err());
        assert!(store.list("", 10).await.is_err());
        store.set_down(false);
        assert!(store.get("k").await.is_ok());
    }

    #[tokio::test]
    async fn memory_store_lists_by_prefix_across_pages() {
        let store = MemoryObjectStore::with_page_size(2);
        for k in ["p/1", "p/2", "p/3", "p/4", "p/5", "q/1"] {
            store.insert(k, Bytes::from_static(b"x"), "x");
        }
        let first = store.list_page("p/", None).await.expect("page");
        assert_eq!(first.objects.len(), 2);
        assert!(first.next.is_some());
        let keys: Vec<String> = store
            .list("p/", 100)
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, vec!["p/1", "p/2", "p/3", "p/4", "p/5"]);
        assert_eq!(store.list("p/", 3).await.expect("list").len(), 3);
    }

    #[tokio::test]
    async fn put_if_absent_writes_only_once() {
        let store = MemoryObjectStore::new();
        assert!(store
            .put_if_absent("k", Bytes::from_static(b"1"), "x")
            .await
            .expect("first"));
        assert!(!store
            .put_if_absent("k", Bytes::from_static(b"2"), "x")
            .await
            .expect("second"));
        assert_eq!(
            store.get("k").await.expect("get"),
            Some(Bytes::from_static(b"1"))
        );
    }

    #[tokio::test]
    async fn memory_multipart_appears_only_on_complete() {
        let store = MemoryObjectStore::new();
        let mut up = store.multipart("big", "application/octet-stream", 4);
        up.write_part(Bytes::from_static(b"abcdef"))
            .await
            .expect("write");
        up.write_part(Bytes::from_static(b"gh"))
            .await
            .expect("write");
        assert_eq!(up.bytes_written(), 8);
        assert!(store.is_empty());
        assert_eq!(up.complete().await.expect("complete"), 8);
        assert_eq!(
            store.get("big").await.expect("get"),
            Some(Bytes::from_static(b"abcdefgh"))
        );
    }

    #[tokio::test]
    async fn memory_queue_hides_received_messages_and_deletes_them() {
        let q = MemoryQueue::new();
        q.send("a".into()).await.expect("send");
        q.send_batch(vec!["b".into(), "c".into()])
            .await
            .expect("batch");
        let got = q.receive(10, 0, 30).await.expect("receive");
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        assert!(q.receive(10, 0, 30).await.expect("receive").is_empty());
        for m in &got {
            q.delete(&m.receipt_handle).await.expect("delete");
        }
        assert!(q.is_empty());
        assert_eq!(q.sent(), vec!["a", "b", "c"]);
    }

    #[tokio::test]
    async fn memory_queue_dead_letters_after_max_receives() {
        let q = MemoryQueue::with_max_receive_count(2);
        q.send("poison".into()).await.expect("send");
        for expected in 1..=2 {
            let got = q.receive(1, 0, 0).await.expect("receive");
            assert_eq!(got.first().map(|m| m.receive_count), Some(expected));
        }
        assert!(q.receive(1, 0, 0).await.expect("receive").is_empty());
        assert_eq!(q.dead_letters(), vec!["poison"]);
    }

    #[tokio::test]
    async fn memory_queue_fault_switches_fail_sends() {
        let q = MemoryQueue::new();
        q.fail_next_send();
        assert!(q.send("x".into()).await.is_err());
        assert!(q.send("x".into()).await.is_ok());
        q.set_down(true);
        assert!(matches!(
            q.receive(1, 0, 0).await,
            Err(QueueError::Unavailable { .. })
        ));
    }
}
