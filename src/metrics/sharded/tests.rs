use super::*;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

const BOUNDS: &[f64] = &[0.001, 0.25, 1.0];

fn render(collector: impl Collector + 'static) -> String {
    let registry = Registry::new();
    registry.register(Box::new(collector)).unwrap();
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap()
}

fn set() -> (Sharded, CounterId, HistogramId) {
    let mut builder = ShardedBuilder::default();
    let counter = builder.counter(Family::new(
        "t_requests_total",
        "Requests",
        &["status_class", "outcome"],
        vec![vec!["2xx", "proxied"], vec!["3xx", "login_redirect"]],
    ));
    let histogram = builder.histogram(
        Family::new(
            "t_seconds",
            "Durations",
            &["outcome"],
            vec![vec!["proxied"], vec!["error"]],
        ),
        BOUNDS,
    );
    (builder.build(), counter, histogram)
}

#[test]
fn exported_as_the_library_s_own_counters_and_histograms_are() {
    let (sharded, counter, histogram) = set();
    let requests = IntCounterVec::new(
        Opts::new("t_requests_total", "Requests"),
        &["status_class", "outcome"],
    )
    .unwrap();
    let durations = HistogramVec::new(
        HistogramOpts::new("t_seconds", "Durations").buckets(BOUNDS.to_vec()),
        &["outcome"],
    )
    .unwrap();
    requests.with_label_values(&["2xx", "proxied"]).inc_by(5);
    requests.with_label_values(&["3xx", "login_redirect"]);
    sharded.add(counter, 2);
    sharded.add(counter.series(0), 3);
    // On a bound, above the last, below the first, in the middle; binary fractions keep the
    // two sums equal to the bit.
    let seconds = [0.25, 2.0, 0.0, 0.5, 0.25, 1.0];
    for (i, s) in seconds.iter().enumerate() {
        let series = i % 2;
        sharded.observe(histogram, series, Duration::from_secs_f64(*s));
        durations
            .with_label_values(&[["proxied", "error"][series]])
            .observe(*s);
    }
    let expected = format!("{}{}", render(requests), render(durations));
    assert_eq!(render(sharded), expected);
}

#[test]
fn every_thread_s_additions_are_counted_even_when_threads_outnumber_the_blocks() {
    let (sharded, counter, histogram) = set();
    let sharded = std::sync::Arc::new(sharded);
    let threads: Vec<_> = (0..SHARDS + 5)
        .map(|_| {
            let sharded = sharded.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    sharded.add(counter.series(1), 1);
                    sharded.observe(histogram, 1, Duration::from_micros(500));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let total = (SHARDS as u64 + 5) * 1000;
    let text = render(std::sync::Arc::try_unwrap(sharded).ok().unwrap());
    assert!(
        text.contains(&format!(
            "t_requests_total{{outcome=\"login_redirect\",status_class=\"3xx\"}} {total}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "t_seconds_bucket{{outcome=\"error\",le=\"0.001\"}} {total}"
    )));
    assert!(text.contains(&format!("t_seconds_count{{outcome=\"error\"}} {total}")));
}

#[test]
fn series_outside_a_family_are_ignored() {
    let (sharded, counter, histogram) = set();
    sharded.add(counter.series(2), 1);
    sharded.add(counter.series(usize::MAX), 1);
    sharded.observe(histogram, 2, Duration::from_secs(1));
    sharded.observe(HistogramId { index: 99 }, 0, Duration::from_secs(1));
    let text = render(sharded);
    assert!(!text.contains("} 1\n"), "{text}");
}

#[test]
fn a_duration_too_long_for_nanoseconds_lands_above_the_last_bound() {
    let (sharded, _, histogram) = set();
    sharded.observe(histogram, 0, Duration::MAX);
    let text = render(sharded);
    assert!(
        text.contains("t_seconds_bucket{outcome=\"proxied\",le=\"1\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("t_seconds_bucket{outcome=\"proxied\",le=\"+Inf\"} 1"),
        "{text}"
    );
}
