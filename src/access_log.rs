//! The access line: one per request, in the same shape as guichet's other log lines (the
//! `tracing` text or JSON format, target `access`, level INFO), but formatted here, and written
//! to standard error in batches: lines are appended to one buffer, written when it holds 32 KiB,
//! by a background thread every 100 ms, and at exit ([`flush`]). A `write` per request cost
//! about 4 % of the proxy's CPU; a line now reaches the log at most 100 ms after its request
//! (its timestamp is the request's), and a process killed outright loses at most those.
//!
//! Going through `tracing`'s formatter cost about a tenth of the proxy's CPU per request (a
//! `Debug` visitor per field, a formatted timestamp); this writes the same fields with integer
//! arithmetic and byte pushes. It obeys the same filter: nothing is written unless INFO is
//! enabled for the `access` target (`[log] level`, `RUST_LOG`), nor when `[log] access = false`.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one access line says.
pub struct AccessLine<'a> {
    pub correlation_id: &'a str,
    pub method: &'a str,
    /// Already stripped of query values (`forwarded::loggable_path`).
    pub path: &'a str,
    pub status: u16,
    pub outcome: &'static str,
    pub duration: Duration,
    pub upstream: Option<Duration>,
    pub provider: Option<&'a str>,
    pub sub_hash: Option<&'a str>,
    pub denied: Option<&'static str>,
    pub checked: Option<&'a str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Whether access lines are JSON (`[log] format = "json"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Bytes of lines that make a batch be written at once.
const FLUSH_AT: usize = 32 * 1024;

/// The longest a line waits before the background thread writes it.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Lines rendered and not yet written.
struct Pending {
    bytes: Vec<u8>,
}

impl Pending {
    /// Appends the line; whether the batch is due ([`FLUSH_AT`] bytes).
    fn add(&mut self, line: &AccessLine<'_>, format: Format, now: SystemTime) -> bool {
        render(&mut self.bytes, line, format, now);
        self.bytes.len() >= FLUSH_AT
    }

    /// Writes what is pending. A batch that cannot be written (a closed stderr) is dropped, as
    /// tracing would drop its lines.
    fn flush(&mut self, mut out: impl Write) {
        if !self.bytes.is_empty() {
            let _ = out.write_all(&self.bytes);
            self.bytes.clear();
            // One long path may have grown the buffer: do not keep that room.
            self.bytes.shrink_to(2 * FLUSH_AT);
        }
    }
}

static PENDING: Mutex<Pending> = Mutex::new(Pending { bytes: Vec::new() });

fn pending() -> std::sync::MutexGuard<'static, Pending> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Queues the line for standard error if the log filter lets INFO `access` lines through.
pub fn write(line: &AccessLine<'_>, format: Format) {
    if !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return;
    }
    static FLUSHER: Once = Once::new();
    FLUSHER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "no access-log thread: lines are written in 32 KiB batches and at exit");
        }
    });
    let now = SystemTime::now();
    let mut pending = pending();
    if pending.add(line, format, now) {
        pending.flush(std::io::stderr().lock());
    }
}

/// Writes the access lines not written yet (the background thread does it every 100 ms; the
/// process does it before it exits).
pub fn flush() {
    pending().flush(std::io::stderr().lock());
}

/// The line's bytes, newline included.
pub fn render(out: &mut Vec<u8>, line: &AccessLine<'_>, format: Format, now: SystemTime) {
    match format {
        Format::Text => text(out, line, now),
        Format::Json => json(out, line, now),
    }
}

fn text(out: &mut Vec<u8>, line: &AccessLine<'_>, now: SystemTime) {
    timestamp(out, now);
    out.extend_from_slice(b"  INFO access: request correlation_id=");
    out.extend_from_slice(line.correlation_id.as_bytes());
    out.extend_from_slice(b" method=");
    out.extend_from_slice(line.method.as_bytes());
    out.extend_from_slice(b" path=");
    out.extend_from_slice(line.path.as_bytes());
    out.extend_from_slice(b" status=");
    number(out, u64::from(line.status));
    out.extend_from_slice(b" outcome=");
    quoted(out, line.outcome);
    out.extend_from_slice(b" duration_ms=");
    millis(out, line.duration);
    if let Some(upstream) = line.upstream {
        out.extend_from_slice(b" upstream_ms=");
        millis(out, upstream);
    }
    for (name, value) in [
        (&b" provider="[..], line.provider),
        (b" sub_hash=", line.sub_hash),
        (b" denied=", line.denied),
        (b" checked=", line.checked),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(name);
            quoted(out, value);
        }
    }
    out.extend_from_slice(b" bytes_in=");
    number(out, line.bytes_in);
    out.extend_from_slice(b" bytes_out=");
    number(out, line.bytes_out);
    out.push(b'\n');
}

fn json(out: &mut Vec<u8>, line: &AccessLine<'_>, now: SystemTime) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(out, now);
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"correlation_id\":");
    quoted(out, line.correlation_id);
    out.extend_from_slice(b",\"method\":");
    quoted(out, line.method);
    out.extend_from_slice(b",\"path\":");
    quoted(out, line.path);
    out.extend_from_slice(b",\"status\":");
    number(out, u64::from(line.status));
    out.extend_from_slice(b",\"outcome\":");
    quoted(out, line.outcome);
    out.extend_from_slice(b",\"duration_ms\":");
    millis(out, line.duration);
    if let Some(upstream) = line.upstream {
        out.extend_from_slice(b",\"upstream_ms\":");
        millis(out, upstream);
    }
    for (name, value) in [
        (&b",\"provider\":"[..], line.provider),
        (b",\"sub_hash\":", line.sub_hash),
        (b",\"denied\":", line.denied),
        (b",\"checked\":", line.checked),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(name);
            quoted(out, value);
        }
    }
    out.extend_from_slice(b",\"bytes_in\":");
    number(out, line.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    number(out, line.bytes_out);
    out.extend_from_slice(b",\"target\":\"access\"}\n");
}

/// A string in double quotes with `"`, `\` and control characters escaped: valid JSON, and the
/// way the text format has always quoted these fields.
fn quoted(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for &byte in value.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// A decimal number, without `core::fmt`.
fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Milliseconds with three decimals (microsecond precision).
fn millis(out: &mut Vec<u8>, duration: Duration) {
    let micros = duration.as_micros().min(u128::from(u64::MAX)) as u64;
    number(out, micros / 1000);
    out.push(b'.');
    let fraction = micros % 1000;
    out.extend_from_slice(&[
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

/// `2026-11-30T11:49:22.656090Z` (UTC, microseconds), as `tracing` writes it.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    let two = |out: &mut Vec<u8>, n: u64| {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    number(out, year as u64);
    out.push(b'-');
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    two(out, of_day / 3600);
    out.push(b':');
    two(out, of_day / 60 % 60);
    out.push(b':');
    two(out, of_day % 60);
    out.push(b'.');
    let micros = u64::from(since.subsec_micros());
    let mut digits = [b'0'; 6];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = b'0' + (micros / 10u64.pow(5 - i as u32) % 10) as u8;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
