//! The access-log sink: a `tracing` layer for the `portico::access` target that writes each
//! event as one JSON line, built directly from the event's fields, and hands it to a writer
//! thread.
//!
//! Why not tracing-subscriber's JSON formatter: on a proxied request it cost about a quarter of
//! the gateway's user-space instructions (generic field visiting, map building, a `write`
//! system call per line under stdout's lock; see bench/README.md). This layer appends the
//! fields it is given to a reused buffer, and the writer thread batches lines into a few
//! writes. The request path never blocks on the log: if the writer falls behind by
//! [`QUEUE_LINES`] lines, lines are dropped and counted, and the count is reported.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Lines queued for the writer before new ones are dropped.
pub const QUEUE_LINES: usize = 16_384;

enum Message {
    Line(String),
    Flush(SyncSender<()>),
}

struct Sink {
    sender: SyncSender<Message>,
    dropped: AtomicU64,
}

static SINK: OnceLock<Sink> = OnceLock::new();
/// Buffers recycled between the layer and the writer, so steady state allocates nothing.
static SPARE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        let (sender, receiver) = sync_channel(QUEUE_LINES);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(receiver));
        if let Err(error) = spawned {
            eprintln!("cannot start the access-log writer: {error}");
        }
        Sink {
            sender,
            dropped: AtomicU64::new(0),
        }
    })
}

/// How long the writer lets lines accumulate after a busy batch. Senders never wake a writer
/// that is sleeping here (only a writer blocked in `recv` needs waking), so under load the
/// request path pays no system call for its log line; an idle writer blocks.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

fn write_lines(receiver: Receiver<Message>) {
    // Lines collect here and go to stdout in one write per batch; stdout is locked only for
    // that write, so other output (a banner, a panic message) is never held up.
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut reported_drops = 0;
    let mut busy = false;
    loop {
        let first = if busy {
            std::thread::sleep(BATCH_INTERVAL);
            match receiver.try_recv() {
                Ok(message) => Some(message),
                Err(std::sync::mpsc::TryRecvError::Empty) => None,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
        } else {
            match receiver.recv() {
                Ok(message) => Some(message),
                Err(_) => return,
            }
        };
        busy = first.is_some();
        let mut next = first;
        // Everything queued goes out in the same write.
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    out.extend_from_slice(line.as_bytes());
                    recycle(line);
                }
                Message::Flush(done) => {
                    write_out(&mut out);
                    let _ = done.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        write_out(&mut out);
        let dropped = SINK
            .get()
            .map(|sink| sink.dropped.load(Ordering::Relaxed))
            .unwrap_or(0);
        if dropped > reported_drops {
            tracing::warn!(
                dropped = dropped - reported_drops,
                "access-log lines dropped: the log writer could not keep up"
            );
            reported_drops = dropped;
        }
    }
}

fn write_out(out: &mut Vec<u8>) {
    if out.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out);
    let _ = stdout.flush();
    out.clear();
    // A burst may have grown the batch buffer; do not keep megabytes around.
    if out.capacity() > 1024 * 1024 {
        out.shrink_to(64 * 1024);
    }
}

/// Buffers above this are not kept for reuse (a line with a huge path would pin its size).
const SPARE_MAX_CAPACITY: usize = 4096;

fn recycle(mut line: String) {
    if line.capacity() > SPARE_MAX_CAPACITY {
        return;
    }
    line.clear();
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < 1024
    {
        spare.push(line);
    }
}

fn buffer() -> String {
    SPARE
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_else(|| String::with_capacity(512))
}

/// Waits (up to a second) until every line logged so far is written; for shutdown.
pub fn flush() {
    let Some(sink) = SINK.get() else {
        return;
    };
    let (done, wait) = sync_channel(1);
    if sink.sender.send(Message::Flush(done)).is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(1));
    }
}

/// Lines dropped because the writer was behind (for metrics and tests).
pub fn dropped_lines() -> u64 {
    SINK.get()
        .map(|sink| sink.dropped.load(Ordering::Relaxed))
        .unwrap_or(0)
}

/// The layer: install it for the `portico::access` target only.
#[derive(Debug, Default)]
pub struct AccessLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let mut line = buffer();
        line.push_str("{\"timestamp\":\"");
        push_rfc3339(&mut line, SystemTime::now());
        line.push_str("\",\"level\":\"INFO\"");
        event.record(&mut JsonFields { line: &mut line });
        line.push_str("}\n");
        let sink = sink();
        match sink.sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Line(line)))
            | Err(TrySendError::Disconnected(Message::Line(line))) => {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
                recycle(line);
            }
            Err(_) => {}
        }
    }
}

/// Appends each field as `,"name":value`; `None` options are simply not recorded by tracing.
struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push_str(",\"");
        self.line.push_str(field.name());
        self.line.push_str("\":");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(self.line, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        push_fixed3(self.line, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        push_json_string(self.line, &text);
    }
}

/// Request-controlled fields (path, error detail) are cut to this many bytes in the log, which
/// bounds the queue's memory at `QUEUE_LINES` lines.
const FIELD_MAX_BYTES: usize = 8 * 1024;

fn push_json_string(line: &mut String, value: &str) {
    let mut end = value.len().min(FIELD_MAX_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let value = &value[..end];
    line.push('"');
    // Runs of bytes that need no escape are copied whole: pushing char by char cost about
    // 1,000 instructions per access line. Every byte that needs an escape is ASCII, so a run
    // always ends on a character boundary.
    let mut clean_from = 0;
    for (index, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            byte if byte < 0x20 => "",
            _ => continue,
        };
        line.push_str(&value[clean_from..index]);
        clean_from = index + 1;
        if escaped.is_empty() {
            let _ = write!(line, "\\u{:04x}", byte);
        } else {
            line.push_str(escaped);
        }
    }
    line.push_str(&value[clean_from..]);
    line.push('"');
}

/// `2026-11-21T18:02:37.014Z`. Digits pushed by hand: `write!` with seven padded fields was
/// about 2,000 instructions per access line.
fn push_rfc3339(line: &mut String, at: SystemTime) {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs() as i64;
    let (year, month, day) = crate::time::civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400) as u32;
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => push_padded(line, year, 4),
        _ => {
            let _ = write!(line, "{year:04}");
        }
    }
    line.push('-');
    push_padded(line, month, 2);
    line.push('-');
    push_padded(line, day, 2);
    line.push('T');
    push_padded(line, of_day / 3600, 2);
    line.push(':');
    push_padded(line, of_day % 3600 / 60, 2);
    line.push(':');
    push_padded(line, of_day % 60, 2);
    line.push('.');
    push_padded(line, since.subsec_millis(), 3);
    line.push('Z');
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_padded(line: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        line.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// A latency in milliseconds with three decimals (`12.345`), `null` if not finite. Integer
/// arithmetic for the usual range: `{:.3}` takes the float formatter's exact path (dragon),
/// about 1,000 instructions per value. The result can differ from `{:.3}` only in the last
/// digit of a value within a rounding error of a tie (`x.xxx5`).
fn push_fixed3(line: &mut String, value: f64) {
    if !value.is_finite() {
        line.push_str("null");
    } else if (0.0..1e12).contains(&value) {
        let thousandths = (value * 1000.0).round() as u64;
        let whole = thousandths / 1000;
        if let Ok(whole) = u32::try_from(whole) {
            crate::integrate::http::push_decimal(line, whole);
        } else {
            let _ = write!(line, "{whole}");
        }
        line.push('.');
        push_padded(line, (thousandths % 1000) as u32, 3);
    } else {
        let _ = write!(line, "{value:.3}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut line = String::new();
        push_json_string(&mut line, "a\"b\\c\nd\u{1}é");
        assert_eq!(line, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn long_fields_are_cut_on_a_character_boundary() {
        let mut line = String::new();
        let long = "é".repeat(FIELD_MAX_BYTES);
        push_json_string(&mut line, &long);
        let parsed: String = serde_json::from_str(&line).unwrap();
        assert!(parsed.len() <= FIELD_MAX_BYTES);
        assert!(parsed.chars().all(|c| c == 'é'));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let mut line = String::new();
        push_rfc3339(
            &mut line,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_589_522_469_014),
        );
        assert_eq!(line, "2020-05-15T06:01:09.014Z");
        line.clear();
        push_rfc3339(&mut line, SystemTime::UNIX_EPOCH);
        assert_eq!(line, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn latencies_have_three_decimals_like_the_formatter() {
        for value in [
            0.0,
            0.0004,
            0.0006,
            0.001,
            0.1234,
            1.0,
            12.3456,
            999.9996,
            61_234.567_8,
            4.2e9,
            1e13,
            -1.5,
        ] {
            let mut line = String::new();
            push_fixed3(&mut line, value);
            assert_eq!(line, format!("{value:.3}"), "{value}");
        }
        let mut line = String::new();
        push_fixed3(&mut line, f64::NAN);
        assert_eq!(line, "null");
    }
}
