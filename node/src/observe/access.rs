//! The access-log sink: each request's line is formatted straight into its worker's batch
//! buffer, and one writer thread collects the batches and writes them to stdout.
//!
//! Why not `tracing`: an event goes through the dispatcher, the registry and every layer's
//! filter, and a layer sees fields only through a generic visitor; tracing-subscriber's JSON
//! formatter cost about a quarter of a proxied request's user-space instructions, and even a
//! lean layer paid the dispatch, a line allocation, a global lock for buffer reuse and a
//! channel hand-off per request (bench/README.md). Here a line costs the formatting and one
//! uncontended lock of the calling thread's own buffer: per worker, since a worker is a
//! thread. The writer takes a whole buffer at a time (swapping in an empty one with the
//! capacity of the last it wrote), so steady state allocates nothing and issues one `write`
//! per batch.
//!
//! The request path never blocks on the log: a buffer holds at most [`BATCH_MAX_BYTES`], and
//! lines beyond it (a writer that cannot keep up) are dropped and counted, and the count is
//! reported. Lines are whole and in order per worker; workers' lines interleave by batch.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::AccessRecord;

/// What one thread's buffer may hold before lines are dropped (a writer that fell behind).
pub const BATCH_MAX_BYTES: usize = 1024 * 1024;

/// How long the writer lets lines accumulate after a busy batch. Workers wake the writer only
/// when it is parked (idle), so under load the request path pays no system call for its line.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);
/// An idle writer also looks every so often, so a wake-up lost to a race costs at most this.
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// One thread's lines, waiting for the writer.
#[derive(Default)]
struct Batch {
    lines: Mutex<String>,
}

struct Sink {
    /// Every thread's batch that ever logged; the writer drops those whose thread is gone.
    batches: Mutex<Vec<Arc<Batch>>>,
    dropped: AtomicU64,
    /// True while the writer is parked and wants a wake-up for the next line.
    parked: AtomicBool,
    writer: OnceLock<std::thread::Thread>,
    /// Held while batches are taken and written, so `flush` returns after every line logged
    /// before it is out.
    writing: Mutex<()>,
}

static SINK: Sink = Sink {
    batches: Mutex::new(Vec::new()),
    dropped: AtomicU64::new(0),
    parked: AtomicBool::new(false),
    writer: OnceLock::new(),
    writing: Mutex::new(()),
};
/// Set by [`enable`]: until then (a library user, the tests) lines are not formatted at all.
static ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOCAL: Arc<Batch> = {
        let batch = Arc::new(Batch::default());
        if let Ok(mut batches) = SINK.batches.lock() {
            batches.push(batch.clone());
        }
        batch
    };
}

/// Starts the writer thread; from now on [`log`] writes lines to stdout.
pub fn enable() {
    if SINK.writer.get().is_some() {
        return;
    }
    match std::thread::Builder::new()
        .name("access-log".into())
        .spawn(write_batches)
    {
        Ok(handle) => {
            let _ = SINK.writer.set(handle.thread().clone());
            ENABLED.store(true, Ordering::Release);
        }
        Err(error) => eprintln!("cannot start the access-log writer: {error}"),
    }
}

/// Appends `record`'s line to the calling thread's batch.
pub fn log(record: &AccessRecord<'_>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let appended = LOCAL.with(|batch| append(batch, record, SystemTime::now()));
    match appended {
        Appended::Dropped => {
            SINK.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // The first line of a batch wakes a parked writer; later ones find it awake.
        Appended::First if SINK.parked.swap(false, Ordering::SeqCst) => {
            if let Some(writer) = SINK.writer.get() {
                writer.unpark();
            }
        }
        Appended::First | Appended::More => {}
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Appended {
    First,
    More,
    Dropped,
}

fn append(batch: &Batch, record: &AccessRecord<'_>, now: SystemTime) -> Appended {
    let Ok(mut lines) = batch.lines.lock() else {
        return Appended::Dropped;
    };
    if lines.len() >= BATCH_MAX_BYTES {
        return Appended::Dropped;
    }
    let first = lines.is_empty();
    push_line(&mut lines, record, now);
    if first {
        Appended::First
    } else {
        Appended::More
    }
}

/// One JSON line, the fields in this order, absent ones left out (what the `tracing` JSON
/// layer wrote before, so log pipelines see the same lines).
fn push_line(line: &mut String, record: &AccessRecord<'_>, now: SystemTime) {
    line.push_str("{\"timestamp\":\"");
    push_rfc3339(line, now);
    line.push_str("\",\"level\":\"INFO\",\"requestId\":");
    push_json_string(line, record.request_id);
    line.push_str(",\"ip\":\"");
    crate::integrate::http::push_ip(line, record.source_ip);
    line.push_str("\",\"httpMethod\":");
    push_json_string(line, record.method);
    if let Some(resource_path) = record.resource_path {
        line.push_str(",\"resourcePath\":");
        push_json_string(line, resource_path);
    }
    line.push_str(",\"path\":");
    push_json_string(line, record.path);
    line.push_str(",\"protocol\":");
    push_json_string(line, record.protocol);
    line.push_str(",\"status\":");
    crate::integrate::http::push_decimal(line, u32::from(record.status));
    line.push_str(",\"latencyMs\":");
    push_fixed3(line, record.latency_ms);
    if let Some(latency) = record.integration_latency_ms {
        line.push_str(",\"integrationLatencyMs\":");
        push_fixed3(line, latency);
    }
    let optional = [
        ("apiId", record.api_id),
        ("stage", record.stage),
        ("error", record.error),
        ("errorDetail", record.error_detail),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            line.push_str(",\"");
            line.push_str(name);
            line.push_str("\":");
            push_json_string(line, value);
        }
    }
    line.push_str("}\n");
}

fn write_batches() {
    // The buffer swapped into the next batch taken: the capacity circulates.
    let mut spare = String::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut reported_drops = 0;
    loop {
        let wrote = take_and_write(&mut spare, &mut out);
        if wrote {
            std::thread::sleep(BATCH_INTERVAL);
        } else {
            SINK.parked.store(true, Ordering::SeqCst);
            // A line appended between the look above and `parked` would find the writer
            // awake and not wake it: look again before parking.
            if take_and_write(&mut spare, &mut out) {
                SINK.parked.store(false, Ordering::SeqCst);
            } else {
                std::thread::park_timeout(IDLE_LOOK);
            }
        }
        let dropped = SINK.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            tracing::warn!(
                dropped = dropped - reported_drops,
                "access-log lines dropped: the log writer could not keep up"
            );
            reported_drops = dropped;
        }
    }
}

/// Takes every thread's lines and writes them in one `write`; false when there were none.
fn take_and_write(spare: &mut String, out: &mut Vec<u8>) -> bool {
    let Ok(_writing) = SINK.writing.lock() else {
        return false;
    };
    take_all(spare, out);
    if out.is_empty() {
        return false;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out);
    let _ = stdout.flush();
    out.clear();
    // A burst may have grown the buffer; do not keep megabytes around.
    if out.capacity() > BATCH_MAX_BYTES {
        out.shrink_to(64 * 1024);
    }
    true
}

/// Moves every batch's lines into `out` (each batch gets `spare`'s capacity back), and
/// forgets the batches of threads that ended.
fn take_all(spare: &mut String, out: &mut Vec<u8>) {
    let Ok(mut batches) = SINK.batches.lock() else {
        return;
    };
    batches.retain(|batch| {
        if let Ok(mut lines) = batch.lines.lock()
            && !lines.is_empty()
        {
            spare.clear();
            std::mem::swap(&mut *lines, spare);
        }
        if !spare.is_empty() {
            out.extend_from_slice(spare.as_bytes());
            spare.clear();
        }
        // The registry's reference is the last one once the thread has gone.
        Arc::strong_count(batch) > 1
    });
    if spare.capacity() > BATCH_MAX_BYTES {
        spare.shrink_to(64 * 1024);
    }
}

/// Writes every line logged so far; for shutdown.
pub fn flush() {
    if SINK.writer.get().is_none() {
        return;
    }
    let mut spare = String::new();
    let mut out = Vec::new();
    take_and_write(&mut spare, &mut out);
}

/// Lines dropped because the writer was behind (for metrics and tests).
pub fn dropped_lines() -> u64 {
    SINK.dropped.load(Ordering::Relaxed)
}

/// Request-controlled fields (path, error detail) are cut to this many bytes in the log, so a
/// line stays far below a batch's bound.
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

    fn record<'a>(path: &'a str, routed: bool) -> AccessRecord<'a> {
        AccessRecord {
            request_id: "c0ffee00-0000-4000-8000-000000000001",
            source_ip: std::net::IpAddr::from([192, 0, 2, 7]),
            method: "GET",
            resource_path: routed.then_some("/pets/{id}"),
            path,
            protocol: "HTTP/1.1",
            status: if routed { 200 } else { 403 },
            latency_ms: 1.25,
            integration_latency_ms: routed.then_some(0.5),
            api_id: routed.then_some("a1b2c3"),
            stage: routed.then_some("prod"),
            error: (!routed).then_some("MISSING_AUTHENTICATION_TOKEN"),
            error_detail: (!routed).then_some("no route"),
        }
    }

    #[test]
    fn a_line_is_one_json_object_with_the_fields_in_order_and_absent_ones_left_out() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_589_522_469_014);
        let mut line = String::new();
        push_line(&mut line, &record("/prod/pets/\"1", true), at);
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let order = [
            "timestamp",
            "level",
            "requestId",
            "ip",
            "httpMethod",
            "resourcePath",
            "path",
            "protocol",
            "status",
            "latencyMs",
            "integrationLatencyMs",
            "apiId",
            "stage",
        ];
        assert_eq!(value.as_object().unwrap().len(), order.len());
        let positions: Vec<usize> = order
            .iter()
            .map(|key| line.find(&format!("\"{key}\":")).unwrap())
            .collect();
        assert!(positions.is_sorted(), "{line}");
        assert_eq!(value["timestamp"], "2020-05-15T06:01:09.014Z");
        assert_eq!(value["ip"], "192.0.2.7");
        assert_eq!(value["path"], "/prod/pets/\"1");
        assert_eq!(value["status"], 200);
        assert_eq!(value["latencyMs"], 1.25);

        line.clear();
        push_line(&mut line, &record("/nowhere", false), at);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(value.get("resourcePath").is_none() && value.get("apiId").is_none());
        assert_eq!(value["error"], "MISSING_AUTHENTICATION_TOKEN");
        assert_eq!(value["errorDetail"], "no route");
    }

    #[test]
    fn a_batch_is_bounded_and_the_writer_takes_every_threads_lines() {
        let batch = Batch::default();
        let now = SystemTime::now();
        assert_eq!(append(&batch, &record("/a", true), now), Appended::First);
        assert_eq!(append(&batch, &record("/b", true), now), Appended::More);
        let long = "x".repeat(FIELD_MAX_BYTES);
        let mut appended = 2;
        while append(&batch, &record(&long, true), now) != Appended::Dropped {
            appended += 1;
            assert!(appended < 10_000);
        }
        let held = batch.lines.lock().unwrap().len();
        assert!((BATCH_MAX_BYTES..BATCH_MAX_BYTES + 2 * FIELD_MAX_BYTES).contains(&held));

        // Lines appended on another thread, which then ends: taken whole, and its batch
        // forgotten afterwards.
        std::thread::spawn(|| {
            LOCAL.with(|batch| append(batch, &record("/from-a-thread", true), SystemTime::now()));
        })
        .join()
        .unwrap();
        let mut spare = String::new();
        let mut out = Vec::new();
        take_all(&mut spare, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"path\":\"/from-a-thread\""), "{text}");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        let mut out = Vec::new();
        take_all(&mut spare, &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("/from-a-thread"));
    }

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
