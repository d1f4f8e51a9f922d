use super::*;
use proptest::prelude::*;

fn line<'a>(path: &'a str, checked: Option<&'a str>) -> AccessLine<'a> {
    AccessLine {
        correlation_id: "Ue4rHHsz9T06",
        method: "GET",
        path,
        status: 403,
        outcome: "denied",
        duration: Duration::from_micros(380_708),
        upstream: None,
        provider: Some("agentconnect"),
        sub_hash: Some("54b9151ee18d1569"),
        denied: Some("email_domain"),
        checked,
        bytes_in: 0,
        bytes_out: 931,
    }
}

fn at(seconds: u64, micros: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(seconds, micros * 1000)
}

#[test]
fn the_text_line_has_the_shape_of_guichet_s_other_lines() {
    let mut out = Vec::new();
    render(
        &mut out,
        &line("/.guichet/auth", Some("/admin/x")),
        Format::Text,
        at(1_796_039_362, 657_075),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2026-11-30T11:49:22.657075Z  INFO access: request correlation_id=Ue4rHHsz9T06 method=GET \
         path=/.guichet/auth status=403 outcome=\"denied\" duration_ms=380.708 provider=\"agentconnect\" \
         sub_hash=\"54b9151ee18d1569\" denied=\"email_domain\" checked=\"/admin/x\" bytes_in=0 bytes_out=931\n"
    );
}

#[test]
fn timestamps_match_a_calendar_library() {
    use chrono::{DateTime, Utc};
    for seconds in [
        0u64,
        59,
        86_399,
        951_782_400,
        1_709_208_000,
        4_102_444_800,
        253_402_300_799,
    ] {
        for micros in [0u32, 1, 999_999] {
            let mut out = Vec::new();
            timestamp(&mut out, at(seconds, micros));
            let expected: DateTime<Utc> = at(seconds, micros).into();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
        }
    }
}

proptest! {
    /// Whatever the strings, a JSON line parses and gives them back; a text line stays one line.
    #[test]
    fn any_value_stays_in_its_field(path in ".{0,40}", checked in proptest::option::of(".{0,40}"),
                                    seconds in 0u64..4_102_444_800, micros in 0u32..1_000_000,
                                    duration in 0u64..10_000_000_000, bytes in any::<u64>()) {
        let mut value = line(&path, checked.as_deref());
        value.duration = Duration::from_micros(duration);
        value.upstream = Some(Duration::from_micros(duration / 2));
        value.bytes_out = bytes;
        let mut out = Vec::new();
        render(&mut out, &value, Format::Json, at(seconds, micros));
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(parsed["path"].as_str(), Some(path.as_str()));
        prop_assert_eq!(parsed["checked"].as_str(), checked.as_deref());
        prop_assert_eq!(parsed["bytes_out"].as_u64(), Some(bytes));
        prop_assert_eq!(parsed["target"].as_str(), Some("access"));
        let ms = parsed["duration_ms"].as_f64().unwrap();
        prop_assert!((ms - duration as f64 / 1000.0).abs() < 0.001);

        let mut text = Vec::new();
        render(&mut text, &value, Format::Text, at(seconds, micros));
        let text = String::from_utf8(text).unwrap();
        prop_assert_eq!(text.matches('\n').count() - path.matches('\n').count(), 1);
        prop_assert!(text.ends_with('\n'));
    }
}

#[test]
fn lines_are_written_in_whole_batches_in_their_order() {
    let mut pending = Pending { bytes: Vec::new() };
    let mut out: Vec<u8> = Vec::new();
    let mut expected: Vec<u8> = Vec::new();
    let mut due_at = None;
    for i in 0..1_000 {
        let path = format!("/page/{i}");
        let mut one = Vec::new();
        render(&mut one, &line(&path, None), Format::Text, at(1, 0));
        expected.extend_from_slice(&one);
        if pending.add(&line(&path, None), Format::Text, at(1, 0)) {
            // Due only once the batch holds FLUSH_AT bytes, never before.
            assert!(pending.bytes.len() >= FLUSH_AT);
            due_at.get_or_insert(i);
            pending.flush(&mut out);
            assert!(pending.bytes.is_empty());
        } else {
            assert!(pending.bytes.len() < FLUSH_AT);
        }
    }
    assert!(due_at.is_some(), "1,000 lines make at least one batch");
    // What was written is whole lines, the first ones, in order; the rest follows on flush.
    assert!(out.ends_with(b"\n") && expected.starts_with(&out));
    pending.flush(&mut out);
    assert_eq!(out, expected);
    // Nothing pending: nothing written.
    pending.flush(&mut out);
    assert_eq!(out, expected);
}

#[test]
fn a_batch_that_cannot_be_written_is_dropped_not_kept() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut pending = Pending { bytes: Vec::new() };
    let long = "/x".repeat(100_000);
    pending.add(&line(&long, None), Format::Json, at(1, 0));
    pending.flush(Closed);
    assert!(pending.bytes.is_empty());
    assert!(
        pending.bytes.capacity() <= 2 * FLUSH_AT,
        "a long line's room is given back"
    );
}
