//! The log writer: lines are appended to a shared buffer, and one thread
//! writes the buffer to stderr in batches.
//!
//! Why not a line per write: the access log has one line per proxied
//! request. With a channel send that woke a writer thread for every line,
//! which then wrote it with its own `write(2)` (what `tracing-appender`
//! does), plus the default formatter, the access log took about 15 of the
//! 49 µs of CPU of a public-route request in the load benchmark
//! (benches/RESULTS.md, (c) against (c0)). Appending to a buffer under an
//! uncontended lock costs tens of nanoseconds; the writer thread wakes
//! every [`FLUSH_INTERVAL`] or when a batch is large.
//!
//! Nothing is dropped: when the buffer reaches [`BLOCK_AT`] (the disk or the
//! pipe reading stderr is slower than the traffic), the logging thread
//! writes the batch itself, which slows it down to the speed of the output.
//! The buffer is flushed when the [`FlushGuard`] drops and also at
//! `exit(3)`, since Pingora ends a graceful shutdown with
//! `std::process::exit`, which runs no destructors.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a line waits in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// The writer thread is woken early once this much is waiting.
const WAKE_AT: usize = 64 * 1024;
/// Past this, a logging thread writes the batch itself (backpressure).
const BLOCK_AT: usize = 4 * 1024 * 1024;

/// Where batches go: stderr in the gateway, a vector in tests.
type Output = Box<dyn Write + Send>;

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while a batch is taken and written, so batches keep their order
    /// whichever thread writes them.
    output: Mutex<Sink>,
}

/// The output and the second of two buffers that trade places on every
/// flush: in steady state no batch allocates, and no allocator keeps freed
/// batches around (a new `Vec` per batch, freed on another thread, added
/// about 15 MiB of peak RSS under load).
struct Sink {
    output: Output,
    spare: Vec<u8>,
}

/// A batch buffer larger than this after a burst is given back.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain bytes behind:
    // still fine to write.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn append(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        pending.bytes.extend_from_slice(line);
        let len = pending.bytes.len();
        drop(pending);
        if len >= BLOCK_AT {
            self.flush();
        } else if len >= WAKE_AT {
            self.wake.notify_one();
        }
    }

    fn flush(&self) {
        let mut sink = lock(&self.output);
        let sink = &mut *sink;
        std::mem::swap(&mut sink.spare, &mut lock(&self.pending).bytes);
        if !sink.spare.is_empty() {
            // Nowhere left to report a failing stderr; the lines are lost.
            let _ = sink.output.write_all(&sink.spare);
            let _ = sink.output.flush();
            sink.spare.clear();
        }
        if sink.spare.capacity() > KEEP_CAPACITY {
            sink.spare.shrink_to(KEEP_CAPACITY);
        }
    }

    fn run(&self) {
        loop {
            let pending = lock(&self.pending);
            let (pending, _) = self
                .wake
                .wait_timeout_while(pending, FLUSH_INTERVAL, |p| {
                    !p.closing && p.bytes.len() < WAKE_AT
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let closing = pending.closing;
            drop(pending);
            self.flush();
            if closing {
                return;
            }
        }
    }
}

/// A `MakeWriter` for `tracing-subscriber`: the formatter hands each whole
/// event to one `write` call, so lines are never interleaved.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl Write for BatchWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.shared.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Stops the writer thread and writes what is left when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

/// The writer for the process's logs, to stderr. Call once.
pub fn stderr() -> (BatchWriter, FlushGuard) {
    let (writer, guard) = to(Box::new(std::io::stderr()));
    if PROCESS_WRITER.set(writer.shared.clone()).is_ok() {
        // SAFETY: registers a plain `extern "C"` function that takes no
        // arguments, as atexit(3) requires.
        unsafe { libc::atexit(flush_at_exit) };
    }
    (writer, guard)
}

static PROCESS_WRITER: OnceLock<Arc<Shared>> = OnceLock::new();

extern "C" fn flush_at_exit() {
    if let Some(shared) = PROCESS_WRITER.get() {
        shared.flush();
    }
}

/// A writer to any output, with its own writer thread.
fn to(output: Output) -> (BatchWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        output: Mutex::new(Sink {
            output,
            spare: Vec::new(),
        }),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("portcullis-log".into())
            .spawn(move || shared.run())
            .expect("the log writer thread starts")
    };
    (
        BatchWriter {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An output the test can read while the writer holds it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    #[test]
    fn lines_reach_the_output_within_the_flush_interval() {
        let captured = Captured::default();
        let (mut writer, _guard) = to(Box::new(captured.clone()));
        writer.write_all(b"one\n").unwrap();
        writer.write_all(b"two\n").unwrap();
        let deadline = Instant::now() + FLUSH_INTERVAL * 20;
        while captured.text().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(captured.text(), "one\ntwo\n");
    }

    #[test]
    fn dropping_the_guard_writes_everything_in_order() {
        let captured = Captured::default();
        let (writer, guard) = to(Box::new(captured.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        writer
                            .write_all(format!("t{t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = captured.text();
        assert_eq!(text.lines().count(), 40_000);
        // Each thread's lines arrive whole and in the order it wrote them,
        // across batches written by the writer thread and by loggers
        // pushing back.
        for t in 0..4 {
            let prefix = format!("t{t} line ");
            let numbers: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..10_000).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let captured = Captured::default();
        let (mut writer, _guard) = to(Box::new(captured.clone()));
        let big = vec![b'x'; BLOCK_AT];
        writer.write_all(&big).unwrap();
        // Written before write_all returned, without waiting for the thread.
        assert_eq!(lock(&captured.0).len(), BLOCK_AT);
    }
}
